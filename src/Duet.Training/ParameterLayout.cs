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

    // Offsets of the tensors the forward pass reads, by layer (a whole model's layout).
    internal long Embedding, OutputNorm, Output;
    internal long[] AttnNorm = [], Wq = [], Wk = [], Wv = [], Wo = [], FfnNorm = [], Wg = [], Wu = [], Wd = [];

    /// <summary>A LoRA layout's rank, and per (layer, projection) the offsets of A [r, in] and B [out, r]; 0 and empty for a whole model.</summary>
    public int LoraRank { get; }
    internal IReadOnlyDictionary<(int Layer, LayerTensor Target), (long A, long B)> Lora { get; } = new Dictionary<(int, LayerTensor), (long, long)>();
    public bool IsLora => LoraRank > 0;

    private static void CheckTrainable(LlamaConfig c)
    {
        c.Validate();
        if (c.HeadDim * c.Heads != c.Dim) throw new ArgumentException($"training needs head dim × heads = dim ({c.HeadDim} × {c.Heads} ≠ {c.Dim})");
        if (c.RopeDim != c.HeadDim) throw new ArgumentException("training rotates whole heads (rope dim = head dim)");
        if (c.RopeScaling is not null) throw new ArgumentException("training does not support RoPE scaling");
    }

    /// <summary>
    /// The layout of a LoRA adapter: per layer, per target in the order given, A [rank, in] then B [out, rank], named as
    /// PEFT names them (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight); both decayed when weight
    /// decay is on (PEFT under the HF Trainer decays every LoRA matrix).
    /// </summary>
    public ParameterLayout(LlamaConfig c, int rank, IReadOnlyList<LayerTensor> targets)
    {
        CheckTrainable(c);
        if (rank <= 0) throw new ArgumentException($"LoRA rank {rank} must be positive");
        if (targets.Count == 0) throw new ArgumentException("LoRA needs at least one target projection");
        foreach (var t in targets)
            if (t is LayerTensor.AttnNorm or LayerTensor.FfnNorm) throw new ArgumentException($"LoRA adapts projections, not the norm {t}");
        if (targets.Distinct().Count() != targets.Count) throw new ArgumentException("a LoRA target is listed twice");
        Config = c;
        LoraRank = rank;
        var slots = new List<ParameterSlot>();
        var offsets = new Dictionary<(int, LayerTensor), (long, long)>();
        long offset = 0;
        for (int l = 0; l < c.Layers; l++)
            foreach (var t in targets)
            {
                var (rows, cols) = WeightNames.Shape(c, t);
                slots.Add(new ParameterSlot(LoraAdapter.PeftName(l, t, "A"), offset, rank, cols, Decay: true));
                slots.Add(new ParameterSlot(LoraAdapter.PeftName(l, t, "B"), offset + (long)rank * cols, rows, rank, Decay: true));
                offsets[(l, t)] = (offset, offset + (long)rank * cols);
                offset += (long)rank * (rows + cols);
            }
        if (offset > Array.MaxLength) throw new ArgumentException($"{offset:N0} LoRA parameters: more than one array holds");
        Slots = slots;
        Count = offset;
        Lora = offsets;
    }

    /// <summary>
    /// PEFT's initialisation (LoraLayer.reset_lora_parameters, init_lora_weights=True): A from kaiming_uniform(a=√5),
    /// that is U(−1/√in, 1/√in), B zero, so the adapter starts as the identity; one portable seeded generator.
    /// </summary>
    public void InitializeLora(Span<float> parameters, ulong seed)
    {
        if (!IsLora) throw new InvalidOperationException("not a LoRA layout");
        var rng = new NormalRng(seed);
        foreach (var s in Slots)
        {
            var t = parameters.Slice((int)s.Offset, (int)s.Length);
            if (s.Name.EndsWith(".lora_B.weight", StringComparison.Ordinal)) { t.Clear(); continue; }
            double bound = 1 / Math.Sqrt(s.Cols);
            for (int i = 0; i < t.Length; i++) t[i] = (float)((2 * rng.NextDouble() - 1) * bound);
        }
    }

    /// <summary>A LoRA layout's parameters as an adapter (copies; B's rows in the order the parameters hold them).</summary>
    public LoraAdapter ToAdapter(ReadOnlySpan<float> parameters, float alpha, bool rsLora)
    {
        if (!IsLora) throw new InvalidOperationException("not a LoRA layout");
        var weights = new Dictionary<(int, LayerTensor), (float[], float[])>();
        foreach (var ((l, t), (a, b)) in Lora)
        {
            var (rows, cols) = WeightNames.Shape(Config, t);
            weights[(l, t)] = (parameters.Slice((int)a, LoraRank * cols).ToArray(), parameters.Slice((int)b, rows * LoraRank).ToArray());
        }
        return new LoraAdapter { Rank = LoraRank, Alpha = alpha, RsLora = rsLora, Weights = weights };
    }

    public ParameterLayout(LlamaConfig c)
    {
        CheckTrainable(c);
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
