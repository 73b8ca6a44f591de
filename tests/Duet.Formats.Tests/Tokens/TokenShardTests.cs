// The token shard reader against files written by hand from the format's tables (TokenFormat.cs, docs/data.md):
// documents, offsets and languages read back (uint16 and uint32 tokens), damaged files are named in the error,
// and TokenCorpus opens a split from manifest.json's "tokens" section, checking counts and, when asked, SHA-256.
// `duet data tokenize` itself is tested in Duet.Data.Tests (CorpusTokenizerTests).
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Duet.Formats.Tokens;

namespace Duet.Formats.Tests.Tokens;

public sealed class TokenShardTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-shard-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly int[][] Documents = [[1, 10, 11, 12, 2], [1, 2], [1, 300, 301, 302, 303, 2], [1, 42, 2]];
    private static readonly byte[] Languages = [0, 1, 2, 3];

    /// <summary>NAME.bin and NAME.idx, field by field as the tables give them.</summary>
    private static (string Bin, string Idx) WriteShard(string dir, string name, int vocab, int[][] docs, byte[] languages)
    {
        int bpt = vocab <= 65536 ? 2 : 4;
        long tokens = docs.Sum(d => (long)d.Length);
        var bin = new byte[64 + tokens * bpt];
        "DUETTOK1"u8.CopyTo(bin);
        BinaryPrimitives.WriteUInt32LittleEndian(bin.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(bin.AsSpan(12), (uint)bpt);
        BinaryPrimitives.WriteInt64LittleEndian(bin.AsSpan(16), tokens);
        BinaryPrimitives.WriteInt64LittleEndian(bin.AsSpan(24), docs.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(bin.AsSpan(32), (uint)vocab);
        int at = 64;
        foreach (var t in docs.SelectMany(d => d))
        {
            if (bpt == 2) BinaryPrimitives.WriteUInt16LittleEndian(bin.AsSpan(at), (ushort)t);
            else BinaryPrimitives.WriteUInt32LittleEndian(bin.AsSpan(at), (uint)t);
            at += bpt;
        }
        var idx = new byte[32 + 8 * (docs.Length + 1) + docs.Length];
        "DUETIDX1"u8.CopyTo(idx);
        BinaryPrimitives.WriteUInt32LittleEndian(idx.AsSpan(8), 1);
        BinaryPrimitives.WriteInt64LittleEndian(idx.AsSpan(16), docs.Length);
        long offset = 0;
        for (int d = 0; d <= docs.Length; d++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(idx.AsSpan(32 + 8 * d), offset);
            if (d < docs.Length) offset += docs[d].Length;
        }
        languages.CopyTo(idx.AsSpan(32 + 8 * (docs.Length + 1)));
        Directory.CreateDirectory(Path.Combine(dir, "tokens"));
        string binPath = Path.Combine(dir, "tokens", name + ".bin"), idxPath = Path.Combine(dir, "tokens", name + ".idx");
        File.WriteAllBytes(binPath, bin);
        File.WriteAllBytes(idxPath, idx);
        return (binPath, idxPath);
    }

    private static string Sha(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>A manifest with the rest of a build's fields (which the reader skips) and a tokens section listing one train shard.</summary>
    private string WriteCorpus(string name)
    {
        var dir = Path.Combine(_dir, name);
        var (bin, idx) = WriteShard(dir, "train-00000", 400, Documents, Languages);
        long tokens = Documents.Sum(d => (long)d.Length);
        File.WriteAllText(Path.Combine(dir, "manifest.json"), $$"""
            {
              "recipe": "hand", "recipeSha256": "", "sources": {}, "dropped": {}, "kept": {},
              "shards": [ { "path": "train/train-00000.jsonl", "split": "train", "documents": 4, "characters": 10, "sha256": "" } ],
              "tokens": {
                "tokenizer": "tokenizer.json", "tokenizerSha256": "", "vocabSize": 400, "bytesPerToken": 2, "bos": 1, "eos": 2,
                "counts": { "train": { "zh": { "documents": 1, "tokens": 2 }, "en": { "documents": 1, "tokens": 5 } } },
                "shards": [ { "bin": "tokens/train-00000.bin", "idx": "tokens/train-00000.idx", "text": "train/train-00000.jsonl", "split": "train",
                              "documents": 4, "tokens": {{tokens}}, "binSha256": "{{Sha(bin)}}", "idxSha256": "{{Sha(idx)}}" } ]
              }
            }
            """);
        return dir;
    }

    private static void Patch(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        f.Write(bytes);
    }

    private static InvalidDataException OpenFails(string bin, string named)
    {
        var e = Assert.Throws<InvalidDataException>(() => TokenShard.Open(bin).Dispose());
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        return e;
    }

    [Theory]
    [InlineData(400, 2)]
    [InlineData(70001, 4)]
    public void Open_HandWrittenShard_ReadsEveryDocumentTokenAndLanguage(int vocab, int bytesPerToken)
    {
        int[][] docs = vocab > 65536 ? [.. Documents, [70000, 65536, 2]] : Documents;
        byte[] languages = vocab > 65536 ? [.. Languages, 1] : Languages;
        var (bin, idx) = WriteShard(_dir, "s", vocab, docs, languages);
        using var shard = TokenShard.Open(bin);
        Assert.Equal((bin, idx, vocab, bytesPerToken), (shard.BinPath, shard.IdxPath, shard.VocabSize, shard.BytesPerToken));
        Assert.Equal((docs.Sum(d => (long)d.Length), (long)docs.Length), (shard.TokenCount, shard.DocumentCount));
        Assert.Equal(shard.TokenCount, shard.DocumentOffset(shard.DocumentCount));
        for (int d = 0; d < docs.Length; d++)
        {
            Assert.Equal(docs[d], shard.DocumentTokens(d));
            Assert.Equal((TokenLanguage)languages[d], shard.Language(d));
            Assert.Equal(docs[d][0], shard.Token(shard.DocumentOffset(d)));
        }
        var all = new int[shard.TokenCount];
        shard.CopyTokens(0, all);
        Assert.Equal(docs.SelectMany(d => d), all);
        Assert.Throws<ArgumentOutOfRangeException>(() => shard.Token(shard.TokenCount));
        Assert.Throws<ArgumentOutOfRangeException>(() => shard.CopyTokens(1, all));
    }

    [Fact]
    public void Open_TruncatedBin_ThrowsNamingTheFileAndTheExpectedLength()
    {
        var (bin, _) = WriteShard(_dir, "truncated", 400, Documents, Languages);
        long length = new FileInfo(bin).Length;
        using (var f = new FileStream(bin, FileMode.Open)) f.SetLength(length - 2);
        var e = OpenFails(bin, bin);
        Assert.Contains($"{length - 2} bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains($"= {length}", e.Message, StringComparison.Ordinal);
        using (var f = new FileStream(bin, FileMode.Open)) f.SetLength(10);
        OpenFails(bin, "shorter than the 64-byte header");
    }

    [Fact]
    public void Open_FlippedMagicOrUnknownVersion_ThrowsNamingTheFile()
    {
        var (bin, idx) = WriteShard(_dir, "magic", 400, Documents, Languages);
        using (TokenShard.Open(bin)) { } // intact, it opens
        Patch(bin, 0, "X"u8);
        Assert.Contains("expected \"DUETTOK1\"", OpenFails(bin, bin).Message, StringComparison.Ordinal);
        Patch(bin, 0, "D"u8);
        Patch(bin, 8, [2]);
        Assert.Contains("version 2", OpenFails(bin, bin).Message, StringComparison.Ordinal);
        Patch(bin, 8, [1]);
        Patch(idx, 7, "2"u8);
        Assert.Contains("expected \"DUETIDX1\"", OpenFails(bin, idx).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_IdxWithDecreasingOffset_ThrowsNamingTheFile()
    {
        var (bin, idx) = WriteShard(_dir, "offsets", 400, Documents, Languages);
        long tokens = Documents.Sum(d => (long)d.Length);
        // offset[2] set below offset[1]
        var bytes = File.ReadAllBytes(idx);
        long o1 = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(32 + 8));
        var patch = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(patch, o1 - 1);
        Patch(idx, 32 + 16, patch);
        Assert.Contains("must not decrease", OpenFails(bin, idx).Message, StringComparison.Ordinal);
        // the last offset past the tokens
        File.WriteAllBytes(idx, bytes);
        BinaryPrimitives.WriteInt64LittleEndian(patch, tokens + 1);
        Patch(idx, 32 + 8 * Documents.Length, patch);
        Assert.Contains($"past the {tokens} tokens", OpenFails(bin, idx).Message, StringComparison.Ordinal);
        // an unknown language code
        File.WriteAllBytes(idx, bytes);
        Patch(idx, bytes.Length - 1, [7]);
        Assert.Contains("language code 7", OpenFails(bin, idx).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OpenCorpus_ChangedToken_IsFoundOnlyWhenVerifying()
    {
        var dir = WriteCorpus("verify");
        var bin = Path.Combine(dir, "tokens", "train-00000.bin");
        using (var c = TokenCorpus.Open(dir, "train", verify: true))
        {
            Assert.Equal((Documents.Sum(d => (long)d.Length), 4L, 400, (int?)1, (int?)2), (c.TokenCount, c.DocumentCount, c.VocabSize, c.Bos, c.Eos));
            Assert.Equal(["en", "zh"], c.Manifest.Counts["train"].Keys); // ordinal order, as written
        }
        var bytes = File.ReadAllBytes(bin);
        bytes[^1] ^= 1; // a token changes; lengths and counts stay valid
        File.WriteAllBytes(bin, bytes);
        using (var c = TokenCorpus.Open(dir, "train")) Assert.Equal(Documents.Sum(d => (long)d.Length), c.Shards[0].TokenCount);
        var e = Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(dir, "train", verify: true).Dispose());
        Assert.Contains(bin, e.Message, StringComparison.Ordinal);
        Assert.Contains("SHA-256", e.Message, StringComparison.Ordinal);
        Assert.Contains("no token shards for split 'test'", Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(dir, "test")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OpenCorpus_CountsDisagreeWithManifest_ThrowsNamingBoth()
    {
        var dir = WriteCorpus("counts");
        var manifest = Path.Combine(dir, "manifest.json");
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("\"documents\": 4, \"tokens\"", "\"documents\": 5, \"tokens\"", StringComparison.Ordinal));
        var e = Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(dir, "train").Dispose());
        Assert.Contains(manifest, e.Message, StringComparison.Ordinal);
        Assert.Contains("records", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OpenCorpus_MissingBrokenOrUntokenizedManifest_ThrowsOneClearError()
    {
        var dir = Path.Combine(_dir, "bad");
        Directory.CreateDirectory(dir);
        Assert.Contains("no manifest", Assert.Throws<FileNotFoundException>(() => TokenCorpus.Open(dir, "train")).Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir, "manifest.json"), "{ not json");
        Assert.Contains("not a valid manifest", Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(dir, "train")).Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir, "manifest.json"), "null");
        Assert.Contains("empty manifest", Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(dir, "train")).Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir, "manifest.json"), """{ "recipe": "x", "shards": [] }""");
        Assert.Contains("no tokens section; run `duet data tokenize", Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(dir, "train")).Message, StringComparison.Ordinal);
        Assert.Equal(Encoding.UTF8.GetBytes("{"), File.ReadAllBytes(Path.Combine(dir, "manifest.json"))[..1]); // read, never written
    }
}
