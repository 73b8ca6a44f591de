// Issue 18, acceptance 3: a LoRA run over a Q4_0 GGUF base (real `duet finetune --lora` processes) killed with
// SIGKILL at three random steps and resumed each time ends with the same adapters as an uninterrupted run, bit for
// bit: the newest checkpoint's parameters, the logged losses and the adapter files written at the end.
using Duet.Model;
using Duet.Tensors;
using Duet.Tokenizers.Trainer;
using static Duet.Training.Tests.DuetProcess;

namespace Duet.Training.Tests;

public sealed class LoraResumeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-lora-resume-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void LoraFineTune_KilledThreeTimesAtRandomSteps_ResumesToTheSameBits()
    {
        var lines = new List<string>();
        string[] words = ["files", "文件", "copy", "复制", "list", "列出", "remove", "删除", "move", "移动"];
        var rng = new Random(18);
        for (int i = 0; i < 120; i++)
        {
            string q = string.Join(' ', Enumerable.Range(0, 3 + rng.Next(6)).Select(_ => words[rng.Next(words.Length)]));
            string ans = string.Join(' ', Enumerable.Range(0, 4 + rng.Next(10)).Select(_ => words[rng.Next(words.Length)]));
            lines.Add(System.Text.Json.JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = q }, new { role = "assistant", content = ans } } }));
        }
        var data = Path.Combine(_dir, "chat.jsonl");
        File.WriteAllLines(data, lines);
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 320 });
        trainer.AddText(string.Join(' ', words));
        var tok = trainer.Train();
        var config = new LlamaConfig
        {
            Dim = 128, Layers = 4, Heads = 4, KvHeads = 2, HeadDim = 32, RopeDim = 32, FfnDim = 256, Vocab = tok.VocabSize, ContextLength = 128,
            RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
        };
        var basePath = Path.Combine(_dir, "base-q4_0.gguf");
        ModelPackage.WriteGguf(CanonicalModel.Random(config, 1, tok, std: 0.05f), basePath, GgmlType.Q4_0);

        string[] Args(string run) => ["finetune", "--base", basePath, "--data", data, "--out", run, "--lora", "r=8,alpha=16,dropout=0.1,targets=q,k,v,o,gate,up,down",
            "--steps", "60", "--batch", "4", "--seq-len", "128", "--checkpoint-every", "5", "--eval-every", "20", "--lr", "1e-3", "--warmup", "3", "--neftune", "5", "--threads", "2"];
        // The same run name in two folders: the name is in the adapters' provenance, which must match too.
        string a = Path.Combine(_dir, "a", "run"), b = Path.Combine(_dir, "b", "run");
        RunToEnd(Args(a));

        var kills = new[] { rng.Next(7, 19), rng.Next(23, 36), rng.Next(41, 54) };
        using (var p = Start(Args(b))) KillAtStep(p, b, kills[0]);
        for (int i = 1; i < kills.Length; i++)
            using (var p = Start("finetune", "--resume", b))
            {
                KillAtStep(p, b, kills[i]);
                int start = StartStep(p.Stderr);
                Assert.True(start > 0 && start % 5 == 0 && start <= kills[i - 1] + 1, $"resumed at step {start} after a kill at {kills[i - 1]}");
            }
        Assert.True(StartStep(RunToEnd("finetune", "--resume", b)) >= 40);

        Assert.True(FinalParameters(a).AsSpan().SequenceEqual(FinalParameters(b)), $"adapters differ after kills at steps {string.Join(", ", kills)}");
        Assert.Equal(TrainLosses(a), TrainLosses(b));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "adapter.gguf")), File.ReadAllBytes(Path.Combine(b, "adapter.gguf")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "adapter", "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(b, "adapter", "adapter_model.safetensors")));
        // The adapter says what made it, in both files.
        foreach (var adapter in new[] { LoraAdapter.ReadGguf(Path.Combine(b, "adapter.gguf"), config), LoraAdapter.ReadPeft(Path.Combine(b, "adapter"), config) })
        {
            Assert.Equal("60", adapter.Provenance["finetune_steps"]);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(basePath))), adapter.Provenance["finetune_base_sha256"]);
            Assert.Contains("\"rank\": 8", adapter.Provenance["finetune_config"]);
        }
    }
}
