// Jinja lexing with the whitespace rules HF uses (trim_blocks, lstrip_blocks) and "-"/"+" whitespace control.
using System.Globalization;
using System.Text;

namespace Duet.Tokenizers.ChatTemplates;

internal enum Tk { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof }

internal readonly record struct Token(Tk Kind, string Value, int Line, int Column)
{
    public override string ToString() => Kind switch { Tk.Eof => "the end of the template", Tk.Text => "text", _ => $"'{Value}'" };
}

internal static class Lexer
{
    private static readonly string[] s_ops = ["**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ":", ".", "|", "+", "-", "*", "/", "%", "~", "<", ">", "="];

    public static List<Token> Tokenize(string src)
    {
        var tokens = new List<Token>();
        int i = 0, n = src.Length;
        bool stripNextLeading = false, trimNextNewline = false;
        var lineStarts = new List<int> { 0 };
        for (int k = 0; k < n; k++) if (src[k] == '\n') lineStarts.Add(k + 1);
        (int, int) Pos(int at)
        {
            int line = lineStarts.BinarySearch(at);
            if (line < 0) line = ~line - 1;
            return (line + 1, at - lineStarts[line] + 1);
        }
        ChatTemplateException Error(int at, string msg)
        {
            var (l, c) = Pos(at);
            return new ChatTemplateException($"chat template line {l}, column {c}: {msg}");
        }

        while (i < n)
        {
            int open = FindOpen(src, i);
            int textEnd = open < 0 ? n : open;
            string text = src[i..textEnd];
            if (stripNextLeading) text = text.TrimStart();
            else if (trimNextNewline)
            {
                if (text.StartsWith("\r\n", StringComparison.Ordinal)) text = text[2..];
                else if (text.StartsWith('\n')) text = text[1..];
            }
            stripNextLeading = trimNextNewline = false;
            if (open < 0)
            {
                if (text.Length > 0) tokens.Add(new Token(Tk.Text, text, 0, 0));
                break;
            }
            char kind = src[open + 1]; // '{', '%' or '#'
            int p = open + 2;
            char marker = p < n ? src[p] : '\0';
            if (marker is '-' or '+') p++;
            if (marker == '-') text = text.TrimEnd();
            else if (marker != '+' && kind is '%' or '#')
            {
                // lstrip_blocks: spaces and tabs between the start of a line (in the source) and a block tag go.
                int k = open;
                while (k > i && src[k - 1] is ' ' or '\t') k--;
                if (k == 0 || src[k - 1] == '\n')
                    text = text.Length >= open - k ? text[..^(open - k)] : "";
            }
            if (text.Length > 0) tokens.Add(new Token(Tk.Text, text, 0, 0));
            if (kind == '#')
            {
                int end = src.IndexOf("#}", p, StringComparison.Ordinal);
                if (end < 0) throw Error(open, "a comment is not closed with #}");
                bool strip = end > p && src[end - 1] == '-';
                i = end + 2;
                if (strip) stripNextLeading = true; else trimNextNewline = true;
                continue;
            }
            var (l0, c0) = Pos(open);
            tokens.Add(new Token(kind == '{' ? Tk.VarBegin : Tk.BlockBegin, kind == '{' ? "{{" : "{%", l0, c0));
            string close = kind == '{' ? "}}" : "%}";
            // Expression tokens up to the closing delimiter.
            while (true)
            {
                while (p < n && char.IsWhiteSpace(src[p])) p++;
                if (p >= n) throw Error(open, $"a tag is not closed with {close}");
                if ((src[p] == '-' || src[p] == '+') && string.CompareOrdinal(src, p + 1, close, 0, 2) == 0)
                {
                    if (src[p] == '-') stripNextLeading = true;
                    p += 3;
                    break;
                }
                if (string.CompareOrdinal(src, p, close, 0, 2) == 0)
                {
                    p += 2;
                    if (kind == '%') trimNextNewline = true;
                    break;
                }
                var (l, c) = Pos(p);
                char ch = src[p];
                if (char.IsLetter(ch) || ch == '_')
                {
                    int s = p;
                    while (p < n && (char.IsLetterOrDigit(src[p]) || src[p] == '_')) p++;
                    tokens.Add(new Token(Tk.Name, src[s..p], l, c));
                }
                else if (char.IsAsciiDigit(ch))
                {
                    int s = p;
                    while (p < n && (char.IsAsciiDigit(src[p]) || src[p] == '_')) p++;
                    bool isFloat = false;
                    if (p + 1 < n && src[p] == '.' && char.IsAsciiDigit(src[p + 1]))
                    {
                        isFloat = true;
                        p++;
                        while (p < n && char.IsAsciiDigit(src[p])) p++;
                    }
                    if (p < n && (src[p] == 'e' || src[p] == 'E') && p + 1 < n && (char.IsAsciiDigit(src[p + 1]) || ((src[p + 1] == '-' || src[p + 1] == '+') && p + 2 < n && char.IsAsciiDigit(src[p + 2]))))
                    {
                        isFloat = true;
                        p += 2;
                        while (p < n && char.IsAsciiDigit(src[p])) p++;
                    }
                    tokens.Add(new Token(isFloat ? Tk.Float : Tk.Int, src[s..p].Replace("_", "", StringComparison.Ordinal), l, c));
                }
                else if (ch is '\'' or '"')
                {
                    var sb = new StringBuilder();
                    p++;
                    while (true)
                    {
                        if (p >= n) throw Error(p, "a string is not closed");
                        char x = src[p++];
                        if (x == ch) break;
                        if (x != '\\') { sb.Append(x); continue; }
                        if (p >= n) throw Error(p, "a string is not closed");
                        char e = src[p++];
                        switch (e)
                        {
                            case 'n': sb.Append('\n'); break;
                            case 't': sb.Append('\t'); break;
                            case 'r': sb.Append('\r'); break;
                            case '\\': sb.Append('\\'); break;
                            case '\'': sb.Append('\''); break;
                            case '"': sb.Append('"'); break;
                            case '0': sb.Append('\0'); break;
                            case 'u' when p + 4 <= n && int.TryParse(src.AsSpan(p, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int u):
                                sb.Append((char)u); p += 4; break;
                            case 'x' when p + 2 <= n && int.TryParse(src.AsSpan(p, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int hx):
                                sb.Append((char)hx); p += 2; break;
                            case '\n': break;
                            default: sb.Append('\\').Append(e); break; // Python keeps unknown escapes as written
                        }
                    }
                    tokens.Add(new Token(Tk.String, sb.ToString(), l, c));
                }
                else
                {
                    string? op = null;
                    foreach (var o in s_ops)
                        if (string.CompareOrdinal(src, p, o, 0, o.Length) == 0) { op = o; break; }
                    if (op is null) throw Error(p, $"unexpected character '{ch}'");
                    tokens.Add(new Token(Tk.Op, op, l, c));
                    p += op.Length;
                }
            }
            var (l1, c1) = Pos(p - 1);
            tokens.Add(new Token(kind == '{' ? Tk.VarEnd : Tk.BlockEnd, close, l1, c1));
            i = p;
        }
        var (le, ce) = Pos(n);
        tokens.Add(new Token(Tk.Eof, "", le, ce));
        return tokens;
    }

    private static int FindOpen(string src, int from)
    {
        for (int k = src.IndexOf('{', from); k >= 0 && k + 1 < src.Length; k = src.IndexOf('{', k + 1))
            if (src[k + 1] is '{' or '%' or '#') return k;
        return -1;
    }
}
