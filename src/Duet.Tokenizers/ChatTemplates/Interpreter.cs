// Evaluation with Python's semantics where templates rely on them: truthiness, str() of values (None, True,
// 1.0, ['a']), negative indexes and slices, string methods, json.dumps for tojson. Undefined names are
// empty and false (jinja2's default Undefined); attributes of an undefined value are an error, as in jinja2.
using System.Globalization;
using System.Text;

namespace Duet.Tokenizers.ChatTemplates;

internal sealed class Undefined
{
    public static readonly Undefined Value = new();
    private Undefined() { }
}

internal sealed class Namespace(Dictionary<string, object?> values)
{
    public Dictionary<string, object?> Values { get; } = values;
}

internal sealed class Macro(MacroNode node, Interpreter owner)
{
    public MacroNode Node { get; } = node;
    public Interpreter Owner { get; } = owner;
}

internal sealed class LoopInfo(int index, int length, object? previous, object? next)
{
    public object? Get(string name) => name switch
    {
        "index" => (long)index + 1, "index0" => (long)index, "first" => index == 0, "last" => index == length - 1,
        "length" => (long)length, "revindex" => (long)(length - index), "revindex0" => (long)(length - index - 1),
        "previtem" => index > 0 ? previous : Undefined.Value, "nextitem" => index < length - 1 ? next : Undefined.Value,
        _ => Undefined.Value,
    };
}

internal sealed class Interpreter(Dictionary<string, object?> globals, Func<DateTime> clock)
{
    private const int MaxOutput = 4 << 20;
    private const long MaxSteps = 2_000_000;
    private const int MaxCallDepth = 64;

    private readonly List<Dictionary<string, object?>> _scopes = [globals];
    private long _steps;
    private int _callDepth;
    private int _outputLength;

    private static ChatTemplateException Error(string msg, int line = 0) => new(line > 0 ? $"chat template line {line}: {msg}" : $"chat template: {msg}");

    public string Run(Node[] body)
    {
        var sb = new StringBuilder();
        Exec(body, sb);
        return sb.ToString();
    }

    private void Tick()
    {
        if (++_steps > MaxSteps) throw Error($"the template ran more than {MaxSteps} steps");
    }

    private object? Lookup(string name)
    {
        for (int i = _scopes.Count - 1; i >= 0; i--)
            if (_scopes[i].TryGetValue(name, out var v)) return v;
        return name switch
        {
            "range" or "namespace" or "raise_exception" or "strftime_now" or "dict" => new BuiltinFunction(name),
            _ => Undefined.Value,
        };
    }

    private sealed record BuiltinFunction(string Name);
    private sealed record BoundMethod(object? Target, string Name);

    private void Append(StringBuilder sb, string s)
    {
        _outputLength += s.Length;
        if (_outputLength > MaxOutput) throw Error($"the template wrote more than {MaxOutput} characters");
        sb.Append(s);
    }

    private void Exec(Node[] body, StringBuilder sb)
    {
        foreach (var node in body)
        {
            Tick();
            switch (node)
            {
                case TextNode t: Append(sb, t.Text); break;
                case OutputNode o: Append(sb, Str(Eval(o.Value))); break;
                case IfNode f:
                {
                    bool done = false;
                    foreach (var (cond, b) in f.Branches)
                        if (Truthy(Eval(cond))) { Exec(b, sb); done = true; break; }
                    if (!done && f.Else is not null) Exec(f.Else, sb);
                    break;
                }
                case ForNode f: ExecFor(f, sb); break;
                case SetNode s:
                {
                    var value = Eval(s.Value);
                    if (s.Attr is null) _scopes[^1][s.Name] = value;
                    else if (Lookup(s.Name) is Namespace ns) ns.Values[s.Attr] = value;
                    else throw Error($"cannot set '{s.Attr}' on '{s.Name}': it is not a namespace");
                    break;
                }
                case MacroNode m: _scopes[^1][m.Name] = new Macro(m, this); break;
                case BlockNode b: Exec(b.Body, sb); break;
                default: throw Error($"cannot run {node.GetType().Name}");
            }
        }
    }

