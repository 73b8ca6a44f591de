// Chat fine-tuning end to end on a tiny random model: the loss on the validation replies falls (the model learns the
// conversations' replies), and a run stopped after a checkpoint and resumed (with NEFTune noise) ends with the same
// bits as a run never stopped.
using Duet.Model;
using Duet.Tensors.Parallel;
using Duet.Tokenizers.Trainer;
using Duet.Training.Sft;

namespace Duet.Training.Tests;

public sealed class FineTuneTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-ft-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private (string Base, string Data) Setup()
    {
        var pairs = new (string Q, string A)[]
        {
            ("What does ls do?", "It lists files."), ("What does cp do?", "It copies files."), ("What does rm do?", "It removes files."),
            ("ls 是什么？", "列出文件。"), ("cp 是什么？", "复制文件。"), ("rm 是什么？", "删除文件。"),
        };
        var lines = new List<string>();
        for (int i = 0; i < 60; i++)
        {
            var (q, a) = pairs[i % pairs.Length];
            lines.Add(System.Text.Json.JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = q }, new { role = "assistant", content = a } } }));
        }
        var data = Path.Combine(_dir, "chat.jsonl");
        File.WriteAllLines(data, lines);
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 300 });
        foreach (var (q, a) in pairs) trainer.AddText(q + " " + a);
        var tok = trainer.Train();
        var config = new LlamaConfig
        {
            Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 16, RopeDim = 16, FfnDim = 128, Vocab = tok.VocabSize, ContextLength = 64,
            RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
        };
        var basePath = Path.Combine(_dir, "base");
        ModelPackage.WriteHfFolder(CanonicalModel.Random(config, 1, tok, std: 0.05f), basePath, Formats.SafeTensors.SafeTensorsDType.F32);
        return (basePath, data);
    }

    private static FineTuneConfig Config(string b, string d, int steps) => new()
    {
        Base = b, Data = d, BatchSize = 4, SeqLen = 64, Steps = steps, EvalEvery = steps, CheckpointEvery = 4, ValidationEvery = 10,
        Optimizer = new OptimizerOptions { LearningRate = 3e-3, MinLearningRate = 3e-4, WarmupSteps = 2 },
    };

    [Fact]
    public void FineTune_LearnsTheReplies_ValidationLossFalls()
    {
        var (b, d) = Setup();
        using var pool = new WorkerPool(2);
        using var ft = new FineTuner(Config(b, d, 30), Path.Combine(_dir, "run"), resume: false, pool);
        Assert.True(ft.ValidationSequences > 0 && ft.TrainSequences > 0);
        double before = ft.Validate();
        ft.Run();
        double after = ft.LastValidationLoss!.Value;
        Assert.True(after < 0.5 * before, $"validation loss on replies {before:F3} -> {after:F3}");
        Assert.True(File.Exists(Path.Combine(_dir, "run", "loss.svg")));
        // The tuned model says what made it: the data's hash, the steps, the validation loss.
        var tuned = ft.ToModel();
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(d))), tuned.Provenance["finetune_data_sha256"]);
        Assert.Equal("30", tuned.Provenance["finetune_steps"]);
        Assert.Equal(after, double.Parse(tuned.Provenance["finetune_validation_loss"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("\"kind\":\"validation\"", File.ReadAllText(Path.Combine(_dir, "run", "metrics.jsonl")).Replace(" ", ""));
    }

    [Fact]
    public void FineTune_StoppedAndResumed_SameBitsAsUninterrupted()
    {
        var (b, d) = Setup();
        using var pool = new WorkerPool(2);
        float[] straight;
        using (var ft = new FineTuner(Config(b, d, 10) with { NeftuneAlpha = 5 }, Path.Combine(_dir, "a"), resume: false, pool))
        {
            ft.Run();
            straight = ft.Model.Parameters.ToArray();
        }
        using (var cts = new CancellationTokenSource())
        using (var ft = new FineTuner(Config(b, d, 10) with { NeftuneAlpha = 5 }, Path.Combine(_dir, "b"), resume: false, pool))
        {
            ft.Progress = p => { if (p.Step == 5) cts.Cancel(); };
            ft.Run(cts.Token);
        }
        using (var ft = new FineTuner(Config(b, d, 10) with { NeftuneAlpha = 5 }, Path.Combine(_dir, "b"), resume: true, pool))
        {
            Assert.Equal(6, ft.StartStep);
            ft.Run();
            Assert.Equal(straight, ft.Model.Parameters);
        }
    }

    [Fact]
    public void FineTune_BadConversation_NamesTheLine()
    {
        var (b, _) = Setup();
        var data = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(data, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}\n");
        var e = Assert.Throws<InvalidDataException>(() => new FineTuner(Config(b, data, 2), Path.Combine(_dir, "c"), resume: false));
        Assert.Contains(data + ":2", e.Message);
    }
}

public class NeftuneTests
{
    /// <summary>NEFTune's noise: uniform in ±alpha/sqrt(T·d) on every embedding element, the same for the same seed, other for another, none when off.</summary>
    [Fact]
    public void Noise_ScaledUniform_Deterministic_AndOffByDefault()
    {
        var config = new Model.LlamaConfig
        {
            Dim = 32, Layers = 1, Heads = 2, KvHeads = 1, HeadDim = 16, RopeDim = 16, FfnDim = 64, Vocab = 50, ContextLength = 16,
            RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
        };
        using var pool = new Tensors.Parallel.WorkerPool(1);
        using var m = new TrainingModel(config, 1, 16, pool);
        m.Layout.Load(Model.CanonicalModel.Random(config, 1, std: 0.1f), m.Parameters);
        int[] ids = Enumerable.Range(0, 16).ToArray(), targets = Enumerable.Range(1, 16).Select(i => i % 50).ToArray();
        double plain = m.Forward(ids, targets, 1).LossSum;
        m.Noise = (5f, 7UL);
        double a = m.Forward(ids, targets, 1).LossSum;
        m.Noise = (5f, 7UL);
        double b = m.Forward(ids, targets, 1).LossSum;
        double c = m.Forward(ids, targets, 1).LossSum;   // the next forward of the same step: its own noise
        m.Noise = (5f, 8UL);
        double d = m.Forward(ids, targets, 1).LossSum;
        m.Noise = null;
        Assert.Equal(plain, m.Forward(ids, targets, 1).LossSum);
        Assert.Equal(a, b);
        Assert.NotEqual(plain, a);
        Assert.NotEqual(a, c);
        Assert.NotEqual(a, d);
    }
}
