// Document quality rules with thresholds from the recipe. English follows Gopher's (Rae et al. 2021, appendix A)
// and C4's heuristics: word count, mean word length, symbol-to-word ratio, bullet and ellipsis lines, words with
// a letter, stop words, lines ending in punctuation, and repetition (duplicate lines, the most frequent word
// n-grams, duplicated word n-grams). Chinese has no spaces between words, so its rules count characters: Han
// characters, the share of punctuation, lines ending in sentence punctuation, duplicate lines and the most
// frequent character n-grams. The first rule that fails names the reason a document is dropped.
namespace Duet.Data.Filters;

/// <summary>Thresholds (defaults as in Gopher / C4, Chinese ones chosen to keep the Debian documentation's prose).</summary>
public sealed record QualityOptions
{
    public int MinWords { get; init; } = 50;
    public int MaxWords { get; init; } = 100_000;
    public double MinMeanWordLength { get; init; } = 3;
    public double MaxMeanWordLength { get; init; } = 10;
    public double MaxSymbolToWordRatio { get; init; } = 0.1;
    public double MaxBulletLineShare { get; init; } = 0.9;
    public double MaxEllipsisLineShare { get; init; } = 0.3;
    public double MinAlphabeticWordShare { get; init; } = 0.8;
    public int MinStopWords { get; init; } = 2;
    /// <summary>C4 keeps only lines ending in terminal punctuation; as a document rule: the share of such lines.</summary>
    public double MinPunctuatedLineShare { get; init; } = 0.1;
    public double MaxDuplicateLineShare { get; init; } = 0.3;
    /// <summary>Share of characters in the most frequent 2-, 3-, 4-gram of words.</summary>
    public double[] MaxTopNgramShare { get; init; } = [0.20, 0.18, 0.16];
    /// <summary>Share of characters in duplicated 5- to 10-grams of words.</summary>
    public double[] MaxDuplicateNgramShare { get; init; } = [0.15, 0.14, 0.13, 0.12, 0.11, 0.10];
    public int MinHanCharacters { get; init; } = 50;
    public double MaxChinesePunctuationShare { get; init; } = 0.3;
    /// <summary>Share of characters in the most frequent character 2-, 3- and 4-gram (Chinese).</summary>
    public double[] MaxTopCharNgramShare { get; init; } = [0.20, 0.18, 0.16];
}

public static class QualityFilter
{
    private static readonly HashSet<string> s_stopWords = ["the", "be", "to", "of", "and", "that", "have", "with"];

