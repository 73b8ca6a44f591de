// Man page source to text, fortune files to documents, and the dpkg status lookup behind named Debian sources.
using Duet.Data.Extract;
using Duet.Data.Sources;

namespace Duet.Data.Tests;

public class RoffAndDebianTests
{
    [Fact]
    public void RoffExtract_ManPage_GivesHeadingsParagraphsAndPlainText()
    {
        const string roff = ".\\\" comment\n.de Sh \\\" a macro\n.br\n..\n.TH \"AB\" 1 \"2003\" \"x\"\n.SH NAME\nab \\- Apache HTTP \\fB服务器\\fR 测试工具\n" +
                            ".SH \"SYNOPSIS\"\n.B ab\n[ \\-\\fIn\\fR requests ]\n.PP\nSecond \\(lqparagraph\\(rq\\(em here.\\\" trailing comment\n" +
                            ".nf\nline one\n  line two\n.fi\n";
        Assert.Equal("NAME\n\nab - Apache HTTP 服务器 测试工具\n\nSYNOPSIS\n\nab [ -n requests ]\n\nSecond “paragraph”— here.\nline one\n  line two",
            RoffText.Extract(roff));
    }

    [Fact]
    public void Read_FortuneFile_JoinsFortunesIntoDocumentsOfAbout2000Characters()
    {
        var dir = Directory.CreateTempSubdirectory("duet-fortune-").FullName;
        try
        {
            var path = Path.Combine(dir, "cookie");
            File.WriteAllText(path, string.Join("\n%\n", Enumerable.Range(0, 100).Select(i => $"Fortune number {i} says something wise about life.")) + "\n%\n");
            var stats = new SourceStats();
            var docs = FileSource.Read("f", dir, [path], stats, SourceFormat.Fortune).ToList();
            Assert.True(docs.Count >= 2, $"{docs.Count} documents");
            Assert.All(docs.SkipLast(1), d => Assert.InRange(d.Text.Length, FileSource.FortuneDocumentCharacters, FileSource.FortuneDocumentCharacters + 100));
            Assert.Equal(100, docs.Sum(d => d.Text.Split("\n\n").Length));
            Assert.DoesNotContain(docs, d => d.Text.Contains('%'));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void PackageVersion_DpkgStatus_FindsInstalledPackagesOnly()
    {
        var status = Path.GetTempFileName();
        try
        {
            File.WriteAllText(status, "Package: a\nStatus: install ok installed\nVersion: 1.2\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 3\n\n");
            Assert.Equal("1.2", DebianSources.PackageVersion("a", status));
            Assert.Null(DebianSources.PackageVersion("b", status));
            Assert.Null(DebianSources.PackageVersion("c", status));
        }
        finally { File.Delete(status); }
    }

    [Fact]
    public void Find_UnknownName_ListsTheKnownOnes()
    {
        var e = Assert.Throws<InvalidDataException>(() => DebianSources.Find("nope"));
        Assert.Contains("fortunes-zh", e.Message, StringComparison.Ordinal);
    }
}
