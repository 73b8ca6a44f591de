// Readable text from HTML: furniture and code out, blocks as lines and paragraphs, entities decoded, bad markup tolerated.
using Duet.Data.Extract;

namespace Duet.Data.Tests;

public class HtmlTextTests
{
    [Fact]
    public void Extract_DocumentationPage_KeepsTheReadableTextOnly()
    {
        const string html = """
            <!DOCTYPE html><html><head><title>Ignored title</title><style>p { color: red }</style>
            <script>var x = "<p>not text</p>";</script></head>
            <body><nav><a href="/">Home</a> | <a href="/next">Next</a></nav>
            <header>Site header</header>
            <h1>Installing &amp; upgrading</h1>
            <p>Use <code>apt</code> to install   packages.<br>It resolves
               dependencies&nbsp;itself.</p>
            <!-- a comment <p>hidden</p> -->
            <p>中文段落：软件包&lt;管理&gt;。</p>
            <pre>line 1
              indented line 2</pre>
            <ul><li>first</li><li>second</li></ul>
            <footer>Copyright footer</footer><aside>Related links</aside>
            </body></html>
            """;
        var text = HtmlText.Extract(html);
        Assert.Equal(
            "Installing & upgrading\n\nUse apt to install packages.\nIt resolves dependencies itself.\n\n中文段落：软件包<管理>。\n\n" +
            "line 1\n  indented line 2\n\nfirst\nsecond", text);
    }

    [Theory]
    [InlineData("a < b and c > d", "a < b and c > d")]
    [InlineData("<p>unclosed paragraph", "unclosed paragraph")]
    [InlineData("<script>never closed", "")]
    [InlineData("<p>x</p><", "x\n\n<")]
    [InlineData("<div><div>nested</div></div>", "nested")]
    public void Extract_MalformedMarkup_DegradesToText(string html, string expected)
        => Assert.Equal(expected, HtmlText.Extract(html));
}
