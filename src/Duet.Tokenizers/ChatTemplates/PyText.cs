// Python's str semantics on .NET strings: templates index, slice, strip and split text as Python does, by code
// point (a .NET string is UTF-16, so an emoji or U+20000 is one Python character but two .NET chars), with
// Python's notion of whitespace (str.isspace also includes U+001C..U+001F), float repr, str repr and strftime.
// Case mapping is .NET's invariant simple mapping: Python's full mappings ('ß'.upper() == 'SS', 'ﬁ') differ.
using System.Globalization;
using System.Text;

namespace Duet.Tokenizers.ChatTemplates;

internal static class PyText
{
    /// <summary>Python str.isspace for one UTF-16 unit (no whitespace lies outside the BMP).</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001c' and <= '\u001f';

    public static string RStrip(string s)
    {
        int end = s.Length;
        while (end > 0 && IsSpace(s[end - 1])) end--;
        return end == s.Length ? s : s[..end];
    }

    public static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>The string as Python characters (code points); lone surrogates count as one each, as in Python.</summary>
    public static List<string> CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                list.Add(s.Substring(i, 2));
                i++;
            }
            else list.Add(s[i].ToString());
        }
        return list;
    }

    public static int Length(string s)
    {
        if (!HasSurrogates(s)) return s.Length;
        int n = 0;
        for (int i = 0; i < s.Length; i++, n++)
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        return n;
    }

    // ---- strip / split ------------------------------------------------------------------------------------------

    /// <summary>Whether the Python character at i is stripped: whitespace when chars is null, else one of chars' characters.</summary>
    private static bool InChars(string s, int i, string? chars, out int width)
    {
        width = char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
        if (chars is null) return width == 1 && IsSpace(s[i]);
        if (width == 2) return chars.Contains(s.Substring(i, 2), StringComparison.Ordinal);
        return chars.Contains(s[i], StringComparison.Ordinal);
    }

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        int start = 0, end = s.Length;
        if (left)
            while (start < end && InChars(s, start, chars, out int w)) start += w;
        if (right)
        {
            while (end > start)
            {
                int i = end - 1;
                if (char.IsLowSurrogate(s[i]) && i > start && char.IsHighSurrogate(s[i - 1])) i--;
                if (!InChars(s, i, chars, out _)) break;
                end = i;
            }
        }
        return s[start..end];
    }

    /// <summary>str.split(sep, maxsplit): sep null splits on runs of whitespace and drops empty parts.</summary>
    public static List<string> Split(string s, string? sep, long maxSplit)
    {
        var parts = new List<string>();
        if (sep is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && IsSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(s[i..]); // Python keeps the remainder as is: '  a b  '.split(None, 1) == ['a', 'b  ']
                    break;
                }
                int j = i;
                while (j < s.Length && !IsSpace(s[j])) j++;
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        if (sep.Length == 0) throw new TemplateRuntimeError("ValueError", "empty separator");
        int start = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int k = s.IndexOf(sep, start, StringComparison.Ordinal);
            if (k < 0) break;
            parts.Add(s[start..k]);
            start = k + sep.Length;
        }
        parts.Add(s[start..]);
        return parts;
    }

    /// <summary>str.rsplit(sep, maxsplit).</summary>
    public static List<string> RSplit(string s, string? sep, long maxSplit)
    {
        if (maxSplit < 0) return Split(s, sep, -1);
        var parts = new List<string>();
        if (sep is null)
        {
            int i = s.Length;
            while (true)
            {
                while (i > 0 && IsSpace(s[i - 1])) i--;
                if (i <= 0) break;
                if (parts.Count == maxSplit)
                {
                    parts.Add(s[..i]);
                    break;
                }
                int j = i;
                while (j > 0 && !IsSpace(s[j - 1])) j--;
                parts.Add(s[j..i]);
                i = j;
            }
            parts.Reverse();
            return parts;
        }
        if (sep.Length == 0) throw new TemplateRuntimeError("ValueError", "empty separator");
        int end = s.Length;
        while (parts.Count < maxSplit)
        {
            int k = end - sep.Length < 0 ? -1 : s.LastIndexOf(sep, end - 1, end, StringComparison.Ordinal);
            if (k < 0) break;
            parts.Add(s[(k + sep.Length)..end]);
            end = k;
        }
        parts.Add(s[..end]);
        parts.Reverse();
        return parts;
    }

    /// <summary>str.splitlines(keepends): \n \r \r\n \v \f \x1c-\x1e \x85 \u2028 \u2029 end lines.</summary>
    public static List<string> SplitLines(string s, bool keepEnds)
    {
        var lines = new List<string>();
        int start = 0, i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            int eol = c is '\n' or '\v' or '\f' or '\u001c' or '\u001d' or '\u001e' or '\u0085' or '\u2028' or '\u2029' ? 1
                : c == '\r' ? (i + 1 < s.Length && s[i + 1] == '\n' ? 2 : 1) : 0;
            if (eol == 0) { i++; continue; }
            lines.Add(keepEnds ? s[start..(i + eol)] : s[start..i]);
            i += eol;
            start = i;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    /// <summary>str.replace(old, new, count): an empty old inserts new between every character, as Python does.</summary>
    public static string Replace(string s, string oldValue, string newValue, long count)
    {
        if (count == 0) return s;
        var sb = new StringBuilder();
        if (oldValue.Length == 0)
        {
            var cps = CodePoints(s);
            long n = 0;
            foreach (var cp in cps)
            {
                if (count < 0 || n < count) { sb.Append(newValue); n++; }
                sb.Append(cp);
            }
            if (count < 0 || n < count) sb.Append(newValue);
            return sb.ToString();
        }
        int start = 0;
        long done = 0;
        while (count < 0 || done < count)
        {
            int k = s.IndexOf(oldValue, start, StringComparison.Ordinal);
            if (k < 0) break;
            sb.Append(s, start, k - start).Append(newValue);
            start = k + oldValue.Length;
            done++;
        }
        sb.Append(s, start, s.Length - start);
        return sb.ToString();
    }

    /// <summary>Number of non-overlapping occurrences (str.count); empty sub counts positions.</summary>
    public static long Count(string s, string sub)
    {
        if (sub.Length == 0) return Length(s) + 1;
        long n = 0;
        for (int k = s.IndexOf(sub, StringComparison.Ordinal); k >= 0; k = s.IndexOf(sub, k + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>str.find / rfind in code points.</summary>
    public static long Find(string s, string sub, bool reverse)
    {
        int k = reverse ? s.LastIndexOf(sub, StringComparison.Ordinal) : s.IndexOf(sub, StringComparison.Ordinal);
        return k < 0 ? -1 : Length(s[..k]);
    }

    // ---- case -----------------------------------------------------------------------------------------------------

    public static string Upper(string s) => s.ToUpperInvariant();
    public static string Lower(string s) => s.ToLowerInvariant();

    private static bool IsCased(int cp)
    {
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;
    }

    private static string TitleCase(string cp)
    {
        // A titlecase letter (ǅ) stays; otherwise upper case (.NET has no titlecase mapping; they agree outside digraphs).
        if (cp.Length == 1 && CharUnicodeInfo.GetUnicodeCategory(cp[0]) == UnicodeCategory.TitlecaseLetter) return cp;
        return cp switch { "ǆ" or "ǅ" or "Ǆ" => "ǅ", "ǉ" or "ǈ" or "Ǉ" => "ǈ", "ǌ" or "ǋ" or "Ǌ" => "ǋ", "ǳ" or "ǲ" or "Ǳ" => "ǲ", _ => cp.ToUpperInvariant() };
    }

    /// <summary>Python str.title(): a cased character after an uncased one is titlecased, after a cased one lowercased.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (var cp in CodePoints(s))
        {
            int v = cp.Length == 2 ? char.ConvertToUtf32(cp[0], cp[1]) : cp[0];
            if (IsCased(v))
            {
                sb.Append(previousCased ? cp.ToLowerInvariant() : TitleCase(cp));
                previousCased = true;
            }
            else
            {
                sb.Append(cp);
                previousCased = false;
            }
        }
        return sb.ToString();
    }

    /// <summary>Python str.capitalize(): first character titlecased, the rest lowercased.</summary>
    public static string Capitalize(string s)
    {
        if (s.Length == 0) return s;
        var cps = CodePoints(s);
        var sb = new StringBuilder(s.Length).Append(TitleCase(cps[0]));
        for (int i = 1; i < cps.Count; i++) sb.Append(cps[i].ToLowerInvariant());
        return sb.ToString();
    }

    public static string SwapCase(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s)
            sb.Append(char.IsUpper(c) ? char.ToLowerInvariant(c) : char.IsLower(c) ? char.ToUpperInvariant(c) : c);
        return sb.ToString();
    }

    // ---- repr -------------------------------------------------------------------------------------------------------

    /// <summary>Python repr() of a str: single quotes unless the text has ' and no ", escapes for non-printable characters.</summary>
    public static string Repr(string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(quote);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == quote || c == '\\') { sb.Append('\\').Append(c); continue; }
            switch (c)
            {
                case '\t': sb.Append("\\t"); continue;
                case '\n': sb.Append("\\n"); continue;
                case '\r': sb.Append("\\r"); continue;
            }
            int cp = c;
            int width = 1;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { cp = char.ConvertToUtf32(c, s[i + 1]); width = 2; }
            if (c < ' ' || c == '\u007f' || (cp >= 0x80 && !IsPrintable(cp)))
            {
                sb.Append(cp <= 0xFF ? $"\\x{cp:x2}" : cp <= 0xFFFF ? $"\\u{cp:x4}" : $"\\U{cp:x8}");
            }
            else sb.Append(s, i, width);
            i += width - 1;
        }
        return sb.Append(quote).ToString();
    }

    private static bool IsPrintable(int cp)
    {
        if (cp is >= 0xD800 and <= 0xDFFF) return false;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => false,
            UnicodeCategory.SpaceSeparator => cp == ' ',
            _ => true,
        };
    }

    // ---- numbers --------------------------------------------------------------------------------------------------

    /// <summary>Python repr(float): shortest round-trip digits; exponent form below 1e-4 and from 1e16 ("1e+16", "1e-05").</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // Shortest round-trip digits: "R" gives them, in either notation; normalise to digits + exponent.
        string shortest = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        string mantissa = shortest;
        int exp = 0;
        int e = shortest.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            mantissa = shortest[..e];
            exp = int.Parse(shortest.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        int dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        string digits = dot < 0 ? mantissa : mantissa.Remove(dot, 1);
        int pointPos = (dot < 0 ? mantissa.Length : dot) + exp; // decimal point after this many digits
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; pointPos--; }
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        int decimalExponent = pointPos - 1; // d.ddd x 10^decimalExponent
        var sb = new StringBuilder();
        if (d < 0) sb.Append('-');
        if (decimalExponent < -4 || decimalExponent >= 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            sb.Append('e').Append(decimalExponent < 0 ? '-' : '+').Append(Math.Abs(decimalExponent).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (pointPos <= 0)
        {
            sb.Append("0.").Append('0', -pointPos).Append(digits);
        }
        else if (pointPos >= digits.Length)
        {
            sb.Append(digits).Append('0', pointPos - digits.Length).Append(".0");
        }
        else
        {
            sb.Append(digits, 0, pointPos).Append('.').Append(digits, pointPos, digits.Length - pointPos);
        }
        return sb.ToString();
    }

    // ---- strftime -------------------------------------------------------------------------------------------------

    private static readonly string[] Days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    private static readonly string[] Months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    /// <summary>C-locale strftime of a naive local time (Python datetime.strftime on Linux), including glibc's "%-d" (no padding); unknown conversions are copied.</summary>
    public static string StrFTime(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%' || i + 1 >= format.Length) { sb.Append(c); continue; } // a lone trailing '%' stays too
            char f = format[++i];
            bool noPad = false;
            if (f == '-' && i + 1 < format.Length) { noPad = true; f = format[++i]; }
            string Num(int v, int width) => noPad ? v.ToString(CultureInfo.InvariantCulture) : v.ToString(new string('0', width), CultureInfo.InvariantCulture);
            int hour12 = t.Hour % 12 == 0 ? 12 : t.Hour % 12;
            sb.Append(f switch
            {
                'a' => Days[(int)t.DayOfWeek][..3],
                'A' => Days[(int)t.DayOfWeek],
                'b' or 'h' => Months[t.Month - 1][..3],
                'B' => Months[t.Month - 1],
                'd' => Num(t.Day, 2),
                'e' => noPad ? t.Day.ToString(CultureInfo.InvariantCulture) : t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2),
                'H' => Num(t.Hour, 2),
                'I' => Num(hour12, 2),
                'j' => Num(t.DayOfYear, 3),
                'm' => Num(t.Month, 2),
                'M' => Num(t.Minute, 2),
                'S' => Num(t.Second, 2),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'y' => Num(t.Year % 100, 2),
                'Y' => t.Year.ToString(CultureInfo.InvariantCulture),
                'w' => ((int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'u' => (t.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'F' => $"{t.Year:0000}-{t.Month:00}-{t.Day:00}",
                'D' => $"{t.Month:00}/{t.Day:00}/{t.Year % 100:00}",
                'T' => $"{t.Hour:00}:{t.Minute:00}:{t.Second:00}",
                'R' => $"{t.Hour:00}:{t.Minute:00}",
                'c' => $"{Days[(int)t.DayOfWeek][..3]} {Months[t.Month - 1][..3]} {t.Day,2} {t.Hour:00}:{t.Minute:00}:{t.Second:00} {t.Year}",
                'x' => $"{t.Month:00}/{t.Day:00}/{t.Year % 100:00}",
                'X' => $"{t.Hour:00}:{t.Minute:00}:{t.Second:00}",
                'Z' or 'z' => "",
                'n' => "\n",
                't' => "\t",
                '%' => "%",
                _ => noPad ? "%-" + f : "%" + f, // glibc copies an unknown conversion as it is
            });
        }
        return sb.ToString();
    }
}
