// Python's binary and unary operators on template values: + - * / // % ** and unary - +, with Python's
// results (7 / 2 == 3.5, -7 // 2 == -4, -7 % 3 == 2, 'ab' * 2, [1] + [2], '%s' % x) and Python's TypeErrors.
// Integers are 64-bit: a result that Python would grow past that is an OverflowError here. Sizes of built
// strings and lists are checked by the caller (Interpreter) against the render limits.
using System.Globalization;
using System.Text;

namespace Duet.Tokenizers.ChatTemplates;

internal static class PyOps
{
    private static TemplateRuntimeError Unsupported(string op, object? a, object? b) =>
        new("TypeError", $"unsupported operand type(s) for {op}: '{PyValues.TypeName(a)}' and '{PyValues.TypeName(b)}'");

    private static TemplateRuntimeError Overflow() => new("OverflowError", "integer result does not fit in 64 bits (Duet's template integers)");

    private static void FailUndefined(object? a, object? b)
    {
        if (a is Undefined ua) throw ua.Fail();
        if (b is Undefined ub) throw ub.Fail();
    }

    private static bool IsNumber(object? v) => v is bool or long or double;
    private static double D(object? v) => v switch { bool b => b ? 1 : 0, long l => l, double d => d, _ => 0 };

    public static object? Binary(string op, object? a, object? b, int maxLength) => op switch
    {
        "+" => Add(a, b),
        "-" => Sub(a, b),
        "*" => Mul(a, b, maxLength),
        "/" => Div(a, b),
        "//" => FloorDiv(a, b),
        "%" => Mod(a, b, maxLength),
        "**" => Pow(a, b),
        _ => throw new InvalidOperationException(op),
    };

    public static object? Add(object? a, object? b)
    {
        FailUndefined(a, b);
        if (PyValues.TryInt(a, out long x) && PyValues.TryInt(b, out long y))
        {
            long r = x + y;
            if (((x ^ r) & (y ^ r)) < 0) throw Overflow();
            return r;
        }
        if (IsNumber(a) && IsNumber(b)) return D(a) + D(b);
        if (a is string sa)
        {
            if (b is string sb) return string.Concat(sa, sb);
            throw new TemplateRuntimeError("TypeError", $"can only concatenate str (not \"{PyValues.TypeName(b)}\") to str");
        }
        if (a is PyList la && (la.Kind is SeqKind.List or SeqKind.Tuple))
        {
            if (b is PyList lb && lb.Kind == la.Kind) return new PyList([.. la.Items, .. lb.Items], la.Kind);
            throw new TemplateRuntimeError("TypeError", $"can only concatenate {PyValues.TypeName(a)} (not \"{PyValues.TypeName(b)}\") to {PyValues.TypeName(a)}");
        }
        throw Unsupported("+", a, b);
    }

    public static object? Sub(object? a, object? b)
    {
        FailUndefined(a, b);
        if (PyValues.TryInt(a, out long x) && PyValues.TryInt(b, out long y))
        {
            long r = x - y;
            if (((x ^ y) & (x ^ r)) < 0) throw Overflow();
            return r;
        }
        if (IsNumber(a) && IsNumber(b)) return D(a) - D(b);
        throw Unsupported("-", a, b);
    }

    public static object? Mul(object? a, object? b, int maxLength)
    {
        FailUndefined(a, b);
        if (PyValues.TryInt(a, out long x) && PyValues.TryInt(b, out long y))
        {
            try { return checked(x * y); }
            catch (OverflowException) { throw Overflow(); }
        }
        if (IsNumber(a) && IsNumber(b)) return D(a) * D(b);
        if (PyValues.TryInt(a, out long n1) && b is string or PyList) return Repeat(b, n1, maxLength);
        if (PyValues.TryInt(b, out long n2) && a is string or PyList) return Repeat(a, n2, maxLength);
        if (a is string or PyList && b is string or PyList or double || b is string or PyList && a is double)
            throw new TemplateRuntimeError("TypeError", $"can't multiply sequence by non-int of type '{PyValues.TypeName(a is string or PyList ? b : a)}'");
        throw Unsupported("*", a, b);
    }

