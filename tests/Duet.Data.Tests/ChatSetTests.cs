// The bilingual instruction set (duet data chat-set): what each kind of conversation is made from, and that the
// shipped data/chat is what the builder makes from the shipped sample, byte for byte.
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Duet.Data.Chat;

namespace Duet.Data.Tests;

public class ChatSetTests
{
    [Fact]
    public void Build_CommandsSectionsHandWritten_AsDocumented()
    {
        var docs = new[]
        {
            new ChatSource("ls - 列出目录内容\n\n总览\n\nls [选项]", "zh", "manpages-zh", "man1/ls.1.gz#zh"),
            new ChatSource("NAME(名称)\n\naccess - 确定文件是否可以存取访问\n\n描述", "zh", "manpages-zh", "man1/access.1.gz#zh"),
            new ChatSource("ls - list directory contents", "en", "manpages-zh", "man1/ls.1.gz#en"),          // English: not a command question
            new ChatSource("12.1. RAID and LVM\n\nRAID means Redundant Array of Independent Disks, a way to keep data when a disk fails.\n\n12.2. Virtualization\n\n12.2.1. Xen",
                "en", "debian-handbook-en", "h#0"),
            new ChatSource("1.2. 定制 bash\n\n你可以通过“~/.bashrc”来定制 bash 的行为，例如设置别名。\n\n1.3. Short\n\nok", "zh", "debian-reference-zh", "r#0"),
            new ChatSource("1.1. Title\n\n1.2. Another title", "en", "debian-reference-en", "r#1"),                  // a table of contents: nothing
        };
        var pairs = ChatSetBuilder.Build(docs);
        Assert.Contains(pairs, p => p is { User: "ls 命令是做什么的？", Assistant: "ls：列出目录内容。", Kind: "command" });
        Assert.Contains(pairs, p => p is { User: "access 命令是做什么的？", Kind: "command" });
        Assert.Contains(pairs, p => p.User == "What does the Debian documentation say about \"RAID and LVM\"?" && p.Assistant.StartsWith("RAID means"));
        Assert.Contains(pairs, p => p.User == "Debian 文档中关于“定制 bash”讲了什么？");
        Assert.DoesNotContain(pairs, p => p.User.Contains("Virtualization") || p.User.Contains("Title") || p.User.Contains("Short"));
        Assert.Equal(ChatSetBuilder.HandWritten.Length, pairs.Count(p => p.Kind == "hand-written"));
        Assert.Equal(pairs.Count, pairs.Select(p => p.User).Distinct().Count());
        var line = JsonDocument.Parse(ChatSetBuilder.ToJsonLine(pairs[0])).RootElement;
        Assert.Equal("assistant", line.GetProperty("messages")[1].GetProperty("role").GetString());
    }

    [Fact]
    public void ShippedSet_IsWhatTheBuilderMakesFromTheSample()
    {
        string root = Duet.Tests.Repo.Root;
        var sample = Path.Combine(root, "data", "sample");
        var manifest = Manifest.Load(Path.Combine(sample, "manifest.json"));
        var docs = new List<ChatSource>();
        foreach (var split in new[] { "train", "validation" })
            foreach (var shard in manifest.Shards.Where(s => s.Split == split))
            {
                using var reader = new StreamReader(new GZipStream(File.OpenRead(Path.Combine(sample, shard.Path)), CompressionMode.Decompress), Encoding.UTF8);
                for (string? l; (l = reader.ReadLine()) is not null;)
                {
                    if (l.Length == 0) continue;
                    using var d = JsonDocument.Parse(l);
                    var e = d.RootElement;
                    docs.Add(new ChatSource(e.GetProperty("text").GetString()!, e.GetProperty("lang").GetString()!, e.GetProperty("source").GetString()!, e.GetProperty("id").GetString()!));
                }
            }
        var pairs = ChatSetBuilder.Build(docs);
        foreach (var (split, validation) in new[] { ("train", false), ("validation", true) })
        {
            var want = File.ReadAllText(Path.Combine(root, "data", "chat", split + ".jsonl"), Encoding.UTF8);
            var got = string.Concat(pairs.Where(p => ChatSetBuilder.IsValidation(p) == validation).Select(p => ChatSetBuilder.ToJsonLine(p) + "\n"));
            Assert.Equal(want, got);
        }
    }
}
