// What duet finetune reads besides conversations: the --lora spec (rank, alpha, targets, rsLoRA; a target a LLaMA
// layer does not have is refused by name) and the recipe file (paths relative to it, unknown keys refused).
using Duet.Model;
using Duet.Training.Lora;
using Duet.Training.Sft;

namespace Duet.Training.Tests;

public sealed class FineTuneInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-ftinput-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void LoraSpec_Parses_KeysNotGivenKeepDefaults()
    {
        var o = LoraOptions.Parse("r=8,alpha=16,targets=q,v,down_proj,rslora");
        Assert.Equal((8, 16f, true), (o.Rank, o.Alpha, o.RsLora));
        Assert.Equal([LayerTensor.Q, LayerTensor.V, LayerTensor.Down], o.TargetTensors());
        Assert.Equal(16f / MathF.Sqrt(8), o.Scale);
        var d = LoraOptions.Parse("alpha=64");
        Assert.Equal((16, 64f, false, 7), (d.Rank, d.Alpha, d.RsLora, d.Targets.Length));
        Assert.Equal(4f, d.Scale);
    }

    [Theory]
    [InlineData("r=8,targets=q,attn", "no LoRA target \"attn\"")]
    [InlineData("r=0", "rank 0 must be positive")]
    [InlineData("r=eight", "rank \"eight\" is not a whole number")]
    [InlineData("alpha=-1", "alpha -1 must be positive")]
    [InlineData("dropout=1", "dropout 1 must be in [0, 1)")]
    [InlineData("bias=all", "unknown key \"bias\"")]
    [InlineData("q,k", "\"q\" is not KEY=VALUE")]
    public void LoraSpec_Bad_SaysWhat(string spec, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => LoraOptions.Parse(spec));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void LoraLayout_RefusesNormsAndRepeats()
    {
        var c = new LlamaConfig { Dim = 32, Layers = 1, Heads = 2, KvHeads = 1, HeadDim = 16, RopeDim = 16, FfnDim = 64, Vocab = 50, ContextLength = 16 };
        Assert.Contains("not the norm", Assert.Throws<ArgumentException>(() => new ParameterLayout(c, 4, [LayerTensor.Q, LayerTensor.AttnNorm])).Message);
        Assert.Contains("listed twice", Assert.Throws<ArgumentException>(() => new ParameterLayout(c, 4, [LayerTensor.Q, LayerTensor.Q])).Message);
        var layout = new ParameterLayout(c, 4, [LayerTensor.Q, LayerTensor.Down]);
        Assert.Equal(4 * (32 + 32) + 4 * (64 + 32), layout.Count);
        Assert.Equal("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", layout.Slots[^1].Name);
        var p = new float[layout.Count];
        layout.InitializeLora(p, 1);
        foreach (var s in layout.Slots)
        {
            var v = p.AsSpan((int)s.Offset, (int)s.Length);
            if (s.Name.EndsWith("lora_B.weight")) Assert.True(v.IndexOfAnyExcept(0f) < 0, s.Name); // B starts at zero: the base unchanged
            else { Assert.True(v.ToArray().All(x => MathF.Abs(x) <= 1 / MathF.Sqrt(s.Cols)), s.Name); Assert.True(v.IndexOfAnyExcept(0f) >= 0); }
        }
    }

    [Fact]
    public void Recipe_PathsRelativeToIt_UnknownKeysRefused()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir, "models", "x")).FullName;
        var path = Path.Combine(dir, "finetune.json");
        File.WriteAllText(path, """
            {
              // a comment
              "name": "x-chat", "base": "../../out/x.gguf", "data": "../../data/chat/train.jsonl", "validationData": "val.jsonl",
              "steps": 7, "lora": { "rank": 4, "alpha": 8, "targets": ["q", "v"] },
            }
            """);
        var c = FineTuneConfig.Load(path);
        Assert.Equal(Path.Combine(_dir, "out", "x.gguf"), c.Base);
        Assert.Equal(Path.Combine(_dir, "data", "chat", "train.jsonl"), c.Data);
        Assert.Equal(Path.Combine(dir, "val.jsonl"), c.ValidationData);
        Assert.Equal((7, 4, "x-chat"), (c.Steps, c.Lora!.Rank, c.Name));
        File.WriteAllText(path, """{ "base": "b", "data": "d", "stpes": 7 }""");
        Assert.Contains("stpes", Assert.Throws<InvalidDataException>(() => FineTuneConfig.Load(path)).Message);
        File.WriteAllText(path, """{ "base": "b", "data": "d", "lora": { "rank": 4, "targets": ["qq"] } }""");
        Assert.Contains("no LoRA target \"qq\"", Assert.Throws<ArgumentException>(() => FineTuneConfig.Load(path)).Message);
    }
}
