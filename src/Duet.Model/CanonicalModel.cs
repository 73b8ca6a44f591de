// A model in the canonical form that model files are written from: float32 tensors with HF names and HF row
// order (Q/K rows as HF stores them), the config and the tokenizer. Made at random (init, tests), read back from
// any loaded model (convert, quantize) or from a training checkpoint (export); ModelPackage writes it as GGUF
// (applying llama.cpp's Q/K row permutation) or as an HF folder, so the same model round-trips through either.
// Not what the engine runs: LlamaWeights binds the mapped file in place.
using Duet.Tensors.Kernels;
using Duet.Tokenizers;

namespace Duet.Model;

/// <summary>A model as float32 tensors with HF names and layouts.</summary>
public sealed class CanonicalModel
{
    /// <summary>The shape and metadata (name, context length, RoPE); HF row order goes with RopeStyle NeoX.</summary>
    public required LlamaConfig Config { get; init; }
    /// <summary>Row-major float32 tensors by HF name (<see cref="Layout"/> lists them).</summary>
    public required Dictionary<string, float[]> Tensors { get; init; }
    /// <summary>The tokenizer written with the weights, or null (GGUF then gets a placeholder vocabulary).</summary>
    public Tokenizer? Tokenizer { get; init; }
    /// <summary>
    /// What made the weights, by name (corpus and tokenizer hashes, training config, source commit, tokens seen; see
    /// TrainedModel): written with them (GGUF keys duet.provenance.NAME, an HF folder's config.json "duet_provenance")
    /// and read back by <see cref="ModelPackage"/>, so a converted or quantized copy keeps it.
    /// </summary>
    public IReadOnlyDictionary<string, string> Provenance { get; init; } = new Dictionary<string, string>();

    /// <summary>Every tensor's HF name and shape in file order: embedding, per layer the nine tensors, output norm, output unless tied. Norms have one row.</summary>
    public IEnumerable<(string Name, int Rows, int Cols)> Layout()
    {
        var c = Config;
        yield return (WeightNames.HfEmbedding, c.Vocab, c.Dim);
        for (int l = 0; l < c.Layers; l++)
            foreach (var t in Enum.GetValues<LayerTensor>())
            {
                var (r, k) = WeightNames.Shape(c, t);
                yield return (WeightNames.Hf(l, t), r, k);
            }
        yield return (WeightNames.HfOutputNorm, 1, c.Dim);
        if (!c.TiedEmbeddings) yield return (WeightNames.HfOutput, c.Vocab, c.Dim);
    }

    /// <summary>Random weights, N(0, std²) for matrices and 1 for norms, from a portable seeded generator.</summary>
    public static CanonicalModel Random(LlamaConfig c, ulong seed, Tokenizer? tokenizer = null, float std = 0.02f)
    {
        var rng = new NormalRng(seed);
        var tensors = new Dictionary<string, float[]>();
        var m = new CanonicalModel { Config = c, Tensors = tensors, Tokenizer = tokenizer };
        foreach (var (name, rows, cols) in m.Layout())
        {
            var v = new float[(long)rows * cols];
            if (rows == 1) Array.Fill(v, 1f);
            else for (long i = 0; i < v.Length; i++) v[i] = std * rng.Next();
            tensors[name] = v;
        }
        return m;
    }

    /// <summary>Reads any loaded model back into canonical float32 form (dequantizing, undoing the GGUF Q/K permutation).</summary>
    public static CanonicalModel FromWeights(LlamaWeights w, Tokenizer? tokenizer)
    {
        var c = w.Config;
        var t = new Dictionary<string, float[]>();
        float[] Dense(WeightMatrix m, bool permuted)
        {
            var dst = new float[(long)m.Rows * m.Cols];
            for (int r = 0; r < m.Rows; r++)
            {
                int hr = permuted ? WeightNames.HfRowForGgufRow(r, c.HeadDim) : r;
                m.DequantizeRow(r, dst.AsSpan(hr * m.Cols, m.Cols));
            }
            return dst;
        }
        bool gguf = c.RopeStyle == RopeStyle.Normal;
        t[WeightNames.HfEmbedding] = Dense(w.Embedding, false);
        for (int l = 0; l < c.Layers; l++)
        {
            var L = w.Layers[l];
            t[WeightNames.Hf(l, LayerTensor.AttnNorm)] = (float[])L.AttnNorm.Clone();
            t[WeightNames.Hf(l, LayerTensor.FfnNorm)] = (float[])L.FfnNorm.Clone();
            t[WeightNames.Hf(l, LayerTensor.Q)] = Dense(L.Q, gguf);
            t[WeightNames.Hf(l, LayerTensor.K)] = Dense(L.K, gguf);
            t[WeightNames.Hf(l, LayerTensor.V)] = Dense(L.V, false);
            t[WeightNames.Hf(l, LayerTensor.O)] = Dense(L.O, false);
            t[WeightNames.Hf(l, LayerTensor.Gate)] = Dense(L.Gate, false);
            t[WeightNames.Hf(l, LayerTensor.Up)] = Dense(L.Up, false);
            t[WeightNames.Hf(l, LayerTensor.Down)] = Dense(L.Down, false);
        }
        t[WeightNames.HfOutputNorm] = (float[])w.OutputNorm.Clone();
        if (!c.TiedEmbeddings) t[WeightNames.HfOutput] = Dense(w.Output, false);
        return new CanonicalModel { Config = c with { RopeStyle = RopeStyle.NeoX }, Tensors = t, Tokenizer = tokenizer };
    }
}
