// Documents from files, and bad input counted by reason without stopping the run (the data issue's acceptance 5).
using System.IO.Compression;
using System.Text;
using Duet.Data.Sources;

namespace Duet.Data.Tests;

public sealed class FileSourceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-src-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Gz(string text)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(Encoding.UTF8.GetBytes(text));
        return ms.ToArray();
    }

    [Fact]
    public void Read_MixedGoodAndBadFiles_YieldsTheGoodAndCountsTheBad()
    {
        var u = Encoding.UTF8;
        var files = new[]
        {
            Write("a.txt", u.GetBytes("\uFEFFplain text document")),
            Write("b.md", u.GetBytes("# Title\n\nMarkdown *text*.")),
            Write("c.txt.gz", Gz("compressed 中文 text")),
            Write("d.html", u.GetBytes("<html><head><script>x()</script></head><body><p>page text</p></body></html>")),
            Write("e.jsonl", u.GetBytes("{\"text\": \"line one\"}\nnot json\n{\"text\": 5}\n{\"other\": \"x\"}\n\n[1,2]\n{\"text\": \"line six\"}\n{\"text\": \"   \"}\n")),
            Write("f.bin", [1, 2, 0, 3, 4]),
            Write("g.txt", [0x66, 0x6F, 0xC3, 0x28, 0x6F]),        // invalid UTF-8
            Write("h.txt", u.GetBytes("  \n\t\n")),                  // empty
            Write("i.txt.gz", [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF]), // a gzip header, then a reserved block type
            Write("j.html", u.GetBytes("<nav>menu only</nav>")),   // no readable text
        };
        var stats = new SourceStats();
        var docs = FileSource.Read("test", _dir, files.Reverse(), stats).ToList();
        Assert.Equal(["a.txt", "b.md", "c.txt.gz", "d.html", "e.jsonl:1", "e.jsonl:7"], docs.Select(d => d.Id));
        Assert.Equal("plain text document", docs[0].Text);
        Assert.Equal("compressed 中文 text", docs[2].Text);
        Assert.Equal("page text", docs[3].Text);
        Assert.Equal(["line one", "line six"], docs.Skip(4).Select(d => d.Text));
        Assert.Equal(10, stats.Files);
        Assert.Equal(6, stats.Documents);
        Assert.Equal(1, stats.Skipped["binary"]);
        Assert.Equal(1, stats.Skipped["invalid_utf8"]);
        Assert.Equal(1, stats.Skipped["gzip_corrupt"]);
        Assert.Equal(4, stats.Skipped["jsonl_bad_line"]); // not json, a number, no field, an array
        Assert.Equal(3, stats.Skipped["empty"]);          // h.txt, j.html, the blank JSONL text
    }

    [Fact]
    public void Read_MissingFile_IsCountedUnreadable()
    {
        var stats = new SourceStats();
        Assert.Empty(FileSource.Read("test", _dir, [Path.Combine(_dir, "missing.txt")], stats));
        Assert.Equal(1, stats.Skipped["unreadable"]);
    }

    [Fact]
    public void Read_TruncatedOrDamagedGzip_IsSkippedNotShortened()
    {
        // GZipStream alone returns the inflated prefix of a cut file without an error; the trailer check must catch it.
        var text = string.Concat(Enumerable.Range(0, 4000).Select(i => $"line {i} of a long compressed document, 第{i}行。\n"));
        var full = Gz(text);
        var jsonl = Gz(string.Concat(Enumerable.Range(0, 2000).Select(i => $"{{\"text\": \"document number {i}\"}}\n")));
        var files = new[]
        {
            Write("a-full.txt.gz", full),
            Write("b-half.txt.gz", full[..(full.Length / 2)]),
            Write("c-no-trailer.txt.gz", full[..^8]),
            Write("d-short-trailer.txt.gz", full[..^3]),
            Write("e-flipped.txt.gz", Flip(full, full.Length - 6)),   // the stored length
            Write("f-half.jsonl.gz", jsonl[..(jsonl.Length / 2)]),
        };
        var stats = new SourceStats();
        var docs = FileSource.Read("test", _dir, files, stats).ToList();
        Assert.Equal(text, docs[0].Text);
        Assert.Equal(5, stats.Skipped["gzip_corrupt"]); // four whole-file documents and the JSONL file
        // The JSONL lines inflated before the cut were whole lines and are kept; the cut line is a bad line.
        var lines = docs.Skip(1).ToList();
        Assert.InRange(lines.Count, 100, 1999);
        Assert.All(lines.Select((d, i) => (d, i)), x => Assert.Equal($"document number {x.i}", x.d.Text));
        Assert.True(stats.Skipped.GetValueOrDefault("jsonl_bad_line") <= 1);
    }

    private static byte[] Flip(byte[] b, int at)
    {
        var c = (byte[])b.Clone();
        c[at] ^= 0x40;
        return c;
    }
}
