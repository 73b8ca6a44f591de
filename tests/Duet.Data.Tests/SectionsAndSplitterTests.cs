using Duet.Data.LanguageId;
using Duet.Data.Normalize;

namespace Duet.Data.Tests;

public class SectionsAndSplitterTests
{
    private static string Prose(int i) =>
        $"Paragraph {i} explains how the package manager resolves dependencies, and why the administrator should read the changelog before an upgrade.";

    [Fact]
    public void Sections_ShortText_IsOneSection_AndZeroMeansWhole()
    {
        Assert.Equal(["short text"], Sections.Split("short text", 100));
        var long1 = string.Join("\n\n", Enumerable.Range(0, 50).Select(Prose));
        Assert.Equal([long1], Sections.Split(long1, 0));
    }

    [Fact]
    public void Sections_CutAtParagraphs_WithinBudget_PreferringHeadings()
    {
        var paras = new List<string>();
        for (int i = 0; i < 60; i++)
        {
            if (i % 10 == 0) paras.Add($"{i / 10 + 1}.2. Installing packages");
            paras.Add(Prose(i));
        }
        var text = string.Join("\n\n", paras);
        var sections = Sections.Split(text, 1000);
        Assert.True(sections.Count > 5);
        Assert.All(sections, s => Assert.InRange(s.Length, 1, 1000));
        Assert.Equal(text, string.Join("\n\n", sections)); // nothing lost, nothing reordered
        // Each heading starts a section: once a section holds half its budget it ends before a heading (greedy
        // packing alone would put four of the six headings inside sections).
        Assert.Equal(6, sections.Count(s => s.Split('\n')[0].EndsWith(". Installing packages", StringComparison.Ordinal)));
    }

    [Fact]
    public void Sections_OversizedParagraphAndLine_AreCutAtLinesAndSpaces()
    {
        var line = string.Join(' ', Enumerable.Range(0, 300).Select(i => $"word{i}"));   // one ~2600-character line
        var para = string.Join('\n', Enumerable.Range(0, 40).Select(i => $"line {i} of a long listing"));
        var text = "intro\n\n" + para + "\n\n" + line;
        var sections = Sections.Split(text, 500);
        Assert.All(sections, s => Assert.InRange(s.Length, 1, 500));
        static string Squeeze(string s) => string.Concat(s.Where(c => !char.IsWhiteSpace(c)));
        Assert.Equal(Squeeze(text), Squeeze(string.Concat(sections)));
        Assert.Contains(sections, s => s.StartsWith("line 0 of", StringComparison.Ordinal) || s.Contains("\nline 0 of"));
    }

    private const string English =
        "The apt-get command installs packages and their dependencies. It reads the sources list, downloads the archives and unpacks them in the right order.";
    private const string Chinese =
        "包管理系统会自动解决依赖关系。管理员在升级之前应该阅读更新日志，并确认软件源的配置是正确的，这样系统才能保持稳定。";
    private const string Code = "$ sudo apt-get install -y nginx && systemctl enable --now nginx; ls -l /etc/{nginx,apt}/*.conf";

    [Fact]
    public void Splitter_EnglishProseWithCode_IsOneEnglishPart_CodeIncluded()
    {
        var text = $"{English}\n\n{Code}\n\n{English}";
        Assert.Equal([("en", text)], LanguageSplitter.Split(text));
    }

    [Fact]
    public void Splitter_MostlyCode_IsOther()
    {
        const string c = "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; if (sum > max) { max = sum; } }";
        var text = $"{c}\n\n{c.Replace("sum", "acc")}\n\n{c.Replace("max", "top")}\n\nSee above.";
        Assert.Equal("other", Assert.Single(LanguageSplitter.Split(text)).Language);
    }

    [Fact]
    public void Splitter_ChineseWithEnglishTerms_StaysChinese()
    {
        var text = $"{Chinese}\n\n使用 apt-get install 命令安装软件包，然后用 dpkg -l 查看。\n\n{Chinese}";
        Assert.Equal([("zh", text)], LanguageSplitter.Split(text));
    }

    [Fact]
    public void Splitter_TranslationWithUntranslatedParagraphs_SplitsByParagraphAndLine_KeepingOrder()
    {
        // A partly translated manual: Chinese and English paragraphs, code after an English one, and one paragraph
        // whose lines are English, Chinese, and Chinese naming English terms.
        var mixedPara = $"{English}\n{Chinese}\n运行 aptitude search 来查找软件包";
        var text = $"{Chinese}\n\n{English}\n\n{Code}\n\n{mixedPara}\n\n{Chinese}";
        var parts = LanguageSplitter.Split(text);
        Assert.Equal(["zh", "en"], parts.Select(p => p.Language));
        Assert.Equal($"{English}\n\n{Code}\n\n{English}", parts[1].Text);
        Assert.Equal($"{Chinese}\n\n{Chinese}\n运行 aptitude search 来查找软件包\n\n{Chinese}", parts[0].Text);
    }
}
