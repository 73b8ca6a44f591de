// Normalization of extracted text before it is tagged, filtered and deduplicated:
//  - terminal artefacts out: ANSI escape sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL/ST", two-byte
//    escapes) and the backspace overstrike of formatted man pages ("x\bx" bold, "_\bx" underline -> "x");
//  - control characters out (C0 except tab and newline, DEL, C1, the BOM); ZWJ and other format characters
//    stay, since emoji sequences and some scripts need them;
//  - NFKC where it is safe: full-width letters and digits become ASCII and compatibility forms fold, but the
//    full-width punctuation of Chinese text (，！？：；（）…) is kept as written, since NFKC would turn it into
//    ASCII punctuation and change how the text reads and tokenizes;
//  - layout: lines drawn only of box-drawing or ASCII rule characters (table borders) removed; in the lines left,
//    box-drawing characters (U+2500-U+257F) go too: a table row "│ mc │ V:65 │" becomes its cells separated by tabs
//    ("mc\tV:65"), a tree's "├── bin" its text ("bin"), so that a model does not learn to draw them (duet-tiny did);
//  - whitespace: CR LF and CR become LF, exotic spaces become a space (by NFKC), trailing spaces of each
//    line go, runs of blank lines shrink to one, and the document is trimmed of blank lines at both ends.
// Indentation inside a line is kept (code and tables depend on it).
using System.Text;

namespace Duet.Data.Normalize;

