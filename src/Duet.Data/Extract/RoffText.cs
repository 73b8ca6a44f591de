// Readable text from man pages (roff source with the man macros), without running groff: comments and macro
// definitions out, section headings (.SH/.SS) as paragraphs, paragraph requests (.PP, .LP, .IP, .TP, .sp)
// as breaks, font macros (.B, .I, .BR, ...) as their text, every other request dropped, and the escapes of
// text lines resolved (\fB and the other font changes out, \- and \(em as dashes, \e and \\ as a backslash,
// \& and size changes out). Filled text joins into paragraphs; .nf/.fi blocks keep their lines.
using System.Text;

namespace Duet.Data.Extract;

public static class RoffText
{
    public static string Extract(string roff)
    {
        ArgumentNullException.ThrowIfNull(roff);
        var sb = new StringBuilder(roff.Length);
        bool nofill = false, inMacro = false;
        foreach (var raw in roff.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (inMacro) { if (line.StartsWith("..", StringComparison.Ordinal)) inMacro = false; continue; }
            if (line.StartsWith(".\\\"", StringComparison.Ordinal) || line.StartsWith("'\\\"", StringComparison.Ordinal) || line.StartsWith("\\\"", StringComparison.Ordinal)) continue;
            if (line.Length > 0 && line[0] is '.' or '\'')
            {
                var (req, args) = SplitRequest(line[1..]);
                switch (req)
                {
                    case "de" or "de1" or "am" or "ig": inMacro = true; break;
                    case "SH" or "SS":
                        Paragraph(sb); sb.Append(Escapes(string.Join(' ', Args(args)))); Paragraph(sb); break;
                    case "PP" or "LP" or "P" or "sp" or "HP":
                        Paragraph(sb); break;
                    case "IP" or "TP" or "br" or "RS" or "RE":
                        Line(sb);
                        if (req == "IP" && args.Length > 0) { sb.Append(Escapes(FirstArg(args))).Append(' '); }
                        break;
                    case "B" or "I" or "BR" or "RB" or "IR" or "RI" or "BI" or "IB" or "SM" or "SB":
                        Text(sb, Escapes(string.Concat(Args(args))), nofill); break;
                    case "nf" or "EX": nofill = true; Line(sb); break;
                    case "fi" or "EE": nofill = false; Line(sb); break;
                    default: break; // .TH, .ft, .ne, .if, .ie, .el, ... carry no text to keep
                }
                continue;
            }
            Text(sb, Escapes(line), nofill);
        }
        return Normalize.TextCleaner.NormalizeWhitespace(sb.ToString());
    }

    private static (string Req, string Args) SplitRequest(string s)
    {
        s = s.TrimStart();
        int sp = s.IndexOfAny([' ', '\t']);
        return sp < 0 ? (s, "") : (s[..sp], s[(sp + 1)..].Trim());
    }

    private static IEnumerable<string> Args(string s)
    {
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && s[i] == ' ') i++;
            if (i >= s.Length) yield break;
            if (s[i] == '"')
            {
                int end = s.IndexOf('"', i + 1);
                if (end < 0) end = s.Length;
                yield return s[(i + 1)..end];
                i = end + 1;
            }
            else
            {
                int end = s.IndexOf(' ', i);
                if (end < 0) end = s.Length;
                yield return s[i..end];
                i = end;
            }
        }
    }

    private static string FirstArg(string s) => Args(s).FirstOrDefault() ?? "";

    private static void Text(StringBuilder sb, string text, bool nofill)
    {
        if (nofill) { sb.Append(text).Append('\n'); return; }
        if (text.Trim().Length == 0) { Paragraph(sb); return; }
        if (sb.Length > 0 && sb[^1] is not ('\n' or ' ')) sb.Append(' ');
        sb.Append(text.Trim());
    }

    private static void Line(StringBuilder sb) { if (sb.Length > 0 && sb[^1] != '\n') sb.Append('\n'); }

    private static void Paragraph(StringBuilder sb)
    {
        Line(sb);
        if (sb.Length > 1 && sb[^2] != '\n') sb.Append('\n');
    }

    /// <summary>Text with roff escapes resolved.</summary>
    internal static string Escapes(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\' || i + 1 >= s.Length) { sb.Append(s[i]); continue; }
            char e = s[++i];
            switch (e)
            {
                case '"': return sb.ToString(); // comment to the end of the line
                case '-': sb.Append('-'); break;
                case 'e' or '\\': sb.Append('\\'); break;
                case '&' or '^' or '|' or ')' or ',' or '/' or 'c' or ':': break;
                case ' ' or '~' or '0': sb.Append(' '); break;
                case 'f': i = SkipName(s, i); break;          // \fB \f(CW \f[BI]
                case 's': i = SkipSize(s, i); break;          // \s-1 \s+2 \s0
                case '*': i = SkipName(s, i); break;          // \*(Tm, a string
                case '(':
                    if (i + 2 < s.Length) { sb.Append(Special(s.Substring(i + 1, 2))); i += 2; }
                    break;
                case '[':
                    {
                        int end = s.IndexOf(']', i);
                        if (end < 0) end = s.Length - 1;
                        sb.Append(Special(s[(i + 1)..end]));
                        i = end;
                        break;
                    }
                default: sb.Append(e); break;
            }
        }
        return sb.ToString();
    }

    private static int SkipName(string s, int i)
    {
        if (i + 1 >= s.Length) return i;
        if (s[i + 1] == '(') return Math.Min(i + 3, s.Length - 1);
        if (s[i + 1] == '[') { int end = s.IndexOf(']', i + 1); return end < 0 ? s.Length - 1 : end; }
        return i + 1;
    }

    private static int SkipSize(string s, int i)
    {
        int j = i + 1;
        if (j < s.Length && s[j] is '+' or '-') j++;
        while (j < s.Length && char.IsAsciiDigit(s[j])) j++;
        return j - 1;
    }

    private static string Special(string name) => name switch
    {
        "em" => "—", "en" => "–", "hy" or "mi" => "-", "bu" => "•", "co" => "©", "rg" => "®", "tm" => "™",
        "lq" => "“", "rq" => "”", "oq" => "‘", "cq" => "’", "aq" => "'", "dq" => "\"", "ga" => "`", "ti" => "~",
        "ha" => "^", "rs" => "\\", "sl" => "/", "de" => "°", "mu" => "×", "<=" => "≤", ">=" => "≥", "->" => "→",
        _ => "",
    };
}
