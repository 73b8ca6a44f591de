// Character n-grams, profile counting and files, and the fast n-gram scorer against the plain reference.
using Duet.Data.LanguageId;

namespace Duet.Data.Tests;

public class NgramLanguageModelTests
{
    [Fact]
    public void Keys_Word_GivesLettersAndPaddedWindows()
    {
        var grams = new List<string>();
        foreach (var (key, order) in CharNgrams.Keys("Der 2x", 4))
        {
            Assert.Equal(order, CharNgrams.Order(key));
            grams.Add(CharNgrams.ToText(key));
        }
        // "der" -> _der_, "x" -> _x_ (the digit only separates).
        Assert.Equal(["d", "_d", "e", "de", "_de", "r", "er", "der", "_der", "r_", "er_", "der_",
                      "x", "_x", "x_", "_x_"], grams);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   12 -- !!")]
    [InlineData("a")]
    [InlineData("Überprüfen Sie die Datei /etc/apt/sources.list, bevor Sie aktualisieren.")]
    [InlineData("Cài đặt gói phần mềm bằng apt-get; ŁÓDŹ Ελληνικά русский текст")]
    [InlineData("don't stop-believing\tTAB\nnew line ǅ ǈ İstanbul")]
    public void Keys_AnyText_MatchReference(string text)
    {
        for (int max = 1; max <= CharNgrams.MaxOrder; max++)
        {
            var fast = new List<string>();
            foreach (var (key, _) in CharNgrams.Keys(text, max)) fast.Add(CharNgrams.ToText(key));
            Assert.Equal(CharNgrams.Reference(text, max).Order(StringComparer.Ordinal), fast.Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void FromText_ToText_RoundTrip()
    {
        foreach (var g in new[] { "a", "_a", "ab_", "_ab_", "ß", "ελ" })
            Assert.Equal(g, CharNgrams.ToText(CharNgrams.FromText(g)));
        Assert.Throws<ArgumentException>(() => CharNgrams.FromText("abcde"));
    }

    private static NgramProfiles Tiny() => NgramProfiles.Count(
        [("de", "der die das der"), ("en", "the the this"), ("de", "Dieser")], [10, 3, 2, 0], 1, ["tiny"]);

    [Fact]
    public void Count_TinyTexts_KeepsTheMostFrequentPerOrderWithTotals()
    {
        var p = Tiny();
        Assert.Equal(["de", "en"], p.Languages.Select(l => l.Language));
        var en = p.Languages[1];
        // the the this: letters 3+3+4, bigrams (word length + 1) 4+4+5, trigrams (word length) 3+3+4.
        Assert.Equal([10L, 13, 10, 0], en.Totals);
                // Ties go by ordinal text: h before t, "e_" before "he", "he_" before "the".
        Assert.Equal([("h", 3L), ("t", 3), ("e", 2), ("i", 1), ("s", 1), ("_t", 3), ("th", 3), ("e_", 2), ("_th", 3), ("he_", 2)],
            en.Ngrams.Select(g => (CharNgrams.ToText(g.Key), g.Count)));
    }

    [Fact]
    public void Write_Read_RoundTrip_AndBadLinesNameTheirNumber()
    {
        var text = Tiny().ToString();
        Assert.StartsWith("# tiny\norders 10 3 2 0\nlang de ", text, StringComparison.Ordinal);
        Assert.Equal(text, NgramProfiles.Read(text).ToString());
        var e = Assert.Throws<InvalidDataException>(() => NgramProfiles.Read("orders 1 1 1 0\nlang en 1 1 1 0\nabcde 3\n", "x.txt"));
        Assert.Contains("x.txt:3", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => NgramProfiles.Read("lang en 1 1 1 0\n"));
    }

    [Theory]
    [InlineData("Die Paketverwaltung hält eine Liste der installierten Pakete.")]
    [InlineData("The package manager keeps a list of the installed packages.")]
    [InlineData("La gestion des paquets est au cœur du système Debian ; elle garde la liste des fichiers installés.")]
    [InlineData("Система управления пакетами хранит список установленных пакетов.")]
    [InlineData("x")]
    [InlineData("")]
    public void Score_MatchesTheReference(string text)
    {
        var model = NgramLanguageModel.Default;
        var sums = new float[model.Languages.Count];
        int n = model.Score(text, sums);
        var reference = model.ScoreReference(text, out int refN);
        Assert.Equal(refN, n);
        for (int l = 0; l < sums.Length; l++)
            Assert.True(Math.Abs(sums[l] - reference[l]) <= 1e-4 * Math.Max(1, Math.Abs(reference[l])), $"{model.Languages[l]}: {sums[l]} vs {reference[l]}");
        var guess = model.Guess(text, "en");
        Assert.Equal(n, guess.Ngrams);
        if (n > 0) Assert.Equal(model.Languages[Array.IndexOf(reference, reference.Max())], guess.Language);
    }

    [Fact]
    public void Guess_TinyModel_PicksTheLanguageWithMoreLikelyNgrams()
    {
        var model = new NgramLanguageModel(Tiny());
        Assert.Equal("en", model.Guess("the").Language);
        Assert.Equal("de", model.Guess("der die").Language);
        var g = model.Guess("der", "en");
        Assert.True(g.FocusMargin < 0 && Math.Abs(g.FocusMargin + g.Margin) < 1e-9, g.ToString());
        Assert.Equal(new NgramGuess(null, null, 0, 0), model.Guess("12 34"));
    }
}