public static class TextCleaner
{
    /// <summary>Cleans one document (see the file header). Returns "" for a document with no visible text.</summary>
    public static string Clean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var stripped = StripControls(text);
        var folded = SafeNfkc(stripped);
        return NormalizeWhitespace(DropBoxDrawing(DropRuleLines(folded)));
    }

    private static bool IsBoxDrawing(char c) => c is >= '\u2500' and <= '\u257F';

    /// <summary>
    /// Box-drawing characters out of the lines that are not borders: a line whose box characters are vertical
    /// separators ("│ a │ b │") becomes its cells, trimmed, joined by tabs; other runs of box characters (tree
    /// branches, corners) become one space. The line's indentation is kept.
    /// </summary>
    internal static string DropBoxDrawing(string s)
    {
        if (!s.AsSpan().ContainsAnyInRange('\u2500', '\u257F')) return s;
        var sb = new StringBuilder(s.Length);
        foreach (var line in s.Split('\n'))
        {
            if (!line.AsSpan().ContainsAnyInRange('\u2500', '\u257F')) { sb.Append(line).Append('\n'); continue; }
            int indent = 0;
            while (indent < line.Length && line[indent] is ' ' or '\t') indent++;
            sb.Append(line, 0, indent);
            var body = line[indent..];
            if (body.Any(c => c is '\u2502' or '\u2503' or '\u2551')) // a table row: cells between vertical bars
            {
                var cells = System.Text.RegularExpressions.Regex.Split(body, "[\u2500-\u257F]").Select(c => c.Trim()).ToList();
                while (cells.Count > 0 && cells[0].Length == 0) cells.RemoveAt(0);
                while (cells.Count > 0 && cells[^1].Length == 0) cells.RemoveAt(cells.Count - 1);
                sb.Append(string.Join('\t', cells));
            }
            else
            {
                // A run of box characters and the spaces after it: one space, none at the line's start ("├── bin": "bin").
                var text = System.Text.RegularExpressions.Regex.Replace(body, " *[\u2500-\u257F]+ *", " ");
                sb.Append(IsBoxDrawing(body[0]) ? text.TrimStart(' ') : text);
            }
            sb.Append('\n');
        }
        if (sb.Length > 0) sb.Length--;
        return sb.ToString();
    }

    /// <summary>
    /// Lines drawn only of box-drawing or ASCII rule characters (table borders "┌──┬──┐", "+----+", "-----",
    /// "====") removed: layout, not text (the rows' cell separators go in DropBoxDrawing).
    /// </summary>
    internal static string DropRuleLines(string s)
    {
        if (!s.AsSpan().ContainsAny(s_ruleStarts)) return s;
        var sb = new StringBuilder(s.Length);
        foreach (var line in s.Split('\n'))
        {
            int n = 0;
            bool rule = true;
            foreach (char c in line)
            {
                if (c is ' ' or '\t') continue;
                n++;
                if (!(c is (>= '\u2500' and <= '\u257F') or '-' or '=' or '+' or '_' or '|' or '~' or '*' or ':')) { rule = false; break; }
            }
            if (rule && n >= 3) continue;
            sb.Append(line).Append('\n');
        }
        if (sb.Length > 0) sb.Length--;
        return sb.ToString();
    }

    private static readonly System.Buffers.SearchValues<char> s_ruleStarts = System.Buffers.SearchValues.Create("-=+_|~*:\u2500\u2501\u2502\u2503\u250C\u2510\u2514\u2518\u251C\u2524\u252C\u2534\u253C\u2550\u2551\u2554\u2557\u255A\u255D\u2560\u2563\u2566\u2569\u256C");

    /// <summary>ANSI escapes, overstrike and control characters removed; CR LF and CR made LF.</summary>
    internal static string StripControls(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '\u001B') { i = SkipEscape(s, i); continue; }
            if (c == '\b')
            {
                if (sb.Length > 0 && sb[^1] != '\n') sb.Length--; // overstrike: the character after \b replaces the one before
                continue;
            }
            if (c == '\r')
            {
                sb.Append('\n');
                if (i + 1 < s.Length && s[i + 1] == '\n') i++;
                continue;
            }
            if (c is '\n' or '\t') { sb.Append(c); continue; }
            if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c == '\uFEFF') continue;
            sb.Append(c);
        }
        return sb.ToString();
    }

    // Returns the index of the last character of the escape sequence that starts at s[i] (an ESC).
    private static int SkipEscape(string s, int i)
    {
        if (i + 1 >= s.Length) return i;
        char k = s[i + 1];
        if (k == '[') // CSI: parameters and intermediates, then one final byte in 0x40..0x7E
        {
            int j = i + 2;
            while (j < s.Length && !(s[j] >= 0x40 && s[j] <= 0x7E)) j++;
            return Math.Min(j, s.Length - 1);
        }
        if (k == ']') // OSC: up to BEL or ESC \
        {
            for (int j = i + 2; j < s.Length; j++)
            {
                if (s[j] == '\u0007') return j;
                if (s[j] == '\u001B' && j + 1 < s.Length && s[j + 1] == '\\') return j + 1;
            }
            return s.Length - 1;
        }
        return i + 1; // a two-character escape (ESC c, ESC =, ...)
    }

    /// <summary>True for the full-width punctuation that Chinese text uses and NFKC would make ASCII.</summary>
    internal static bool IsProtectedPunctuation(char c) =>
        c is (>= '\uFF01' and <= '\uFF0F') or (>= '\uFF1A' and <= '\uFF20') or (>= '\uFF3B' and <= '\uFF40')
            or (>= '\uFF5B' and <= '\uFF5E') or '\u2026' or '\u3000';

    /// <summary>NFKC on the runs between protected punctuation (each protected character is a starter, so the runs normalize independently).</summary>
    internal static string SafeNfkc(string s)
    {
        try
        {
            if (s.IsNormalized(NormalizationForm.FormKC)) return s;
        }
        catch (ArgumentException) { } // unpaired surrogates: normalize run by run below
        var sb = new StringBuilder(s.Length);
        int start = 0;
        for (int i = 0; i <= s.Length; i++)
        {
            if (i < s.Length && !IsProtectedPunctuation(s[i])) continue;
            if (i > start) sb.Append(NormalizeRun(s.AsSpan(start, i - start)));
            if (i < s.Length) sb.Append(s[i]);
            start = i + 1;
        }
        return sb.ToString();
    }

    private static string NormalizeRun(ReadOnlySpan<char> run)
    {
        var str = run.ToString();
        try { return str.Normalize(NormalizationForm.FormKC); }
        catch (ArgumentException) { return str; } // unpaired surrogates: keep the run as it is
    }

    /// <summary>Trailing spaces off each line, exotic spaces to ' ', at most one blank line in a row, no blank lines at the ends.</summary>
    internal static string NormalizeWhitespace(string s)
    {
        var sb = new StringBuilder(s.Length);
        int blank = 0;
        foreach (var raw in s.Split('\n'))
        {
            var line = raw.Replace('\u00A0', ' ').TrimEnd(' ', '\t', '\u3000');
            if (line.Length == 0) { blank++; continue; }
            if (sb.Length > 0) sb.Append(blank > 0 ? "\n\n" : "\n");
            blank = 0;
            sb.Append(line);
        }
        return sb.ToString();
    }
}
