// Acceptance 1 and part of 2 of the engine issue: logits of random-weight models in Llama 2, Llama 3
// (GQA, θ 5e5), Yi (GQA, 64000 vocabulary, θ 5e6) and Mistral shapes, made and run by the independent
// reference under tests/reference/ (numpy weights, a float64 PyTorch LLaMA), agree with Duet at every
// position of a 64-token sequence, loaded from safetensors and from GGUF.
using Duet.Tensors;
using Duet.Tensors.Kernels;
using Duet.Tests;

namespace Duet.Model.Tests;

public sealed class ReferenceModels : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("duet-ref-").FullName;
    private readonly Dictionary<string, (string Folder, int[] Ids, float[,] Logits)> _cache = new();

    /// <summary>A reference model folder, 64 ids, and the reference logits, made once per test run.</summary>
    /// <param name="through">a GGUF type every matrix is rounded through before the reference runs (llama_reference.py --weights-through)</param>
    public (string Folder, int[] Ids, float[,] Logits) Get(string preset, string? ropeScaling = null, string std = "0.1", string? through = null)
    {
        string key = preset + (ropeScaling ?? "") + "-std" + std + (through is null ? "" : "-" + through);
        lock (_cache)
        {
            if (_cache.TryGetValue(key, out var hit)) return hit;
            var folder = Path.Combine(Dir, key.Replace('"', '_').Replace(':', '_').Replace('{', '_').Replace('}', '_').Replace(',', '_').Replace(' ', '_'));
            var args = new List<string> { Repo.Reference("make_random_llama.py"), "--preset", preset, "--seed", "11", "--std", std, "--out", folder };
            if (ropeScaling is not null) args.AddRange(["--rope-scaling", ropeScaling, "--max-position-embeddings", "64"]);
            Repo.Python([.. args]);
            var vocab = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json"))).RootElement.GetProperty("vocab_size").GetInt32();
            var rng = new Random(5);
            var ids = Enumerable.Range(0, 64).Select(_ => rng.Next(vocab)).ToArray();
            var npy = Path.Combine(Dir, key.GetHashCode().ToString("x") + ".npy");
            if (through is null) Repo.Python(Repo.Reference("llama_reference.py"), "--model", folder, "--ids", string.Join(' ', ids), "--out", npy);
            else Repo.Python(Repo.Reference("llama_reference.py"), "--model", folder, "--ids", string.Join(' ', ids), "--weights-through", through, "--out", npy);
            var r = (folder, ids, Npy.ReadFloat32Matrix(npy));
            _cache[key] = r;
            return r;
        }
    }

    public void Dispose() => Directory.Delete(Dir, true);
}

public class ReferenceLogitsTests(ReferenceModels refs) : IClassFixture<ReferenceModels>
{
    public static TheoryData<string> Presets => new() { "llama2", "llama3", "yi", "mistral", "tiny" };

    internal static float MaxDiff(float[,] expected, float[,] actual) => Matrices.MaxAbsDiff(expected, actual);

    [Theory, MemberData(nameof(Presets))]
    public void Logits_FromSafetensors_MatchPyTorchAtEveryPosition(string preset)
    {
        var (folder, ids, expected) = refs.Get(preset);
        using var model = LlamaModel.Load(folder);
        float diff = MaxDiff(expected, model.LogitsOf(ids));
        Assert.True(diff <= 1e-4f, $"{preset}: max |diff| {diff}");
    }

    [Theory, MemberData(nameof(Presets))]
    public void Logits_FromGguf_MatchPyTorchAtEveryPosition(string preset)
    {
        var (folder, ids, expected) = refs.Get(preset);
        var gguf = Path.Combine(refs.Dir, preset + ".f32.gguf");
        using (var hf = LlamaModel.Load(folder))
            ModelPackage.WriteGguf(CanonicalModel.FromWeights(hf.Weights, null), gguf, GgmlType.F32);
        using var model = LlamaModel.Load(gguf);
        Assert.Equal(Tensors.Kernels.RopeStyle.Normal, model.Config.RopeStyle); // the permuted layout is really in use
        float diff = MaxDiff(expected, model.LogitsOf(ids));
        Assert.True(diff <= 1e-4f, $"{preset}: max |diff| {diff}");
    }

    [Theory]
    [InlineData("{\"rope_type\": \"linear\", \"factor\": 4.0}")]
    [InlineData("{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 16}")]
    public void Logits_WithRopeScaling_MatchPyTorch(string scaling)
    {
        var (folder, ids, expected) = refs.Get("llama3", scaling);
        using var model = LlamaModel.Load(folder);
        float diff = MaxDiff(expected, model.LogitsOf(ids));
        Assert.True(diff <= 1e-4f, $"max |diff| {diff}");
    }

    /// <summary>Duet's logits of <paramref name="preset"/> (weights N(0, 0.02), as `duet init` makes them) written as a GGUF of <paramref name="type"/>.</summary>
    private float[,] QuantizedLogits(string preset, GgmlType type, QuantizedMath math, out int[] ids)
    {
        var (folder, i, _) = refs.Get(preset, std: "0.02");
        ids = i;
        var path = Path.Combine(refs.Dir, $"{preset}.{type}.gguf".ToLowerInvariant());
        if (!File.Exists(path))
            using (var hf = LlamaModel.Load(folder))
                ModelPackage.WriteGguf(CanonicalModel.FromWeights(hf.Weights, null), path, type);
        using var model = LlamaModel.Load(path);
        Assert.Equal(type, model.Weights.MainType);
        model.QuantizedMath = math;
        return model.LogitsOf(ids);
    }

