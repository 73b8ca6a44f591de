// Builds the shipped n-gram profiles (langid-profiles.txt) from the installed Debian handbook, picks the tests'
// held-out sample (tests/TestData/langid-heldout.txt), and measures the tagger on the held-out chapters.
// `duet data langid-profiles --out FILE [--sample FILE]` does all three; tests check that both shipped files are
// byte for byte what this code makes (when the handbook is installed).
//
// Training text per language: the translated paragraphs (HandbookCorpus) of the chapters that are not held out,
// without code-like paragraphs (LanguageTagger's rule: more than one bracket, operator or sigil per four
// letters), which are the same commands in every translation.
// Languages: the locales with more than 100 000 characters of translated training text (tr-TR, the smallest, has
// 106 000; en-US 1 029 000). da, el, hr, ko and ro have 10 000 to 20 000 (their translations are mostly English)
// and are left out; Danish, Croatian and Romanian text still comes out "other", as its nearest profile (nb; cs;
// it) is not English. ja and zh need no profile: the tagger tells them by script.
// Profile size: all letters (up to 100) and the 1000 most frequent 2-grams and 3-grams seen at least 3 times.
// 4-grams and 2000 3-grams helped only headings under 50 characters (about 10 of 175 English ones) and made
// the file 370 KB instead of 250 KB; 300 2-grams and 500 3-grams (120 KB) missed 3 of the 1272 held-out Latin-script
// paragraphs of 200 characters or more that these profiles get right.
using System.Globalization;
using Duet.Data.Sources;

namespace Duet.Data.LanguageId;

public static class HandbookProfiles
{
    /// <summary>Locales that get a profile.</summary>
    public static readonly string[] Locales =
    [
        "ar-MA", "ca-ES", "cs-CZ", "de-DE", "en-US", "es-ES", "fa-IR", "fr-FR", "id-ID", "it-IT", "nb-NO", "nl-NL", "pl-PL",
        "pt-BR", "ru-RU", "sv-SE", "tr-TR", "vi-VN",
    ];

    /// <summary>N-grams kept per language for orders 1..4 (see the file header).</summary>
    public static readonly int[] Kept = [100, 1000, 1000, 0];

    /// <summary>N-grams seen fewer times than this in a language's training text are not kept.</summary>
    public const int MinCount = 3;

    /// <summary>Where the file ships (relative to the repository root).</summary>
    public const string ShippedPath = "src/Duet.Data/LanguageId/langid-profiles.txt";

    /// <summary>The handbook's paragraphs (HandbookCorpus.Read), or an error naming the package when it is not installed.</summary>
    public static List<HandbookParagraph> Read(string root = HandbookCorpus.DefaultRoot)
    {
        if (!HandbookCorpus.IsInstalled(root))
            throw new InvalidDataException($"{root}: the Debian handbook is not there (sudo apt-get install {HandbookCorpus.Package})");
        return HandbookCorpus.Read(root).ToList();
    }

    /// <summary>The installed handbook's version (dpkg), "unknown" for another folder or without dpkg.</summary>
    public static string Version(string root = HandbookCorpus.DefaultRoot) =>
        root == HandbookCorpus.DefaultRoot ? DebianSources.PackageVersion(HandbookCorpus.Package) ?? "unknown" : "unknown";

    /// <summary>Builds the profiles from the handbook's paragraphs (Read) of the given version.</summary>
    public static NgramProfiles Build(IEnumerable<HandbookParagraph> paragraphs, string version, int[]? kept = null, int minCount = MinCount)
    {
        string[] header =
        [
            "Character n-gram profiles of LanguageTagger: see NgramLanguageModel.cs (the model) and NgramProfiles.cs (this format).",
            $"Rebuild: ./duet data langid-profiles --out {ShippedPath}",
            $"Made from {HandbookCorpus.Package} {version} ({HandbookCorpus.DefaultRoot}): translated paragraphs, code-like ones",
            $"excluded, of every chapter but the held-out {string.Join(", ", HandbookCorpus.HeldOutChapters)}.",
            "The handbook: Copyright 2003-2015 Raphaël Hertzog, Roland Mas, Freexian SARL; GPL-2.0+ or CC-BY-SA-3.0",
            "(/usr/share/doc/debian-handbook/copyright).",
        ];
        var locales = new HashSet<string>(Locales, StringComparer.Ordinal);
        var texts = paragraphs
            .Where(p => locales.Contains(p.Locale) && p.Translated && !p.HeldOut && !LanguageTagger.LooksLikeCode(p.Text))
            .Select(p => (p.Language, p.Text));
        return NgramProfiles.Count(texts, kept ?? Kept, minCount, header);
    }

    /// <summary>Tagger accuracy on the held-out paragraphs of one locale.</summary>
    public sealed record Accuracy(string Locale, string Expected, int Paragraphs, int Correct, IReadOnlyDictionary<string, int> Tags, IReadOnlyList<string> Errors)
    {
        public double Share => Paragraphs == 0 ? double.NaN : (double)Correct / Paragraphs;
    }

    /// <summary>The tag a paragraph of a locale should get: en, zh, or other.</summary>
    public static string ExpectedTag(string locale) => HandbookCorpus.LanguageOf(locale) switch
    {
        "en" => Languages.English,
        "zh" => Languages.Chinese,
        _ => Languages.Other,
    };

