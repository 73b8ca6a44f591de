// Template values and the Python semantics jinja2 gives them. A value is a plain object:
//   null = None, bool, long = int (64-bit; Python's are unbounded, overflow is an error here), double = float,
//   string = str, PyList (list, tuple, dict views), PyDict (insertion-ordered, Python key equality: 1 == 1.0 == True),
//   PyRange, PyNamespace, LoopContext, callables, and Undefined (jinja2's default Undefined: prints as "", is
//   falsy, iterates as empty, but fails when used in arithmetic, attribute access or a call).
// Nothing here reflects over .NET objects: values from the caller are converted once, by type, in FromDotNet.
using System.Collections;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Duet.Tokenizers.ChatTemplates;

/// <summary>A runtime error with the Python exception type jinja2 would raise ("TypeError", "UndefinedError", ...).</summary>
internal sealed class TemplateRuntimeError(string kind, string message) : Exception(message)
{
    public string Kind { get; } = kind;
}

/// <summary>raise_exception(message) from the template.</summary>
internal sealed class TemplateRaisedError(string message) : Exception(message);

internal sealed class Undefined(string message)
{
    public string Message { get; } = message;

    public static Undefined Named(string name) => new($"'{name}' is undefined");
    public static Undefined Attribute(object? obj, string name) => new($"'{PyValues.ObjectTypeRepr(obj)}' has no attribute '{name}'");
    public static Undefined Element(object? obj, object? key) => new($"{PyValues.ObjectTypeRepr(obj)} has no element {PyValues.Repr(key)}");

    public TemplateRuntimeError Fail() => new("UndefinedError", Message);
}

internal enum SeqKind { List, Tuple, DictKeys, DictValues, DictItems }

internal sealed class PyList(List<object?> items, SeqKind kind = SeqKind.List)
{
    public List<object?> Items { get; } = items;
    public SeqKind Kind { get; } = kind;
    public int Count => Items.Count;
    public bool IsTuple => Kind == SeqKind.Tuple;

    public static PyList Tuple(params object?[] items) => new([.. items], SeqKind.Tuple);
}

internal sealed class PyDict
{
    private sealed class NoneKey { public static readonly NoneKey Instance = new(); }

    private readonly OrderedDictionary<object, object?> _map = new(PyKeyComparer.Instance);

    public int Count => _map.Count;

    private static object Key(object? k) => k ?? NoneKey.Instance;
    private static object? Unkey(object k) => k is NoneKey ? null : k;

    public bool TryGet(object? key, out object? value) => _map.TryGetValue(Key(key), out value);

    public void Set(object? key, object? value)
    {
        PyValues.Hash(key); // unhashable keys (lists, dicts) are a TypeError, as in Python
        _map[Key(key)] = value;
    }

    public IEnumerable<object?> Keys => _map.Keys.Select(Unkey);
    public IEnumerable<object?> Values => _map.Values;
    public IEnumerable<(object? Key, object? Value)> Items => _map.Select(kv => (Unkey(kv.Key), kv.Value));

    private sealed class PyKeyComparer : IEqualityComparer<object>
    {
        public static readonly PyKeyComparer Instance = new();
        public new bool Equals(object? x, object? y) => PyValues.Equal(x is NoneKey ? null : x, y is NoneKey ? null : y);
        public int GetHashCode(object obj) => PyValues.Hash(obj is NoneKey ? null : obj);
    }
}

internal sealed class PyRange(long start, long stop, long step)
{
    public long Start { get; } = start;
    public long Stop { get; } = stop;
    public long Step { get; } = step;

    // Int128: range(-2**62, 2**62) must count, not overflow.
    public long Count => (long)Int128.Min(long.MaxValue, Step > 0
        ? (Stop > Start ? ((Int128)Stop - Start - 1) / Step + 1 : 0)
        : (Start > Stop ? ((Int128)Start - Stop - 1) / -(Int128)Step + 1 : 0));
    public long this[long i] => Start + i * Step;
}

internal sealed class PyNamespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>The `loop` variable of a for loop.</summary>
internal sealed class LoopContext(List<object?> items)
{
    public List<object?> Items { get; } = items;
    public int Index0 { get; set; }
}

internal sealed class CallArgs(List<object?> positional, List<(string Name, object? Value)> keyword)
{
    public static readonly CallArgs Empty = new([], []);

    public List<object?> Positional { get; } = positional;
    public List<(string Name, object? Value)> Keyword { get; } = keyword;