    private void ExecFor(ForNode f, StringBuilder sb)
    {
        var items = Iterate(Eval(f.Iterable), f.Line).ToList();
        if (f.Filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
                Bind(scope, f.Targets, item, f.Line);
                _scopes.Add(scope);
                try { if (Truthy(Eval(f.Filter))) kept.Add(item); }
                finally { _scopes.RemoveAt(_scopes.Count - 1); }
            }
            items = kept;
        }
        if (items.Count == 0)
        {
            if (f.Else is not null) Exec(f.Else, sb);
            return;
        }
        // A for loop has its own scope: sets inside it do not leak out (use a namespace for that), as in jinja2.
        var loopScope = new Dictionary<string, object?>(StringComparer.Ordinal);
        _scopes.Add(loopScope);
        try
        {
            for (int i = 0; i < items.Count; i++)
            {
                Tick();
                loopScope.Clear();
                Bind(loopScope, f.Targets, items[i], f.Line);
                loopScope["loop"] = new LoopInfo(i, items.Count, i > 0 ? items[i - 1] : null, i + 1 < items.Count ? items[i + 1] : null);
                Exec(f.Body, sb);
            }
        }
        finally { _scopes.RemoveAt(_scopes.Count - 1); }
    }

    private static void Bind(Dictionary<string, object?> scope, string[] targets, object? item, int line)
    {
        if (targets.Length == 1) { scope[targets[0]] = item; return; }
        var parts = item is List<object?> l ? l : throw Error($"cannot unpack {TypeName(item)} into {targets.Length} names", line);
        if (parts.Count != targets.Length) throw Error($"cannot unpack {parts.Count} values into {targets.Length} names", line);
        for (int i = 0; i < targets.Length; i++) scope[targets[i]] = parts[i];
    }

    private static IEnumerable<object?> Iterate(object? v, int line) => v switch
    {
        List<object?> l => l,
        Dictionary<string, object?> d => d.Keys,
        string s => StringChars(s),
        Undefined or null => [],
        _ => throw Error($"{TypeName(v)} is not iterable", line),
    };

    private static IEnumerable<object?> StringChars(string s)
    {
        var e = StringInfoRunes(s);
        foreach (var r in e) yield return r;
    }

    private static IEnumerable<string> StringInfoRunes(string s)
    {
        foreach (var r in s.EnumerateRunes()) yield return r.ToString();
    }

    // ---- expressions ----

    private object? Eval(Expr e)
    {
        Tick();
        switch (e)
        {
            case Literal l: return l.Value is CaptureBody cb ? Capture(cb) : l.Value;
            case Name n: return Lookup(n.Id);
            case ListExpr l: return l.Items.Select(Eval).ToList();
            case DictExpr d:
            {
                var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in d.Items) dict[Str(Eval(k))] = Eval(v);
                return dict;
            }
            case Attr a: return GetAttr(Eval(a.Target), a.Name, a.Line);
            case Index ix: return GetItem(Eval(ix.Target), Eval(ix.Key), ix.Line);
            case Slice s: return DoSlice(Eval(s.Target), s.Start is null ? null : Eval(s.Start), s.Stop is null ? null : Eval(s.Stop), s.Step is null ? null : Eval(s.Step), s.Line);
            case Call c: return DoCall(c);
            case Filter f: return ApplyFilter(f);
            case Test t: return RunTest(t) != t.Negated;
            case Unary u:
            {
                var v = Eval(u.Operand);
                return u.Op switch
                {
                    "not" => !Truthy(v),
                    "-" => v switch { long x => (object)(-x), double d => (object)(-d), bool b => (object)(b ? -1L : 0L), _ => throw Error($"cannot negate {TypeName(v)}", u.Line) },
                    _ => v,
                };
            }
            case Binary b: return EvalBinary(b);
            case Conditional c: return Truthy(Eval(c.Cond)) ? Eval(c.Then) : c.Else is null ? Undefined.Value : Eval(c.Else);
            default: throw Error($"cannot evaluate {e.GetType().Name}", e.Line);
        }
    }

    private string Capture(CaptureBody cb)
    {
        var sb = new StringBuilder();
        Exec(cb.Body, sb);
        return sb.ToString();
    }

    private object? EvalBinary(Binary b)
    {
        if (b.Op == "and") { var l = Eval(b.Left); return Truthy(l) ? Eval(b.Right) : l; }
        if (b.Op == "or") { var l = Eval(b.Left); return Truthy(l) ? l : Eval(b.Right); }
        var x = Eval(b.Left);
        var y = Eval(b.Right);
        switch (b.Op)
        {
            case "==": return Equal(x, y);
            case "!=": return !Equal(x, y);
            case "<": return Compare(x, y, b.Line) < 0;
            case ">": return Compare(x, y, b.Line) > 0;
            case "<=": return Compare(x, y, b.Line) <= 0;
            case ">=": return Compare(x, y, b.Line) >= 0;
            case "in": return Contains(y, x, b.Line);
            case "notin": return !Contains(y, x, b.Line);
            case "~": return Str(x) + Str(y);
            case "+":
                if (x is string sx && y is string sy) return CheckLength(sx.Length + sy.Length, b.Line) ? sx + sy : null;
                if (x is List<object?> lx && y is List<object?> ly) return CheckLength(lx.Count + ly.Count, b.Line) ? lx.Concat(ly).ToList() : null;
                return Arith(x, y, b.Op, b.Line);
            case "*":
                if (x is string s && y is long k) return CheckLength(s.Length * Math.Max(0, k), b.Line) ? string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, k))) : null;
                return Arith(x, y, b.Op, b.Line);
            default: return Arith(x, y, b.Op, b.Line);
        }
    }

    private static bool CheckLength(long n, int line) => n <= MaxOutput ? true : throw Error("a value grew too large", line);

    private static object Arith(object? x, object? y, string op, int line)
    {
        if (x is bool bx) x = bx ? 1L : 0L;
        if (y is bool by) y = by ? 1L : 0L;
        if (x is long a && y is long c)
        {
            // (object) on each arm: a switch mixing long and double arms would turn every result into a double.
            return op switch
            {
                "+" => (object)(a + c), "-" => (object)(a - c), "*" => (object)(a * c),
                "/" => c == 0 ? throw Error("division by zero", line) : (object)((double)a / c),
                "//" => c == 0 ? throw Error("division by zero", line) : (object)(long)Math.Floor((double)a / c),
                "%" => c == 0 ? throw Error("modulo by zero", line) : (object)(((a % c) + c) % c),
                "**" => c >= 0 && c < 64 ? (object)(long)Math.Pow(a, c) : (object)Math.Pow(a, c),
                _ => throw Error($"unknown operator {op}", line),
            };
        }
        if (x is long or double && y is long or double)
        {
            double p = Convert.ToDouble(x, CultureInfo.InvariantCulture), q = Convert.ToDouble(y, CultureInfo.InvariantCulture);
            return op switch
            {
                "+" => p + q, "-" => p - q, "*" => p * q, "/" => q == 0 ? throw Error("division by zero", line) : p / q,
                "//" => q == 0 ? throw Error("division by zero", line) : Math.Floor(p / q), "%" => q == 0 ? throw Error("modulo by zero", line) : p - q * Math.Floor(p / q),
                "**" => Math.Pow(p, q), _ => throw Error($"unknown operator {op}", line),
            };
        }
        throw Error($"unsupported operand types for {op}: {TypeName(x)} and {TypeName(y)}", line);
    }

    private static bool Contains(object? container, object? item, int line) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal) : throw Error($"'in <string>' needs a string, not {TypeName(item)}", line),
        List<object?> l => l.Any(v => Equal(v, item)),
        Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Namespace ns => item is string k && ns.Values.ContainsKey(k),
        Undefined or null => false,
        _ => throw Error($"{TypeName(container)} is not a container", line),
    };

    public static bool Equal(object? x, object? y)
    {
        if (x is Undefined || y is Undefined) return x is Undefined && y is Undefined;
        if (x is null || y is null) return x is null && y is null;
        if (x is bool bx && y is bool by) return bx == by;
        if (IsNumber(x) && IsNumber(y)) return ToDouble(x) == ToDouble(y);
        if (x is string sx && y is string sy) return sx == sy;
        if (x is List<object?> lx && y is List<object?> ly) return lx.Count == ly.Count && lx.Zip(ly).All(p => Equal(p.First, p.Second));
        if (x is Dictionary<string, object?> dx && y is Dictionary<string, object?> dy)
            return dx.Count == dy.Count && dx.All(kv => dy.TryGetValue(kv.Key, out var v) && Equal(kv.Value, v));
        return ReferenceEquals(x, y);
    }

    private static bool IsNumber(object? v) => v is long or double or bool;
    private static double ToDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => 0 };

    private static int Compare(object? x, object? y, int line)
    {
        if (IsNumber(x) && IsNumber(y)) return ToDouble(x).CompareTo(ToDouble(y));
        if (x is string sx && y is string sy) return string.CompareOrdinal(sx, sy);
        throw Error($"cannot compare {TypeName(x)} with {TypeName(y)}", line);
    }

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "None", Undefined => "undefined", bool => "bool", long => "int", double => "float", string => "str",
        List<object?> => "list", Dictionary<string, object?> => "dict", Namespace => "namespace", _ => v.GetType().Name,
    };

    /// <summary>Python's str().</summary>
    public static string Str(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => PyFloat(d),
        List<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        Dictionary<string, object?> d => "{" + string.Join(", ", d.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}",
        _ => v.ToString() ?? "",
    };

    private static string Repr(object? v) => v is string s ? "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "'" : Str(v);

    private static string PyFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == Math.Floor(d) && Math.Abs(d) < 1e16) return d.ToString("0.0", CultureInfo.InvariantCulture);
        return d.ToString("R", CultureInfo.InvariantCulture);
    }

    private static object? GetAttr(object? target, string name, int line)
    {
        switch (target)
        {
            case Undefined: throw Error($"'{name}' of an undefined value", line);
            case null: throw Error($"'None' has no attribute '{name}'", line);
            case Dictionary<string, object?> d:
                if (d.TryGetValue(name, out var v)) return v;
                return name is "items" or "keys" or "values" or "get" ? new BoundMethod(d, name) : Undefined.Value;
            case Namespace ns: return ns.Values.TryGetValue(name, out var nv) ? nv : Undefined.Value;
            case LoopInfo loop: return loop.Get(name);
            case string or List<object?>: return new BoundMethod(target, name);
            default: return Undefined.Value;
        }
    }

    private static object? GetItem(object? target, object? key, int line)
    {
        switch (target)
        {
            case Dictionary<string, object?> d:
                return key is string k && d.TryGetValue(k, out var v) ? v : Undefined.Value;
            case List<object?> l when key is long i:
            {
                long at = i < 0 ? i + l.Count : i;
                return at >= 0 && at < l.Count ? l[(int)at] : Undefined.Value;
            }
            case string s when key is long i:
            {
                var runes = StringInfoRunes(s).ToList();
                long at = i < 0 ? i + runes.Count : i;
                return at >= 0 && at < runes.Count ? runes[(int)at] : Undefined.Value;
            }
            case Namespace ns when key is string nk: return ns.Values.TryGetValue(nk, out var nv) ? nv : Undefined.Value;
            case LoopInfo loop when key is string lk: return loop.Get(lk);
            case Undefined: throw Error("indexing an undefined value", line);
            default:
                if (key is string name) return GetAttr(target, name, line);
                throw Error($"cannot index {TypeName(target)} with {TypeName(key)}", line);
        }
    }

    private static object? DoSlice(object? target, object? start, object? stop, object? step, int line)
    {
        long st = step is long x ? x : 1;
        if (st == 0) throw Error("slice step cannot be zero", line);
        List<object?> items = target switch
        {
            List<object?> l => l,
            string s => StringInfoRunes(s).Cast<object?>().ToList(),
            _ => throw Error($"cannot slice {TypeName(target)}", line),
        };
        int n = items.Count;
        long Norm(object? v, long def)
        {
            if (v is not long i) return def;
            if (i < 0) i += n;
            return st > 0 ? Math.Clamp(i, 0, n) : Math.Clamp(i, -1, n - 1);
        }
        long a = Norm(start, st > 0 ? 0 : n - 1), b = Norm(stop, st > 0 ? n : -1);
        var result = new List<object?>();
        if (st > 0) for (long i = a; i < b; i += st) result.Add(items[(int)i]);
        else for (long i = a; i > b; i += st) result.Add(items[(int)i]);
        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    private object? DoCall(Call c)
    {
        var fn = Eval(c.Target);
        var args = c.Args.Select(Eval).ToList();
        var kwargs = c.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value));
        switch (fn)
        {
            case BuiltinFunction b: return CallBuiltin(b.Name, args, kwargs, c.Line);
            case BoundMethod m: return CallMethod(m.Target, m.Name, args, c.Line);
            case Macro m: return CallMacro(m, args, kwargs, c.Line);
            default: throw Error($"{TypeName(fn)} is not callable", c.Line);
        }
    }

    private object? CallMacro(Macro m, List<object?> args, Dictionary<string, object?> kwargs, int line)
    {
        if (++_callDepth > MaxCallDepth) throw Error($"macros call each other deeper than {MaxCallDepth}", line);
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        var p = m.Node.Params;
        for (int i = 0; i < p.Length; i++)
            scope[p[i]] = i < args.Count ? args[i] : kwargs.TryGetValue(p[i], out var kv) ? kv : m.Node.Defaults[i] is { } d ? Eval(d) : Undefined.Value;
        _scopes.Add(scope);
        try
        {
            var sb = new StringBuilder();
            Exec(m.Node.Body, sb);
            return sb.ToString();
        }
        finally
        {
            _scopes.RemoveAt(_scopes.Count - 1);
            _callDepth--;
        }
    }

    private object? CallBuiltin(string name, List<object?> args, Dictionary<string, object?> kwargs, int line)
    {
        switch (name)
        {
            case "raise_exception": throw new ChatTemplateException(args.Count > 0 ? Str(args[0]) : "the chat template raised an exception");
            case "range":
            {
                long a = 0, b, s = 1;
                var ints = args.Select(x => x is long l ? l : throw Error("range() takes integers", line)).ToList();
                if (ints.Count == 1) b = ints[0];
                else if (ints.Count >= 2) { a = ints[0]; b = ints[1]; if (ints.Count > 2) s = ints[2]; }
                else throw Error("range() needs arguments", line);
                if (s == 0) throw Error("range() step cannot be zero", line);
                long count = s > 0 ? Math.Max(0, (b - a + s - 1) / s) : Math.Max(0, (a - b - s - 1) / -s);
                if (count > 100_000) throw Error($"range() of {count} items is too long for a chat template", line);
                var list = new List<object?>((int)count);
                for (long i = 0; i < count; i++) list.Add(a + i * s);
                return list;
            }
            case "namespace":
            {
                var values = new Dictionary<string, object?>(StringComparer.Ordinal);
                if (args.Count > 0 && args[0] is Dictionary<string, object?> init) foreach (var (k, v) in init) values[k] = v;
                foreach (var (k, v) in kwargs) values[k] = v;
                return new Namespace(values);
            }
            case "dict":
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in kwargs) d[k] = v;
                return d;
            }
            case "strftime_now": return Strftime(clock(), args.Count > 0 ? Str(args[0]) : "%Y-%m-%d");
            default: throw Error($"unknown function {name}", line);
        }
    }

    private static readonly string[] s_months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    private static readonly string[] s_days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

    private static string Strftime(DateTime t, string fmt)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%' || i + 1 >= fmt.Length) { sb.Append(fmt[i]); continue; }
            char f = fmt[++i];
            sb.Append(f switch
            {
                'Y' => t.Year.ToString("0000", CultureInfo.InvariantCulture),
                'm' => t.Month.ToString("00", CultureInfo.InvariantCulture),
                'd' => t.Day.ToString("00", CultureInfo.InvariantCulture),
                'H' => t.Hour.ToString("00", CultureInfo.InvariantCulture),
                'M' => t.Minute.ToString("00", CultureInfo.InvariantCulture),
                'S' => t.Second.ToString("00", CultureInfo.InvariantCulture),
                'B' => s_months[t.Month - 1],
                'b' => s_months[t.Month - 1][..3],
                'A' => s_days[(int)t.DayOfWeek],
                'a' => s_days[(int)t.DayOfWeek][..3],
                'y' => (t.Year % 100).ToString("00", CultureInfo.InvariantCulture),
                'j' => t.DayOfYear.ToString("000", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => "%" + f,
            });
        }
        return sb.ToString();
    }

    private static object? CallMethod(object? target, string name, List<object?> args, int line)
    {
        string Arg(int i) => i < args.Count ? Str(args[i]) : throw Error($"{name}() needs an argument", line);
        switch (target)
        {
            case string s:
                return name switch
                {
                    "strip" => args.Count > 0 && args[0] is string cs ? s.Trim(cs.ToCharArray()) : s.Trim(),
                    "lstrip" => args.Count > 0 && args[0] is string cs ? s.TrimStart(cs.ToCharArray()) : s.TrimStart(),
                    "rstrip" => args.Count > 0 && args[0] is string cs ? s.TrimEnd(cs.ToCharArray()) : s.TrimEnd(),
                    "upper" => s.ToUpperInvariant(),
                    "lower" => s.ToLowerInvariant(),
                    "title" => TitleCase(s),
                    "capitalize" => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
                    "startswith" => args.Count > 0 && args[0] is List<object?> ps ? ps.Any(p => s.StartsWith(Str(p), StringComparison.Ordinal)) : s.StartsWith(Arg(0), StringComparison.Ordinal),
                    "endswith" => args.Count > 0 && args[0] is List<object?> es ? es.Any(p => s.EndsWith(Str(p), StringComparison.Ordinal)) : s.EndsWith(Arg(0), StringComparison.Ordinal),
                    "replace" => Arg(0).Length == 0 ? throw Error("replace() of an empty string is not supported", line) : s.Replace(Arg(0), Arg(1), StringComparison.Ordinal),
                    "split" => (args.Count == 0 || args[0] is null
                        ? s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
                        : s.Split(Arg(0), args.Count > 1 && args[1] is long max && max >= 0 ? (int)max + 1 : int.MaxValue)).Cast<object?>().ToList(),
                    "find" => (long)s.IndexOf(Arg(0), StringComparison.Ordinal),
                    "count" => (long)CountOf(s, Arg(0)),
                    "format" => throw Error("str.format is not supported", line),
                    _ => throw Error($"str has no method '{name}'", line),
                };
            case Dictionary<string, object?> d:
                return name switch
                {
                    "items" => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
                    "keys" => d.Keys.Cast<object?>().ToList(),
                    "values" => d.Values.ToList(),
                    "get" => args.Count > 0 && args[0] is string k && d.TryGetValue(k, out var v) ? v : args.Count > 1 ? args[1] : null,
                    _ => throw Error($"dict has no method '{name}'", line),
                };
            case List<object?>:
                throw Error($"list.{name}() is not allowed in a chat template (the sandbox is immutable)", line);
            default: throw Error($"{TypeName(target)} has no method '{name}'", line);
        }
    }

    private static int CountOf(string s, string sub)
    {
        if (sub.Length == 0) return s.Length + 1;
        int n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static string TitleCase(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (char c in s)
        {
            sb.Append(start ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            start = !char.IsLetter(c);
        }
        return sb.ToString();
    }

    private object? ApplyFilter(Filter f)
    {
        var v = Eval(f.Target);
        var args = f.Args.Select(Eval).ToList();
        var kwargs = f.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value));
        switch (f.Name)
        {
            case "trim": return Str(v).Trim();
            case "length" or "count":
                return v switch
                {
                    string s => (long)StringInfoRunes(s).Count(), List<object?> l => (long)l.Count, Dictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L, _ => throw Error($"{TypeName(v)} has no length", f.Line),
                };
            case "upper": return Str(v).ToUpperInvariant();
            case "lower": return Str(v).ToLowerInvariant();
            case "title": return TitleCase(Str(v));
            case "capitalize": { var s = Str(v); return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(); }
            case "string": return Str(v);
            case "int": return v switch { long l => l, double d => (long)d, string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long p) => p, bool b => b ? 1L : 0L, _ => 0L };
            case "float": return v switch { long l => (double)l, double d => d, string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) => p, _ => 0.0 };
            case "list": return Iterate(v, f.Line).ToList();
            case "first": return Iterate(v, f.Line).FirstOrDefault(Undefined.Value);
            case "last": { var l = Iterate(v, f.Line).ToList(); return l.Count > 0 ? l[^1] : Undefined.Value; }
            case "reverse": return v is string rs ? string.Concat(StringInfoRunes(rs).Reverse()) : Iterate(v, f.Line).Reverse().ToList();
            case "join":
            {
                string sep = args.Count > 0 ? Str(args[0]) : kwargs.TryGetValue("d", out var d) ? Str(d) : "";
                var items = Iterate(v, f.Line);
                if (kwargs.TryGetValue("attribute", out var attr)) items = items.Select(x => GetItem(x, attr, f.Line));
                return string.Join(sep, items.Select(Str));
            }
            case "replace": return Str(v).Replace(Str(args[0]), args.Count > 1 ? Str(args[1]) : "", StringComparison.Ordinal);
            case "default" or "d":
            {
                var def = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("default_value", "");
                bool boolean = (args.Count > 1 && Truthy(args[1])) || (kwargs.TryGetValue("boolean", out var bv) && Truthy(bv));
                return v is Undefined || (boolean && !Truthy(v)) ? def : v;
            }
            case "tojson":
            {
                long? indent = args.Count > 0 && args[0] is long i ? i : kwargs.TryGetValue("indent", out var iv) && iv is long il ? il : null;
                return PyJson.Dumps(v, indent, f.Line);
            }
            case "items": return v is Dictionary<string, object?> dd ? dd.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList() : throw Error("items needs a dict", f.Line);
            case "selectattr" or "rejectattr":
            {
                bool select = f.Name == "selectattr";
                string attr = args.Count > 0 ? Str(args[0]) : throw Error($"{f.Name} needs an attribute", f.Line);
                string? test = args.Count > 1 ? Str(args[1]) : null;
                var rest = args.Skip(2).ToList();
                return Iterate(v, f.Line).Where(x =>
                {
                    var a = GetItem(x, attr, f.Line);
                    bool ok = test is null ? Truthy(a) : NamedTest(test, a, rest, f.Line);
                    return ok == select;
                }).ToList();
            }
            case "map":
            {
                if (kwargs.TryGetValue("attribute", out var attr)) return Iterate(v, f.Line).Select(x => GetItem(x, attr, f.Line)).ToList();
                if (args.Count > 0 && Str(args[0]) is var fname)
                    return Iterate(v, f.Line).Select(x => ApplyNamedFilter(fname, x, f.Line)).ToList();
                throw Error("map needs attribute= or a filter name", f.Line);
            }
            case "unique": { var seen = new List<object?>(); foreach (var x in Iterate(v, f.Line)) if (!seen.Any(s => Equal(s, x))) seen.Add(x); return seen; }
            case "abs": return v switch { long l => (object)Math.Abs(l), double d => (object)Math.Abs(d), _ => throw Error("abs needs a number", f.Line) };
            case "safe" or "e" or "escape" when f.Name == "safe": return v;
            default: throw Error($"unknown filter '{f.Name}'", f.Line);
        }
    }

    private static object? ApplyNamedFilter(string name, object? v, int line) => name switch
    {
        "string" => Str(v), "trim" => Str(v).Trim(), "upper" => Str(v).ToUpperInvariant(), "lower" => Str(v).ToLowerInvariant(),
        _ => throw Error($"map() with filter '{name}' is not supported", line),
    };

    private bool RunTest(Test t)
    {
        var v = Eval(t.Target);
        return NamedTest(t.Name, v, t.Args.Select(Eval).ToList(), t.Line);
    }

    private static bool NamedTest(string name, object? v, List<object?> args, int line) => name switch
    {
        "defined" => v is not Undefined,
        "undefined" => v is Undefined,
        "none" => v is null,
        "string" => v is string,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is Dictionary<string, object?> or Namespace,
        "sequence" or "iterable" => v is List<object?> or string or Dictionary<string, object?>,
        "callable" => v is Macro or BuiltinFunction or BoundMethod,
        "even" => v is long e && e % 2 == 0,
        "odd" => v is long o && o % 2 != 0,
        "divisibleby" => v is long a && args.Count > 0 && args[0] is long b && b != 0 && a % b == 0,
        "equalto" or "eq" or "==" => args.Count > 0 && Equal(v, args[0]),
        "ne" or "!=" => args.Count > 0 && !Equal(v, args[0]),
        "in" => args.Count > 0 && Contains(args[0], v, line),
        "lower" => v is string ls && string.Equals(ls, ls.ToLowerInvariant(), StringComparison.Ordinal),
        "upper" => v is string us && string.Equals(us, us.ToUpperInvariant(), StringComparison.Ordinal),
        _ => throw Error($"unknown test '{name}'", line),
    };
}