    private static object Repeat(object? seq, long n, int maxLength)
    {
        if (n <= 0) return seq is string ? "" : new PyList([], ((PyList)seq!).Kind);
        if (seq is string s)
        {
            if (s.Length > 0 && n > maxLength / s.Length)
                throw new TemplateRuntimeError("LimitError", $"string repetition would exceed the render limit of {maxLength} characters");
            var sb = new StringBuilder(s.Length * (int)n);
            for (long i = 0; i < n; i++) sb.Append(s);
            return sb.ToString();
        }
        var l = (PyList)seq!;
        if (l.Kind is not (SeqKind.List or SeqKind.Tuple)) throw new TemplateRuntimeError("TypeError", $"unsupported operand type(s) for *: '{PyValues.TypeName(l)}' and 'int'");
        if (l.Count > 0 && n > maxLength / l.Count)
            throw new TemplateRuntimeError("LimitError", $"list repetition would exceed the render limit of {maxLength} items");
        var items = new List<object?>(l.Count * (int)n);
        for (long i = 0; i < n; i++) items.AddRange(l.Items);
        return new PyList(items, l.Kind);
    }

    public static object? Div(object? a, object? b)
    {
        FailUndefined(a, b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("/", a, b);
        double y = D(b);
        if (y == 0) throw new TemplateRuntimeError("ZeroDivisionError", PyValues.TryInt(a, out _) && PyValues.TryInt(b, out _) ? "division by zero" : "float division by zero");
        if (PyValues.TryInt(a, out long lx) && PyValues.TryInt(b, out long ly))
            return (double)lx / ly; // Python rounds int/int correctly; for |values| < 2^53 this is the same
        return D(a) / y;
    }

    public static object? FloorDiv(object? a, object? b)
    {
        FailUndefined(a, b);
        if (PyValues.TryInt(a, out long x) && PyValues.TryInt(b, out long y))
        {
            if (y == 0) throw new TemplateRuntimeError("ZeroDivisionError", "integer division or modulo by zero");
            if (x == long.MinValue && y == -1) throw Overflow();
            long q = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) q--;
            return q;
        }
        if (IsNumber(a) && IsNumber(b)) return FloatDivMod(D(a), D(b), "float floor division by zero").Div;
        throw Unsupported("//", a, b);
    }

    public static object? Mod(object? a, object? b, int maxLength)
    {
        if (a is string fmt) return PercentFormat(fmt, b, maxLength); // str % undefined is str's business: '%s' gives ''
        FailUndefined(a, b);
        if (PyValues.TryInt(a, out long x) && PyValues.TryInt(b, out long y))
        {
            if (y == 0) throw new TemplateRuntimeError("ZeroDivisionError", "integer division or modulo by zero");
            if (y == -1) return 0L;
            long r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            return r;
        }
        if (IsNumber(a) && IsNumber(b)) return FloatDivMod(D(a), D(b), "float modulo").Mod;
        throw Unsupported("%", a, b);
    }

    /// <summary>CPython's float_divmod.</summary>
    private static (double Div, double Mod) FloatDivMod(double vx, double wx, string zeroMessage)
    {
        if (wx == 0) throw new TemplateRuntimeError("ZeroDivisionError", zeroMessage);
        double mod = vx % wx; // C fmod
        double div = (vx - mod) / wx;
        if (mod != 0)
        {
            if ((wx < 0) != (mod < 0)) { mod += wx; div -= 1.0; }
        }
        else mod = Math.CopySign(0.0, wx);
        double floordiv;
        if (div != 0)
        {
            floordiv = Math.Floor(div);
            if (div - floordiv > 0.5) floordiv += 1.0;
        }
        else floordiv = Math.CopySign(0.0, vx / wx);
        return (floordiv, mod);
    }

    public static object? Pow(object? a, object? b)
    {
        FailUndefined(a, b);
        if (PyValues.TryInt(a, out long x) && PyValues.TryInt(b, out long y))
        {
            if (y < 0)
            {
                if (x == 0) throw new TemplateRuntimeError("ZeroDivisionError", "0.0 cannot be raised to a negative power");
                return Math.Pow(x, y);
            }
            long result = 1, basis = x;
            long e = y;
            try
            {
                while (e > 0)
                {
                    if ((e & 1) != 0) result = checked(result * basis);
                    e >>= 1;
                    if (e > 0) basis = checked(basis * basis);
                }
            }
            catch (OverflowException) { throw Overflow(); }
            return result;
        }
        if (IsNumber(a) && IsNumber(b))
        {
            double dx = D(a), dy = D(b);
            if (dx == 0 && dy < 0) throw new TemplateRuntimeError("ZeroDivisionError", "0.0 cannot be raised to a negative power");
            if (dx < 0 && Math.Floor(dy) != dy) throw new TemplateRuntimeError("ValueError", "negative number cannot be raised to a fractional power (Python gives a complex number)");
            double r = Math.Pow(dx, dy);
            if (double.IsInfinity(r) && !double.IsInfinity(dx) && !double.IsInfinity(dy)) throw new TemplateRuntimeError("OverflowError", "(34, 'Numerical result out of range')");
            return r;
        }
        throw Unsupported("** or pow()", a, b);
    }

