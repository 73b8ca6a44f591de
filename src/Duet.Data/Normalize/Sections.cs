// Long documents cut into sections before they are tagged, filtered and deduplicated. A whole Debian Reference
// chapter or a long man page is a poor unit for Gopher's document rules: its command lines and option names
// repeat across the chapter, so the duplicate n-gram share of the whole fails while each section reads as
// prose; and one bad table would drop the whole chapter. Sections are runs of paragraphs (blank-line separated)
// of at most the recipe's sectionCharacters, cut preferably before a heading (a short line with no sentence
// punctuation) once the section holds half its budget. A paragraph longer than the budget is cut at line ends,
// and a line longer than the budget at a space.
using System.Text;

namespace Duet.Data.Normalize;

public static class Sections
{
    /// <summary>The sections of <paramref name="text"/>, in order; the text itself when it fits or maxCharacters is 0.</summary>
    public static List<string> Split(string text, int maxCharacters)
    {
        if (maxCharacters <= 0 || text.Length <= maxCharacters) return [text];
        var pieces = new List<string>();
        foreach (var p in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
            if (p.Length <= maxCharacters) pieces.Add(p);
            else CutLong(p, maxCharacters, pieces);

        var sections = new List<string>();
        var sb = new StringBuilder();
        foreach (var p in pieces)
        {
            int next = sb.Length + (sb.Length > 0 ? 2 : 0) + p.Length;
            bool full = next > maxCharacters;
            bool heading = sb.Length >= maxCharacters / 2 && IsHeading(p);
            if (sb.Length > 0 && (full || heading)) { sections.Add(sb.ToString()); sb.Clear(); }
            if (sb.Length > 0) sb.Append("\n\n");
            sb.Append(p);
        }
        if (sb.Length > 0) sections.Add(sb.ToString());
        return sections;
    }

    // A heading: one short line that does not end like a sentence ("3.2. Installing packages", "安装软件包").
    private static bool IsHeading(string p) =>
        p.Length <= 80 && !p.Contains('\n') && p.TrimEnd() is [.., var last] && last is not ('.' or ',' or ';' or ':' or '!' or '?' or '。' or '，' or '；' or '：' or '！' or '？');

    // A paragraph over budget: whole lines while they fit, a line over budget cut at its last space before the limit.
    private static void CutLong(string paragraph, int max, List<string> into)
    {
        var sb = new StringBuilder();
        foreach (var line in paragraph.Split('\n'))
        {
            var rest = line.AsSpan();
            while (rest.Length > max)
            {
                int cut = rest[..max].LastIndexOf(' ');
                if (cut <= 0) cut = max;
                if (sb.Length > 0) { into.Add(sb.ToString()); sb.Clear(); }
                into.Add(rest[..cut].ToString());
                rest = rest[cut..].TrimStart(' ');
            }
            if (sb.Length > 0 && sb.Length + 1 + rest.Length > max) { into.Add(sb.ToString()); sb.Clear(); }
            if (sb.Length > 0) sb.Append('\n');
            sb.Append(rest);
        }
        if (sb.Length > 0) into.Add(sb.ToString());
    }
}
