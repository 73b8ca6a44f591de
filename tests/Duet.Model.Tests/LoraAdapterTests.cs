// LoRA adapters: a PEFT folder written by the reference (tests/reference/peft_reference.py: PEFT's names and shapes,
// W + scaling·B·A, float64 PyTorch logits) read and merged by Duet gives the reference's logits; GGUF adapters as
// llama.cpp reads them (names, shapes, metadata, the Q/K row permutation of lora_b) round-trip; adapters that do not
// fit are refused. (llama.cpp itself loading Duet's GGUF adapters: bench/lora_llamacpp.sh, docs/finetune.md.)
using Duet.Formats.Gguf;
using Duet.Tests;

namespace Duet.Model.Tests;

public sealed class LoraAdapterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-loraad-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData("llama3", false, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")] // GQA; every projection
    [InlineData("llama2", true, "q_proj,v_proj")]                                              // rsLoRA; two targets
    public void Peft_FromTheReference_MergedLogitsMatch(string preset, bool rs, string targets)
    {
        var model = Path.Combine(_dir, preset);
        Repo.Python(Repo.Reference("make_random_llama.py"), "--preset", preset, "--seed", "4", "--std", "0.1", "--out", model);
        int vocab = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(model, "config.json"))).RootElement.GetProperty("vocab_size").GetInt32();
        var rng = new Random(2);
        var ids = Enumerable.Range(0, 12).Select(_ => rng.Next(vocab)).ToArray();
        var adapterDir = Path.Combine(_dir, preset + "-adapter");
        var npy = Path.Combine(_dir, preset + ".npy");
        var args = new List<string> { Repo.Reference("peft_reference.py"), "--model", model, "--out", adapterDir, "--rank", "4", "--alpha", "8",
            "--targets", targets, "--ids", string.Join(' ', ids), "--logits", npy };
        if (rs) args.Add("--rslora");
        Repo.Python([.. args]);
        var want = Npy.ReadFloat32Matrix(npy);

        CanonicalModel merged;
        using (var weights = LlamaWeights.FromHfFolder(model))
        {
            var adapter = LoraAdapter.ReadPeft(adapterDir, weights.Config);
            Assert.Equal(rs ? 8 / MathF.Sqrt(4) : 2f, adapter.Scale);
            Assert.Equal(weights.Config.Layers * targets.Split(',').Length, adapter.Weights.Count);
            merged = adapter.MergeInto(CanonicalModel.FromWeights(weights, null));
        }
        var mergedDir = Path.Combine(_dir, preset + "-merged");
        ModelPackage.WriteHfFolder(merged, mergedDir, Formats.SafeTensors.SafeTensorsDType.F32);
        using var m = LlamaModel.Load(mergedDir);
        var got = m.LogitsOf(ids);
        double worst = 0;
        for (int t = 0; t < ids.Length; t++)
            for (int v = 0; v < vocab; v++) worst = Math.Max(worst, Math.Abs(got[t, v] - want[t, v]));
        Assert.True(worst <= 1e-4, $"merged logits differ from the reference's by {worst:E2}");

        // Applied at run time, unmerged: the same logits.
        using var live = LlamaModel.Load(model);
        live.AddAdapter(LoraAdapter.ReadPeft(adapterDir, live.Config));
        var runtime = live.LogitsOf(ids);
        worst = 0;
        for (int t = 0; t < ids.Length; t++)
            for (int v = 0; v < vocab; v++) worst = Math.Max(worst, Math.Abs(runtime[t, v] - want[t, v]));
        Assert.True(worst <= 1e-4, $"run-time adapter logits differ from the reference's by {worst:E2}");
        // Invariant mode (the server's): the third token's logits are the same bits fed one row at a time or three at once.
        var logits1 = new float[vocab]; var logits3 = new float[vocab];
        var one = live.CreateState(ids.Length); var three = live.CreateState(ids.Length);
        for (int i = 0; i < 3; i++) live.ForwardRows(one, [one], ids.AsSpan(i, 1), i == 2 ? [0] : [], i == 2 ? logits1 : [], invariant: true);
        live.ForwardRows(three, [three, three, three], ids.AsSpan(0, 3), [2], logits3, invariant: true);
        Assert.Equal(logits1, logits3);
    }

    private static readonly LlamaConfig Config = new()
    {
        Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 16, RopeDim = 16, FfnDim = 96, Vocab = 100, ContextLength = 32,
        RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gguf_AsLlamaCppReadsIt_RoundTrips(bool rs)
    {
        var adapter = LoraAdapter.Random(Config, 8, 16, [LayerTensor.Q, LayerTensor.K, LayerTensor.V, LayerTensor.Down], 3, 0.1f, 0.1f, rs);
        var path = Path.Combine(_dir, "a.gguf");
        adapter.WriteGguf(path, Config);
        using (var f = GgufFile.Open(path))
        {
            Assert.Equal("adapter", f.Metadata.GetString("general.type"));
            Assert.Equal("lora", f.Metadata.GetString("adapter.type"));
            Assert.Equal("llama", f.Metadata.Architecture);
            Assert.True(f.TryGetTensor("blk.1.attn_k.weight.lora_a", out var a));
            Assert.Equal([Config.Dim, 8L], a.Shape);                 // ne [in, r]
            Assert.True(f.TryGetTensor("blk.1.attn_k.weight.lora_b", out var b));
            Assert.Equal([8L, (long)Config.KvDim], b.Shape);         // ne [r, out]
            Assert.True(f.TryGetTensor("blk.0.ffn_down.weight.lora_b", out var d));
            Assert.Equal([8L, (long)Config.Dim], d.Shape);
        }
        var back = LoraAdapter.ReadGguf(path, Config);
        Assert.Equal(adapter.Scale, back.Scale, 5);
        foreach (var (key, (a, b)) in adapter.Weights)
        {
            Assert.Equal(a, back.Weights[key].A);
            Assert.Equal(b, back.Weights[key].B);
        }
        // The same update merged either way: B's rows of Q and K are permuted in the file and back.
        var baseModel = CanonicalModel.Random(Config, 1);
        var m1 = adapter.MergeInto(baseModel); var m2 = back.MergeInto(baseModel);
        foreach (var (name, w) in m1.Tensors) Assert.Equal(w, m2.Tensors[name]);
    }

    /// <summary>A GGUF base holds Q's and K's rows in llama.cpp's order: the run-time adapter follows it (the merged GGUF is the reference).</summary>
    [Fact]
    public void RunTime_OnAGgufBase_EqualsTheMergedModel()
    {
        var baseModel = CanonicalModel.Random(Config, 2, std: 0.1f);
        var adapter = LoraAdapter.Random(Config, 4, 8, [LayerTensor.Q, LayerTensor.K, LayerTensor.Up], 6, 0.1f, 0.1f);
        string basePath = Path.Combine(_dir, "base.gguf"), mergedPath = Path.Combine(_dir, "merged.gguf"), adapterPath = Path.Combine(_dir, "ad.gguf");
        ModelPackage.WriteGguf(baseModel, basePath, Tensors.GgmlType.F32);
        ModelPackage.WriteGguf(adapter.MergeInto(baseModel), mergedPath, Tensors.GgmlType.F32);
        adapter.WriteGguf(adapterPath, Config);
        int[] ids = [3, 14, 15, 92, 65, 35];
        using var merged = LlamaModel.Load(mergedPath);
        using var live = LlamaModel.Load(basePath);
        live.AddAdapter(LoraAdapter.ReadGguf(adapterPath, live.Config));
        var want = merged.LogitsOf(ids); var got = live.LogitsOf(ids);
        for (int t = 0; t < ids.Length; t++)
            for (int v = 0; v < Config.Vocab; v++) Assert.True(Math.Abs(got[t, v] - want[t, v]) <= 1e-4, $"token {t} logit {v}: {got[t, v]} vs {want[t, v]}");
    }

    [Fact]
    public void Gguf_QkRowsOfLoraB_ArePermutedAsTheBaseRows()
    {
        var adapter = LoraAdapter.Random(Config, 2, 2, [LayerTensor.Q], 5, 0.1f, 0.1f);
        var path = Path.Combine(_dir, "q.gguf");
        adapter.WriteGguf(path, Config);
        using var f = GgufFile.Open(path);
        Assert.True(f.TryGetTensor("blk.0.attn_q.weight.lora_b", out var b));
        var hf = adapter.Weights[(0, LayerTensor.Q)].B;
        unsafe
        {
            var file = new ReadOnlySpan<float>(f.BasePointer + b.FileOffset, hf.Length);
            for (int r = 0; r < Config.QDim; r++)
                for (int k = 0; k < 2; k++) Assert.Equal(hf[WeightNames.HfRowForGgufRow(r, Config.HeadDim) * 2 + k], file[r * 2 + k]);
        }
    }

    [Fact]
    public void BadAdapters_ClearErrors()
    {
        var other = Config with { Dim = 32, HeadDim = 8, RopeDim = 8 };
        var adapter = LoraAdapter.Random(other, 4, 8, [LayerTensor.Q], 1, 0.1f, 0.1f);
        var folder = Path.Combine(_dir, "peft");
        adapter.WritePeft(folder);
        var e = Assert.Throws<InvalidDataException>(() => LoraAdapter.ReadPeft(folder, Config));
        Assert.Contains("an adapter of another model", e.Message);
        Assert.Throws<InvalidDataException>(() => adapter.MergeInto(CanonicalModel.Random(Config, 1)));
        var deep = LoraAdapter.Random(Config with { Layers = 3 }, 4, 8, [LayerTensor.Q], 1, 0.1f, 0.1f);
        Assert.Contains("layer 2", Assert.Throws<InvalidDataException>(() => deep.Check(Config, "x")).Message);
        Assert.Contains("no LoRA target \"lm_head\"", Assert.Throws<ArgumentException>(() => LoraAdapter.ParseTarget("lm_head")).Message);
        Assert.Equal(LayerTensor.Gate, LoraAdapter.ParseTarget("gate"));
        var model = Path.Combine(_dir, "model.gguf");
        ModelPackage.WriteGguf(CanonicalModel.Random(Config, 1), model, Tensors.GgmlType.F32);
        Assert.Contains("not a LoRA adapter", Assert.Throws<InvalidDataException>(() => LoraAdapter.ReadGguf(model, Config)).Message);
        Assert.Throws<FileNotFoundException>(() => LoraAdapter.ReadPeft(_dir, Config));
    }
}
