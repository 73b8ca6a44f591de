// Template text -> tokens, with Jinja2's whitespace rules applied here as jinja2's lexer applies them:
//   - newlines (\r\n, \r) become \n and one trailing newline of the template is dropped (keep_trailing_newline=False);
//   - trim_blocks: the first \n after a block or comment tag (%} or #}) is removed; "+%}" keeps it;
//   - lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag are removed; "{%+" keeps them;
//   - "{%-", "{{-", "{#-" remove all whitespace (Python str.isspace) before the tag, "-%}", "-}}", "-#}" all after it;
//   - inside a tag, the closing "}}" / "%}" only counts outside brackets, so {{ {'a': {'b': 1}} }} works.
// Positions are 1-based line and column of the normalized text (the same lines as the original).
using System.Globalization;
using System.Text;

namespace Duet.Tokenizers.ChatTemplates;

internal enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof }

internal readonly record struct Token(TokenKind Kind, string Value, int Offset)
{
    public long IntegerValue { get; init; }
    public double FloatValue { get; init; }
}

internal sealed class TemplateLexer
{
    private readonly string _src;
    private readonly int[] _lineStarts;
    private readonly List<Token> _tokens = [];

    private TemplateLexer(string normalized)
    {
        _src = normalized;
        var starts = new List<int> { 0 };
        for (int i = 0; i < normalized.Length; i++)
            if (normalized[i] == '\n') starts.Add(i + 1);
        _lineStarts = [.. starts];
    }

    public static (List<Token> Tokens, TemplateLexer Lexer) Tokenize(string source)
    {
        var lexer = new TemplateLexer(Normalize(source));
        lexer.Run();
        return (lexer._tokens, lexer);
    }

    /// <summary>\r\n and \r -> \n, then one trailing \n dropped, as jinja2 does before lexing.</summary>
    internal static string Normalize(string source)
    {
        string s = source.Contains('\r', StringComparison.Ordinal) ? source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n') : source;
        return s.EndsWith('\n') ? s[..^1] : s;
    }

    public (int Line, int Column) Position(int offset)
    {
        int i = Array.BinarySearch(_lineStarts, offset);
        if (i < 0) i = ~i - 1;
        return (i + 1, offset - _lineStarts[i] + 1);
    }

    public ChatTemplateException Error(string message, int offset)
    {
        var (line, column) = Position(offset);
        return new ChatTemplateException($"chat template syntax error at line {line}, column {column}: {message}", line, column);
    }

    private void Run()
    {
        string s = _src;
        int pos = 0;
        bool lineStarting = true;
        while (pos < s.Length)
        {
            int tag = FindTagStart(s, pos);
            if (tag < 0)
            {
                _tokens.Add(new Token(TokenKind.Text, s[pos..], pos));
                break;
            }
            char kind = s[tag + 1];
            char sign = tag + 2 < s.Length && (s[tag + 2] == '-' || s[tag + 2] == '+') ? s[tag + 2] : '\0';
            string text = s[pos..tag];
            if (sign == '-')
                text = PyText.RStrip(text);
            else if (sign != '+' && kind != '{')
                text = LStripBlock(text, lineStarting);
            if (text.Length > 0) _tokens.Add(new Token(TokenKind.Text, text, pos));

            int p = tag + 2 + (sign == '\0' ? 0 : 1);
            if (kind == '#')
                pos = SkipComment(tag, p);
            else if (kind == '%' && TryRaw(tag, p, out int afterRaw))
                pos = afterRaw;
            else
                pos = LexTag(tag, p, kind == '{');
            lineStarting = pos > 0 && s[pos - 1] == '\n';
        }
        _tokens.Add(new Token(TokenKind.Eof, "", s.Length));
    }

