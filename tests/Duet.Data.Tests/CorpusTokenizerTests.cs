// `duet data tokenize`: every document reads back as BOS + Encode(text) + EOS with its language, the output does
// not depend on the thread count, a changed text shard stops the run, and a manifest without tokens is written as
// before. The reader itself (damaged .bin and .idx files) is tested from the format's tables in
// Duet.Formats.Tests/Tokens/TokenShardTests.cs.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Duet.Data.Tokens;
using Duet.Formats.Tokens;
using Duet.Tokenizers;
using Duet.Tokenizers.Decoders;
using Duet.Tokenizers.Loaders;
using Duet.Tokenizers.Trainer;

namespace Duet.Data.Tests;

/// <summary>A small bilingual corpus built once by the pipeline, and a tokenizer trained on it; tests tokenize copies.</summary>
public sealed class TokenCorpusFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("duet-tokens-").FullName;
    public string Corpus => Path.Combine(Root, "corpus");
    public string TokenizerPath => Path.Combine(Root, "tok", "tokenizer.json");
    public byte[] BuildManifest { get; }

    private static string English(Random rng, int sentences) => SyntheticText.English(rng, sentences);

    private static string Chinese(Random rng, int sentences) => SyntheticText.Chinese(rng, sentences, alphabet: 300);

    public TokenCorpusFixture()
    {
        var src = Path.Combine(Root, "src");
        Directory.CreateDirectory(src);
        var rng = new Random(5);
        var all = new StringBuilder();
        for (int i = 0; i < 24; i++) File.WriteAllText(Path.Combine(src, $"en{i:D2}.txt"), English(rng, 10));
        for (int i = 0; i < 24; i++) File.WriteAllText(Path.Combine(src, $"zh{i:D2}.txt"), Chinese(rng, 8));
        // Special tokens written as text stay text: no BOS or EOS inside a document.
        File.WriteAllText(Path.Combine(src, "special.txt"), "The tags <s> and </s> and <|im_end|> are text here. " + English(rng, 8));
        File.WriteAllText(Path.Combine(src, "mixed.html"), "<p>" + English(rng, 8) + "</p><p>" + Chinese(rng, 8) + "</p>");
        var recipe = Path.Combine(Root, "recipe.json");
        File.WriteAllText(recipe, """
            {
              "name": "tokens-test",
              "sources": [ { "name": "local", "paths": ["src"] } ],
              "languages": ["en", "zh"],
              "quality": { "minWords": 40, "minHanCharacters": 40 },
              "dedup": { "exact": true, "near": false },
              "split": { "validationFraction": 0.2 },
              "shardCharacters": 4000,
              "samplesPerReason": 1
            }
            """);
        using (var p = new DataPipeline(Recipe.Load(recipe), Corpus)) p.Run(recipe);
        BuildManifest = File.ReadAllBytes(Path.Combine(Corpus, "manifest.json"));

        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 700 });
        foreach (var f in Directory.GetFiles(src).Order(StringComparer.Ordinal)) trainer.AddText(File.ReadAllText(f));
        TokenizerJsonWriter.Save(trainer.Train(), TokenizerPath);
    }

    /// <summary>A fresh copy of the built corpus (no tokens yet).</summary>
    public string CopyCorpus(string name)
    {
        var dest = Path.Combine(Root, name);
        foreach (var f in Directory.EnumerateFiles(Corpus, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dest, Path.GetRelativePath(Corpus, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        return dest;
    }

    public void Dispose() => Directory.Delete(Root, true);
}

public sealed class CorpusTokenizerTests(TokenCorpusFixture fx) : IClassFixture<TokenCorpusFixture>
{
    private static List<(string Lang, string Text)> ReadJsonl(string path) => File.ReadLines(path)
        .Select(l => JsonDocument.Parse(l).RootElement)
        .Select(e => (e.GetProperty("lang").GetString()!, e.GetProperty("text").GetString()!)).ToList();

    private Manifest Tokenize(string dir, int threads)
    {
        var t = CorpusTokenizer.Load(fx.TokenizerPath);
        t.Threads = threads;
        return t.Run(dir);
    }

    [Fact]
    public void Tokenize_BilingualCorpus_EveryDocumentReadsBackAsBosTextEos()
    {
        var dir = fx.CopyCorpus("roundtrip");
        var m = Tokenize(dir, 2);
        var tok = Tokenizer.Load(fx.TokenizerPath);
        var t = m.Tokens!;
        Assert.Equal(("tokenizer.json", (int?)1, (int?)2, tok.VocabSize, 2), (t.Tokenizer, t.Bos, t.Eos, t.VocabSize, t.BytesPerToken));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(fx.TokenizerPath))), t.TokenizerSha256);
        Assert.Equal(m.Shards.Select(s => s.Path), t.Shards.Select(s => s.Text));
        Assert.True(m.Shards.Count >= 4, $"several text shards ({m.Shards.Count})");
        Assert.Equal(["train", "validation"], t.Counts.Keys);

        var sums = new Dictionary<(string, string), (long Docs, long Tokens)>();
        bool sawSpecialText = false;
        foreach (var info in t.Shards)
        {
            var docs = ReadJsonl(Path.Combine(dir, info.Text));
            using var shard = TokenShard.Open(Path.Combine(dir, info.Bin));
            Assert.Equal(docs.Count, shard.DocumentCount);
            Assert.Equal((info.Documents, info.Tokens), (shard.DocumentCount, shard.TokenCount));
            Assert.Equal(0, shard.DocumentOffset(0));
            Assert.Equal(shard.TokenCount, shard.DocumentOffset(shard.DocumentCount));
            for (int d = 0; d < docs.Count; d++)
            {
                int[] expected = [1, .. tok.Encode(docs[d].Text, addSpecialTokens: false, parseSpecial: false), 2];
                Assert.Equal(expected, shard.DocumentTokens(d));
                Assert.Equal(CorpusTokenizer.LanguageOf(docs[d].Lang), shard.Language(d));
                Assert.Equal(expected[1], shard.Token(shard.DocumentOffset(d) + 1));
                if (docs[d].Text.Contains("<s>", StringComparison.Ordinal))
                {
                    sawSpecialText = true;
                    Assert.DoesNotContain(1, expected[1..^1]);
                    Assert.Contains(1, tok.Encode(docs[d].Text, addSpecialTokens: false, parseSpecial: true)); // what parsing would have done
                }
                var key = (info.Split, docs[d].Lang);
                var s = sums.GetValueOrDefault(key);
                sums[key] = (s.Docs + 1, s.Tokens + expected.Length);
            }
        }
        Assert.True(sawSpecialText, "the document with <s> as text was kept");
        Assert.Contains(("train", "en"), sums.Keys);
        Assert.Contains(("train", "zh"), sums.Keys);
        var counted = t.Counts.SelectMany(s => s.Value.Select(l => (Key: (s.Key, l.Key), Value: (l.Value.Documents, l.Value.Tokens)))).ToDictionary(x => x.Key, x => x.Value);
        Assert.Equal(sums.OrderBy(x => x.Key).ToList(), counted.OrderBy(x => x.Key).ToList());
        // the same documents as the build kept
        Assert.Equal(m.Kept.SelectMany(s => s.Value.Select(l => ((s.Key, l.Key), l.Value.Documents))).Order(),
            counted.Select(x => (x.Key, x.Value.Documents)).Order());

        using var corpus = TokenCorpus.Open(dir, "train", verify: true);
        Assert.Equal(sums.Where(x => x.Key.Item1 == "train").Sum(x => x.Value.Tokens), corpus.TokenCount);
        Assert.DoesNotContain(Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories), f => f.Contains(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public void Tokenize_OneThreadAndFourThreads_WriteByteIdenticalFiles()
    {
        var a = fx.CopyCorpus("threads1");
        var b = fx.CopyCorpus("threads4");
        Tokenize(a, 1);
        Tokenize(b, 4);
        var files = Directory.EnumerateFiles(a, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(a, f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(files, Directory.EnumerateFiles(b, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(b, f)).Order(StringComparer.Ordinal));
        Assert.Contains(files, f => f.EndsWith(".bin", StringComparison.Ordinal));
        foreach (var f in files) Assert.True(File.ReadAllBytes(Path.Combine(a, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, f))), $"{f} differs");

        // Everything `data build` wrote comes back unchanged; tokens are only added.
        var m = ManifestFile.Read(a);
        Assert.NotNull(m.Tokens);
        m.Tokens = null;
        Assert.Equal(Encoding.UTF8.GetString(fx.BuildManifest), Encoding.UTF8.GetString(ManifestFile.Serialize(m)));

        // Tokenizing again replaces the files with the same bytes.
        var before = File.ReadAllBytes(Path.Combine(a, "manifest.json"));
        Tokenize(a, 3);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(a, "manifest.json")));
    }

    [Fact]
    public void Tokenize_IntoAnotherFolder_LeavesTheCorpusUntouched_AndGivesTheSameTokens()
    {
        var src = fx.CopyCorpus("out-src");
        var inPlace = fx.CopyCorpus("out-inplace");
        var before = Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        var outDir = Path.Combine(Path.GetDirectoryName(src)!, "out-tokens");
        var t = CorpusTokenizer.Load(fx.TokenizerPath);
        var m = t.Run(src, CorpusTokenizer.ReadCorpus(src), outDir);
        Tokenize(inPlace, 2);
        // The corpus folder is exactly as it was: no tokens/, the same manifest.
        Assert.Equal(before.Keys.Order(), Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories).Order());
        foreach (var (f, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(f));
        // The new folder's manifest points at the corpus's text shards, which verify, and its token shards equal in-place ones.
        Assert.All(m.Shards, s => Assert.StartsWith("../", s.Path, StringComparison.Ordinal));
        Assert.Empty(CorpusVerifier.Verify(outDir));
        using var corpus = TokenCorpus.Open(outDir, "train", verify: true);
        Assert.True(corpus.TokenCount > 0);
        foreach (var bin in Directory.GetFiles(Path.Combine(inPlace, "tokens")))
            Assert.Equal(File.ReadAllBytes(bin), File.ReadAllBytes(Path.Combine(outDir, "tokens", Path.GetFileName(bin))));
    }

    [Fact]
    public void Tokenize_GzipTextShard_GivesTheSameTokenShard()
    {
        var plain = fx.CopyCorpus("plain");
        var gz = fx.CopyCorpus("gz");
        Tokenize(plain, 2);
        // The build's "compress" option stores shards as .jsonl.gz; the manifest's SHA-256 stays that of the text.
        var m = ManifestFile.Read(gz);
        var text = m.Shards[0].Path;
        using (var input = File.OpenRead(Path.Combine(gz, text)))
        using (var output = new System.IO.Compression.GZipStream(File.Create(Path.Combine(gz, text + ".gz")), System.IO.Compression.CompressionLevel.Optimal))
            input.CopyTo(output);
        File.Delete(Path.Combine(gz, text));
        m.Shards[0] = m.Shards[0] with { Path = text + ".gz" };
        ManifestFile.Write(gz, m);
        var t = Tokenize(gz, 2).Tokens!;
        Assert.Equal((text + ".gz", "tokens/train-00000.bin"), (t.Shards[0].Text, t.Shards[0].Bin));
        Assert.Equal(File.ReadAllBytes(Path.Combine(plain, "tokens", "train-00000.bin")), File.ReadAllBytes(Path.Combine(gz, "tokens", "train-00000.bin")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(plain, "tokens", "train-00000.idx")), File.ReadAllBytes(Path.Combine(gz, "tokens", "train-00000.idx")));
    }

    [Fact]
    public void Build_WithoutTokenize_WritesNoTokensSection()
    {
        var json = Encoding.UTF8.GetString(fx.BuildManifest);
        Assert.DoesNotContain("\"tokens\"", json, StringComparison.Ordinal);
        Assert.Null(ManifestFile.Read(fx.Corpus).Tokens);
        // Read and written back, a build manifest is the same bytes (sorted maps stay in ordinal order).
        Assert.Equal(json, Encoding.UTF8.GetString(ManifestFile.Serialize(ManifestFile.Read(fx.Corpus))));
        var m = new Manifest { Recipe = "r" };
        m.Dropped["quality.en.a_b"] = new DropCount { Documents = 1 };
        m.Dropped["quality.en.a.b"] = new DropCount { Documents = 2 };
        var bytes = ManifestFile.Serialize(m);
        Assert.Equal(bytes, JsonSerializer.SerializeToUtf8Bytes(m, new JsonSerializerOptions(DataPipeline.OutputJson) { WriteIndented = true }));
        var dir = Path.Combine(fx.Root, "ordinal");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "manifest.json"), bytes);
        Assert.Equal(bytes, ManifestFile.Serialize(ManifestFile.Read(dir)));
    }

    [Fact]
    public void Tokenize_VocabularyAbove65536_StoresFourBytesPerToken()
    {
        var dir = fx.CopyCorpus("wide");
        var small = Tokenizer.Load(fx.TokenizerPath);
        // The same tokenizer with one more special token, id 70000, used as BOS: every document starts with it.
        var wide = new Tokenizer(small.Model, small.Normalizer, small.PreTokenizer, small.PostProcessor,
            new AddedVocabulary([.. small.AddedTokens.Tokens, new AddedToken(70000, "<|wide|>", Special: true)]),
            DecoderKind.SentencePiece, TokenizerSource.Trained, parseSpecialByDefault: true) { BosId = 70000, EosId = 2 };
        var m = new CorpusTokenizer(wide, "wide.json", new string('0', 64)) { Threads = 2 }.Run(dir);
        Assert.Equal((70001, 4, 70000), (m.Tokens!.VocabSize, m.Tokens.BytesPerToken, m.Tokens.Bos));
        var info = m.Tokens.Shards[0];
        var docs = ReadJsonl(Path.Combine(dir, info.Text));
        using var shard = TokenShard.Open(Path.Combine(dir, info.Bin));
        Assert.Equal(4, shard.BytesPerToken);
        Assert.Equal(64 + 4 * shard.TokenCount, new FileInfo(shard.BinPath).Length);
        for (int d = 0; d < docs.Count; d++)
            Assert.Equal([70000, .. small.Encode(docs[d].Text, false, false), 2], shard.DocumentTokens(d));
    }

    // ---- bad corpora ------------------------------------------------------------------------------

    [Fact]
    public void Tokenize_TextShardChangedAfterBuild_ThrowsAndLeavesNoTokenFile()
    {
        var dir = fx.CopyCorpus("changed");
        var first = ManifestFile.Read(dir).Shards[0];
        var path = Path.Combine(dir, first.Path);
        var lines = File.ReadAllLines(path);
        lines[0] = lines[0].Replace("\"text\":\"", "\"text\":\"x", StringComparison.Ordinal); // still a valid document
        File.WriteAllText(path, string.Join('\n', lines) + "\n");
        var e = Assert.Throws<InvalidDataException>(() => Tokenize(dir, 2));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("SHA-256", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(dir, "tokens")));
        Assert.Equal(fx.BuildManifest, File.ReadAllBytes(Path.Combine(dir, "manifest.json")));
    }

    [Fact]
    public void Tokenize_MissingOrEmptyManifest_ThrowsOneClearError()
    {
        var dir = Path.Combine(fx.Root, "nothing");
        Directory.CreateDirectory(dir);
        var missing = Assert.Throws<FileNotFoundException>(() => Tokenize(dir, 1));
        Assert.Contains("no manifest", missing.Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir, "manifest.json"), """{ "recipe": "x", "shards": [] }""");
        Assert.Contains("no text shards", Assert.Throws<InvalidDataException>(() => Tokenize(dir, 1)).Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir, "manifest.json"), "{ not json");
        Assert.Contains("not a valid manifest", Assert.Throws<InvalidDataException>(() => Tokenize(dir, 1)).Message, StringComparison.Ordinal);
        Assert.ThrowsAny<FormatException>(() => CorpusTokenizer.Load(Path.Combine(dir, "manifest.json")));
    }
}
