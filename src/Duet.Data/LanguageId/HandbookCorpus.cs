// The Debian Administrator's Handbook (package debian-handbook: the same book in ~25 languages, GPL-2+ or
// CC-BY-SA-3.0) as training and test text for the character n-gram language model.
//
// - Paragraphs: each HTML page through HtmlText and TextCleaner (as the data pipeline reads it), split at blank
//   lines as LanguageTagger splits documents.
// - Untranslated text: many translations are partial, and an untranslated paragraph is printed in English (in
//   da-DK, el-GR, hr-HR, ko-KR and ro-RO more than 90% of the text). The book is parallel, so a paragraph counts
//   as untranslated when at least half of its word trigrams (lowercased, split at whitespace) occur in the
//   English book, or, under three words, when it is an English paragraph verbatim. This uses no language model,
//   so tests that measure the model on the result are not circular. Such paragraphs are neither trained on nor
//   tested as the translation's language.
// - Held-out chapters: the chapter of each page comes from the table of contents (en-US/index.html). The chapters
//   in HeldOutChapters are never trained on; they are the test set. They were picked because the partial
//   translations (cs, nl, pl, sv, tr, vi) translated early chapters first: these have translated text in each
//   of those languages.
using System.Text.RegularExpressions;
using Duet.Data.Extract;
using Duet.Data.Normalize;

namespace Duet.Data.LanguageId;

/// <summary>One paragraph of the handbook. Language is the locale's language ("de" for de-DE, "zh" for zh-CN and zh-TW).</summary>
public sealed record HandbookParagraph(string Locale, string Language, string File, string Chapter, bool HeldOut, bool Translated, string Text);

public static partial class HandbookCorpus
{
    public const string Package = "debian-handbook";
    public const string DefaultRoot = "/usr/share/doc/debian-handbook/html";
    public const string SourceLocale = "en-US";

    /// <summary>Chapters (their first page) kept out of training: the held-out test set.</summary>
    public static readonly string[] HeldOutChapters =
        ["case-study.html", "existing-setup.html", "solving-problems.html", "workstation.html", "short-remedial-course.html"];

    /// <summary>Whether the handbook's HTML is where the package installs it.</summary>
    public static bool IsInstalled(string root = DefaultRoot) => File.Exists(Path.Combine(root, SourceLocale, "index.html"));

    /// <summary>The locales present (folders with an index.html), in ordinal order.</summary>
    public static IReadOnlyList<string> Locales(string root) =>
        Directory.EnumerateDirectories(root).Select(Path.GetFileName).OfType<string>()
            .Where(l => File.Exists(Path.Combine(root, l, "index.html"))).Order(StringComparer.Ordinal).ToList();

    /// <summary>The language code of a locale: "de-DE" -> "de".</summary>
    public static string LanguageOf(string locale) => locale.Split('-')[0].ToLowerInvariant();

    /// <summary>Page file name -> the chapter (its first page) it belongs to, from the table of contents.</summary>
    public static IReadOnlyDictionary<string, string> Chapters(string root)
    {
        var index = File.ReadAllText(Path.Combine(root, SourceLocale, "index.html"));
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        string? chapter = null;
        foreach (Match m in TocEntry().Matches(index))
        {
            var file = m.Groups[2].Value;
            if (m.Groups[1].Value != "section") chapter = file;
            if (chapter is not null) map.TryAdd(file, chapter);
        }
        if (map.Count == 0) throw new InvalidDataException($"{root}/{SourceLocale}/index.html: no table of contents found");
        return map;
    }

    [GeneratedRegex("<span class=\"(chapter|section|appendix|preface)\"><a href=\"([^\"#]+)")]
    private static partial Regex TocEntry();

    /// <summary>The paragraphs of one page as the pipeline sees them.</summary>
    public static string[] Paragraphs(string htmlPath) =>
        TextCleaner.Clean(HtmlText.Extract(File.ReadAllText(htmlPath))).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// Every paragraph of the given locales (all when null), locale by locale and page by page in ordinal order,
    /// with its chapter, whether that chapter is held out, and whether it is translated (always true in en-US).
    /// Pages outside the table of contents (index.html) are left out.
    /// </summary>
    public static IEnumerable<HandbookParagraph> Read(string root, IEnumerable<string>? locales = null)
    {
        var chapters = Chapters(root);
        var heldOut = new HashSet<string>(HeldOutChapters, StringComparer.Ordinal);
        var english = new EnglishText();
        foreach (var page in chapters.Keys.Order(StringComparer.Ordinal))
            foreach (var p in Paragraphs(Path.Combine(root, SourceLocale, page))) english.Add(p);
        foreach (var locale in locales ?? Locales(root))
        {
            var lang = LanguageOf(locale);
            foreach (var page in chapters.Keys.Order(StringComparer.Ordinal))
            {
                var path = Path.Combine(root, locale, page);
                if (!File.Exists(path)) continue;
                var chapter = chapters[page];
                foreach (var p in Paragraphs(path))
                    yield return new HandbookParagraph(locale, lang, page, chapter, heldOut.Contains(chapter),
                        locale == SourceLocale || !english.Contains(p), p);
            }
        }
    }

    /// <summary>The English book as paragraphs and word trigrams, to find untranslated paragraphs.</summary>
    private sealed class EnglishText
    {
        private readonly HashSet<string> _paragraphs = new(StringComparer.Ordinal);
        private readonly HashSet<string> _trigrams = new(StringComparer.Ordinal);

        public void Add(string paragraph)
        {
            _paragraphs.Add(paragraph);
            _trigrams.UnionWith(Trigrams(paragraph));
        }

        public bool Contains(string paragraph)
        {
            var t = Trigrams(paragraph);
            return t.Count == 0 ? _paragraphs.Contains(paragraph) : t.Count(_trigrams.Contains) * 2 >= t.Count;
        }

        private static List<string> Trigrams(string p)
        {
            var w = p.ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var result = new List<string>(Math.Max(0, w.Length - 2));
            for (int i = 0; i + 2 < w.Length; i++) result.Add($"{w[i]} {w[i + 1]} {w[i + 2]}");
            return result;
        }
    }
}
