// Issue 5, acceptance 4 (the part CI can run): a trained model exported as safetensors gives the same logits in
// the independent PyTorch reference (tests/reference/llama_reference.py) as in Duet's engine, within 1e-4, and the
// trainer's own per-position losses equal cross-entropy of the reference's logits; the GGUF export (tokenizer
// embedded, Q/K rows permuted as llama.cpp expects) gives the engine the same logits as the safetensors one.
// Greedy generation against llama.cpp itself is a manual check (docs/training.md), as llama.cpp is not in CI.
using Duet.Formats.Tokens;
using Duet.Model;
using Duet.Tests;
using Duet.Tokenizers;

namespace Duet.Training.Tests;

public sealed class ExportTests(TrainCorpusFixture fx) : IClassFixture<TrainCorpusFixture>
{
    [Fact]
    public void Export_TrainedModel_SafetensorsMatchesPyTorch_AndGgufMatchesSafetensors()
    {
        var config = new TrainConfig
        {
            Name = "export-test", Data = fx.Corpus, Tokenizer = fx.TokenizerPath, BatchSize = 4, SeqLen = 32, Steps = 12,
            Model = new ModelShape { Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, Ffn = 128, TiedEmbeddings = false, RopeTheta = 10000 },
            Optimizer = new OptimizerOptions { LearningRate = 3e-3, MinLearningRate = 3e-4, WarmupSteps = 2 },
            EvalEvery = 0, CheckpointEvery = 12, PeakGflops = 100, Threads = 2,
        };
        var run = Path.Combine(fx.Root, "run-export");
        using (var trainer = new Trainer(config, run, resume: false)) trainer.Run();

        var hf = Path.Combine(fx.Root, "export-hf");
        var gguf = Path.Combine(fx.Root, "export.gguf");
        var (model, _) = TrainedModel.Export(run, hf, ModelFormat.SafeTensors, Duet.Tensors.GgmlType.F32);
        TrainedModel.Export(run, gguf, ModelFormat.Gguf, Duet.Tensors.GgmlType.F32);
        Assert.True(File.Exists(Path.Combine(hf, "tokenizer.json")) && File.Exists(Path.Combine(hf, "generation_config.json")));
        using (var package = ModelPackage.Open(gguf))
            Assert.Equal(("export-test", ModelFormat.Gguf, 400), (package.Config.Name, package.Format, package.RequireTokenizer().VocabSize));

        // Provenance inside the weights, GGUF and HF alike, kept by a quantized copy: hashes computed here from the files.
        static string Sha(string path) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));
        var quantized = Path.Combine(fx.Root, "export-q8.gguf");
        using (var package = ModelPackage.Open(gguf)) ModelPackage.WriteGguf(package.ToCanonical(), quantized, Duet.Tensors.GgmlType.Q8_0);
        foreach (var path in new[] { gguf, hf, quantized })
        {
            using var package = ModelPackage.Open(path);
            var p = package.Provenance;
            Assert.Equal(Sha(fx.TokenizerPath), p["tokenizer_sha256"]);
            Assert.Equal(Sha(Path.Combine(fx.Corpus, "manifest.json")), p["corpus_manifest_sha256"]);
            Assert.Equal(("12", (12 * 4 * 32).ToString(System.Globalization.CultureInfo.InvariantCulture)), (p["train_steps"], p["train_tokens"]));
            Assert.Equal("export-test", System.Text.Json.JsonDocument.Parse(p["train_config"]).RootElement.GetProperty("name").GetString());
            Assert.Contains("+", p["source"]); // version+commit
        }

        using var corpus = TokenCorpus.Open(fx.Corpus, "validation");
        var window = new int[33];
        corpus.Shards[0].CopyTokens(0, window);
        var ids = window[..32];
        var npy = Path.Combine(fx.Root, "export-ref.npy");
        Repo.Python(Repo.Reference("llama_reference.py"), "--model", hf, "--ids", string.Join(' ', ids), "--out", npy);
        var reference = Npy.ReadFloat32Matrix(npy);

        using (var engine = LlamaModel.Load(hf))
            Assert.True(MaxDiff(reference, engine.LogitsOf(ids)) <= 1e-4f, "safetensors export: engine vs PyTorch");
        using (var engine = LlamaModel.Load(gguf))
        {
            Assert.True(MaxDiff(reference, engine.LogitsOf(ids)) <= 1e-4f, "GGUF export: engine vs PyTorch");
            Assert.Equal(Tokenizer.Load(fx.TokenizerPath).Encode("Debian 软件包"), Tokenizer.Load(gguf).Encode("Debian 软件包"));
        }

        // The trainer's forward on the same window: its per-position losses are cross-entropy of the reference logits.
        using var tm = new TrainingModel(model.Config with { ContextLength = 32 }, 1, 32);
        tm.Layout.Load(model, tm.Parameters);
        tm.Forward(ids, window.AsSpan(1), 1);
        var losses = tm.RowLosses.ToArray();
        for (int t = 0; t < 32; t++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int v = 0; v < reference.GetLength(1); v++) max = Math.Max(max, reference[t, v]);
            for (int v = 0; v < reference.GetLength(1); v++) sum += Math.Exp(reference[t, v] - max);
            double ce = max + Math.Log(sum) - reference[t, window[t + 1]];
            Assert.True(Math.Abs(ce - losses[t]) <= 1e-4 * Math.Max(1, ce), $"position {t}: trainer loss {losses[t]}, reference {ce}");
        }
    }

    private static float MaxDiff(float[,] a, float[,] b) => Matrices.MaxAbsDiff(a, b);
}
