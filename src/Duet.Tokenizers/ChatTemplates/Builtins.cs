// What a template can reach besides its own variables: jinja2's filters and tests that chat templates use,
// Python's str / dict / list methods, attribute and item access with jinja2's sandbox rules, and the globals
// HF provides (range, dict, namespace, raise_exception, strftime_now).
//
// Attribute and item access follow jinja2's ImmutableSandboxedEnvironment: x.name looks for a method or
// attribute first and then for the key x['name']; x['name'] looks for the key first and then the attribute;
// a failed lookup is Undefined (jinja2's messages); methods that would mutate a list or dict (append, update,
// pop...) are unsafe and Undefined; there is no other attribute (no __class__, no reflection).
using System.Globalization;
using System.Text;

namespace Duet.Tokenizers.ChatTemplates;

internal static class Builtins
{
    // ---- globals ------------------------------------------------------------------------------------------------

    /// <summary>jinja2's sandbox refuses ranges longer than this (MAX_RANGE), before any iteration.</summary>
    public const long MaxRange = 100_000;

    public static void AddGlobals(Dictionary<string, object?> g)
    {
        g["range"] = new BuiltinFunction("range", (_, a) => Range(a));
        g["dict"] = new BuiltinFunction("dict", (it, a) => Dict(it, a));
        g["namespace"] = new BuiltinFunction("namespace", (it, a) =>
        {
            var ns = new PyNamespace();
            foreach (var (k, v) in Dict(it, a).Items) ns.Attributes[(string)k!] = v;
            return ns;
        });
        g["raise_exception"] = new BuiltinFunction("raise_exception", (_, a) =>
        {
            var p = a.Bind("raise_exception", ["message"], [], 1);
            throw new TemplateRaisedError(PyValues.Str(p[0]));
        });
        g["strftime_now"] = new BuiltinFunction("strftime_now", (it, a) =>
        {
            var p = a.Bind("strftime_now", ["format"], [], 1);
            return PyText.StrFTime(it.Now, Str(p[0], "strftime_now", "format"));
        });
    }

    private static PyRange Range(CallArgs a)
    {
        if (a.Keyword.Count > 0) throw new TemplateRuntimeError("TypeError", "range() takes no keyword arguments");
        if (a.Positional.Count is < 1 or > 3) throw new TemplateRuntimeError("TypeError", $"range expected 1 to 3 arguments, got {a.Positional.Count}");
        var n = a.Positional.Select(v => PyValues.TryInt(v, out long l) ? l
            : v is Undefined u ? throw u.Fail()
            : throw new TemplateRuntimeError("TypeError", $"'{PyValues.TypeName(v)}' object cannot be interpreted as an integer")).ToArray();
        var r = n.Length == 1 ? new PyRange(0, n[0], 1) : new PyRange(n[0], n[1], n.Length == 3 ? n[2] : 1);
        if (r.Step == 0) throw new TemplateRuntimeError("ValueError", "range() arg 3 must not be zero");
        if (r.Count > MaxRange)
            throw new TemplateRuntimeError("OverflowError", $"Range too big. The sandbox blocks ranges larger than MAX_RANGE ({MaxRange}).");
        return r;
    }

    private static PyDict Dict(Interpreter it, CallArgs a)
    {
        var d = new PyDict();
        if (a.Positional.Count > 1) throw new TemplateRuntimeError("TypeError", $"dict expected at most 1 argument, got {a.Positional.Count}");
        if (a.Positional.Count == 1)
        {
            if (a.Positional[0] is Undefined u) throw u.Fail(); // dict() looks for .keys on it
            if (a.Positional[0] is PyDict src)
                foreach (var (k, v) in src.Items) d.Set(k, v);
            else
                foreach (var pair in PyValues.Iterate(a.Positional[0]))
                {
                    var kv = it.Materialize(pair);
                    if (kv.Count != 2) throw new TemplateRuntimeError("ValueError", "dictionary update sequence element has the wrong length; 2 is required");
                    d.Set(kv[0], kv[1]);
                }
        }
        foreach (var (k, v) in a.Keyword) d.Set(k, v);
        return d;
    }

    // ---- attribute and item access --------------------------------------------------------------------------------

    private static readonly HashSet<string> StrMethods =
    [
        "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower", "title",
        "capitalize", "swapcase", "replace", "find", "rfind", "index", "rindex", "count", "join", "format", "isdigit",
        "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace", "isupper", "islower", "center", "ljust", "rjust",
        "zfill", "removeprefix", "removesuffix",
    ];
    private static readonly HashSet<string> DictMethods = ["get", "items", "keys", "values", "copy"];
    private static readonly HashSet<string> DictUnsafe = ["pop", "popitem", "setdefault", "update", "clear", "fromkeys"];
    private static readonly HashSet<string> ListMethods = ["count", "index", "copy"];
    private static readonly HashSet<string> ListUnsafe = ["append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"];

    /// <summary>obj.name as jinja2's sandbox resolves it (attribute first, then key).</summary>
    public static object? GetAttr(object? obj, string name)
    {
        switch (obj)
        {
            case PyDict d:
                if (DictMethods.Contains(name)) return new BoundMethod(d, name);
                if (DictUnsafe.Contains(name)) return new Undefined($"access to attribute '{name}' of 'dict' object is unsafe.");
                return d.TryGet(name, out var v) ? v : Undefined.Attribute(obj, name);
            case string s:
                return StrMethods.Contains(name) ? new BoundMethod(s, name) : Undefined.Attribute(obj, name);
            case PyList l:
                if (l.Kind is SeqKind.List or SeqKind.Tuple && ListMethods.Contains(name) && !(l.IsTuple && name == "copy")) return new BoundMethod(l, name);
                if (l.Kind == SeqKind.List && ListUnsafe.Contains(name)) return new Undefined($"access to attribute '{name}' of 'list' object is unsafe.");
                return Undefined.Attribute(obj, name);
            case PyNamespace ns:
                return ns.Attributes.TryGetValue(name, out var nv) ? nv : Undefined.Attribute(obj, name);
            case LoopContext loop:
                return LoopAttr(loop, name);
            case PyRange r:
                return name switch { "start" => r.Start, "stop" => r.Stop, "step" => r.Step, "index" or "count" => new BoundMethod(r, name), _ => Undefined.Attribute(obj, name) };
            case Undefined u:
                throw u.Fail();
            default:
                return Undefined.Attribute(obj, name);
        }
    }

