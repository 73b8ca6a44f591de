// The architecture of a LLaMA-family model (Llama 2/3, Yi, Mistral), read from GGUF metadata or an HF
// config.json. Immutable; everything the forward pass needs to know about shapes and RoPE.
using Duet.Formats.Gguf;
using Duet.Formats.SafeTensors;
using Duet.Tensors.Kernels;

namespace Duet.Model;

public sealed record LlamaConfig
{
    public int Dim { get; init; }
    public int Layers { get; init; }
    public int Heads { get; init; }
    public int KvHeads { get; init; }
    public int HeadDim { get; init; }
    public int FfnDim { get; init; }
    public int Vocab { get; init; }
    public int ContextLength { get; init; } = 2048;
    public float NormEps { get; init; } = 1e-5f;
    public float RopeTheta { get; init; } = 10000f;
    /// <summary>Dimensions of each head that RoPE rotates (all of them for LLaMA).</summary>
    public int RopeDim { get; init; }
    public RopeStyle RopeStyle { get; init; } = RopeStyle.Normal;
    public HfRopeScaling? RopeScaling { get; init; }
    public bool TiedEmbeddings { get; init; }
    public string Architecture { get; init; } = "llama";
    public string Name { get; init; } = "";

    public int KvDim => KvHeads * HeadDim;
    public int QDim => Heads * HeadDim;

    public void Validate()
    {
        void Check(bool ok, string what) { if (!ok) throw new InvalidDataException($"model config: {what}"); }
        Check(Dim > 0 && Layers > 0 && Heads > 0 && KvHeads > 0 && FfnDim > 0 && Vocab > 0, $"all sizes must be positive (dim {Dim}, layers {Layers}, heads {Heads}, kv heads {KvHeads}, ffn {FfnDim}, vocab {Vocab})");
        Check(Heads % KvHeads == 0, $"heads {Heads} is not a multiple of kv heads {KvHeads}");
        Check(HeadDim > 0 && HeadDim % 2 == 0, $"head dim {HeadDim} must be positive and even");
        Check(RopeDim > 0 && RopeDim <= HeadDim && RopeDim % 2 == 0, $"rope dim {RopeDim} must be even and at most the head dim {HeadDim}");
        Check(ContextLength > 0, $"context length {ContextLength} must be positive");
        Check(Dim <= 1 << 16 && FfnDim <= 1 << 18 && Layers <= 1024 && Heads <= 1024 && Vocab <= 1 << 22, "sizes beyond any LLaMA-family model");
    }