    /// <summary>Binds Python-style parameters: positional first, then by name; missing ones get their defaults.</summary>
    public object?[] Bind(string function, string[] names, object?[] defaults, int required)
    {
        if (Positional.Count > names.Length)
            throw new TemplateRuntimeError("TypeError", $"{function}() takes at most {names.Length} argument(s) ({Positional.Count} given)");
        var result = new object?[names.Length];
        var set = new bool[names.Length];
        for (int i = 0; i < Positional.Count; i++) { result[i] = Positional[i]; set[i] = true; }
        foreach (var (name, value) in Keyword)
        {
            int k = Array.IndexOf(names, name);
            if (k < 0) throw new TemplateRuntimeError("TypeError", $"{function}() got an unexpected keyword argument '{name}'");
            if (set[k]) throw new TemplateRuntimeError("TypeError", $"{function}() got multiple values for argument '{name}'");
            result[k] = value;
            set[k] = true;
        }
        for (int i = 0; i < names.Length; i++)
        {
            if (set[i]) continue;
            if (i < required) throw new TemplateRuntimeError("TypeError", $"{function}() missing required argument '{names[i]}'");
            result[i] = defaults[i - required];
        }
        return result;
    }
}

internal abstract class PyCallable
{
    public abstract string Name { get; }
}

internal sealed class BuiltinFunction(string name, Func<Interpreter, CallArgs, object?> body) : PyCallable
{
    public override string Name { get; } = name;
    public Func<Interpreter, CallArgs, object?> Body { get; } = body;
}

/// <summary>A method looked up on a value ('x'.strip, d.items, loop.cycle), called later.</summary>
internal sealed class BoundMethod(object? receiver, string name) : PyCallable
{
    public object? Receiver { get; } = receiver;
    public override string Name { get; } = name;
}

internal sealed class MacroValue(MacroStmt node, Scope closure) : PyCallable
{
    public MacroStmt Node { get; } = node;
    public Scope Closure { get; } = closure;
    public override string Name => Node.Name;
}

internal static class PyValues
{
    // ---- conversion from the caller's .NET values -------------------------------------------------------------

    public static PyDict FromMessage(ChatTemplateMessage m)
    {
        ArgumentNullException.ThrowIfNull(m.Role);
        ArgumentNullException.ThrowIfNull(m.Content);
        var d = new PyDict();
        d.Set("role", m.Role);
        d.Set("content", m.Content);
        if (m.Fields is not null)
            foreach (var (key, value) in m.Fields)
            {
                if (key == "role") throw new ArgumentException("a message's Fields cannot replace its role");
                d.Set(key, FromDotNet(value, "message." + key, 1));
            }
        return d;
    }

    public static object? FromDotNet(object? value, string name, int depth = 0)
    {
        if (depth > 64) throw new ArgumentException($"template variable '{name}' is nested more than 64 levels deep");
        switch (value)
        {
            case null: return null;
            case string s: return s;
            case bool b: return b;
            case int or long or short or sbyte or byte or ushort or uint: return Convert.ToInt64(value, CultureInfo.InvariantCulture);
            case ulong u: return u <= long.MaxValue ? (long)u : (double)u;
            case float or double or decimal: return Convert.ToDouble(value, CultureInfo.InvariantCulture);
            case char c: return c.ToString();
            case ChatTemplateMessage m: return FromMessage(m);
            case JsonElement e: return FromJson(e, name, depth);
            case JsonNode n: return FromJsonNode(n, name, depth);
            case PyList or PyDict: return value;
            case IReadOnlyDictionary<string, object?> rd:
                {
                    var d = new PyDict();
                    foreach (var (k, v) in rd) d.Set(k, FromDotNet(v, name, depth + 1));
                    return d;
                }
            case IDictionary<string, object?> gd:
                {
                    var d = new PyDict();
                    foreach (var (k, v) in gd) d.Set(k, FromDotNet(v, name, depth + 1));
                    return d;
                }
            case IDictionary nd:
                {
                    var d = new PyDict();
                    foreach (DictionaryEntry kv in nd)
                    {
                        if (kv.Key is not string k) throw new ArgumentException($"template variable '{name}' has a dictionary key that is not a string");
                        d.Set(k, FromDotNet(kv.Value, name, depth + 1));
                    }
                    return d;
                }
            case IEnumerable seq:
                {
                    var items = new List<object?>();
                    foreach (var item in seq) items.Add(FromDotNet(item, name, depth + 1));
                    return new PyList(items);
                }
            default:
                throw new ArgumentException($"template variable '{name}' has type {value.GetType().Name}, which templates cannot use " +
                    "(use null, string, bool, numbers, JsonElement / JsonNode, dictionaries with string keys or sequences)");
        }
    }