    private static object? LoopAttr(LoopContext loop, string name)
    {
        int i = loop.Index0, n = loop.Items.Count;
        return name switch
        {
            "index" => (long)i + 1,
            "index0" => (long)i,
            "revindex" => (long)(n - i),
            "revindex0" => (long)(n - i - 1),
            "first" => i == 0,
            "last" => i == n - 1,
            "length" => (long)n,
            "depth" => 1L,
            "depth0" => 0L,
            "previtem" => i > 0 ? loop.Items[i - 1] : new Undefined("there is no previous item"),
            "nextitem" => i < n - 1 ? loop.Items[i + 1] : new Undefined("there is no next item"),
            "cycle" => new BoundMethod(loop, "cycle"),
            _ => Undefined.Attribute(loop, name),
        };
    }

    /// <summary>obj[key] as jinja2 resolves it: the item, else (for a string key) the attribute, else Undefined.</summary>
    public static object? GetItem(object? obj, object? key)
    {
        switch (obj)
        {
            case Undefined u:
                throw u.Fail();
            case PyDict d:
                try
                {
                    if (d.TryGet(key, out var v)) return v;
                }
                catch (TemplateRuntimeError) { } // unhashable key: TypeError, which jinja2 turns into undefined
                break;
            case PyList l when l.Kind is SeqKind.List or SeqKind.Tuple && PyValues.TryInt(key, out long i):
                if (i < 0) i += l.Count;
                if (i >= 0 && i < l.Count) return l.Items[(int)i];
                return Undefined.Element(obj, key);
            case string s when PyValues.TryInt(key, out long i):
                {
                    if (!PyText.HasSurrogates(s))
                    {
                        if (i < 0) i += s.Length;
                        return i >= 0 && i < s.Length ? s[(int)i].ToString() : Undefined.Element(obj, key);
                    }
                    var cps = PyText.CodePoints(s);
                    if (i < 0) i += cps.Count;
                    return i >= 0 && i < cps.Count ? cps[(int)i] : Undefined.Element(obj, key);
                }
            case PyRange r when PyValues.TryInt(key, out long i):
                if (i < 0) i += r.Count;
                return i >= 0 && i < r.Count ? r[i] : Undefined.Element(obj, key);
        }
        if (key is string name) return GetAttr(obj, name);
        return Undefined.Element(obj, key);
    }