/// <summary>Python's json.dumps(x, ensure_ascii=False) as HF's tojson calls it: ", " and ": " separators, keys in insertion order.</summary>
internal static class PyJson
{
    public static string Dumps(object? v, long? indent, int line)
    {
        var sb = new StringBuilder();
        Write(sb, v, indent, 0, line);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, long? indent, int level, int line)
    {
        if (level > 64) throw new ChatTemplateException($"chat template line {line}: tojson nests too deeply");
        switch (v)
        {
            case null or Undefined: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(double.IsFinite(d) ? Interpreter.Str(d) : double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity"); break;
            case string s: String(sb, s); break;
            case List<object?> list:
                if (list.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(indent is null ? ", " : ",");
                    NewLine(sb, indent, level + 1);
                    Write(sb, list[i], indent, level + 1, line);
                }
                NewLine(sb, indent, level);
                sb.Append(']');
                break;
            case Dictionary<string, object?> dict:
                if (dict.Count == 0) { sb.Append("{}"); break; }
                sb.Append('{');
                int k = 0;
                foreach (var (key, value) in dict)
                {
                    if (k++ > 0) sb.Append(indent is null ? ", " : ",");
                    NewLine(sb, indent, level + 1);
                    String(sb, key);
                    sb.Append(": ");
                    Write(sb, value, indent, level + 1, line);
                }
                NewLine(sb, indent, level);
                sb.Append('}');
                break;
            case Namespace ns: Write(sb, ns.Values, indent, level, line); break;
            default: throw new ChatTemplateException($"chat template line {line}: {Interpreter.TypeName(v)} is not JSON serializable");
        }
    }

    private static void NewLine(StringBuilder sb, long? indent, int level)
    {
        if (indent is not long n) return;
        sb.Append('\n').Append(' ', (int)Math.Min(n * level, 10_000));
    }

    private static void String(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
