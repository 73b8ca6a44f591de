// Language tags for documents and paragraphs: en, zh, mixed or other.
// Signals:
//  - the script of the letters: Han vs Latin vs anything else; kana or hangul means Japanese or Korean, not Chinese;
//  - code (brackets, operators and sigils more than one per four letters) is "other";
//  - for Latin-script text, a character n-gram language model (NgramLanguageModel: naive Bayes over 1- to 3-grams,
//    profiles of 18 languages built from the Debian handbook, HandbookProfiles) decides English or not: English
//    when its log-likelihood, plus a small prior for English (EnglishPrior), beats the best other language's;
//  - the share of words that are among the 120 most frequent English words (about 0.4 to 0.5 in English prose,
//    under 0.1 in French or German): a long text with almost none is not English prose whatever its letters
//    (package lists, command output); and it decides alone when the model scores no n-gram.
// Text mostly in other alphabets (Cyrillic, Greek, Arabic...) is "other"; the model's best language is still in
// the scores (NgramLanguage, NgramMargin), for the manifest and for inspection.
// Paragraphs (blank-line separated) are tagged on their own; a document whose letters are split between English
// and Chinese paragraphs, or whose paragraphs mix both scripts heavily, is "mixed", and the pipeline can split it.
namespace Duet.Data.LanguageId;

public static class Languages
{
    public const string English = "en", Chinese = "zh", Mixed = "mixed", Other = "other";
}

/// <summary>Counts behind a tag, for the manifest and for inspection.</summary>
/// <param name="NgramLanguage">The n-gram model's best language (text mostly in alphabetic scripts only), else null.</param>
/// <param name="NgramMargin">Its lead over the second language, nats per n-gram.</param>
/// <param name="EnglishMargin">English's lead over the best other language, nats per n-gram (negative: not English).</param>
/// <param name="Ngrams">N-grams the model scored.</param>
public readonly record struct LanguageScores(int Letters, int Han, int Latin, int Kana, int Hangul, int Words, int EnglishWords, int CodeSymbols,
    string? NgramLanguage = null, double NgramMargin = 0, double EnglishMargin = 0, int Ngrams = 0)
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

    public static LanguageScores Score(ReadOnlySpan<char> text) => Score(text, NgramLanguageModel.Default);

    /// <summary>Score with another n-gram model than the shipped one (to measure new profiles before shipping them).</summary>
    public static LanguageScores Score(ReadOnlySpan<char> text, NgramLanguageModel model)
    {
        int letters = 0, han = 0, latin = 0, kana = 0, hangul = 0, words = 0, english = 0, symbols = 0;
        Span<char> word = stackalloc char[24];
        int wl = 0;
        bool inWord = false, overflow = false;
        for (int i = 0; i <= text.Length; i++)
        {
            char c = i < text.Length ? text[i] : ' ';
            bool isLatin = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '\u00C0' and <= '\u024F');
            if (IsCodeSymbol(c)) symbols++;
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
        // The n-gram model, for text mostly in alphabetic scripts (Latin, Cyrillic, Greek, Arabic...): Han, kana and
        // hangul are told by script alone.
        if ((letters - han - kana - hangul) * 2 <= letters) return new LanguageScores(letters, han, latin, kana, hangul, words, english, symbols);
        var g = model.Guess(text, Languages.English);
        return new LanguageScores(letters, han, latin, kana, hangul, words, english, symbols, g.Language, g.Margin, g.FocusMargin, g.Ngrams);
    }

    private static bool IsCodeSymbol(char c) => c is '{' or '}' or ';' or '=' or '<' or '>' or '[' or ']' or '(' or ')' or '*' or '&' or '|' or '$' or '#';

    /// <summary>Program code and shell lines: more than one bracket, operator or sigil per four letters.</summary>
    public static bool LooksLikeCode(ReadOnlySpan<char> text)
    {
        int letters = 0, symbols = 0;
        foreach (char c in text)
        {
            if (char.IsLetter(c)) letters++;
            else if (IsCodeSymbol(c)) symbols++;
        }
        return symbols * 4 > letters;
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
            return IsEnglish(s) ? Languages.English : Languages.Other;
        }
        if (s.Han > 0 && s.Latin > 0 && hanWeight >= 0.25 * (hanWeight + latinWeight) && latinWeight >= 0.25 * (hanWeight + latinWeight)) return Languages.Mixed;
        return Languages.Other;
    }

    public static string Tag(string text) => Tag(Score(text));

    /// <summary>
    /// Prior log-odds (nats) for English against the best other language, added to the n-gram evidence
    /// EnglishMargin * Ngrams: most Latin-script text of our sources is English, and short headings ("7.2. Common
    /// Procedures") carry little evidence either way. Measured on held-out headings of 15 to 50 characters, two nats
    /// turn 12 of the 42 English ones the model alone calls other into "en" and cost 7 of 1319 in other languages;
    /// paragraphs of 50 characters and more do not change.
    /// </summary>
    public const double EnglishPrior = 2.0;

    // The English-word share settles the two ends on its own (measured on the held-out chapters: no paragraph of
    // another language with 20 words reaches 0.3, Norwegian and Portuguese peak near 0.2; no English prose of 12
    // words stays under 0.05, only command output does).
    private const int ProseWords = 12, ClearlyEnglishWords = 20;
    private const double ProseEnglishWordShare = 0.05, ClearlyEnglishWordShare = 0.3;

    /// <summary>Latin-script prose: English or not.</summary>
    private static bool IsEnglish(in LanguageScores s)
    {
        if (s.Ngrams == 0) return s.EnglishWordShare >= EnglishWordThreshold;
        // Many words and almost none of them frequent English words: not English prose, whatever its letters look
        // like (package lists, command output, identifiers). English prose runs at 0.4 to 0.5.
        if (s.Words >= ProseWords && s.EnglishWordShare < ProseEnglishWordShare) return false;
        // Many words and a third of them frequent English words: English, however odd the rest of its words look
        // (names, identifiers, made-up words).
        if (s.Words >= ClearlyEnglishWords && s.EnglishWordShare >= ClearlyEnglishWordShare) return true;
        return s.EnglishMargin * s.Ngrams + EnglishPrior > 0;
    }

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
        foreach (var p in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var s = Score(p);
            int n = s.Letters;
            switch (Tag(s))
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
