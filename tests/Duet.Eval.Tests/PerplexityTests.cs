// Perplexity (llama-perplexity's method) against the independent float64 PyTorch reference,
// tests/reference/perplexity_reference.py, on random-weight models the reference makes (make_random_llama.py):
// the same chunks and scored tokens, every token's NLL, and the final PPL within 1e-5 relative.
using System.Text.Json;
using Duet.Model;
using Duet.Tests;
using Duet.Tokenizers.Trainer;

namespace Duet.Eval.Tests;

public class PerplexityTests
{
    private static (int[] Ids, JsonElement Result, string Folder) Reference(string dir, string preset, int ctx, int count, int? bos, int? chunks = null)
    {
        var folder = Path.Combine(dir, preset);
        if (!Directory.Exists(folder)) Repo.Python(Repo.Reference("make_random_llama.py"), "--preset", preset, "--seed", "3", "--std", "0.2", "--out", folder);
        int vocab = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json"))).RootElement.GetProperty("vocab_size").GetInt32();
        var rng = new Random(count);
        var ids = Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
        var idsFile = Path.Combine(dir, $"ids-{count}.txt");
        File.WriteAllText(idsFile, string.Join(' ', ids));
        var outFile = Path.Combine(dir, $"ppl-{preset}-{ctx}-{count}-{bos}-{chunks}.json");
        var args = new List<string> { Repo.Reference("perplexity_reference.py"), "--model", folder, "--ids-file", idsFile, "--ctx", ctx.ToString(), "--out", outFile };
        if (bos is int b) args.AddRange(["--bos", b.ToString()]);
        if (chunks is int c) args.AddRange(["--chunks", c.ToString()]);
        Repo.Python([.. args]);
        return (ids, JsonDocument.Parse(File.ReadAllText(outFile)).RootElement, folder);
    }

    [Theory]
    [InlineData("llama3", 32, 3 * 32 + 7, 1, null)]    // GQA; a BOS in place of each chunk's first token; a partial chunk left over
    [InlineData("llama2", 48, 4 * 48, null, 3)]        // no BOS; --chunks below what the text holds; a context not a power of two
    public void Evaluate_RandomModel_MatchesPyTorchReference(string preset, int ctx, int count, int? bos, int? chunks)
    {
        var dir = Directory.CreateTempSubdirectory("duet-ppl-").FullName;
        try
        {
            var (ids, r, folder) = Reference(dir, preset, ctx, count, bos, chunks);
            using var model = LlamaModel.Load(folder);
            var nll = new double[count];
            var got = Perplexity.Evaluate(model, ids, bos ?? -1, null, new PerplexityOptions { Context = ctx, Chunks = chunks }, nll: nll);
            Assert.Equal(r.GetProperty("chunks").GetInt32(), got.Chunks);
            Assert.Equal(r.GetProperty("scored").GetInt32(), got.ScoredTokens);
            var want = r.GetProperty("nll").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(nll[i] - want[i]) <= 1e-4, $"token {i}: NLL {nll[i]} vs {want[i]}");
            double ppl = r.GetProperty("ppl").GetDouble(), err = r.GetProperty("ppl_err").GetDouble();
            Assert.True(Math.Abs(got.Ppl / ppl - 1) <= 1e-5, $"PPL {got.Ppl} vs {ppl}");
            Assert.True(Math.Abs(got.PplError / err - 1) <= 1e-3, $"PPL error {got.PplError} vs {err}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Evaluate_FewerThanTwoChunksOfText_Throws()
    {
        var dir = Directory.CreateTempSubdirectory("duet-ppl-").FullName;
        try
        {
            using var model = TinyModel.Create(Path.Combine(dir, "m"), vocab: 100, context: 64);
            var e = Assert.Throws<ArgumentException>(() => Perplexity.Evaluate(model, new int[63], -1, null, new PerplexityOptions { Context = 32 }));
            Assert.Contains("at least 64 tokens", e.Message);
            Assert.Throws<ArgumentException>(() => Perplexity.Evaluate(model, new int[200], -1, null, new PerplexityOptions { Context = 128 })); // longer than the model's
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Bits per byte and per character count the scored tokens' text: one byte per ASCII character, three per Chinese one.</summary>
    [Theory]
    [InlineData("The quick brown fox jumps over the lazy dog. ", 1.0)]
    [InlineData("自由的操作系统，你好世界。", 3.0)]
    public void Evaluate_BytesAndCharacters_OfTheScoredText(string sentence, double bytesPerChar)
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 300 });
        trainer.AddText("The quick brown fox jumps over the lazy dog. 自由的操作系统，你好世界。");
        var tok = trainer.Train();
        var dir = Directory.CreateTempSubdirectory("duet-ppl-").FullName;
        try
        {
            using var model = TinyModel.Create(Path.Combine(dir, "m"), tok.VocabSize, context: 64, tokenizer: tok);
            var text = string.Concat(Enumerable.Repeat(sentence, 40));
            var r = Perplexity.Evaluate(model, tok, text, new PerplexityOptions { Context = 32 });
            Assert.True(r.ScoredBytes > 0 && r.ScoredChars > 0);
            // Chunk edges may cut a character's bytes (one replacement character each), so allow one per chunk.
            Assert.True(Math.Abs(r.ScoredBytes - bytesPerChar * r.ScoredChars) <= 3 * r.Chunks, $"{r.ScoredBytes} bytes, {r.ScoredChars} characters");
        }
        finally { Directory.Delete(dir, true); }
    }
}