    private static object? FromJson(JsonElement e, string name, int depth)
    {
        if (depth > 64) throw new ArgumentException($"template variable '{name}' is nested more than 64 levels deep");
        switch (e.ValueKind)
        {
            case JsonValueKind.Null or JsonValueKind.Undefined: return null;
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            case JsonValueKind.String: return e.GetString();
            case JsonValueKind.Number:
                {
                    string raw = e.GetRawText();
                    // json.loads: int for integer literals, float otherwise
                    if (raw.AsSpan().IndexOfAny('.', 'e', 'E') < 0 && e.TryGetInt64(out long l)) return l;
                    return e.GetDouble();
                }
            case JsonValueKind.Array:
                {
                    var items = new List<object?>(e.GetArrayLength());
                    foreach (var item in e.EnumerateArray()) items.Add(FromJson(item, name, depth + 1));
                    return new PyList(items);
                }
            case JsonValueKind.Object:
                {
                    var d = new PyDict();
                    foreach (var p in e.EnumerateObject()) d.Set(p.Name, FromJson(p.Value, name, depth + 1));
                    return d;
                }
            default: throw new ArgumentException($"template variable '{name}' holds an unsupported JSON value");
        }
    }

    private static object? FromJsonNode(JsonNode n, string name, int depth)
    {
        using var doc = JsonDocument.Parse(n.ToJsonString());
        return FromJson(doc.RootElement.Clone(), name, depth);
    }

