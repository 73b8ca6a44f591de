// Language tags for documents and paragraphs: en, zh, mixed or other.
// Signals: the script of the letters (Han vs Latin vs anything else; kana or hangul means Japanese or
// Korean, not Chinese), and for Latin text an English model: the share of words that are among the most
// frequent English words, which is about 0.4 to 0.5 in English prose and under 0.1 in French or German; code
// (brackets, operators and sigils more than one per four letters) is "other". A character n-gram model for
// telling other Latin-script languages apart is not here yet.
// Paragraphs (blank-line separated) are tagged on their own; a document whose letters are split between English
// and Chinese paragraphs, or whose paragraphs mix both scripts heavily, is "mixed", and the pipeline can split it.
namespace Duet.Data.LanguageId;

public static class Languages
{
    public const string English = "en", Chinese = "zh", Mixed = "mixed", Other = "other";
}

/// <summary>Counts behind a tag, for the manifest and for inspection.</summary>
public readonly record struct LanguageScores(int Letters, int Han, int Latin, int Kana, int Hangul, int Words, int EnglishWords, int CodeSymbols)
{
    public double HanShare => Letters == 0 ? 0 : (double)Han / Letters;
    public double LatinShare => Letters == 0 ? 0 : (double)Latin / Letters;
    public double EnglishWordShare => Words == 0 ? 0 : (double)EnglishWords / Words;
}

public static class LanguageTagger
{
    /// <summary>Share of Latin-script words that must be frequent English words for Latin text to be English.</summary>
    public const double EnglishWordThreshold = 0.15;

    // The 120 most frequent English words (function words and very common verbs), lowercase.
    private static readonly HashSet<string> s_english = new(
        ("the of and to a in is it you that he was for on are with as i his they be at one have this from or had by " +
         "not word but what some we can out other were all there when up use your how said an each she which do their " +
         "time if will way about many then them would write like so these her long make thing see him two has look more " +
         "day could go come did my no most who over know than call first its may down been now find any new work part " +
         "take get made also after back only our just through where much before right too means old same tell does set " +
         "three want well because such here why ask went men read need land different home us move try kind hand").Split(' '),
        StringComparer.Ordinal);

    public static LanguageScores Score(ReadOnlySpan<char> text)
    {
        int letters = 0, han = 0, latin = 0, kana = 0, hangul = 0, words = 0, english = 0, symbols = 0;
        Span<char> word = stackalloc char[24];
        int wl = 0;
        bool inWord = false, overflow = false;
        for (int i = 0; i <= text.Length; i++)
        {
            char c = i < text.Length ? text[i] : ' ';
            bool isLatin = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '\u00C0' and <= '\u024F');
            if (c is '{' or '}' or ';' or '=' or '<' or '>' or '[' or ']' or '(' or ')' or '*' or '&' or '|' or '$' or '#') symbols++;
            if (char.IsLetter(c))
            {
                letters++;
                if (Dedup.MinHasher.IsHan(c)) han++;
                else if (isLatin) latin++;
                else if (c is (>= '\u3040' and <= '\u30FF')) kana++;
                else if (c is (>= '\uAC00' and <= '\uD7AF') or (>= '\u1100' and <= '\u11FF')) hangul++;
            }
            if (isLatin || (inWord && c == '\''))
            {
                if (wl < word.Length) word[wl++] = char.ToLowerInvariant(c); else overflow = true;
                inWord = true;
                continue;
            }
            if (inWord)
            {
                words++;
                if (!overflow && s_english.GetAlternateLookup<ReadOnlySpan<char>>().Contains(word[..wl])) english++;
                wl = 0; inWord = false; overflow = false;
            }
        }
        return new LanguageScores(letters, han, latin, kana, hangul, words, english, symbols);
    }

    /// <summary>The tag of one paragraph (or any short text) from its scores.</summary>
    public static string Tag(in LanguageScores s)
    {
        if (s.Letters == 0) return Languages.Other;
        if (s.Kana * 10 > s.Han || s.Hangul * 10 > s.Letters) return Languages.Other; // Japanese, Korean
        double h = s.HanShare, l = s.LatinShare;
        // Chinese letters carry about a word each, Latin ones a fifth of a word: weigh them so.
        double hanWeight = s.Han, latinWeight = s.Latin / 5.0;
        if (h > 0 && hanWeight >= 0.75 * (hanWeight + latinWeight)) return Languages.Chinese;
        if (l >= 0.8 && hanWeight <= 0.1 * (hanWeight + latinWeight))
        {
            // Program code and shell lines: many brackets, operators and sigils per letter.
            if (s.CodeSymbols * 4 > s.Letters) return Languages.Other;
            return s.EnglishWordShare >= EnglishWordThreshold ? Languages.English : Languages.Other;
        }
        if (hanWeight >= 0.25 * (hanWeight + latinWeight) && latinWeight >= 0.25 * (hanWeight + latinWeight)) return Languages.Mixed;
        return Languages.Other;
    }

    public static string Tag(string text) => Tag(Score(text));

    /// <summary>Paragraphs (split at blank lines) with their tags.</summary>
    public static IEnumerable<(string Paragraph, string Language)> TagParagraphs(string text)
    {
        foreach (var p in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
            yield return (p, Tag(p));
    }

    /// <summary>
    /// The tag of a whole document: its paragraphs' tags weighted by letters; "mixed" when English and Chinese
    /// each hold at least a fifth of the tagged letters (or when mixed paragraphs dominate).
    /// </summary>
    public static string TagDocument(string text)
    {
        double en = 0, zh = 0, mixed = 0, other = 0;
        foreach (var (p, lang) in TagParagraphs(text))
        {
            int n = Score(p).Letters;
            switch (lang)
            {
                case Languages.English: en += n; break;
                case Languages.Chinese: zh += n; break;
                case Languages.Mixed: mixed += n; break;
                default: other += n; break;
            }
        }
        double total = en + zh + mixed + other;
        if (total == 0) return Languages.Other;
        if ((en >= 0.2 * total && zh >= 0.2 * total) || mixed >= 0.5 * total) return Languages.Mixed;
        double best = Math.Max(Math.Max(en, zh), Math.Max(mixed, other));
        return best == en ? Languages.English : best == zh ? Languages.Chinese : best == mixed ? Languages.Mixed : Languages.Other;
    }
}