    /// <summary>Whether a held-out paragraph is a test case: translated prose of at least minLength characters.</summary>
    public static bool IsTestParagraph(HandbookParagraph p, int minLength) =>
        p.HeldOut && p.Translated && p.Text.Length >= minLength && !LanguageTagger.LooksLikeCode(p.Text);

    /// <summary>
    /// Tags the held-out test paragraphs (IsTestParagraph) of every locale with <paramref name="tag"/> and counts
    /// how many get ExpectedTag. Errors keep the first few misses.
    /// </summary>
    public static List<Accuracy> Evaluate(IEnumerable<HandbookParagraph> paragraphs, Func<string, string> tag, int minLength = 200)
    {
        var result = new List<Accuracy>();
        foreach (var group in paragraphs.Where(p => IsTestParagraph(p, minLength)).GroupBy(p => p.Locale).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var expected = ExpectedTag(group.Key);
            var tags = new SortedDictionary<string, int>(StringComparer.Ordinal);
            var errors = new List<string>();
            int n = 0, correct = 0;
            foreach (var p in group)
            {
                var t = tag(p.Text);
                n++;
                tags[t] = tags.GetValueOrDefault(t) + 1;
                if (t == expected) correct++;
                else if (errors.Count < 5) errors.Add($"{p.File}: {t}: {p.Text[..Math.Min(160, p.Text.Length)]}");
            }
            result.Add(new Accuracy(group.Key, expected, n, correct, tags, errors));
        }
        return result;
    }

    /// <summary>Where the held-out sample ships (relative to the repository root): the tests' fixture without the handbook.</summary>
    public const string SamplePath = "tests/TestData/langid-heldout.txt";

    /// <summary>
    /// A few held-out test paragraphs (IsTestParagraph, at most 1000 characters) per locale, spread over the
    /// held-out pages: the ith of k picks is the (i * count / k)th candidate. At most SampleParagraphs and about
    /// SampleCharacters per locale.
    /// </summary>
    public static List<HandbookParagraph> Sample(IEnumerable<HandbookParagraph> paragraphs)
    {
        var result = new List<HandbookParagraph>();
        foreach (var group in paragraphs.Where(p => IsTestParagraph(p, 200) && p.Text.Length <= 1000).GroupBy(p => p.Locale).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var candidates = group.ToList();
            int k = Math.Min(SampleParagraphs, candidates.Count), chars = 0;
            for (int i = 0; i < k && chars < SampleCharacters; i++)
            {
                var p = candidates[i * candidates.Count / k];
                result.Add(p);
                chars += p.Text.Length;
            }
        }
        return result;
    }

    public const int SampleParagraphs = 8, SampleCharacters = 3000;

    /// <summary>The sample file: a licence header, then per paragraph a line "@@ LOCALE PAGE" and its text.</summary>
    public static string FormatSample(IEnumerable<HandbookParagraph> sample, string version)
    {
        var sb = new System.Text.StringBuilder();
        sb.Append("# Held-out paragraphs of the Debian Administrator's Handbook (").Append(HandbookCorpus.Package).Append(' ').Append(version).Append("), a few per locale,\n");
        sb.Append("# for LanguageTaggerTests when the handbook is not installed. Made by HandbookProfiles.Sample:\n");
        sb.Append("#   ./duet data langid-profiles --out ").Append(ShippedPath).Append(" --sample ").Append(SamplePath).Append('\n');
        sb.Append("# The handbook: Copyright 2003-2015 Raphaël Hertzog <hertzog@debian.org>, Roland Mas <lolando@debian.org>,\n");
        sb.Append("# Freexian SARL, and its translators; licensed GPL-2.0+ or CC-BY-SA-3.0 (/usr/share/doc/debian-handbook/copyright).\n");
        foreach (var p in sample)
        {
            if (p.Text.Split('\n').Any(l => l.StartsWith("@@ ", StringComparison.Ordinal)))
                throw new InvalidDataException($"{p.Locale}/{p.File}: a line starts with '@@ ', which the sample format cannot hold");
            sb.Append("@@ ").Append(p.Locale).Append(' ').Append(p.File).Append('\n').Append(p.Text).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Reads a sample file back: (locale, page, text).</summary>
    public static List<(string Locale, string File, string Text)> ReadSample(string text)
    {
        var result = new List<(string, string, string)>();
        string? locale = null, file = null;
        var lines = new List<string>();
        void Flush()
        {
            if (locale is not null) result.Add((locale, file!, string.Join('\n', lines)));
            lines.Clear();
        }
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith("@@ ", StringComparison.Ordinal))
            {
                Flush();
                var parts = line.Split(' ');
                if (parts.Length != 3) throw new InvalidDataException($"bad sample record line '{line}'");
                locale = parts[1]; file = parts[2];
            }
            else if (locale is not null) lines.Add(line);
            else if (line.Length > 0 && line[0] != '#') throw new InvalidDataException($"text before the first '@@' line: '{line}'");
        }
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1); // the file's final newline
        Flush();
        return result;
    }

    /// <summary>A table of Evaluate's result, one locale a line.</summary>
    public static string Format(IEnumerable<Accuracy> accuracies) =>
        string.Join('\n', accuracies.Select(a => string.Create(CultureInfo.InvariantCulture,
            $"{a.Locale,-6} {a.Expected,-5} {a.Correct,5}/{a.Paragraphs,-5} {100 * a.Share,6:F1}%  {string.Join(' ', a.Tags.Select(kv => $"{kv.Key}:{kv.Value}"))}")));
}