    // ---- type names ---------------------------------------------------------------------------------------------

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        PyList l => l.Kind switch
        {
            SeqKind.Tuple => "tuple",
            SeqKind.DictKeys => "dict_keys",
            SeqKind.DictValues => "dict_values",
            SeqKind.DictItems => "dict_items",
            _ => "list",
        },
        PyDict => "dict",
        PyRange => "range",
        Undefined => "Undefined",
        PyNamespace => "Namespace",
        LoopContext => "LoopContext",
        MacroValue => "Macro",
        BoundMethod => "builtin_function_or_method",
        PyCallable => "function",
        _ => v.GetType().Name,
    };

    /// <summary>jinja2's object_type_repr, used in undefined messages: "None", "dict object", "list object".</summary>
    public static string ObjectTypeRepr(object? v) => v is null ? "None" : TypeName(v) + " object";

    // ---- truth, equality, hashing, ordering ---------------------------------------------------------------------

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        PyList l => l.Count > 0,
        PyDict d => d.Count > 0,
        PyRange r => r.Count > 0,
        _ => true,
    };

    private static bool IsNumber(object? v) => v is bool or long or double;

    private static double ToDouble(object? v) => v switch { bool b => b ? 1 : 0, long l => l, double d => d, _ => throw new InvalidOperationException() };

    /// <summary>bool or int as a long (Python's bool is an int).</summary>
    public static bool TryInt(object? v, out long value)
    {
        switch (v)
        {
            case bool b: value = b ? 1 : 0; return true;
            case long l: value = l; return true;
            default: value = 0; return false;
        }
    }

    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
        {
            if (TryInt(a, out long x) && TryInt(b, out long y)) return x == y;
            if (a is double da && TryInt(b, out long lb)) return DoubleEqualsLong(da, lb);
            if (b is double db && TryInt(a, out long la)) return DoubleEqualsLong(db, la);
            return ToDouble(a) == ToDouble(b);
        }
        switch (a)
        {
            case string sa: return b is string sb && string.Equals(sa, sb, StringComparison.Ordinal);
            case PyList la:
                {
                    if (b is not PyList lb || !SameSequenceKind(la, lb) || la.Count != lb.Count) return false;
                    for (int i = 0; i < la.Count; i++)
                        if (!Equal(la.Items[i], lb.Items[i])) return false;
                    return true;
                }
            case PyDict da:
                {
                    if (b is not PyDict db || da.Count != db.Count) return false;
                    foreach (var (k, v) in da.Items)
                        if (!db.TryGet(k, out var w) || !Equal(v, w)) return false;
                    return true;
                }
            case PyRange ra:
                return b is PyRange rb && ra.Count == rb.Count && (ra.Count == 0 || (ra.Start == rb.Start && (ra.Count == 1 || ra.Step == rb.Step)));
            default: return ReferenceEquals(a, b);
        }
    }

    // list == list and tuple == tuple elementwise; dict views compare in order here (Python compares keys/items as sets).
    private static bool SameSequenceKind(PyList a, PyList b) => a.Kind == b.Kind && (a.Kind != SeqKind.DictValues || ReferenceEquals(a, b));

    private static bool DoubleEqualsLong(double d, long l) =>
        !double.IsNaN(d) && !double.IsInfinity(d) && Math.Floor(d) == d && d >= -9.223372036854775808e18 && d < 9.223372036854775808e18 && (long)d == l;

    public static int Hash(object? v)
    {
        switch (v)
        {
            case null: return 0x2F3A4B5C;
            case bool b: return b ? 1 : 0;
            case long l: return l.GetHashCode();
            case double d:
                if (Math.Floor(d) == d && d >= -9.223372036854775808e18 && d < 9.223372036854775808e18) return ((long)d).GetHashCode();
                return d.GetHashCode();
            case string s: return StringComparer.Ordinal.GetHashCode(s);
            case PyList { IsTuple: true } t:
                {
                    var h = new HashCode();
                    foreach (var item in t.Items) h.Add(Hash(item));
                    return h.ToHashCode();
                }
            case PyList or PyDict:
                throw new TemplateRuntimeError("TypeError", $"unhashable type: '{TypeName(v)}'");
            case Undefined: return 0x1234567;
            default: return RuntimeHelpers.GetHashCode(v);
        }
    }

    /// <summary>a op b for op in &lt; &lt;= &gt; &gt;=, with Python's rules (numbers, str by code point, lists lexicographically).</summary>
    public static bool Order(object? a, object? b, string op)
    {
        if (a is Undefined ua) throw ua.Fail();
        if (b is Undefined ub) throw ub.Fail();
        int c;
        if (IsNumber(a) && IsNumber(b))
        {
            if (TryInt(a, out long x) && TryInt(b, out long y)) c = x.CompareTo(y);
            else
            {
                double dx = ToDouble(a), dy = ToDouble(b);
                if (double.IsNaN(dx) || double.IsNaN(dy)) return false;
                c = dx.CompareTo(dy);
            }
        }
        else if (a is string sa && b is string sb) c = CompareCodePoints(sa, sb);
        else if (a is PyList la && b is PyList lb && la.Kind == lb.Kind && la.Kind is SeqKind.List or SeqKind.Tuple)
        {
            int i = 0;
            while (i < la.Count && i < lb.Count && Equal(la.Items[i], lb.Items[i])) i++;
            if (i < la.Count && i < lb.Count) return Order(la.Items[i], lb.Items[i], op);
            c = la.Count.CompareTo(lb.Count);
        }
        else throw new TemplateRuntimeError("TypeError", $"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
        return op switch { "<" => c < 0, "<=" => c <= 0, ">" => c > 0, _ => c >= 0 };
    }

    /// <summary>Ordinal comparison by code point (UTF-16 order differs for characters above U+FFFF vs U+E000..U+FFFF).</summary>
    public static int CompareCodePoints(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            char x = a[i], y = b[i];
            if (x == y) continue;
            if (char.IsSurrogate(x) != char.IsSurrogate(y)) return char.IsSurrogate(x) ? 1 : -1;
            return x.CompareTo(y);
        }
        return a.Length.CompareTo(b.Length);
    }

    /// <summary>Python's sort order for sort/max/min/dictsort; errors on mixed types as Python does.</summary>
    public static int SortCompare(object? a, object? b)
    {
        if (Order(a, b, "<")) return -1;
        if (Order(b, a, "<")) return 1;
        return 0;
    }

    // ---- str() and repr() ---------------------------------------------------------------------------------------

    public static string Str(object? v) => v switch
    {
        null => "None",
        string s => s,
        Undefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => PyText.FloatRepr(d),
        _ => Repr(v),
    };

    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, v, 0);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? v, int depth)
    {
        if (depth > 200) throw new TemplateRuntimeError("RecursionError", "value nested too deeply to print");
        switch (v)
        {
            case null: sb.Append("None"); return;
            case string s: sb.Append(PyText.Repr(s)); return;
            case Undefined: sb.Append("Undefined"); return;
            case bool or long or double: sb.Append(Str(v)); return;
            case PyList l:
                {
                    string open = l.Kind switch { SeqKind.Tuple => "(", SeqKind.DictKeys => "dict_keys([", SeqKind.DictValues => "dict_values([", SeqKind.DictItems => "dict_items([", _ => "[" };
                    string close = l.Kind switch { SeqKind.Tuple => ")", SeqKind.List => "]", _ => "])" };
                    sb.Append(open);
                    for (int i = 0; i < l.Count; i++)
                    {
                        if (i > 0) sb.Append(", ");
                        AppendRepr(sb, l.Items[i], depth + 1);
                    }
                    if (l.Kind == SeqKind.Tuple && l.Count == 1) sb.Append(',');
                    sb.Append(close);
                    return;
                }
            case PyDict d:
                {
                    sb.Append('{');
                    bool first = true;
                    foreach (var (k, val) in d.Items)
                    {
                        if (!first) sb.Append(", ");
                        first = false;
                        AppendRepr(sb, k, depth + 1);
                        sb.Append(": ");
                        AppendRepr(sb, val, depth + 1);
                    }
                    sb.Append('}');
                    return;
                }
            case PyRange r:
                sb.Append("range(").Append(r.Start.ToString(CultureInfo.InvariantCulture)).Append(", ").Append(r.Stop.ToString(CultureInfo.InvariantCulture));
                if (r.Step != 1) sb.Append(", ").Append(r.Step.ToString(CultureInfo.InvariantCulture));
                sb.Append(')');
                return;
            case PyNamespace ns:
                {
                    sb.Append("<Namespace {");
                    bool first = true;
                    foreach (var (k, val) in ns.Attributes)
                    {
                        if (!first) sb.Append(", ");
                        first = false;
                        sb.Append(PyText.Repr(k)).Append(": ");
                        AppendRepr(sb, val, depth + 1);
                    }
                    sb.Append("}>");
                    return;
                }
            case LoopContext lc: sb.Append("<LoopContext ").Append(lc.Index0 + 1).Append('/').Append(lc.Items.Count).Append('>'); return;
            case MacroValue m: sb.Append("<Macro '").Append(m.Name).Append("'>"); return;
            case BoundMethod bm: sb.Append("<built-in method ").Append(bm.Name).Append(" of ").Append(TypeName(bm.Receiver)).Append(" object>"); return;
            case PyCallable c: sb.Append("<function ").Append(c.Name).Append('>'); return;
            default: sb.Append('<').Append(TypeName(v)).Append('>'); return;
        }
    }

    // ---- iteration ------------------------------------------------------------------------------------------------

    /// <summary>Python iter(): str by code point, dict by key, range lazily; Undefined is empty.</summary>
    public static IEnumerable<object?> Iterate(object? v) => v switch
    {
        Undefined => [],
        string s => PyText.CodePoints(s),
        PyList l => l.Items,
        PyDict d => d.Keys,
        PyRange r => RangeItems(r),
        _ => throw new TemplateRuntimeError("TypeError", $"'{TypeName(v)}' object is not iterable"),
    };

    private static IEnumerable<object?> RangeItems(PyRange r)
    {
        long n = r.Count;
        for (long i = 0; i < n; i++) yield return r[i];
    }

    public static bool IsIterable(object? v) => v is Undefined or string or PyList or PyDict or PyRange;

    /// <summary>len(): str in code points.</summary>
    public static long Length(object? v) => v switch
    {
        Undefined => 0,
        string s => PyText.Length(s),
        PyList l => l.Count,
        PyDict d => d.Count,
        PyRange r => r.Count,
        _ => throw new TemplateRuntimeError("TypeError", $"object of type '{TypeName(v)}' has no len()"),
    };

    /// <summary>Python `needle in haystack`.</summary>
    public static bool Contains(object? haystack, object? needle)
    {
        switch (haystack)
        {
            case string s:
                if (needle is not string n)
                    throw new TemplateRuntimeError("TypeError", $"'in <string>' requires string as left operand, not {TypeName(needle)}");
                return s.Contains(n, StringComparison.Ordinal);
            case PyList l:
                foreach (var item in l.Items)
                    if (Equal(item, needle)) return true;
                return false;
            case PyDict d:
                return d.TryGet(needle, out _);
            case PyRange r:
                if (!TryInt(needle, out long x) && !(needle is double dd && Math.Floor(dd) == dd && Math.Abs(dd) < 9e18 && (x = (long)dd) == dd)) return false;
                if (r.Step > 0 ? x < r.Start || x >= r.Stop : x > r.Start || x <= r.Stop) return false;
                return ((Int128)x - r.Start) % r.Step == 0;
            case Undefined:
                return false;
            default:
                throw new TemplateRuntimeError("TypeError", $"argument of type '{TypeName(haystack)}' is not iterable");
        }
    }
}