    /// <summary>RoPE inverse frequencies θ^(-2i/d), with HF "linear" or "llama3" scaling applied.</summary>
    public float[] InverseFrequencies()
    {
        int half = RopeDim / 2;
        var inv = new double[half];
        for (int i = 0; i < half; i++) inv[i] = 1.0 / Math.Pow(RopeTheta, 2.0 * i / RopeDim);
        if (RopeScaling is { Type: "linear" } lin)
            for (int i = 0; i < half; i++) inv[i] /= lin.Factor;
        else if (RopeScaling is { Type: "llama3" } s)
        {
            // transformers _compute_llama3_parameters: long wavelengths slowed by the factor, short ones kept,
            // the band between blended.
            double lowWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor, highWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
            for (int i = 0; i < half; i++)
            {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowWavelen) inv[i] /= s.Factor;
                else if (wavelen >= highWavelen)
                {
                    double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                }
            }
        }
        return inv.Select(v => (float)v).ToArray();
    }

    public static LlamaConfig FromGguf(GgufMetadata md, int vocabFromTensors)
    {
        var arch = md.Architecture ?? throw new InvalidDataException("GGUF: no general.architecture");
        if (arch is not ("llama" or "mistral"))
            throw new InvalidDataException($"GGUF: architecture '{arch}' is not supported (llama, mistral)");
        string K(string suffix) => GgufKeys.ForArchitecture(arch, suffix);
        int dim = md.GetInt32(K(GgufKeys.EmbeddingLengthSuffix));
        int heads = md.GetInt32(K(GgufKeys.AttentionHeadCountSuffix));
        int headDim = md.GetInt32(K(GgufKeys.AttentionKeyLengthSuffix), heads > 0 ? dim / heads : 0);
        HfRopeScaling? scaling = null;
        if (md.GetString(K(GgufKeys.RopeScalingTypeSuffix)) is "linear")
            scaling = new HfRopeScaling("linear", md.GetFloat(K(GgufKeys.RopeScalingFactorSuffix), 1f), 1, 4, 8192);
        var c = new LlamaConfig
        {
            Architecture = arch,
            Name = md.GetString(GgufKeys.GeneralName) ?? "",
            Dim = dim,
            Layers = md.GetInt32(K(GgufKeys.BlockCountSuffix)),
            Heads = heads,
            KvHeads = md.GetInt32(K(GgufKeys.AttentionHeadCountKvSuffix), heads),
            HeadDim = headDim,
            FfnDim = md.GetInt32(K(GgufKeys.FeedForwardLengthSuffix)),
            Vocab = md.GetInt32(K(GgufKeys.VocabSizeSuffix), vocabFromTensors),
            ContextLength = md.GetInt32(K(GgufKeys.ContextLengthSuffix), 2048),
            NormEps = md.GetFloat(K(GgufKeys.AttentionLayerNormRmsEpsilonSuffix), 1e-5f),
            RopeTheta = md.GetFloat(K(GgufKeys.RopeFreqBaseSuffix), 10000f),
            RopeDim = md.GetInt32(K(GgufKeys.RopeDimensionCountSuffix), headDim),
            RopeStyle = RopeStyle.Normal, // llama.cpp LLAMA_ROPE_TYPE_NORM: Q/K rows were permuted at conversion
            RopeScaling = scaling,
        };
        c.Validate();
        return c;
    }

    public static LlamaConfig FromHf(HfConfig h)
    {
        int headDim = h.HeadDim ?? h.HiddenSize / h.NumAttentionHeads;
        var c = new LlamaConfig
        {
            Architecture = "llama",
            Dim = h.HiddenSize,
            Layers = h.NumHiddenLayers,
            Heads = h.NumAttentionHeads,
            KvHeads = h.NumKeyValueHeads,
            HeadDim = headDim,
            FfnDim = h.IntermediateSize,
            Vocab = h.VocabSize,
            ContextLength = h.MaxPositionEmbeddings,
            NormEps = (float)h.RmsNormEps,
            RopeTheta = (float)h.RopeTheta,
            RopeDim = headDim,
            RopeStyle = RopeStyle.NeoX, // HF checkpoints rotate (i, i + d/2)
            RopeScaling = h.RopeScaling,
            TiedEmbeddings = h.TieWordEmbeddings,
        };
        c.Validate();
        return c;
    }

    public HfConfig ToHf(int? bos = null, int[]? eos = null) => new()
    {
        HiddenSize = Dim, IntermediateSize = FfnDim, NumHiddenLayers = Layers, NumAttentionHeads = Heads, NumKeyValueHeads = KvHeads,
        HeadDim = HeadDim == Dim / Heads ? null : HeadDim, VocabSize = Vocab, MaxPositionEmbeddings = ContextLength, RmsNormEps = NormEps,
        RopeTheta = RopeTheta, RopeScaling = RopeScaling, TieWordEmbeddings = TiedEmbeddings, BosTokenId = bos, EosTokenIds = eos ?? [],
    };

    /// <summary>The GGUF metadata keys llama.cpp reads for this architecture.</summary>
    public List<KeyValuePair<string, GgufValue>> ToGgufMetadata(string name)
    {
        string K(string suffix) => GgufKeys.ForArchitecture("llama", suffix);
        var md = new List<KeyValuePair<string, GgufValue>>
        {
            new(GgufKeys.GeneralArchitecture, GgufValue.Of("llama")),
            new(GgufKeys.GeneralName, GgufValue.Of(name)),
            new(K(GgufKeys.ContextLengthSuffix), GgufValue.Of((uint)ContextLength)),
            new(K(GgufKeys.EmbeddingLengthSuffix), GgufValue.Of((uint)Dim)),
            new(K(GgufKeys.BlockCountSuffix), GgufValue.Of((uint)Layers)),
            new(K(GgufKeys.FeedForwardLengthSuffix), GgufValue.Of((uint)FfnDim)),
            new(K(GgufKeys.AttentionHeadCountSuffix), GgufValue.Of((uint)Heads)),
            new(K(GgufKeys.AttentionHeadCountKvSuffix), GgufValue.Of((uint)KvHeads)),
            new(K(GgufKeys.RopeDimensionCountSuffix), GgufValue.Of((uint)RopeDim)),
            new(K(GgufKeys.AttentionLayerNormRmsEpsilonSuffix), GgufValue.Of(NormEps)),
            new(K(GgufKeys.RopeFreqBaseSuffix), GgufValue.Of(RopeTheta)),
            new(K(GgufKeys.VocabSizeSuffix), GgufValue.Of((uint)Vocab)),
        };
        if (HeadDim != Dim / Heads)
        {
            md.Add(new(K(GgufKeys.AttentionKeyLengthSuffix), GgufValue.Of((uint)HeadDim)));
            md.Add(new(K(GgufKeys.AttentionValueLengthSuffix), GgufValue.Of((uint)HeadDim)));
        }
        if (RopeScaling is { Type: "linear" } s)
        {
            md.Add(new(K(GgufKeys.RopeScalingTypeSuffix), GgufValue.Of("linear")));
            md.Add(new(K(GgufKeys.RopeScalingFactorSuffix), GgufValue.Of((float)s.Factor)));
        }
        return md;
    }
}
