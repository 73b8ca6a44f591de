// Three whole training steps on packed conversations (chat fine-tuning's batches: several conversations per row,
// reply-only targets, a block-diagonal causal mask and RoPE positions restarting per conversation) against the
// float64 PyTorch reference (tests/reference/train_step.py --starts): the loss, the gradient norm, the first step's
// gradients and the parameters after each step within 1e-4, with gradient accumulation over two micro-batches.
using System.Text;
using System.Text.Json;
using Duet.Model;
using Duet.Tests;

namespace Duet.Training.Tests;

public sealed class PackedStepTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-packstep-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    internal static void WriteInt32Npy(string path, int[] values, int rows, int cols)
    {
        var header = $"{{'descr': '<i4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}";
        int total = 10 + header.Length + 1;
        header += new string(' ', (64 - total % 64) % 64) + "\n";
        using var f = File.Create(path);
        f.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        f.Write(BitConverter.GetBytes((ushort)header.Length));
        f.Write(Encoding.ASCII.GetBytes(header));
        foreach (int v in values) f.Write(BitConverter.GetBytes(v));
    }

    [Fact]
    public void Step_PackedConversations_MatchPyTorch()
    {
        var model = Path.Combine(_dir, "model");
        Repo.Python(Repo.Reference("make_random_llama.py"), "--preset", "tiny", "--seed", "8", "--std", "0.3", "--out", model);
        int vocab = JsonDocument.Parse(File.ReadAllText(Path.Combine(model, "config.json"))).RootElement.GetProperty("vocab_size").GetInt32();
        const int B = 4, T = 16;
        var (tokens, inputs, targets, starts) = PackedBatch(vocab, seed: 3, B, T);
        WriteInt32Npy(Path.Combine(_dir, "tokens.npy"), tokens, B, T + 1);
        WriteInt32Npy(Path.Combine(_dir, "targets.npy"), targets, B, T);
        WriteInt32Npy(Path.Combine(_dir, "starts.npy"), starts, B, T);
        File.WriteAllText(Path.Combine(_dir, "hparams.json"), """
            {"lr": 0.01, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1, "warmup_steps": 2, "max_steps": 10, "min_lr": 0.001,
             "grad_clip": 1000.0, "micro_batches": 2, "ignore_index": -1}
            """);
        var outDir = Path.Combine(_dir, "out");
        Repo.Python(Repo.Reference("train_step.py"), "--model", model, "--tokens", Path.Combine(_dir, "tokens.npy"), "--targets", Path.Combine(_dir, "targets.npy"),
            "--starts", Path.Combine(_dir, "starts.npy"), "--hparams", Path.Combine(_dir, "hparams.json"), "--out", outDir, "--steps", "3");
        var result = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "result.json"))).RootElement;

        using var weights = LlamaWeights.FromHfFolder(model);
        var canonical = CanonicalModel.FromWeights(weights, null);
        using var tm = new TrainingModel(canonical.Config with { ContextLength = T }, B / 2, T);
        tm.Layout.Load(canonical, tm.Parameters);
        var runner = new StepRunner(tm, new OptimizerOptions
        {
            LearningRate = 0.01, MinLearningRate = 0.001, WarmupSteps = 2, MaxSteps = 10, Beta1 = 0.9, Beta2 = 0.95, Epsilon = 1e-8, WeightDecay = 0.1, GradClip = 1000,
        }, microBatches: 2);
        for (int s = 0; s < 3; s++)
        {
            var r = runner.Step(inputs, targets, starts);
            double loss = result.GetProperty("loss")[s].GetDouble(), norm = result.GetProperty("grad_norm")[s].GetDouble();
            Assert.True(Math.Abs(r.Loss - loss) <= 1e-4 * loss, $"step {s}: loss {r.Loss} vs {loss}");
            Assert.True(Math.Abs(r.GradNorm - norm) <= 1e-4 * norm, $"step {s}: gradient norm {r.GradNorm} vs {norm}");
            if (s == 0) AllNear("gradient", tm, tm.Gradients, Path.Combine(outDir, "grads_step0.safetensors"));
            AllNear($"parameters after step {s}", tm, tm.Parameters, Path.Combine(outDir, $"params_step{s}.safetensors"));
        }
    }

    /// <summary>
    /// B rows of T positions holding several conversations each (fixed lengths), random tokens: the target of a
    /// conversation's last position (the next one's first token) and the first third of each (its "prompt") masked;
    /// tokens [B, T+1], inputs, targets and per-position starts [B, T].
    /// </summary>
    internal static (int[] Tokens, int[] Inputs, int[] Targets, int[] Starts) PackedBatch(int vocab, int seed, int B, int T)
    {
        int[][] rows = [[6, 10], [16], [3, 5, 8], [9, 4, 3]];
        if (B != rows.Length || rows.Any(r => r.Sum() != T)) throw new ArgumentException("the layout is for 4 rows of 16");
        var rng = new Random(seed);
        var tokens = new int[B * (T + 1)];
        var inputs = new int[B * T]; var targets = new int[B * T]; var starts = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t <= T; t++) tokens[b * (T + 1) + t] = rng.Next(vocab);
            int pos = 0;
            foreach (int len in rows[b])
            {
                for (int t = pos; t < pos + len; t++)
                {
                    inputs[b * T + t] = tokens[b * (T + 1) + t];
                    bool prompt = t - pos < len / 3, last = t == pos + len - 1 && pos + len < T;
                    targets[b * T + t] = prompt || last ? -1 : tokens[b * (T + 1) + t + 1];
                    starts[b * T + t] = pos;
                }
                pos += len;
            }
        }
        return (tokens, inputs, targets, starts);
    }

    private static void AllNear(string what, TrainingModel tm, float[] actual, string file)
    {
        var expected = Fixtures.Read(file);
        foreach (var s in tm.Layout.Slots)
        {
            double e = Fixtures.RelErr(actual.AsSpan((int)s.Offset, (int)s.Length), expected[s.Name].Values);
            Assert.True(e <= 1e-4, $"{what} {s.Name}: relative error {e:E2}");
        }
    }
}
