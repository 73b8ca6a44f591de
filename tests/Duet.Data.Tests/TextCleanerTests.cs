// Normalization of extracted text: terminal artefacts, controls, safe NFKC, whitespace.
using Duet.Data.Normalize;

namespace Duet.Data.Tests;

public class TextCleanerTests
{
    [Theory]
    [InlineData("\u001B[1;31mred\u001B[0m text", "red text")]                  // CSI colour codes
    [InlineData("\u001B]0;window title\u0007after", "after")]                  // OSC up to BEL
    [InlineData("\u001B]8;;http://x\u001B\\link\u001B]8;;\u001B\\", "link")]  // OSC hyperlink, ST-terminated
    [InlineData("N\bNA\bAM\bME\bE", "NAME")]                                  // man page bold (overstrike)
    [InlineData("_\bu_\bn_\bd_\be_\br", "under")]                              // man page underline
    [InlineData("a\u0000b\u0007c\u007Fd\u0085e\uFEFFf", "abcdef")]             // C0, DEL, C1, BOM
    [InlineData("line one\r\nline two\rline three", "line one\nline two\nline three")]
    public void Clean_TerminalArtefactsAndControls_AreRemoved(string input, string expected)
        => Assert.Equal(expected, TextCleaner.Clean(input));

    [Fact]
    public void Clean_FullWidthLettersAndDigits_BecomeAscii_ChinesePunctuationStays()
    {
        Assert.Equal("ABC 123", TextCleaner.Clean("ＡＢＣ　１２３").Replace('\u3000', ' '));
        const string zh = "你好，世界！真的吗？是的：（注释）……好；“引号”、《书名》。";
        Assert.Equal(zh, TextCleaner.Clean(zh));
        Assert.Equal("fi 1 kg", TextCleaner.Clean("ﬁ ① ㎏"));
    }

    [Fact]
    public void Clean_Whitespace_TrailingSpacesBlankRunsAndEndsNormalized()
    {
        const string input = "\n\n  indented line   \n\n\n\nnext\u00A0word\t\n\n";
        Assert.Equal("  indented line\n\nnext word", TextCleaner.Clean(input));
    }

    [Fact]
    public void Clean_EmojiZwjSequencesAndCombiningMarks_Survive()
    {
        const string s = "family 👨‍👩‍👧 and café (e + \u0301)";
        Assert.Equal(s, TextCleaner.Clean(s)); // already NFKC: nothing to fold
    }

    [Fact]
    public void Clean_UnpairedSurrogate_DoesNotThrow()
        => Assert.Equal("a\uD800b", TextCleaner.Clean("a\uD800b"));

    [Fact]
    public void Clean_OnlyControlsAndSpace_IsEmpty()
        => Assert.Equal("", TextCleaner.Clean("\u001B[0m \r\n\t \u0001\n"));

    [Fact]
    public void Clean_TableBorderLines_AreRemoved_RowsAndProseStay()
    {
        var text = "表 1.6. umask值举例\n┌───────┬──────┐\n│umask值│权限  │\n├───────┼──────┤\n│0022   │644   │\n└───────┴──────┘\n" +
                   "+-----+\n| a | b |\n=====\n--\nx - y = z\n";
        Assert.Equal("表 1.6. umask值举例\numask值\t权限\n0022\t644\n| a | b |\n--\nx - y = z", TextCleaner.Clean(text));
    }

    /// <summary>Box-drawing characters in the lines that stay: table rows become tab-separated cells, tree branches go.</summary>
    [Theory]
    [InlineData("    │ 软件包 │ 流行度 │大小 │ 说明 │", "    软件包\t流行度\t大小\t说明")]
    [InlineData("│mc      │V:65,   │1434 │文本模式的全屏文件管理器               │", "mc\tV:65,\t1434\t文本模式的全屏文件管理器")]
    [InlineData("  ├── bin\n  │   └── ls\n  └── etc", "  bin\n  ls\n  etc")]
    [InlineData("a ─> b", "a > b")]
    [InlineData("║ x ║ y ║", "x\ty")]
    public void Clean_BoxDrawingInRows_Removed(string input, string expected)
    {
        var cleaned = TextCleaner.Clean(input);
        Assert.Equal(expected, cleaned);
        Assert.DoesNotContain(cleaned, c => c is >= '\u2500' and <= '\u257F');
    }
}
