// Language tags by script share and the English-word model.
using Duet.Data.LanguageId;

namespace Duet.Data.Tests;

public class LanguageTaggerTests
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
    public void Tag_Paragraph_GetsItsLanguage(string text, string expected) => Assert.Equal(expected, LanguageTagger.Tag(text));

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
}
