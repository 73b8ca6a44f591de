// KV cache types (--cache-type-k / --cache-type-v): the logits of a model whose cache holds F16 or Q8_0 keys and
// values equal those of the independent float64 reference (tests/reference/llama_reference.py --kv-through) whose keys
// and values are rounded the same way (Q8_0 with ggml's reference quantizer), on the prompt path (Prefill: ForwardRows,
// MatMul, attention per task) and on the decode path (Forward token by token), and they differ from the F32 cache's
// logits by far more than from the reference: the test sees the rounding. The engine computes keys and values in
// float32 and the reference in float64, so a value within float32 rounding of a halfway point between two F16 values
// (or Q8_0 codes) rounds the other way now and then: the largest difference is a few such flips' reach (F16 5e-4, Q8_0
// 2e-3 measured 1.3e-4-2.6e-4 and 1.2e-3 at most), the mean difference stays 20-20,000 times below the rounding's own. The cache itself: F16 stores (Half)x, Q8_0 stores
// what a GGUF Q8_0 row of the same values holds (Quantizer, checked against ggml elsewhere), expanded back exactly.
using Duet.Tensors;
using Duet.Tensors.Quant;
using Duet.Tests;

namespace Duet.Model.Tests;

public sealed class KvCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-kv-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A random model (head dim 32: whole Q8_0 blocks per head), 48 ids, and the reference logits with the cache rounded as <paramref name="kv"/> says.</summary>
    private (string Folder, int[] Ids, float[,] Logits) Reference(string preset, string[] shape, string kv)
    {
        var folder = Path.Combine(_dir, preset);
        if (!Directory.Exists(folder))
            Repo.Python([Repo.Reference("make_random_llama.py"), "--preset", preset, "--seed", "3", "--std", "0.1", "--out", folder, .. shape]);
        var vocab = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json"))).RootElement.GetProperty("vocab_size").GetInt32();
        var rng = new Random(8);
        var ids = Enumerable.Range(0, 48).Select(_ => rng.Next(vocab)).ToArray();
        var npy = Path.Combine(_dir, $"{preset}-{kv.Replace(',', '-')}.npy");
        Repo.Python(Repo.Reference("llama_reference.py"), "--model", folder, "--ids", string.Join(' ', ids), "--kv-through", kv, "--out", npy);
        return (folder, ids, Npy.ReadFloat32Matrix(npy));
    }

    public static TheoryData<string, string, string, float> Cases => new()
    {
        // llama3 shape with head dim 32: 8 heads over 2 KV heads (four heads per attention task); llama2: one head per KV head.
        { "llama2", "F16", "F16", 5e-4f },
        { "llama3", "F16", "F16", 5e-4f },
        { "llama3", "Q8_0", "Q8_0", 2e-3f },
        { "llama2", "Q8_0", "F32", 2e-3f },
        { "llama2", "F32", "Q8_0", 2e-3f },
    };

    private static string[] Shape(string preset) => preset == "llama3" ? ["--head-dim", "32"] : ["--hidden-size", "128"];

    [Theory, MemberData(nameof(Cases))]
    public void Logits_WithCacheType_EqualReferenceOnRoundedKeysAndValues(string preset, string k, string v, float tolerance)
    {
        var (folder, ids, expected) = Reference(preset, Shape(preset), $"{k},{v}");
        var (_, _, exact) = Reference(preset, Shape(preset), "F32,F32");
        using var model = LlamaModel.Load(folder);
        Assert.Equal(32, model.Config.HeadDim);
        var f32 = model.LogitsOf(ids);
        model.KeyCacheType = Enum.Parse<KvCacheType>(k);
        model.ValueCacheType = Enum.Parse<KvCacheType>(v);
        var prompt = model.LogitsOf(ids);
        // Decode: token by token through Forward and MatVec.
        var s = model.CreateState(ids.Length);
        Assert.Equal(model.KeyCacheType, s.Keys[0].Type);
        var decode = new float[ids.Length, model.Config.Vocab];
        for (int t = 0; t < ids.Length; t++)
        {
            model.Forward(s, ids[t]);
            for (int j = 0; j < model.Config.Vocab; j++) decode[t, j] = s.Logits[j];
        }
        float dF32 = Matrices.MaxAbsDiff(exact, f32);
        Assert.True(dF32 <= 1e-4f, $"{preset}: the F32 cache is {dF32} from the reference");
        double gap = MeanAbsDiff(exact, expected);
        foreach (var (path, got) in new[] { ("prompt", prompt), ("decode", decode) })
        {
            float max = Matrices.MaxAbsDiff(expected, got);
            double mean = MeanAbsDiff(expected, got);
            Assert.True(max <= tolerance, $"{preset} {k}/{v}: {path} logits up to {max} from the reference on a rounded cache");
            Assert.True(mean * 10 <= gap, $"{preset} {k}/{v}: {path} logits {mean} from the reference on average, the rounding itself {gap}: not what the reference computes");
        }
    }

    private static double MeanAbsDiff(float[,] a, float[,] b)
    {
        double sum = 0;
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) sum += Math.Abs(a[i, j] - b[i, j]);
        return sum / a.Length;
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    [InlineData(KvCacheType.Q8_0)]
    public unsafe void Store_Expand_ColumnsOfAHeadAsTheRowsGgufStores(KvCacheType type)
    {
        const int capacity = 5, width = 96, hd = 32;
        var cache = new KvCache(type, capacity, width, hd);
        var rng = new Random(1);
        var rows = new float[capacity][];
        for (int t = 0; t < capacity; t++)
        {
            rows[t] = Enumerable.Range(0, width).Select(_ => (float)(rng.NextDouble() * 6 - 3)).ToArray();
            cache.Store(t, rows[t]);
        }
        var gguf = Enum.Parse<GgmlType>(type.ToString());
        var got = new float[capacity * hd];
        for (int head = 0; head < width / hd; head++)
        {
            fixed (float* p = got) cache.Expand(capacity, head * hd, hd, p);
            for (int t = 0; t < capacity; t++)
            {
                var bytes = new byte[GgmlTypeInfo.RowSize(gguf, width)];
                Quantizer.QuantizeRow(gguf, rows[t], bytes);
                var back = new float[width];
                BlockFormats.DequantizeRow(gguf, bytes, back);
                for (int j = 0; j < hd; j++)
                    Assert.True(BitConverter.SingleToInt32Bits(got[t * hd + j]) == BitConverter.SingleToInt32Bits(back[head * hd + j]),
                        $"{type} position {t} head {head} column {j}: {got[t * hd + j]:R} vs {back[head * hd + j]:R}");
            }
        }
        Assert.Throws<ArgumentException>(() => new KvCache(KvCacheType.Q8_0, 4, 48, 16));
    }
}
