// Readable text from HTML, for documentation pages (the Debian handbook) and similar: a tolerant scan of tags,
// not a DOM. What a reader does not read goes with its content: script, style, noscript, template, svg, head,
// and the page furniture of nav, header, footer, aside and form elements, and comments. Block elements (p,
// div, h1-h6, li, tr, pre, br, ...) end lines; inline text joins with single spaces, except inside <pre>, whose
// lines are kept. Entities are decoded. Malformed markup (unclosed tags, stray '<') degrades to text, never
// to an exception.
using System.Net;
using System.Text;

namespace Duet.Data.Extract;

public static class HtmlText
{
    private static readonly HashSet<string> s_dropped = new(StringComparer.OrdinalIgnoreCase)
        { "script", "style", "noscript", "template", "svg", "head", "nav", "header", "footer", "aside", "form", "iframe", "object" };

    // Elements that end a line, and those that end a paragraph (a blank line, as the language tagger splits).
    private static readonly HashSet<string> s_block = new(StringComparer.OrdinalIgnoreCase)
        { "div", "br", "hr", "li", "dt", "dd", "tr", "caption", "figcaption", "td", "th", "body", "html", "main" };
    private static readonly HashSet<string> s_paragraph = new(StringComparer.OrdinalIgnoreCase)
        { "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "pre", "blockquote", "section", "article", "title", "figure" };

    public static string Extract(string html)
    {
        ArgumentNullException.ThrowIfNull(html);
        var sb = new StringBuilder(html.Length / 2);
        int i = 0, pre = 0;
        while (i < html.Length)
        {
            char c = html[i];
            if (c != '<') { i = AppendText(html, i, sb, pre > 0); continue; }
            if (string.CompareOrdinal(html, i, "<!--", 0, 4) == 0)
            {
                int end = html.IndexOf("-->", i + 4, StringComparison.Ordinal);
                i = end < 0 ? html.Length : end + 3;
                continue;
            }
            int close = html.IndexOf('>', i + 1);
            if (close < 0 || !LooksLikeTag(html, i)) { sb.Append('<'); i++; continue; } // a stray '<' is text
            var (name, closing, selfClosing) = ParseTag(html.AsSpan(i + 1, close - i - 1));
            i = close + 1;
            if (name.Length == 0) continue; // <!DOCTYPE>, <?xml?>
            if (!closing && !selfClosing && s_dropped.Contains(name))
            {
                i = SkipElement(html, i, name);
                continue;
            }
            if (name.Equals("pre", StringComparison.OrdinalIgnoreCase)) pre = Math.Max(0, pre + (closing ? -1 : 1));
            if (s_paragraph.Contains(name)) { NewLine(sb); if (sb.Length > 0 && !(sb.Length > 1 && sb[^2] == '\n')) sb.Append('\n'); }
            else if (s_block.Contains(name)) NewLine(sb);
        }
        return Normalize.TextCleaner.NormalizeWhitespace(sb.ToString());
    }

    private static bool LooksLikeTag(string s, int i) =>
        i + 1 < s.Length && (char.IsAsciiLetter(s[i + 1]) || s[i + 1] is '/' or '!' or '?');

    private static (string Name, bool Closing, bool SelfClosing) ParseTag(ReadOnlySpan<char> inner)
    {
        bool closing = inner.Length > 0 && inner[0] == '/';
        if (closing) inner = inner[1..];
        if (inner.Length > 0 && inner[0] is '!' or '?') return ("", closing, true);
        int n = 0;
        while (n < inner.Length && (char.IsAsciiLetterOrDigit(inner[n]) || inner[n] is '-' or ':')) n++;
        bool self = inner.Length > 0 && inner[^1] == '/';
        return (inner[..n].ToString(), closing, self);
    }

    // Skips to after the matching end tag of a dropped element (nested same-name elements counted).
    private static int SkipElement(string s, int i, string name)
    {
        int depth = 1;
        while (depth > 0)
        {
            int lt = s.IndexOf('<', i);
            if (lt < 0) return s.Length;
            int gt = s.IndexOf('>', lt + 1);
            if (gt < 0) return s.Length;
            var (n, closing, self) = ParseTag(s.AsSpan(lt + 1, gt - lt - 1));
            if (n.Equals(name, StringComparison.OrdinalIgnoreCase) && !self) depth += closing ? -1 : 1;
            i = gt + 1;
        }
        return i;
    }

    private static int AppendText(string s, int i, StringBuilder sb, bool pre)
    {
        int lt = s.IndexOf('<', i);
        int end = lt < 0 ? s.Length : lt;
        var text = WebUtility.HtmlDecode(s[i..end]);
        if (pre) sb.Append(text);
        else
            foreach (char c in text)
            {
                bool space = char.IsWhiteSpace(c) && c != '\u3000';
                if (space) { if (sb.Length > 0 && sb[^1] is not (' ' or '\n')) sb.Append(' '); }
                else sb.Append(c);
            }
        return lt < 0 ? s.Length : (lt == i ? i + 1 : lt);
    }

    private static void NewLine(StringBuilder sb)
    {
        while (sb.Length > 0 && sb[^1] == ' ') sb.Length--;
        if (sb.Length > 0 && sb[^1] != '\n') sb.Append('\n');
    }
}
