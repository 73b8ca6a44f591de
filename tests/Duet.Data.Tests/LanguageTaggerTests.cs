// Language tags by script share, code detection, the character n-gram model and the English-word share; accuracy
// on held-out chapters of the Debian handbook (installed, or the committed sample tests/TestData/langid-heldout.txt).
using Duet.Data.LanguageId;
using Duet.Tests;
using Xunit.Abstractions;

namespace Duet.Data.Tests;

public class LanguageTaggerTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("The quick brown fox jumps over the lazy dog, and then it runs back to the house where it lives.", "en")]
    [InlineData("Debian 是一个自由的操作系统，它使用 Linux 内核和 GNU 工具。安装时请选择合适的镜像。", "zh")]
    [InlineData("Le renard brun rapide saute par-dessus le chien paresseux, puis il retourne à la maison.", "other")]
    [InlineData("Der schnelle braune Fuchs springt über den faulen Hund und läuft dann nach Hause zurück.", "other")]
    [InlineData("日本語の文章はひらがなとカタカナと漢字で書かれています。", "other")]
    [InlineData("한국어 문장은 한글로 씁니다.", "other")]
    [InlineData("for (int i = 0; i < n; i++) { sum += x[i] * y[i]; }", "other")]
    [InlineData("12345 67890 !!! ???", "other")]
    [InlineData("使用 apt-get install build-essential git cmake python3-numpy python3-torch libopenblas-dev 安装这些软件包以后再编译", "mixed")]
    // Languages whose frequent words overlap English's list (in, is, at, for, men, under): the word share alone said "en".
    [InlineData("Het is een systeem voor het beheer van pakketten, en in de meeste gevallen is het voldoende om de standaardinstellingen te gebruiken.", "other")]
    [InlineData("Det er et system for håndtering av pakker, og i de fleste tilfeller er det nok å bruke standardinnstillingene som er valgt.", "other")]
    // Alphabets other than Latin, Han, kana and hangul are "other", never "mixed" (no Han and no Latin letter at all).
    [InlineData("Это свободная операционная система, которая использует ядро Linux и инструменты GNU.", "other")]
    [InlineData("دبيان هو نظام تشغيل حر يستخدم نواة لينكس وأدوات جنو.", "other")]
    // Long Latin text that is not English prose: package names have English-looking letters but no English words.
    [InlineData("libc6 libgcc-s1 libstdc++6 zlib1g libssl3 libcurl4 libxml2 libsqlite3-0 libpcre2-8-0 libselinux1 libsystemd0 libudev1 libzstd1 liblzma5", "other")]
    // A short English heading: the n-gram model and the English prior, no frequent English word needed.
    [InlineData("Installing packages", "en")]
    public void Tag_Paragraph_GetsItsLanguage(string text, string expected) => Assert.Equal(expected, LanguageTagger.Tag(text));

    [Fact]
    public void Score_LatinText_CarriesTheNgramModelsBestLanguage()
    {
        var s = LanguageTagger.Score("Die Paketverwaltung hält eine Liste der installierten Pakete und der Dateien, die zu jedem Paket gehören.");
        Assert.Equal("de", s.NgramLanguage);
        Assert.True(s.NgramMargin > 0 && s.EnglishMargin < 0 && s.Ngrams > 100, s.ToString());
        var en = LanguageTagger.Score("The package manager keeps a list of the installed packages and of the files that belong to each one.");
        Assert.Equal("en", en.NgramLanguage);
        Assert.Equal(en.NgramMargin, en.EnglishMargin, 6);
        var zh = LanguageTagger.Score("本章解释软件包管理器如何解析软件包之间的依赖关系。");
        Assert.Null(zh.NgramLanguage); // Han text: the script decides, the model does not run
        Assert.Equal(0, zh.Ngrams);
    }

    [Fact]
    public void TagDocument_EnglishAndChineseParagraphs_IsMixed_AndParagraphsKeepTheirTags()
    {
        const string doc = "This chapter explains how the package manager resolves dependencies between packages.\n\n" +
                           "本章解释软件包管理器如何解析软件包之间的依赖关系，以及如何处理冲突。";
        Assert.Equal("mixed", LanguageTagger.TagDocument(doc));
        Assert.Equal(["en", "zh"], LanguageTagger.TagParagraphs(doc).Select(p => p.Language));
    }

    [Fact]
    public void TagDocument_MostlyEnglishWithAShortChineseLine_IsEnglish()
    {
        var doc = string.Join("\n\n", Enumerable.Repeat("The system keeps a list of the packages that are installed and of the files that each one owns.", 8)) + "\n\n中文";
        Assert.Equal("en", LanguageTagger.TagDocument(doc));
    }

    // Held-out accuracy: at least 98% of English paragraphs "en", 97% of each other language's "other", 97% of Chinese "zh".
    private static double Required(string expected) => expected == Languages.English ? 0.98 : 0.97;

    [Fact]
    public void Tag_HeldOutSample_MeetsTheAccuracyPerLanguage()
    {
        var sample = HandbookProfiles.ReadSample(File.ReadAllText(Path.Combine(Repo.Root, HandbookProfiles.SamplePath)));
        Assert.True(sample.Count >= 100, $"{sample.Count} paragraphs in the sample");
        Assert.Contains(sample, s => s.Locale == "zh-CN");
        var byExpected = sample.GroupBy(s => HandbookProfiles.ExpectedTag(s.Locale));
        Assert.Equal(["en", "other", "zh"], byExpected.Select(g => g.Key).Order(StringComparer.Ordinal));
        foreach (var group in byExpected)
        {
            var misses = group.Where(s => LanguageTagger.Tag(s.Text) != group.Key).ToList();
            foreach (var m in misses) output.WriteLine($"{m.Locale} {m.File}: {LanguageTagger.Tag(m.Text)}: {m.Text[..Math.Min(120, m.Text.Length)]}");
            double accuracy = 1 - (double)misses.Count / group.Count();
            Assert.True(accuracy >= Required(group.Key), $"{group.Key}: {accuracy:P1} of {group.Count()} sample paragraphs");
        }
    }

    private static readonly Lazy<List<HandbookParagraph>> s_handbook = new(() => HandbookProfiles.Read());

    [HandbookFact]
    public void Tag_HeldOutHandbookChapters_MeetsTheAccuracyPerLanguage()
    {
        var accuracies = HandbookProfiles.Evaluate(s_handbook.Value, LanguageTagger.Tag);
        output.WriteLine(HandbookProfiles.Format(accuracies));
        foreach (var a in accuracies.Where(a => a.Errors.Count > 0)) output.WriteLine($"{a.Locale}:\n  " + string.Join("\n  ", a.Errors));
        // Every locale the model has a profile for, and en and zh, has held-out text to test.
        foreach (var locale in HandbookProfiles.Locales.Append("zh-CN"))
            Assert.True(accuracies.Any(a => a.Locale == locale && a.Paragraphs >= 20), $"{locale}: fewer than 20 held-out paragraphs");
        foreach (var a in accuracies.Where(a => a.Paragraphs >= 20))
            Assert.True(a.Share >= Required(a.Expected), $"{a.Locale}: {a.Share:P1} of {a.Paragraphs} tagged {a.Expected}");
        foreach (var g in accuracies.GroupBy(a => a.Expected))
        {
            double share = (double)g.Sum(a => a.Correct) / g.Sum(a => a.Paragraphs);
            Assert.True(share >= Required(g.Key), $"{g.Key}: {share:P1} over all locales");
        }
    }

    [HandbookFact]
    public void ShippedProfiles_AreWhatTheBuilderMakesFromTheInstalledHandbook()
    {
        var shipped = File.ReadAllBytes(Path.Combine(Repo.Root, HandbookProfiles.ShippedPath));
        var built = HandbookProfiles.Build(s_handbook.Value, HandbookProfiles.Version()).ToUtf8();
        Assert.True(shipped.AsSpan().SequenceEqual(built),
            $"{HandbookProfiles.ShippedPath} differs from a fresh build ({shipped.Length} vs {built.Length} bytes): rebuild it with ./duet data langid-profiles " +
            $"--out {HandbookProfiles.ShippedPath} --sample {HandbookProfiles.SamplePath} (a new debian-handbook version changes it)");
    }

    [HandbookFact]
    public void HeldOutSample_IsWhatTheBuilderPicksFromTheInstalledHandbook()
    {
        var shipped = File.ReadAllText(Path.Combine(Repo.Root, HandbookProfiles.SamplePath));
        var fresh = HandbookProfiles.FormatSample(HandbookProfiles.Sample(s_handbook.Value), HandbookProfiles.Version());
        Assert.Equal(fresh, shipped);
        Assert.Equal(HandbookProfiles.Sample(s_handbook.Value).Select(p => (p.Locale, p.File, p.Text)), HandbookProfiles.ReadSample(shipped));
    }

    [Fact]
    public void EmbeddedProfiles_AreTheShippedFile()
    {
        var shipped = NgramProfiles.Read(File.ReadAllText(Path.Combine(Repo.Root, HandbookProfiles.ShippedPath))).ToString();
        Assert.Equal(shipped, NgramLanguageModel.Default.Profiles.ToString());
        Assert.Equal(HandbookProfiles.Locales.Select(HandbookCorpus.LanguageOf), NgramLanguageModel.Default.Languages);
    }
}