    public static object? Negate(object? v) => v switch
    {
        Undefined u => throw u.Fail(),
        bool b => b ? (object)(-1L) : 0L,
        long l => l == long.MinValue ? throw Overflow() : (object)(-l),
        double d => (object)(-d),
        _ => throw new TemplateRuntimeError("TypeError", $"bad operand type for unary -: '{PyValues.TypeName(v)}'"),
    };

    public static object? Plus(object? v) => v switch
    {
        Undefined u => throw u.Fail(),
        bool b => b ? (object)1L : 0L,
        long or double => v,
        _ => throw new TemplateRuntimeError("TypeError", $"bad operand type for unary +: '{PyValues.TypeName(v)}'"),
    };

    // ---- 'fmt' % args and 'fmt'.format(...) ---------------------------------------------------------------------

    /// <summary>printf-style formatting: %s %r %d %i %f %% with a value or a tuple of values.</summary>
    public static string PercentFormat(string fmt, object? args, int maxLength)
    {
        var values = args is PyList { IsTuple: true } t ? t.Items : [args];
        int next = 0;
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            char c = fmt[i];
            if (c != '%') { sb.Append(c); continue; }
            if (++i >= fmt.Length) throw new TemplateRuntimeError("ValueError", "incomplete format");
            char f = fmt[i];
            if (f == '%') { sb.Append('%'); continue; }
            if (next >= values.Count) throw new TemplateRuntimeError("TypeError", "not enough arguments for format string");
            var v = values[next++];
            switch (f)
            {
                case 's': sb.Append(PyValues.Str(v)); break;
                case 'r': sb.Append(PyValues.Repr(v)); break;
                case 'd' or 'i':
                    if (PyValues.TryInt(v, out long l)) sb.Append(l.ToString(CultureInfo.InvariantCulture));
                    else if (v is double d) sb.Append(((long)Math.Truncate(d)).ToString(CultureInfo.InvariantCulture));
                    else throw new TemplateRuntimeError("TypeError", $"%{f} format: a real number is required, not {PyValues.TypeName(v)}");
                    break;
                case 'f':
                    if (v is bool or long or double) sb.Append(D(v).ToString("F6", CultureInfo.InvariantCulture));
                    else throw new TemplateRuntimeError("TypeError", $"must be real number, not {PyValues.TypeName(v)}");
                    break;
                default:
                    throw new TemplateRuntimeError("ValueError", $"format directive '%{f}' is not supported by Duet's chat templates");
            }
            if (sb.Length > maxLength) throw new TemplateRuntimeError("LimitError", $"formatted string exceeds the render limit of {maxLength} characters");
        }
        // CPython treats any non-tuple, non-str argument with __getitem__ (dict, list, jinja2's Undefined) as a mapping:
        // leftovers are fine then.
        if (next < values.Count && args is not (PyDict or PyList { IsTuple: false } or Undefined))
            throw new TemplateRuntimeError("TypeError", "not all arguments converted during string formatting");
        return sb.ToString();
    }

    /// <summary>str.format with {} / {0} / {name} fields and {{ }} escapes (no conversions or format specs).</summary>
    public static string StrFormat(string fmt, CallArgs args)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            char c = fmt[i];
            if (c == '{' && i + 1 < fmt.Length && fmt[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < fmt.Length && fmt[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c == '}') throw new TemplateRuntimeError("ValueError", "Single '}' encountered in format string");
            if (c != '{') { sb.Append(c); continue; }
            int end = fmt.IndexOf('}', i + 1);
            if (end < 0) throw new TemplateRuntimeError("ValueError", "Single '{' encountered in format string");
            string field = fmt[(i + 1)..end];
            if (field.AsSpan().IndexOfAny('!', ':', '[') >= 0 || field.Contains('.', StringComparison.Ordinal))
                throw new TemplateRuntimeError("ValueError", "format fields with conversions, specs or attribute access are not supported by Duet's chat templates");
            object? v;
            if (field.Length == 0)
            {
                if (auto >= args.Positional.Count) throw new TemplateRuntimeError("IndexError", "Replacement index out of range for positional args tuple");
                v = args.Positional[auto++];
            }
            else if (int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out int k))
            {
                if (k >= args.Positional.Count) throw new TemplateRuntimeError("IndexError", "Replacement index out of range for positional args tuple");
                v = args.Positional[k];
            }
            else
            {
                int idx = args.Keyword.FindIndex(kw => kw.Name == field);
                if (idx < 0) throw new TemplateRuntimeError("KeyError", PyText.Repr(field));
                v = args.Keyword[idx].Value;
            }
            sb.Append(PyValues.Str(v));
            i = end;
        }
        return sb.ToString();
    }
}
