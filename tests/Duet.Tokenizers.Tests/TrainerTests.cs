// The bilingual BPE trainer: its rules hold in the vocabulary it makes, it is deterministic, and the
// tokenizer.json it writes encodes held-out text identically in @lenml/tokenizers (run live with node).
using System.Diagnostics;
using System.Text;
using Duet.Tokenizers.Loaders;
using Duet.Tokenizers.Trainer;

namespace Duet.Tokenizers.Tests;

public class TrainerTests
{
    private static (Tokenizer Tok, string[] HeldOut) TrainOnTestText(int vocab = 2000)
    {
        var lines = RepoFiles.TestLines();
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = vocab });
        trainer.AddText(string.Join('\n', lines.Where((_, i) => i % 5 != 0)));
        return (trainer.Train(), lines.Where((_, i) => i % 5 == 0).ToArray());
    }

    [Fact]
    public void Train_Vocabulary_FollowsTheMergeRules()
    {
        var (tok, _) = TrainOnTestText();
        Assert.Equal(2000, tok.VocabSize);
        Assert.Equal(["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"], Enumerable.Range(0, 5).Select(tok.IdToToken));
        for (int b = 0; b < 256; b++) Assert.Equal($"<0x{b:X2}>", tok.IdToToken(5 + b));
        foreach (var (l, r) in tok.Model.MergeList)
        {
            var t = l + r;
            Assert.False(t.Any(char.IsDigit), $"merge '{l}' '{r}' joins digits");
            int firstNonSpace = t.TakeWhile(c => c == '\u2581').Count();
            Assert.True(firstNonSpace == t.Length || !t[firstNonSpace..].Contains('\u2581'), $"token '{t}' spans a space");
            Assert.True(firstNonSpace <= 1 || firstNonSpace == t.Length, $"token '{t}' joins a space run to a word");
        }
        // A rare CJK character (outside the coverage) is not in the vocabulary: it falls back to bytes.
        var ids = tok.Encode("\U0002A6D6");
        Assert.Equal(["\u2581", "<0xF0>", "<0xAA>", "<0x9B>", "<0x96>"], ids.Select(tok.IdToToken));
    }

    [Fact]
    public void AddText_BeyondTheWordBudget_KeepsTheTableBounded()
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 500, MaxDistinctWords = 2000 });
        foreach (var line in RepoFiles.TestLines())
        {
            trainer.AddText(line);
            Assert.True(trainer.DistinctWords <= 2000, $"{trainer.DistinctWords} distinct pre-tokens held");
        }
        Assert.Equal(500, trainer.Train().VocabSize);
    }

    [Fact]
    public void AddFiles_JsonlGzShards_ReadTheTextFieldOfEachLine_AndNameABadLine()
    {
        var lines = RepoFiles.TestLines().Take(400).ToArray();
        var dir = Directory.CreateTempSubdirectory("duet-trainer-").FullName;
        try
        {
            var path = Path.Combine(dir, "train-00000.jsonl.gz");
            using (var gz = new System.IO.Compression.GZipStream(File.Create(path), System.IO.Compression.CompressionLevel.Fastest))
            using (var w = new StreamWriter(gz, new UTF8Encoding(false)))
                foreach (var (l, i) in lines.Select((l, i) => (l, i)))
                    w.Write(System.Text.Json.JsonSerializer.Serialize(new { id = $"d{i}", lang = "x", text = l }) + "\n");
            var fromFile = new BpeTrainer(new BpeTrainerOptions { VocabSize = 600 });
            fromFile.AddFiles([path]);
            var direct = new BpeTrainer(new BpeTrainerOptions { VocabSize = 600 });
            foreach (var l in lines) direct.AddText(l);
            Assert.Equal(direct.CharactersSeen, fromFile.CharactersSeen);
            var a = new MemoryStream();
            var b = new MemoryStream();
            TokenizerJsonWriter.Write(direct.Train(), a);
            TokenizerJsonWriter.Write(fromFile.Train(), b);
            Assert.Equal(a.ToArray(), b.ToArray());

            var bad = Path.Combine(dir, "bad.jsonl");
            File.WriteAllText(bad, "{\"text\": \"fine\"}\n{\"text\": 3}\n");
            var e = Assert.Throws<InvalidDataException>(() => new BpeTrainer(new BpeTrainerOptions { VocabSize = 600 }).AddFiles([bad]));
            Assert.Contains("bad.jsonl:2", e.Message, StringComparison.Ordinal);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Train_Twice_GivesByteIdenticalTokenizerJson()
    {
        var a = new MemoryStream();
        var b = new MemoryStream();
        TokenizerJsonWriter.Write(TrainOnTestText(1000).Tok, a);
        TokenizerJsonWriter.Write(TrainOnTestText(1000).Tok, b);
        Assert.Equal(a.ToArray(), b.ToArray());
    }

    [Fact]
    public void Load_TokenizerJsonWithoutConfigBesideIt_Loads()
    {
        // Many published folders have tokenizer.json alone; a missing tokenizer_config.json once read as an empty
        // (invalid) one.
        var (tok, heldOut) = TrainOnTestText(1000);
        var dir = Directory.CreateTempSubdirectory("duet-json-alone-").FullName;
        try
        {
            var json = Path.Combine(dir, "tokenizer.json");
            TokenizerJsonWriter.Save(tok, json);
            File.Delete(Path.Combine(dir, "tokenizer_config.json"));
            var reloaded = Tokenizer.Load(json);
            foreach (var line in heldOut.Take(50)) Assert.Equal(tok.Encode(line), reloaded.Encode(line));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task Train_WrittenTokenizerJson_EncodesHeldOutTextLikeLenml()
    {
        var (tok, heldOut) = TrainOnTestText();
        var dir = Directory.CreateTempSubdirectory("duet-train-").FullName;
        try
        {
            var json = Path.Combine(dir, "tokenizer.json");
            TokenizerJsonWriter.Save(tok, json);
            var input = Path.Combine(dir, "held.txt");
            File.WriteAllText(input, string.Join('\n', heldOut) + "\n", new UTF8Encoding(false));
            var output = Path.Combine(dir, "lenml.ids.txt");
            var psi = new ProcessStartInfo("node", [Path.Combine(RepoFiles.Root, "tests", "reference", "lenml_encode.mjs"),
                "--tokenizer-json", json, "--input", input, "--out", output]) { RedirectStandardError = true, RedirectStandardOutput = true };
            using (var p = Process.Start(psi)!)
            {
                var err = p.StandardError.ReadToEndAsync();
                await p.StandardOutput.ReadToEndAsync();
                await p.WaitForExitAsync();
                Assert.True(p.ExitCode == 0, "node lenml_encode.mjs failed: " + await err);
            }
            var reloaded = Tokenizer.Load(json);
            var expected = File.ReadAllText(output).Split('\n')[..^1];
            Assert.Equal(heldOut.Length, expected.Length);
            for (int i = 0; i < heldOut.Length; i++)
            {
                Assert.Equal(expected[i], string.Join(' ', tok.Encode(heldOut[i])));
                Assert.Equal(expected[i], string.Join(' ', reloaded.Encode(heldOut[i])));
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
