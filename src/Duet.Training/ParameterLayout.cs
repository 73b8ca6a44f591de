// All parameters of a model in one float array, each tensor a slot with its Hugging Face name and shape, in the
// order of CanonicalModel.Layout (embedding, per layer attention norm, q, k, v, o, ffn norm, gate, up, down;
// final norm; the output head unless tied). Gradients and the optimizer's moments use the same layout, so the
// optimizer, clipping and checkpoints walk one array.
using Duet.Model;

namespace Duet.Training;

/// <summary>One tensor of the layout: HF name, [Rows, Cols] (Rows 1 for vectors), and whether AdamW decays it.</summary>
public sealed record ParameterSlot(string Name, long Offset, int Rows, int Cols, bool Decay)
{
    public long Length => (long)Rows * Cols;
}

public sealed class ParameterLayout
{
    public LlamaConfig Config { get; }
    public IReadOnlyList<ParameterSlot> Slots { get; }
    public long Count { get; }

    // Offsets of the tensors the forward pass reads, by layer.
    internal long Embedding, OutputNorm, Output;
    internal long[] AttnNorm, Wq, Wk, Wv, Wo, FfnNorm, Wg, Wu, Wd;

    public ParameterLayout(LlamaConfig c)
    {
        c.Validate();
        if (c.HeadDim * c.Heads != c.Dim) throw new ArgumentException($"training needs head dim × heads = dim ({c.HeadDim} × {c.Heads} ≠ {c.Dim})");
        if (c.RopeDim != c.HeadDim) throw new ArgumentException("training rotates whole heads (rope dim = head dim)");
        if (c.RopeScaling is not null) throw new ArgumentException("training does not support RoPE scaling");
        Config = c;
        var slots = new List<ParameterSlot>();
        long offset = 0;
        var index = new Dictionary<string, long>();
        // Decay: 2-D weight matrices except the token embedding (and so a tied head); norms never.
        foreach (var (name, rows, cols) in new CanonicalModel { Config = c, Tensors = [] }.Layout())
        {
            bool decay = rows > 1 && name != WeightNames.HfEmbedding;
            slots.Add(new ParameterSlot(name, offset, rows, cols, decay));
            index[name] = offset;
            offset += (long)rows * cols;
        }
        if (offset > Array.MaxLength) throw new ArgumentException($"{offset:N0} parameters: more than one array holds (train models under 2 billion parameters)");
        Slots = slots;
        Count = offset;
        Embedding = index[WeightNames.HfEmbedding];
        OutputNorm = index[WeightNames.HfOutputNorm];
        Output = c.TiedEmbeddings ? Embedding : index[WeightNames.HfOutput];
        long[] Per(LayerTensor t) => Enumerable.Range(0, c.Layers).Select(l => index[WeightNames.Hf(l, t)]).ToArray();
        AttnNorm = Per(LayerTensor.AttnNorm); Wq = Per(LayerTensor.Q); Wk = Per(LayerTensor.K); Wv = Per(LayerTensor.V); Wo = Per(LayerTensor.O);
        FfnNorm = Per(LayerTensor.FfnNorm); Wg = Per(LayerTensor.Gate); Wu = Per(LayerTensor.Up); Wd = Per(LayerTensor.Down);
    }

    public ParameterSlot this[string name] => Slots.FirstOrDefault(s => s.Name == name) ?? throw new KeyNotFoundException(name);

    /// <summary>
    /// GPT-2 / llm.c initialisation: matrices N(0, std²), the projections that write into the residual stream
    /// (o_proj, down_proj) N(0, (std/√(2·layers))²), norm weights 1; one portable seeded generator, slots in order.
    /// </summary>
    public void Initialize(Span<float> parameters, ulong seed, float std = 0.02f)
    {
        var rng = new NormalRng(seed);
        float residual = std / MathF.Sqrt(2f * Config.Layers);
        foreach (var s in Slots)
        {
            var t = parameters.Slice((int)s.Offset, (int)s.Length);
            if (s.Rows == 1) { t.Fill(1f); continue; }
            bool proj = s.Name.EndsWith(".o_proj.weight", StringComparison.Ordinal) || s.Name.EndsWith(".down_proj.weight", StringComparison.Ordinal);
            float sd = proj ? residual : std;
            for (int i = 0; i < t.Length; i++) t[i] = sd * rng.Next();
        }
    }

    /// <summary>Copies a model's tensors into the layout (shapes checked).</summary>
    public void Load(CanonicalModel m, Span<float> parameters)
    {
        foreach (var s in Slots)
        {
            if (!m.Tensors.TryGetValue(s.Name, out var src)) throw new InvalidDataException($"the model has no tensor {s.Name}");
            if (src.Length != s.Length) throw new InvalidDataException($"{s.Name}: {src.Length} values, the layout needs {s.Rows}×{s.Cols}");
            src.CopyTo(parameters.Slice((int)s.Offset, (int)s.Length));
        }
    }

    /// <summary>The parameters as a model (copies), for export and for the inference engine.</summary>
    public CanonicalModel ToModel(ReadOnlySpan<float> parameters, Duet.Tokenizers.Tokenizer? tokenizer)
    {
        var tensors = new Dictionary<string, float[]>();
        foreach (var s in Slots) tensors[s.Name] = parameters.Slice((int)s.Offset, (int)s.Length).ToArray();
        return new CanonicalModel { Config = Config, Tensors = tensors, Tokenizer = tokenizer };
    }
}
