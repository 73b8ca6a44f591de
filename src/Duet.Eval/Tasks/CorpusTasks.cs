// The shipped task sets, made from a Duet corpus, so that every model (duet-tiny included) has scores in English and
// Chinese without a download: "which paragraph comes next". A question is a paragraph of a document; the right
// choice is the paragraph that follows it in that document, the three others are paragraphs of other documents of
// the same language and split, the nearest to it in length (so length alone does not give the answer away). What it
// measures: whether the model's sense of a text's continuation (topic, terms, the flow of an explanation) prefers
// the true next paragraph; a model that has learned only a language's surface scores near chance (25%).
// Deterministic: the same corpus gives the same files byte for byte (no clock, no unseeded randomness: the right
// answer's position comes from a SplitMix64 of the question's number).
using System.Text;
using System.Text.Json;

namespace Duet.Eval.Tasks;

/// <summary>A corpus document: its text, language tag, id and source (the recipe's source name).</summary>
public sealed record CorpusDocument(string Text, string Lang, string Id, string Source = "");

public sealed record CorpusTaskOptions
{
    /// <summary>At most this many questions (spread evenly over the eligible paragraph pairs).</summary>
    public int Questions { get; init; } = 200;
    /// <summary>Paragraph length bounds, in characters (Unicode scalar values).</summary>
    public int MinChars { get; init; } = 20;
    public int MaxChars { get; init; } = 300;
}

public static class CorpusTasks
{
    /// <summary>The questions of one language as JSON lines of the mc reader: question, choices, answer (0-based), id.</summary>
    public static List<string> NextParagraph(IEnumerable<CorpusDocument> documents, string lang, CorpusTaskOptions? options = null)
    {
        options ??= new CorpusTaskOptions();
        var docs = documents.Where(d => d.Lang == lang).ToList();
        // Paragraphs: blocks between blank lines, white space inside collapsed to single spaces.
        var paragraphs = docs.Select(d => d.Text.Replace("\r\n", "\n").Split("\n\n").Select(Clean).Where(p => p.Length > 0).ToArray()).ToList();
        bool Fits(string p) { int n = Chars(p); return n >= options.MinChars && n <= options.MaxChars; }
        var pairs = new List<(int Doc, int Para)>();
        for (int d = 0; d < paragraphs.Count; d++)
            for (int p = 0; p + 1 < paragraphs[d].Length; p++)
                if (Fits(paragraphs[d][p]) && Fits(paragraphs[d][p + 1]) && paragraphs[d][p] != paragraphs[d][p + 1]) pairs.Add((d, p));
        var pool = new List<(int Doc, string Text, int Chars)>();
        for (int d = 0; d < paragraphs.Count; d++)
            foreach (var p in paragraphs[d].Where(Fits).Distinct()) pool.Add((d, p, Chars(p)));
        int count = Math.Min(options.Questions, pairs.Count);
        var lines = new List<string>(count);
        for (int q = 0; q < count; q++)
        {
            var (d, p) = pairs[(int)((long)q * pairs.Count / count)];
            string question = paragraphs[d][p], right = paragraphs[d][p + 1];
            int len = Chars(right);
            var distractors = pool.Where(c => c.Doc != d && c.Text != right && c.Text != question)
                .OrderBy(c => Math.Abs(c.Chars - len)).ThenBy(c => Mix((ulong)q, c.Text)).Select(c => c.Text).Distinct().Take(3).ToList();
            if (distractors.Count < 3) continue; // too few other documents in this language
            int gold = (int)(SplitMix64((ulong)q) % 4);
            distractors.Insert(gold, right);
            lines.Add(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["id"] = $"{docs[d].Id}#{p}", ["question"] = question, ["choices"] = distractors, ["answer"] = gold,
            }, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        }
        return lines;
    }

    private static string Clean(string paragraph)
    {
        var sb = new StringBuilder(paragraph.Length);
        bool space = false;
        foreach (char c in paragraph.Trim())
        {
            if (char.IsWhiteSpace(c)) { space = true; continue; }
            if (space && sb.Length > 0) sb.Append(' ');
            space = false;
            sb.Append(c);
        }
        return sb.ToString();
    }

    private static int Chars(string s)
    {
        int n = 0;
        foreach (var _ in s.EnumerateRunes()) n++;
        return n;
    }

    /// <summary>A stable tie-break between equally long candidates: FNV-1a of the text, mixed with the question's number.</summary>
    private static ulong Mix(ulong q, string text)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in text) { h ^= c; h *= 0x100000001B3UL; }
        return SplitMix64(h ^ q);
    }

    private static ulong SplitMix64(ulong x) => Duet.Model.NormalRng.Mix(x + 0x9E3779B97F4A7C15UL);
}