    /// <summary>
    /// obj[start:stop:step]. jinja2 compiles slices to plain Python subscripts (they bypass its forgiving getitem),
    /// so slicing something that is not a sequence, or with bounds that are not integers, is an error.
    /// </summary>
    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        if (obj is Undefined u) throw u.Fail();
        long? Index(object? v)
        {
            if (v is null) return null;
            if (PyValues.TryInt(v, out long l)) return l;
            if (v is Undefined uv) throw uv.Fail();
            throw new TemplateRuntimeError("TypeError", "slice indices must be integers or None or have an __index__ method");
        }
        switch (obj)
        {
            case string or PyRange or PyList { Kind: SeqKind.List or SeqKind.Tuple }: break;
            case PyDict: throw new TemplateRuntimeError("TypeError", "unhashable type: 'slice'");
            default: throw new TemplateRuntimeError("TypeError", $"'{PyValues.TypeName(obj)}' object is not subscriptable");
        }
        long? a = Index(start), b = Index(stop), c = Index(step);
        long st = c ?? 1;
        if (st == 0) throw new TemplateRuntimeError("ValueError", "slice step cannot be zero");
        switch (obj)
        {
            case string s:
                {
                    var cps = PyText.CodePoints(s);
                    var sb = new StringBuilder();
                    foreach (int i in SliceIndices(cps.Count, a, b, st)) sb.Append(cps[i]);
                    return sb.ToString();
                }
            case PyRange r:
                {
                    var (i0, i1) = Bounds(r.Count, a, b, st);
                    return new PyRange(r.Start + i0 * r.Step, r.Start + i1 * r.Step, r.Step * st);
                }
            default:
                {
                    var l = (PyList)obj!;
                    return new PyList([.. SliceIndices(l.Count, a, b, st).Select(i => l.Items[i])], l.Kind);
                }
        }
    }

    private static (long Start, long Stop) Bounds(long length, long? start, long? stop, long step)
    {
        long lower = step > 0 ? 0 : -1, upper = step > 0 ? length : length - 1;
        long Norm(long? v, long dflt)
        {
            if (v is not long x) return dflt;
            if (x < 0) { x += length; if (x < lower) x = lower; }
            else if (x > upper) x = upper;
            return x;
        }
        return (Norm(start, step > 0 ? lower : upper), Norm(stop, step > 0 ? upper : lower));
    }

    private static IEnumerable<int> SliceIndices(int length, long? start, long? stop, long step)
    {
        var (i, end) = Bounds(length, start, stop, step);
        for (; step > 0 ? i < end : i > end; i += step) yield return (int)i;
    }

    // ---- calls --------------------------------------------------------------------------------------------------

    private static string Str(object? v, string function, string parameter) => v switch
    {
        string s => s,
        Undefined u => throw u.Fail(),
        _ => throw new TemplateRuntimeError("TypeError", $"{function}() argument '{parameter}' must be str, not {PyValues.TypeName(v)}"),
    };

    private static long Int(object? v, string function) => PyValues.TryInt(v, out long l) ? l
        : v is Undefined u ? throw u.Fail()
        : throw new TemplateRuntimeError("TypeError", $"{function}(): '{PyValues.TypeName(v)}' object cannot be interpreted as an integer");

    private static string? OptStr(object? v, string function, string parameter) => v is null ? null : Str(v, function, parameter);

    /// <summary>A method call on a value (BoundMethod), with Python's behaviour.</summary>
    public static object? CallMethod(Interpreter it, object? receiver, string name, CallArgs a)
    {
        switch (receiver)
        {
            case string s: return StrMethod(it, s, name, a);
            case PyDict d:
                switch (name)
                {
                    case "get":
                        {
                            var p = a.Bind("get", ["key", "default"], [null], 1);
                            try { return d.TryGet(p[0], out var v) ? v : p[1]; }
                            catch (TemplateRuntimeError) { return p[1]; }
                        }
                    case "items": a.Bind("items", [], [], 0); return new PyList([.. d.Items.Select(kv => (object?)PyList.Tuple(kv.Key, kv.Value))], SeqKind.DictItems);
                    case "keys": a.Bind("keys", [], [], 0); return new PyList([.. d.Keys], SeqKind.DictKeys);
                    case "values": a.Bind("values", [], [], 0); return new PyList([.. d.Values], SeqKind.DictValues);
                    case "copy":
                        {
                            a.Bind("copy", [], [], 0);
                            var c = new PyDict();
                            foreach (var (k, v) in d.Items) c.Set(k, v);
                            return c;
                        }
                }
                break;
            case PyList l:
                switch (name)
                {
                    case "count": { var p = a.Bind("count", ["value"], [], 1); return (long)l.Items.Count(x => PyValues.Equal(x, p[0])); }
                    case "index":
                        {
                            var p = a.Bind("index", ["value"], [], 1);
                            int k = l.Items.FindIndex(x => PyValues.Equal(x, p[0]));
                            if (k < 0) throw new TemplateRuntimeError("ValueError", $"{PyValues.Repr(p[0])} is not in list");
                            return (long)k;
                        }
                    case "copy": a.Bind("copy", [], [], 0); return new PyList([.. l.Items]);
                }
                break;
            case PyRange r:
                {
                    var p = a.Bind(name, ["value"], [], 1);
                    bool has = PyValues.Contains(r, p[0]);
                    if (name == "count") return has ? 1L : 0L;
                    if (!has) throw new TemplateRuntimeError("ValueError", $"{PyValues.Repr(p[0])} is not in range");
                    long x = PyValues.TryInt(p[0], out long xi) ? xi : (long)(double)p[0]!;
                    return (x - r.Start) / r.Step;
                }
            case LoopContext loop when name == "cycle":
                if (a.Positional.Count == 0) throw new TemplateRuntimeError("TypeError", "no items for cycling given");
                return a.Positional[loop.Index0 % a.Positional.Count];
        }
        throw new TemplateRuntimeError("AttributeError", $"'{PyValues.TypeName(receiver)}' object has no attribute '{name}'");
    }

    private static object? StrMethod(Interpreter it, string s, string name, CallArgs a)
    {
        switch (name)
        {
            case "strip" or "lstrip" or "rstrip":
                {
                    var p = a.Bind(name, ["chars"], [null], 0);
                    return PyText.Strip(s, OptStr(p[0], name, "chars"), left: name != "rstrip", right: name != "lstrip");
                }
            case "split" or "rsplit":
                {
                    var p = a.Bind(name, ["sep", "maxsplit"], [null, -1L], 0);
                    string? sep = OptStr(p[0], name, "sep");
                    long max = Int(p[1], name);
                    var parts = name == "split" ? PyText.Split(s, sep, max) : PyText.RSplit(s, sep, max);
                    it.Charge(parts.Count);
                    return new PyList([.. parts]);
                }
            case "splitlines":
                {
                    var p = a.Bind(name, ["keepends"], [false], 0);
                    var lines = PyText.SplitLines(s, PyValues.Truthy(p[0]));
                    it.Charge(lines.Count);
                    return new PyList([.. lines]);
                }
            case "startswith" or "endswith":
                {
                    var p = a.Bind(name, ["prefix"], [], 1);
                    IEnumerable<object?> options = p[0] is PyList { IsTuple: true } t ? t.Items : [p[0]];
                    foreach (var o in options)
                    {
                        if (o is not string x)
                            throw new TemplateRuntimeError("TypeError", $"{name} first arg must be str or a tuple of str, not {PyValues.TypeName(o)}");
                        if (name == "startswith" ? s.StartsWith(x, StringComparison.Ordinal) : s.EndsWith(x, StringComparison.Ordinal)) return true;
                    }
                    return false;
                }
            case "upper": a.Bind(name, [], [], 0); return PyText.Upper(s);
            case "lower": a.Bind(name, [], [], 0); return PyText.Lower(s);
            case "title": a.Bind(name, [], [], 0); return PyText.Title(s);
            case "capitalize": a.Bind(name, [], [], 0); return PyText.Capitalize(s);
            case "swapcase": a.Bind(name, [], [], 0); return PyText.SwapCase(s);
            case "replace":
                {
                    var p = a.Bind(name, ["old", "new", "count"], [-1L], 2);
                    return it.CheckString(PyText.Replace(s, Str(p[0], name, "old"), Str(p[1], name, "new"), Int(p[2], name)));
                }
            case "find" or "rfind" or "index" or "rindex":
                {
                    var p = a.Bind(name, ["sub"], [], 1);
                    long k = PyText.Find(s, Str(p[0], name, "sub"), reverse: name[0] == 'r');
                    if (k < 0 && name.EndsWith("index", StringComparison.Ordinal)) throw new TemplateRuntimeError("ValueError", "substring not found");
                    return k;
                }
            case "count": { var p = a.Bind(name, ["sub"], [], 1); return PyText.Count(s, Str(p[0], name, "sub")); }
            case "join":
                {
                    var p = a.Bind(name, ["iterable"], [], 1);
                    var sb = new StringBuilder();
                    int i = 0;
                    foreach (var item in PyValues.Iterate(p[0]))
                    {
                        if (item is not string x) throw new TemplateRuntimeError("TypeError", $"sequence item {i}: expected str instance, {PyValues.TypeName(item)} found");
                        if (i++ > 0) sb.Append(s);
                        sb.Append(x);
                        it.CheckLength(sb.Length);
                    }
                    return it.CheckString(sb.ToString());
                }
            case "format": return it.CheckString(PyOps.StrFormat(s, a));
            case "isdigit" or "isdecimal" or "isnumeric" or "isalpha" or "isalnum" or "isspace" or "isupper" or "islower":
                a.Bind(name, [], [], 0);
                return StrPredicate(s, name);
            case "center" or "ljust" or "rjust":
                {
                    var p = a.Bind(name, ["width", "fillchar"], [" "], 1);
                    string fill = Str(p[1], name, "fillchar");
                    if (PyText.Length(fill) != 1) throw new TemplateRuntimeError("TypeError", "The fill character must be exactly one character long");
                    return it.CheckString(Pad(s, Int(p[0], name), fill, name, it.MaxLength));
                }
            case "zfill":
                {
                    var p = a.Bind(name, ["width"], [], 1);
                    long width = Int(p[0], name), len = PyText.Length(s);
                    if (width <= len) return s;
                    if (width > it.MaxLength) throw new TemplateRuntimeError("LimitError", $"zfill width exceeds the render limit of {it.MaxLength} characters");
                    int sign = s.Length > 0 && s[0] is '+' or '-' ? 1 : 0;
                    return s[..sign] + new string('0', (int)(width - len)) + s[sign..];
                }
            case "removeprefix" or "removesuffix":
                {
                    var p = a.Bind(name, [name == "removeprefix" ? "prefix" : "suffix"], [], 1);
                    string x = Str(p[0], name, "prefix");
                    if (x.Length == 0) return s;
                    if (name == "removeprefix") return s.StartsWith(x, StringComparison.Ordinal) ? s[x.Length..] : s;
                    return s.EndsWith(x, StringComparison.Ordinal) ? s[..^x.Length] : s;
                }
        }
        throw new TemplateRuntimeError("AttributeError", $"'str' object has no attribute '{name}'");
    }

    private static string Pad(string s, long width, string fill, string how, int maxLength)
    {
        long len = PyText.Length(s);
        if (width <= len) return s;
        if (width > maxLength) throw new TemplateRuntimeError("LimitError", $"{how} width exceeds the render limit of {maxLength} characters");
        long marg = width - len;
        long left = how switch { "ljust" => 0, "rjust" => marg, _ => marg / 2 + (marg & width & 1) };
        var sb = new StringBuilder();
        for (long i = 0; i < left; i++) sb.Append(fill);
        sb.Append(s);
        for (long i = 0; i < marg - left; i++) sb.Append(fill);
        return sb.ToString();
    }

    private static bool StrPredicate(string s, string name)
    {
        if (s.Length == 0) return false;
        bool anyCased = false;
        foreach (var cp in PyText.CodePoints(s))
        {
            int v = cp.Length == 2 ? char.ConvertToUtf32(cp[0], cp[1]) : cp[0];
            var cat = CharUnicodeInfo.GetUnicodeCategory(v);
            bool letter = cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter;
            bool digit = cat == UnicodeCategory.DecimalDigitNumber;
            bool numeric = digit || cat is UnicodeCategory.OtherNumber or UnicodeCategory.LetterNumber;
            switch (name)
            {
                case "isdigit" or "isdecimal": if (!digit) return false; break;
                case "isnumeric": if (!numeric) return false; break;
                case "isalpha": if (!letter) return false; break;
                case "isalnum": if (!letter && !numeric) return false; break;
                case "isspace": if (cp.Length != 1 || !PyText.IsSpace(cp[0])) return false; break;
                case "isupper":
                    if (cat is UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter) return false;
                    if (cat == UnicodeCategory.UppercaseLetter) anyCased = true;
                    break;
                case "islower":
                    if (cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.TitlecaseLetter) return false;
                    if (cat == UnicodeCategory.LowercaseLetter) anyCased = true;
                    break;
            }
        }
        return name is "isupper" or "islower" ? anyCased : true;
    }

    // ---- filters --------------------------------------------------------------------------------------------------

    private delegate object? FilterFn(Interpreter it, object? value, CallArgs args);

    private static readonly Dictionary<string, FilterFn> Filters = new(StringComparer.Ordinal)
    {
        ["abs"] = (_, v, a) =>
        {
            a.Bind("abs", [], [], 0);
            return v switch
            {
                bool b => b ? (object)1L : 0L,
                long l => l == long.MinValue ? throw new TemplateRuntimeError("OverflowError", "integer result does not fit in 64 bits") : (object)Math.Abs(l),
                double d => (object)Math.Abs(d),
                Undefined u => throw u.Fail(),
                _ => throw new TemplateRuntimeError("TypeError", $"bad operand type for abs(): '{PyValues.TypeName(v)}'"),
            };
        },
        ["capitalize"] = (_, v, a) => { a.Bind("capitalize", [], [], 0); return PyText.Capitalize(PyValues.Str(v)); },
        ["center"] = (it, v, a) =>
        {
            var p = a.Bind("center", ["width"], [80L], 0);
            return it.CheckString(Pad(PyValues.Str(v), Int(p[0], "center"), " ", "center", it.MaxLength));
        },
        ["count"] = (_, v, a) => { a.Bind("count", [], [], 0); return PyValues.Length(v); },
        ["length"] = (_, v, a) => { a.Bind("length", [], [], 0); return PyValues.Length(v); },
        ["default"] = Default,
        ["d"] = Default,
        ["dictsort"] = (it, v, a) =>
        {
            var p = a.Bind("dictsort", ["case_sensitive", "by", "reverse"], [false, "key", false], 0);
            if (v is not PyDict d) throw new TemplateRuntimeError("AttributeError", $"'{PyValues.TypeName(v)}' object has no attribute 'items'");
            int pos = p[1] switch
            {
                "key" => 0,
                "value" => 1,
                _ => throw new TemplateRuntimeError("FilterArgumentError", "You can only sort by either \"key\" or \"value\""),
            };
            bool caseSensitive = PyValues.Truthy(p[0]);
            var items = d.Items.Select(kv => (object?)PyList.Tuple(kv.Key, kv.Value)).ToList();
            it.Charge(items.Count);
            return new PyList(SortList(items, x => CaseKey(((PyList)x!).Items[pos], caseSensitive), PyValues.Truthy(p[2])));
        },
        ["escape"] = (it, v, a) => { a.Bind("escape", [], [], 0); return it.CheckString(HtmlEscape(PyValues.Str(v))); },
        ["e"] = (it, v, a) => { a.Bind("e", [], [], 0); return it.CheckString(HtmlEscape(PyValues.Str(v))); },
        ["first"] = (_, v, a) =>
        {
            a.Bind("first", [], [], 0);
            foreach (var item in PyValues.Iterate(v)) return item;
            return new Undefined("No first item, sequence was empty.");
        },
        ["last"] = (it, v, a) =>
        {
            a.Bind("last", [], [], 0);
            var items = v is PyList l ? l.Items : it.Materialize(v);
            return items.Count > 0 ? items[^1] : new Undefined("No last item, sequence was empty.");
        },
        ["float"] = (_, v, a) =>
        {
            var p = a.Bind("float", ["default"], [0.0], 0);
            if (v is Undefined u) throw u.Fail(); // jinja2's Undefined refuses __float__
            return ToFloat(v) ?? p[0];
        },
        ["format"] = (it, v, a) =>
        {
            object? args = a.Keyword.Count > 0 ? throw new TemplateRuntimeError("TypeError", "format with keyword arguments is not supported") : new PyList([.. a.Positional], SeqKind.Tuple);
            return it.CheckString(PyOps.PercentFormat(PyValues.Str(v), args, it.MaxLength));
        },
        ["indent"] = (it, v, a) =>
        {
            var p = a.Bind("indent", ["width", "first", "blank"], [4L, false, false], 0);
            string ind = p[0] is string ws ? ws : new string(' ', (int)Math.Clamp(Int(p[0], "indent"), 0, 1024));
            var lines = PyText.SplitLines(PyValues.Str(v) + "\n", keepEnds: false);
            string rv;
            if (PyValues.Truthy(p[2])) rv = string.Join("\n" + ind, lines);
            else
            {
                var sb = new StringBuilder(lines.Count > 0 ? lines[0] : "");
                for (int i = 1; i < lines.Count; i++) sb.Append('\n').Append(lines[i].Length > 0 ? ind + lines[i] : lines[i]);
                rv = sb.ToString();
            }
            if (PyValues.Truthy(p[1])) rv = ind + rv;
            return it.CheckString(rv);
        },
        ["int"] = (_, v, a) =>
        {
            var p = a.Bind("int", ["default", "base"], [0L, 10L], 0);
            if (v is Undefined u) throw u.Fail(); // jinja2's Undefined refuses __int__
            return ToInt(v, Int(p[1], "int")) ?? p[0];
        },
        ["items"] = (it, v, a) =>
        {
            a.Bind("items", [], [], 0);
            if (v is Undefined) return new PyList([]);
            if (v is not PyDict d) throw new TemplateRuntimeError("TypeError", "Can only get item pairs from a mapping.");
            it.Charge(d.Count);
            return new PyList([.. d.Items.Select(kv => (object?)PyList.Tuple(kv.Key, kv.Value))]);
        },
        ["join"] = (it, v, a) =>
        {
            var p = a.Bind("join", ["d", "attribute"], ["", null], 0);
            var items = it.Materialize(v);
            if (p[1] is not null) items = [.. items.Select(x => AttrGetter(x, p[1]))];
            var sb = new StringBuilder();
            string sep = PyValues.Str(p[0]);
            for (int i = 0; i < items.Count; i++)
            {
                if (i > 0) sb.Append(sep);
                sb.Append(PyValues.Str(items[i]));
                it.CheckLength(sb.Length);
            }
            return it.CheckString(sb.ToString());
        },
        ["list"] = (it, v, a) => { a.Bind("list", [], [], 0); return new PyList(it.Materialize(v)); },
        ["lower"] = (_, v, a) => { a.Bind("lower", [], [], 0); return PyText.Lower(PyValues.Str(v)); },
        ["upper"] = (_, v, a) => { a.Bind("upper", [], [], 0); return PyText.Upper(PyValues.Str(v)); },
        ["map"] = (it, v, a) =>
        {
            var items = it.Materialize(v);
            int attrIndex = a.Keyword.FindIndex(k => k.Name == "attribute");
            if (attrIndex >= 0)
            {
                var p = a.Bind("map", ["attribute", "default"], [null], 1);
                return new PyList([.. items.Select(x => AttrGetter(x, p[0], p[1]))]);
            }
            if (a.Positional.Count == 0) throw new TemplateRuntimeError("FilterArgumentError", "map requires a filter argument");
            if (a.Positional[0] is not string filter || !IsFilter(filter))
                throw new TemplateRuntimeError("TemplateRuntimeError", $"No filter named {PyValues.Repr(a.Positional[0])} found.");
            var rest = new CallArgs([.. a.Positional.Skip(1)], a.Keyword);
            return new PyList([.. items.Select(x => Filter(it, filter, x, rest))]);
        },
        ["max"] = (it, v, a) => MinMax(it, v, a, max: true),
        ["min"] = (it, v, a) => MinMax(it, v, a, max: false),
        ["reject"] = (it, v, a) => Select(it, v, a, byAttribute: false, keep: false),
        ["select"] = (it, v, a) => Select(it, v, a, byAttribute: false, keep: true),
        ["rejectattr"] = (it, v, a) => Select(it, v, a, byAttribute: true, keep: false),
        ["selectattr"] = (it, v, a) => Select(it, v, a, byAttribute: true, keep: true),
        ["replace"] = (it, v, a) =>
        {
            var p = a.Bind("replace", ["old", "new", "count"], [null], 2);
            long count = p[2] is null ? -1 : Int(p[2], "replace");
            return it.CheckString(PyText.Replace(PyValues.Str(v), PyValues.Str(p[0]), PyValues.Str(p[1]), count));
        },
        ["reverse"] = (it, v, a) =>
        {
            a.Bind("reverse", [], [], 0);
            if (v is string s)
            {
                var cps = PyText.CodePoints(s);
                cps.Reverse();
                return string.Concat(cps);
            }
            var items = it.Materialize(v);
            items.Reverse();
            return new PyList(items);
        },
        ["safe"] = (_, v, a) => { a.Bind("safe", [], [], 0); return PyValues.Str(v); },
        ["sort"] = (it, v, a) =>
        {
            var p = a.Bind("sort", ["reverse", "case_sensitive", "attribute"], [false, false, null], 0);
            bool cs = PyValues.Truthy(p[1]);
            var items = it.Materialize(v);
            return new PyList(SortList(items, x => CaseKey(p[2] is null ? x : AttrGetter(x, p[2]), cs), PyValues.Truthy(p[0])));
        },
        ["string"] = (_, v, a) => { a.Bind("string", [], [], 0); return PyValues.Str(v); },
        ["sum"] = (it, v, a) =>
        {
            var p = a.Bind("sum", ["attribute", "start"], [null, 0L], 0);
            object? total = p[1];
            foreach (var x in it.Materialize(v)) total = PyOps.Add(total, p[0] is null ? x : AttrGetter(x, p[0]));
            return total;
        },
        ["title"] = (_, v, a) => { a.Bind("title", [], [], 0); return JinjaTitle(PyValues.Str(v)); },
        ["tojson"] = (it, v, a) =>
        {
            var p = a.Bind("tojson", ["ensure_ascii", "indent", "separators", "sort_keys"], [false, null, null, false], 0);
            return it.CheckString(PyJson.Dumps(v, PyValues.Truthy(p[0]), p[1], p[2], PyValues.Truthy(p[3]), it.MaxLength));
        },
        ["trim"] = (_, v, a) =>
        {
            var p = a.Bind("trim", ["chars"], [null], 0);
            return PyText.Strip(PyValues.Str(v), p[0] is null ? null : PyValues.Str(p[0]), left: true, right: true);
        },
        ["unique"] = (it, v, a) =>
        {
            var p = a.Bind("unique", ["case_sensitive", "attribute"], [false, null], 0);
            bool cs = PyValues.Truthy(p[0]);
            var seen = new PyDict();
            var result = new List<object?>();
            foreach (var x in it.Materialize(v))
            {
                var key = CaseKey(p[1] is null ? x : AttrGetter(x, p[1]), cs);
                if (seen.TryGet(key, out _)) continue;
                seen.Set(key, true);
                result.Add(x);
            }
            return new PyList(result);
        },
        ["wordcount"] = (_, v, a) =>
        {
            a.Bind("wordcount", [], [], 0);
            long n = 0;
            bool inWord = false;
            foreach (var r in PyValues.Str(v).EnumerateRunes())
            {
                bool w = r.Value == '_' || Rune.IsLetterOrDigit(r) || Rune.GetUnicodeCategory(r) is UnicodeCategory.OtherNumber or UnicodeCategory.LetterNumber;
                if (w && !inWord) n++;
                inWord = w;
            }
            return n;
        },
    };

    public static bool IsFilter(string name) => Filters.ContainsKey(name);

    public static object? Filter(Interpreter it, string name, object? value, CallArgs args) =>
        Filters.TryGetValue(name, out var f) ? f(it, value, args)
        : throw new TemplateRuntimeError("TemplateRuntimeError", $"No filter named '{name}' found (not supported by Duet's chat templates).");

    private static object? Default(Interpreter it, object? v, CallArgs a)
    {
        var p = a.Bind("default", ["default_value", "boolean"], ["", false], 0);
        return v is Undefined || (PyValues.Truthy(p[1]) && !PyValues.Truthy(v)) ? p[0] : v;
    }

    private static string HtmlEscape(string s) =>
        s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal)
         .Replace("\"", "&#34;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal);

    /// <summary>jinja2's title filter: words start after '-', whitespace, '(', '{', '[' or '&lt;'; first letter upper, rest lower.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (var cp in PyText.CodePoints(s))
        {
            bool sep = cp.Length == 1 && (cp[0] is '-' or '(' or '{' or '[' or '<' || PyText.IsSpace(cp[0]));
            if (sep) { sb.Append(cp); start = true; continue; }
            sb.Append(start ? cp.ToUpperInvariant() : cp.ToLowerInvariant());
            start = false;
        }
        return sb.ToString();
    }

    /// <summary>
    /// jinja2's make_attrgetter: "a.b.0" looks up each part as an item (integers as indices); a step past an
    /// Undefined fails, unless a default replaces each Undefined on the way.
    /// </summary>
    private static object? AttrGetter(object? item, object? attribute, object? dflt = null)
    {
        if (attribute is long or bool) return Step(item, attribute, dflt);
        if (attribute is not string path) throw new TemplateRuntimeError("TypeError", "attribute must be a string or an integer");
        object? v = item;
        foreach (var part in path.Split('.'))
        {
            object key = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long k) ? k : part;
            v = Step(v, key, dflt);
        }
        return v;
    }

    private static object? Step(object? v, object? key, object? dflt)
    {
        var r = GetItem(v, key);
        return r is Undefined && dflt is not null ? dflt : r;
    }

    private static object? CaseKey(object? v, bool caseSensitive) => !caseSensitive && v is string s ? PyText.Lower(s) : v;

    private static List<object?> SortList(List<object?> items, Func<object?, object?> key, bool reverse)
    {
        var keyed = items.Select((x, i) => (Key: key(x), Item: x)).ToList();
        var cmp = Comparer<object?>.Create(PyValues.SortCompare);
        var sorted = reverse ? keyed.OrderByDescending(k => k.Key, cmp) : keyed.OrderBy(k => k.Key, cmp);
        return [.. sorted.Select(k => k.Item)];
    }

    private static object? MinMax(Interpreter it, object? v, CallArgs a, bool max)
    {
        var p = a.Bind(max ? "max" : "min", ["case_sensitive", "attribute"], [false, null], 0);
        bool cs = PyValues.Truthy(p[0]);
        object? best = null, bestKey = null;
        bool any = false;
        foreach (var x in it.Materialize(v))
        {
            var k = CaseKey(p[1] is null ? x : AttrGetter(x, p[1]), cs);
            if (!any || (max ? PyValues.Order(k, bestKey, ">") : PyValues.Order(k, bestKey, "<"))) { best = x; bestKey = k; any = true; }
        }
        return any ? best : new Undefined("No aggregated item, sequence was empty.");
    }

    private static PyList Select(Interpreter it, object? v, CallArgs a, bool byAttribute, bool keep)
    {
        var pos = a.Positional;
        int i = 0;
        object? attribute = null;
        if (byAttribute)
        {
            if (pos.Count == 0) throw new TemplateRuntimeError("FilterArgumentError", "Missing parameter for attribute name");
            attribute = pos[i++];
        }
        object? test = i < pos.Count ? pos[i++] : null; // looked up when an item is tested, as jinja2 does (an empty list never fails)
        var testArgs = new CallArgs([.. pos.Skip(i)], a.Keyword);
        var result = new List<object?>();
        foreach (var x in it.Materialize(v))
        {
            var subject = byAttribute ? AttrGetter(x, attribute) : x;
            bool ok = test switch
            {
                null => PyValues.Truthy(subject),
                string name => Test(it, name, subject, testArgs),
                _ => throw new TemplateRuntimeError("TemplateRuntimeError", $"No test named {PyValues.Repr(test)} found."),
            };
            if (ok == keep) result.Add(x);
        }
        return new PyList(result);
    }

    /// <summary>int(x) as jinja2's int filter: strings in the given base (prefixes and _ allowed), else via float; null when it fails.</summary>
    private static long? ToInt(object? v, long @base)
    {
        switch (v)
        {
            case bool b: return b ? 1 : 0;
            case long l: return l;
            case double d:
                if (double.IsNaN(d) || double.IsInfinity(d)) throw new TemplateRuntimeError("ValueError", "cannot convert float NaN or infinity to integer");
                return (long)Math.Truncate(d);
            case string s:
                {
                    var t = PyText.Strip(s, null, true, true).Replace("_", "", StringComparison.Ordinal);
                    bool neg = false;
                    if (t.Length > 0 && t[0] is '+' or '-') { neg = t[0] == '-'; t = t[1..]; }
                    string lower = t.ToLowerInvariant();
                    int radix = (int)@base;
                    if ((radix == 16 || radix == 0) && lower.StartsWith("0x", StringComparison.Ordinal)) { t = t[2..]; radix = 16; }
                    else if ((radix == 8 || radix == 0) && lower.StartsWith("0o", StringComparison.Ordinal)) { t = t[2..]; radix = 8; }
                    else if ((radix == 2 || radix == 0) && lower.StartsWith("0b", StringComparison.Ordinal)) { t = t[2..]; radix = 2; }
                    if (radix == 0) radix = 10;
                    if (t.Length > 0 && radix is >= 2 and <= 36)
                    {
                        long acc = 0;
                        bool ok = true;
                        foreach (char c in t.ToLowerInvariant())
                        {
                            int dgt = c is >= '0' and <= '9' ? c - '0' : c is >= 'a' and <= 'z' ? c - 'a' + 10 : 99;
                            if (dgt >= radix || acc > (long.MaxValue - dgt) / radix) { ok = false; break; }
                            acc = acc * radix + dgt;
                        }
                        if (ok) return neg ? -acc : acc;
                    }
                    if (ToFloat(s) is double f && !double.IsNaN(f) && !double.IsInfinity(f) && Math.Abs(f) < 9.2e18) return (long)Math.Truncate(f);
                    return null;
                }
            default: return null;
        }
    }

    /// <summary>float(x) for the float filter: numbers, and strings in Python's float syntax; null when it fails.</summary>
    private static double? ToFloat(object? v)
    {
        switch (v)
        {
            case bool b: return b ? 1 : 0;
            case long l: return l;
            case double d: return d;
            case string s:
                {
                    var t = PyText.Strip(s, null, true, true);
                    string lower = t.ToLowerInvariant().TrimStart('+', '-');
                    if (lower is "inf" or "infinity" or "nan")
                    {
                        double x = lower == "nan" ? double.NaN : double.PositiveInfinity;
                        return t.StartsWith('-') ? -x : x;
                    }
                    // digits with single underscores between them, optional fraction and exponent
                    if (t.Length == 0 || t.Contains("__", StringComparison.Ordinal) || t.StartsWith('_') || t.EndsWith('_')) return null;
                    foreach (char c in t)
                        if (!(char.IsAsciiDigit(c) || c is '.' or 'e' or 'E' or '+' or '-' or '_')) return null;
                    return double.TryParse(t.Replace("_", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out double r) ? r : null;
                }
            default: return null;
        }
    }

    // ---- tests ----------------------------------------------------------------------------------------------------

    private delegate bool TestFn(Interpreter it, object? value, CallArgs args);

    private static object? Arg(CallArgs a, string test) => a.Bind(test, ["other"], [], 1)[0];

    private static readonly Dictionary<string, TestFn> Tests = new(StringComparer.Ordinal)
    {
        ["defined"] = (_, v, a) => { a.Bind("defined", [], [], 0); return v is not Undefined; },
        ["undefined"] = (_, v, a) => { a.Bind("undefined", [], [], 0); return v is Undefined; },
        ["none"] = (_, v, a) => { a.Bind("none", [], [], 0); return v is null; },
        ["boolean"] = (_, v, a) => { a.Bind("boolean", [], [], 0); return v is bool; },
        ["true"] = (_, v, a) => { a.Bind("true", [], [], 0); return v is true; },
        ["false"] = (_, v, a) => { a.Bind("false", [], [], 0); return v is false; },
        ["integer"] = (_, v, a) => { a.Bind("integer", [], [], 0); return v is long; },
        ["float"] = (_, v, a) => { a.Bind("float", [], [], 0); return v is double; },
        ["number"] = (_, v, a) => { a.Bind("number", [], [], 0); return v is bool or long or double; },
        ["string"] = (_, v, a) => { a.Bind("string", [], [], 0); return v is string; },
        ["mapping"] = (_, v, a) => { a.Bind("mapping", [], [], 0); return v is PyDict; },
        ["iterable"] = (_, v, a) => { a.Bind("iterable", [], [], 0); return PyValues.IsIterable(v) || v is LoopContext; },
        ["sequence"] = (_, v, a) => { a.Bind("sequence", [], [], 0); return v is string or PyDict or PyRange or PyList { Kind: SeqKind.List or SeqKind.Tuple }; },
        ["callable"] = (_, v, a) => { a.Bind("callable", [], [], 0); return v is PyCallable or Undefined; },
        ["sameas"] = (_, v, a) =>
        {
            var o = Arg(a, "sameas");
            return (v, o) switch
            {
                (null, null) => true,
                (bool x, bool y) => x == y,
                (long x, long y) => x == y && x is >= -5 and <= 256, // CPython caches small ints
                _ => ReferenceEquals(v, o),
            };
        },
        ["escaped"] = (_, v, a) => { a.Bind("escaped", [], [], 0); return false; },
        ["even"] = (_, v, a) => { a.Bind("even", [], [], 0); return PyValues.Equal(PyOps.Mod(v, 2L, int.MaxValue), 0L); },
        ["odd"] = (_, v, a) => { a.Bind("odd", [], [], 0); return PyValues.Equal(PyOps.Mod(v, 2L, int.MaxValue), 1L); },
        ["divisibleby"] = (_, v, a) => PyValues.Equal(PyOps.Mod(v, a.Bind("divisibleby", ["num"], [], 1)[0], int.MaxValue), 0L),
        ["lower"] = (_, v, a) => { a.Bind("lower", [], [], 0); return StrPredicate(PyValues.Str(v), "islower"); },
        ["upper"] = (_, v, a) => { a.Bind("upper", [], [], 0); return StrPredicate(PyValues.Str(v), "isupper"); },
        ["eq"] = (_, v, a) => PyValues.Equal(v, Arg(a, "eq")),
        ["equalto"] = (_, v, a) => PyValues.Equal(v, Arg(a, "equalto")),
        ["ne"] = (_, v, a) => !PyValues.Equal(v, Arg(a, "ne")),
        ["lt"] = (_, v, a) => PyValues.Order(v, Arg(a, "lt"), "<"),
        ["lessthan"] = (_, v, a) => PyValues.Order(v, Arg(a, "lessthan"), "<"),
        ["le"] = (_, v, a) => PyValues.Order(v, Arg(a, "le"), "<="),
        ["gt"] = (_, v, a) => PyValues.Order(v, Arg(a, "gt"), ">"),
        ["greaterthan"] = (_, v, a) => PyValues.Order(v, Arg(a, "greaterthan"), ">"),
        ["ge"] = (_, v, a) => PyValues.Order(v, Arg(a, "ge"), ">="),
        ["in"] = (_, v, a) => PyValues.Contains(a.Bind("in", ["seq"], [], 1)[0], v),
        // jinja2 3.1: is there a filter / test of that name
        ["filter"] = (_, v, a) => { a.Bind("filter", [], [], 0); return v is string name && IsFilter(name); },
        ["test"] = (_, v, a) => { a.Bind("test", [], [], 0); return v is string name && IsTest(name); },
    };

    public static bool IsTest(string name) => Tests.ContainsKey(name);

    public static bool Test(Interpreter it, string name, object? value, CallArgs args) =>
        Tests.TryGetValue(name, out var t) ? t(it, value, args)
        : throw new TemplateRuntimeError("TemplateRuntimeError", $"No test named '{name}' found (not supported by Duet's chat templates).");
}