    /// <summary>Null when an English document passes, else the name of the first rule it fails.</summary>
    public static string? CheckEnglish(string text, QualityOptions o)
    {
        var lines = text.Split('\n').Where(l => l.Trim().Length > 0).ToArray();
        var words = text.Split((char[])[' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (words.Length < o.MinWords) return "en.too_few_words";
        if (words.Length > o.MaxWords) return "en.too_many_words";
        double mean = words.Average(w => w.Length);
        if (mean < o.MinMeanWordLength || mean > o.MaxMeanWordLength) return "en.mean_word_length";
        int symbols = words.Count(w => w.Contains('#')) + CountOccurrences(text, "...") + CountOccurrences(text, "…");
        if ((double)symbols / words.Length > o.MaxSymbolToWordRatio) return "en.symbol_ratio";
        if (lines.Length > 0 && (double)lines.Count(l => IsBullet(l.TrimStart())) / lines.Length > o.MaxBulletLineShare) return "en.bullet_lines";
        if (lines.Length > 0 && (double)lines.Count(l => l.TrimEnd().EndsWith("...", StringComparison.Ordinal) || l.TrimEnd().EndsWith('…')) / lines.Length > o.MaxEllipsisLineShare) return "en.ellipsis_lines";
        if ((double)words.Count(w => w.Any(char.IsLetter)) / words.Length < o.MinAlphabeticWordShare) return "en.alphabetic_words";
        var lower = words.Select(w => w.Trim('.', ',', ';', ':', '!', '?', '"', '\'', '(', ')').ToLowerInvariant()).ToArray();
        if (lower.Count(s_stopWords.Contains) < o.MinStopWords) return "en.stop_words";
        if (lines.Length > 0 && (double)lines.Count(l => EndsSentence(l)) / lines.Length < o.MinPunctuatedLineShare) return "en.punctuated_lines";
        if (DuplicateLineShare(lines) > o.MaxDuplicateLineShare) return "en.duplicate_lines";
        for (int i = 0; i < o.MaxTopNgramShare.Length; i++)
            if (TopNgramShare(lower, i + 2) > o.MaxTopNgramShare[i]) return $"en.top_{i + 2}gram";
        for (int i = 0; i < o.MaxDuplicateNgramShare.Length; i++)
            if (DuplicateNgramShare(lower, i + 5) > o.MaxDuplicateNgramShare[i]) return $"en.duplicate_{i + 5}gram";
        return null;
    }

    /// <summary>Null when a Chinese document passes, else the name of the first rule it fails.</summary>
    public static string? CheckChinese(string text, QualityOptions o)
    {
        var lines = text.Split('\n').Where(l => l.Trim().Length > 0).ToArray();
        int han = text.Count(Dedup.MinHasher.IsHan);
        if (han < o.MinHanCharacters) return "zh.too_few_characters";
        int visible = text.Count(c => !char.IsWhiteSpace(c));
        int punct = text.Count(c => char.IsPunctuation(c) || char.IsSymbol(c));
        if ((double)punct / Math.Max(1, visible) > o.MaxChinesePunctuationShare) return "zh.punctuation_share";
        if (lines.Length > 0 && (double)lines.Count(l => EndsSentence(l)) / lines.Length < o.MinPunctuatedLineShare) return "zh.punctuated_lines";
        if (DuplicateLineShare(lines) > o.MaxDuplicateLineShare) return "zh.duplicate_lines";
        var chars = text.Where(c => !char.IsWhiteSpace(c)).Select(c => c.ToString()).ToArray();
        for (int i = 0; i < o.MaxTopCharNgramShare.Length; i++)
            if (TopNgramShare(chars, i + 2) > o.MaxTopCharNgramShare[i]) return $"zh.top_{i + 2}gram";
        return null;
    }

    private static int CountOccurrences(string s, string what)
    {
        int n = 0;
        for (int i = s.IndexOf(what, StringComparison.Ordinal); i >= 0; i = s.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static bool IsBullet(string line) => line.Length > 0 && line[0] is '•' or '*' or '-' or '·' or '‣' or '▪' or '●';

    private static bool EndsSentence(string line)
    {
        var t = line.TrimEnd().TrimEnd('"', '\'', '”', '’', ')', '）', '」', '』');
        return t.Length > 0 && t[^1] is '.' or '!' or '?' or ':' or '。' or '！' or '？' or '：' or '；' or ';';
    }

    /// <summary>Share of characters in lines that occur more than once (each repeat after the first).</summary>
    internal static double DuplicateLineShare(string[] lines)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long dup = 0, total = 0;
        foreach (var l in lines)
        {
            var t = l.Trim();
            total += t.Length;
            if (!seen.Add(t)) dup += t.Length;
        }
        return total == 0 ? 0 : (double)dup / total;
    }

    /// <summary>Characters covered by the most frequent n-gram (counted once per occurrence), over all characters.</summary>
    internal static double TopNgramShare(string[] tokens, int n)
    {
        if (tokens.Length < n) return 0;
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= tokens.Length; i++)
        {
            var key = string.Join('\u0001', tokens, i, n);
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        var best = counts.MaxBy(kv => kv.Value); // ties: the first seen, in input order
        string top = best.Key;
        int count = best.Value;
        if (count < 2) return 0;
        long chars = tokens.Sum(t => (long)t.Length);
        return chars == 0 ? 0 : (double)(top.Length - (n - 1)) * count / chars;
    }

    /// <summary>Characters of the tokens covered by n-grams that occur more than once, over all characters.</summary>
    internal static double DuplicateNgramShare(string[] tokens, int n)
    {
        if (tokens.Length < n) return 0;
        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        var covered = new bool[tokens.Length];
        for (int i = 0; i + n <= tokens.Length; i++)
        {
            var key = string.Join('\u0001', tokens, i, n);
            if (first.TryGetValue(key, out int j))
            {
                for (int k = 0; k < n; k++) { covered[i + k] = true; covered[j + k] = true; }
            }
            else first[key] = i;
        }
        long chars = tokens.Sum(t => (long)t.Length), dup = 0;
        for (int i = 0; i < tokens.Length; i++) if (covered[i]) dup += tokens[i].Length;
        return chars == 0 ? 0 : (double)dup / chars;
    }
}