    /// <summary>
    /// Acceptance 2's logit line: Q8_0 logits within 1e-2 of the F32 model's, against the independent reference's
    /// F32 logits, on every test model (weights N(0, 0.02), as `duet init` makes them; with N(0, 0.1) the logits span
    /// ±4 and Q8_0's rounding moves them by about 0.1). Computed with QuantizedMath.Float, the logits carry only
    /// the Q8_0 weights' own rounding (the next test shows it exactly); Yi's shape, 64000 logits a position, drifts
    /// most: 9.17e-3.
    /// </summary>
    [Theory, MemberData(nameof(Presets))]
    public void Logits_Q8_0_StayWithin1eMinus2OfF32(string preset)
    {
        var f32 = refs.Get(preset, std: "0.02").Logits;
        float diff = MaxDiff(f32, QuantizedLogits(preset, GgmlType.Q8_0, QuantizedMath.Float, out _));
        Assert.True(diff <= 1e-2f, $"{preset}: Q8_0 max |diff| {diff}");
    }

    /// <summary>
    /// QuantizedMath.Float on a quantized GGUF computes the quantized model exactly: its logits equal the
    /// reference's float64 forward pass over the same weights rounded through the type by ggml's reference
    /// quantizer (llama_reference.py --weights-through; rows that are not whole blocks through F16, as the writer).
    /// </summary>
    [Theory]
    [InlineData("yi", "Q8_0")]
    [InlineData("llama2", "Q8_0")]
    [InlineData("mistral", "Q4_0")]
    [InlineData("llama3", "Q4_0")]
    public void Logits_QuantizedFloatMath_EqualReferenceOnRoundedWeights(string preset, string type)
    {
        var expected = refs.Get(preset, std: "0.02", through: type).Logits;
        float diff = MaxDiff(expected, QuantizedLogits(preset, Enum.Parse<GgmlType>(type), QuantizedMath.Float, out _));
        Assert.True(diff <= 1e-4f, $"{preset} {type}: max |diff| {diff}");
    }

    /// <summary>
    /// The default QuantizedMath.Integer rounds activations to Q8_0 blocks for integer dot products, as ggml does,
    /// and adds that rounding to the weights': llama2, llama3, Mistral and the tied tiny model stay within 1e-2;
    /// Yi's shape reaches 1.26e-2. llama.cpp (c392e50) computes the same: on the same two GGUF files it moves its
    /// logits by the same 1.2609e-2 at the same position and entry, and its Q8_0 logits equal Duet's to 1e-7
    /// (bench/ggml/q8_drift.sh; docs/interop.md). The Yi bound records that measurement.
    /// </summary>
    [Theory]
    [InlineData("llama2", 1e-2f)]
    [InlineData("llama3", 1e-2f)]
    [InlineData("mistral", 1e-2f)]
    [InlineData("tiny", 1e-2f)]
    [InlineData("yi", 1.5e-2f)]
    public void Logits_Q8_0_IntegerMath_DriftsAsLlamaCpp(string preset, float bound)
    {
        var f32 = refs.Get(preset, std: "0.02").Logits;
        float diff = MaxDiff(f32, QuantizedLogits(preset, GgmlType.Q8_0, QuantizedMath.Integer, out _));
        Assert.True(diff <= bound, $"{preset}: Q8_0 (integer math) max |diff| {diff}");
    }
}

public class DecodePathTests
{
    /// <summary>The one-token decode step (Forward) and batched prompt processing (Prefill) compute the same logits.</summary>
    [Theory]
    [InlineData(Tensors.GgmlType.F32)]
    [InlineData(Tensors.GgmlType.Q8_0)]
    [InlineData(Tensors.GgmlType.F16)]
    [InlineData(Tensors.GgmlType.Q8_0, QuantizedMath.Float)]
    [InlineData(Tensors.GgmlType.Q4_0, QuantizedMath.Float)]
    public void Forward_TokenByToken_EqualsPrefill(Tensors.GgmlType type, QuantizedMath math = QuantizedMath.Integer)
    {
        var c = new LlamaConfig
        {
            Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 16, RopeDim = 16, FfnDim = 128, Vocab = 300, ContextLength = 80,
            RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
        };
        var dir = Directory.CreateTempSubdirectory("duet-fwd-").FullName;
        try
        {
            var path = Path.Combine(dir, "m.gguf");
            ModelPackage.WriteGguf(CanonicalModel.Random(c, 8, std: 0.1f), path, type);
            using var m = LlamaModel.Load(path);
            m.QuantizedMath = math;
            var ids = Enumerable.Range(0, 70).Select(i => (i * 37 + 11) % 300).ToArray(); // more than two batches of 32
            var batched = m.LogitsOf(ids);
            var s = m.CreateState(ids.Length);
            int exact = 0;
            for (int t = 0; t < ids.Length; t++)
            {
                m.Forward(s, ids[t]);
                float diff = 0;
                for (int v = 0; v < c.Vocab; v++) diff = Math.Max(diff, Math.Abs(batched[t, v] - s.Logits[v]));
                if (diff <= 1e-5f) exact++;
                // Q8_0 quantizes activations: the two paths sum in different orders, and a value that lands on a
                // rounding boundary can take the neighbouring int8 code (measured: 2 of 70 positions, up to 2e-2).
                Assert.True(diff <= (type == Tensors.GgmlType.Q8_0 && math == QuantizedMath.Integer ? 5e-2f : 1e-5f), $"position {t}: max |diff| {diff}");
            }
            Assert.True(exact >= ids.Length * 9 / 10, $"only {exact} of {ids.Length} positions agree to 1e-5");
        }
        finally { Directory.Delete(dir, true); }
    }
}