    private static int FindTagStart(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>lstrip_blocks: drop the spaces and tabs between the last line start and a block or comment tag.</summary>
    private static string LStripBlock(string text, bool lineStarting)
    {
        int lpos = text.LastIndexOf('\n') + 1;
        if (lpos == 0 && !lineStarting) return text;
        for (int i = lpos; i < text.Length; i++)
            if (text[i] is not (' ' or '\t')) return text;
        return text[..lpos];
    }

    /// <summary>After a closing delimiter at <paramref name="p"/> (just past it): "-" strips all whitespace, a block tag without "+" eats one \n.</summary>
    private int AfterClose(int p, bool minus, bool plus, bool trimBlock)
    {
        if (minus)
        {
            while (p < _src.Length && PyText.IsSpace(_src[p])) p++;
        }
        else if (trimBlock && !plus && p < _src.Length && _src[p] == '\n')
        {
            p++;
        }
        return p;
    }

    private int SkipComment(int tag, int p)
    {
        int end = _src.IndexOf("#}", p, StringComparison.Ordinal);
        if (end < 0) throw Error("missing end of comment tag", tag);
        bool minus = end > p && _src[end - 1] == '-';
        bool plus = end > p && _src[end - 1] == '+';
        return AfterClose(end + 2, minus, plus, trimBlock: true);
    }

    /// <summary>{% raw %}...{% endraw %}: the text between is output as is.</summary>
    private bool TryRaw(int tag, int p, out int after)
    {
        after = 0;
        int q = SkipSpaces(p);
        if (string.CompareOrdinal(_src, q, "raw", 0, 3) != 0) return false;
        q = SkipSpaces(q + 3);
        bool minus = false;
        if (q < _src.Length && _src[q] == '-') { minus = true; q++; }
        if (string.CompareOrdinal(_src, q, "%}", 0, 2) != 0) return false;
        int bodyStart = AfterClose(q + 2, minus, plus: false, trimBlock: false); // jinja2 applies no trim_blocks after {% raw %}
        // Find {%[-+]? endraw [-+]?%}
        for (int i = _src.IndexOf("{%", bodyStart, StringComparison.Ordinal); i >= 0; i = _src.IndexOf("{%", i + 2, StringComparison.Ordinal))
        {
            int r = i + 2;
            char sign = r < _src.Length && (_src[r] == '-' || _src[r] == '+') ? _src[r] : '\0';
            if (sign != '\0') r++;
            r = SkipSpaces(r);
            if (string.CompareOrdinal(_src, r, "endraw", 0, 6) != 0) continue;
            r = SkipSpaces(r + 6);
            char close = r < _src.Length && (_src[r] == '-' || _src[r] == '+') ? _src[r] : '\0';
            if (close != '\0') r++;
            if (string.CompareOrdinal(_src, r, "%}", 0, 2) != 0) continue;
            string body = _src[bodyStart..i];
            if (sign == '-') body = PyText.RStrip(body);
            else if (sign != '+') body = LStripBlock(body, bodyStart > 0 && _src[bodyStart - 1] == '\n');
            if (body.Length > 0) _tokens.Add(new Token(TokenKind.Text, body, bodyStart));
            after = AfterClose(r + 2, close == '-', close == '+', trimBlock: true);
            return true;
        }
        throw Error("missing end of raw directive ({% endraw %})", tag);
    }

    private int SkipSpaces(int p)
    {
        while (p < _src.Length && PyText.IsSpace(_src[p])) p++;
        return p;
    }

    private int LexTag(int tag, int p, bool variable)
    {
        string s = _src;
        _tokens.Add(new Token(variable ? TokenKind.VariableBegin : TokenKind.BlockBegin, variable ? "{{" : "{%", tag));
        var brackets = new Stack<char>();
        while (true)
        {
            p = SkipSpaces(p);
            if (p >= s.Length)
                throw Error(variable ? "unexpected end of template inside {{ ... }} (missing '}}')" : "unexpected end of template inside {% ... %} (missing '%}')", tag);
            if (brackets.Count == 0)
            {
                char close = variable ? '}' : '%';
                bool minus = s[p] == '-' && At(p + 1, close, '}');
                bool plus = !variable && s[p] == '+' && At(p + 1, close, '}');
                if (minus || plus || At(p, close, '}'))
                {
                    int end = p + (minus || plus ? 3 : 2);
                    _tokens.Add(new Token(variable ? TokenKind.VariableEnd : TokenKind.BlockEnd, variable ? "}}" : "%}", p));
                    return AfterClose(end, minus, plus, trimBlock: !variable);
                }
            }
            char c = s[p];
            if (c is '\'' or '"')
            {
                p = LexString(p);
            }
            else if (char.IsAsciiDigit(c))
            {
                p = LexNumber(p);
            }
            else if (c == '_' || char.IsLetter(c))
            {
                int start = p;
                while (p < s.Length && (s[p] == '_' || char.IsLetterOrDigit(s[p]))) p++;
                _tokens.Add(new Token(TokenKind.Name, s[start..p], start));
            }
            else
            {
                string op = LexOperator(p) ?? throw Error($"unexpected character '{c}'", p);
                if (op is "(" or "[" or "{") brackets.Push(op[0]);
                else if (op is ")" or "]" or "}")
                {
                    char open = op == ")" ? '(' : op == "]" ? '[' : '{';
                    if (brackets.Count == 0 || brackets.Pop() != open) throw Error($"unexpected '{op}'", p);
                }
                _tokens.Add(new Token(TokenKind.Operator, op, p));
                p += op.Length;
            }
        }
    }

    private bool At(int p, char a, char b) => p + 1 < _src.Length && _src[p] == a && _src[p + 1] == b;

    private static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    private string? LexOperator(int p)
    {
        foreach (var op in Operators)
            if (string.CompareOrdinal(_src, p, op, 0, op.Length) == 0) return op;
        return null;
    }

    /// <summary>A string literal, unescaped as jinja2 does (Python "unicode-escape": \n \t \\ \' \" \xhh \uhhhh \Uhhhhhhhh \ooo; unknown escapes stay).</summary>
    private int LexString(int start)
    {
        string s = _src;
        char quote = s[start];
        var sb = new StringBuilder();
        int p = start + 1;
        while (true)
        {
            if (p >= s.Length) throw Error("unterminated string literal", start);
            char c = s[p];
            if (c == quote) { p++; break; }
            if (c != '\\') { sb.Append(c); p++; continue; }
            if (p + 1 >= s.Length) throw Error("unterminated string literal", start);
            char e = s[p + 1];
            p += 2;
            switch (e)
            {
                case '\n': break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case 'x': p = AppendHexEscape(sb, p, 2, start); break;
                case 'u': p = AppendHexEscape(sb, p, 4, start); break;
                case 'U': p = AppendHexEscape(sb, p, 8, start); break;
                case 'N': throw Error("\\N{...} escapes are not supported", p - 2);
                case >= '0' and <= '7':
                    {
                        int v = e - '0', n = 1;
                        while (n < 3 && p < s.Length && s[p] is >= '0' and <= '7') { v = v * 8 + (s[p] - '0'); p++; n++; }
                        sb.Append((char)v);
                        break;
                    }
                default: sb.Append('\\').Append(e); break;
            }
        }
        _tokens.Add(new Token(TokenKind.String, sb.ToString(), start));
        return p;
    }

    private int AppendHexEscape(StringBuilder sb, int p, int digits, int start)
    {
        if (p + digits > _src.Length || !int.TryParse(_src.AsSpan(p, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int v)
            || _src.AsSpan(p, digits).ContainsAny('+', '-') || v > 0x10FFFF)
            throw Error($"truncated or invalid \\{(digits == 2 ? 'x' : digits == 4 ? 'u' : 'U')} escape", start);
        sb.Append(char.ConvertFromUtf32(v is >= 0xD800 and <= 0xDFFF ? 0xFFFD : v));
        return p + digits;
    }

    /// <summary>Integers (decimal with _ separators, 0x, 0o, 0b) and floats (digits with a fraction and/or exponent), as jinja2's lexer reads them.</summary>
    private int LexNumber(int start)
    {
        string s = _src;
        int p = start;
        if (s[p] == '0' && p + 1 < s.Length && char.ToLowerInvariant(s[p + 1]) is 'x' or 'o' or 'b')
        {
            int radix = char.ToLowerInvariant(s[p + 1]) switch { 'x' => 16, 'o' => 8, _ => 2 };
            p += 2;
            long v = 0;
            int digits = 0;
            while (p < s.Length)
            {
                char c = s[p];
                if (c == '_' && p + 1 < s.Length && DigitValue(s[p + 1]) < radix) { p++; continue; }
                int d = DigitValue(c);
                if (d >= radix) break;
                if (v > (long.MaxValue - d) / radix) throw Error($"integer literal is too large (Duet keeps template integers in 64 bits)", start);
                v = v * radix + d;
                digits++;
                p++;
            }
            if (digits == 0) throw Error("invalid integer literal", start);
            _tokens.Add(new Token(TokenKind.Integer, s[start..p], start) { IntegerValue = v });
            return p;
        }
        p = Digits(p);
        bool isFloat = false;
        if (p + 1 < s.Length && s[p] == '.' && char.IsAsciiDigit(s[p + 1])) { isFloat = true; p = Digits(p + 1); }
        if (p < s.Length && (s[p] is 'e' or 'E'))
        {
            int q = p + 1;
            if (q < s.Length && (s[q] is '+' or '-')) q++;
            if (q < s.Length && char.IsAsciiDigit(s[q])) { isFloat = true; p = Digits(q); }
        }
        if (!isFloat && s[start] == '0')
        {
            // jinja2's integer rule is [1-9](_?\d)* | 0(_?0)*: "01" is the integer 0 followed by the integer 1
            p = start + 1;
            while (p < s.Length && (s[p] == '0' || (s[p] == '_' && p + 1 < s.Length && s[p + 1] == '0'))) p++;
        }
        string text = s[start..p].Replace("_", "", StringComparison.Ordinal);
        if (isFloat)
        {
            double d = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
            _tokens.Add(new Token(TokenKind.Float, s[start..p], start) { FloatValue = d });
        }
        else
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                throw Error($"integer literal {text} is too large (Duet keeps template integers in 64 bits)", start);
            _tokens.Add(new Token(TokenKind.Integer, s[start..p], start) { IntegerValue = v });
        }
        return p;
    }

    private int Digits(int p)
    {
        while (p < _src.Length && (char.IsAsciiDigit(_src[p]) || (_src[p] == '_' && p + 1 < _src.Length && char.IsAsciiDigit(_src[p + 1]) && p > 0 && char.IsAsciiDigit(_src[p - 1]))))
            p++;
        return p;
    }

    private static int DigitValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => 99,
    };
}
