// A LoRA adapter of a LLaMA model: per (layer, projection) the low-rank pair A [r, in], B [out, r] (HF orientation:
// the update of W [out, in] is scale · B A), with rank, alpha and rsLoRA, in the two files people exchange:
//   PEFT folder   adapter_config.json (peft_type LORA, r, lora_alpha, use_rslora, target_modules, ...) and
//                 adapter_model.safetensors: base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in],
//                 ...lora_B.weight [out, r]
//   GGUF adapter  as llama.cpp's convert_lora_to_gguf.py writes it: general.type = "adapter", adapter.type = "lora",
//                 adapter.lora.alpha; blk.N.attn_q.weight.lora_a (ne [in, r]) and .lora_b (ne [r, out]), the rows of
//                 lora_b of attn_q and attn_k permuted as the base's rows are (HF -> GGUF RoPE order); llama.cpp scales
//                 by alpha / r, so an rsLoRA adapter is written with alpha · sqrt(r).
// Merging adds scale · B A to the base's weights (duet lora merge).
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Duet.Formats;
using Duet.Formats.Gguf;
using Duet.Formats.SafeTensors;
using Duet.Tensors;
using Duet.Tensors.Quant;

namespace Duet.Model;

public sealed class LoraAdapter
{
    public required int Rank { get; init; }
    public required float Alpha { get; init; }
    public bool RsLora { get; init; }
    /// <summary>alpha / r, or alpha / sqrt(r) with rsLoRA: what B A is multiplied by.</summary>
    public float Scale => RsLora ? Alpha / MathF.Sqrt(Rank) : Alpha / Rank;
    /// <summary>Per (layer, projection): A [r, in] and B [out, r], row-major.</summary>
    public required Dictionary<(int Layer, LayerTensor Target), (float[] A, float[] B)> Weights { get; init; }
    /// <summary>What made the adapter (base and data hashes, config, steps; as a model's provenance), kept in both files.</summary>
    public IReadOnlyDictionary<string, string> Provenance { get; init; } = new Dictionary<string, string>();

    /// <summary>The projections an adapter may target, by PEFT's module names.</summary>
    public static readonly IReadOnlyDictionary<string, LayerTensor> Modules = new Dictionary<string, LayerTensor>
    {
        ["q_proj"] = LayerTensor.Q, ["k_proj"] = LayerTensor.K, ["v_proj"] = LayerTensor.V, ["o_proj"] = LayerTensor.O,
        ["gate_proj"] = LayerTensor.Gate, ["up_proj"] = LayerTensor.Up, ["down_proj"] = LayerTensor.Down,
    };

    private static string ModuleName(LayerTensor t) => Modules.First(p => p.Value == t).Key;

    /// <summary>A targets name (q_proj, ..., or the short q, k, v, o, gate, up, down) as a projection; ArgumentException for another.</summary>
    public static LayerTensor ParseTarget(string name) =>
        Modules.TryGetValue(name, out var t) || Modules.TryGetValue(name + "_proj", out t) ? t
            : throw new ArgumentException($"no LoRA target \"{name}\": a LLaMA layer has {string.Join(", ", Modules.Keys)}");

    /// <summary>A with N(0, std²) entries and B with N(0, bStd²) (PEFT starts B at zero; tests want a non-zero update).</summary>
    public static LoraAdapter Random(LlamaConfig c, int rank, float alpha, IEnumerable<LayerTensor> targets, ulong seed, float std = 0.02f, float bStd = 0f, bool rsLora = false)
    {
        var rng = new NormalRng(seed);
        var weights = new Dictionary<(int, LayerTensor), (float[], float[])>();
        var list = targets.ToList();
        for (int l = 0; l < c.Layers; l++)
            foreach (var t in list)
            {
                var (rows, cols) = WeightNames.Shape(c, t);
                var a = new float[rank * cols]; var b = new float[rows * rank];
                for (int i = 0; i < a.Length; i++) a[i] = std * rng.Next();
                for (int i = 0; i < b.Length; i++) b[i] = bStd * rng.Next();
                weights[(l, t)] = (a, b);
            }
        return new LoraAdapter { Rank = rank, Alpha = alpha, RsLora = rsLora, Weights = weights };
    }

    /// <summary>
    /// The same adapter for a model whose Q and K rows are in llama.cpp's order (a LLaMA read from GGUF, RoPE on
    /// adjacent pairs): B's rows of Q and K permuted as the converter permutes the base's.
    /// </summary>
    public LoraAdapter WithGgufRowOrder(LlamaConfig c) => Reordered(c, toGguf: true);

    /// <summary>The inverse of <see cref="WithGgufRowOrder"/>: an adapter trained over a GGUF base, in HF row order.</summary>
    public LoraAdapter WithHfRowOrder(LlamaConfig c) => Reordered(c, toGguf: false);

    private LoraAdapter Reordered(LlamaConfig c, bool toGguf)
    {
        var weights = new Dictionary<(int, LayerTensor), (float[], float[])>();
        foreach (var ((layer, t), (a, b)) in Weights)
            weights[(layer, t)] = (a, t is LayerTensor.Q or LayerTensor.K ? GgufRows(b, c, toGguf) : b);
        return new LoraAdapter { Rank = Rank, Alpha = Alpha, RsLora = RsLora, Weights = weights, Provenance = Provenance };
    }

    private float[] GgufRows(float[] b, LlamaConfig c, bool toGguf = true)
    {
        var p = new float[b.Length];
        for (int r = 0; r < b.Length / Rank; r++)
        {
            int hf = WeightNames.HfRowForGgufRow(r, c.HeadDim);
            if (toGguf) Array.Copy(b, hf * Rank, p, r * Rank, Rank);
            else Array.Copy(b, r * Rank, p, hf * Rank, Rank);
        }
        return p;
    }

    /// <summary>Checks every pair against the base's shapes; InvalidDataException naming <paramref name="where"/> otherwise.</summary>
    public void Check(LlamaConfig c, string where)
    {
        if (Rank <= 0) throw new InvalidDataException($"{where}: rank {Rank}");
        foreach (var ((layer, t), (a, b)) in Weights)
        {
            if (layer < 0 || layer >= c.Layers) throw new InvalidDataException($"{where}: the adapter has layer {layer}; the base model has {c.Layers} layers");
            var (rows, cols) = WeightNames.Shape(c, t);
            if (a.Length != Rank * cols || b.Length != rows * Rank)
                throw new InvalidDataException($"{where}: layer {layer} {ModuleName(t)}: A holds {a.Length} and B {b.Length} values; the base's [{rows}, {cols}] at rank {Rank} needs {Rank * cols} and {rows * Rank}: an adapter of another model");
        }
    }

    /// <summary>The base with scale · userScale · B A added to each targeted weight (a new model; the base is not changed).</summary>
    public CanonicalModel MergeInto(CanonicalModel m, float userScale = 1f)
    {
        Check(m.Config, "the adapter");
        var tensors = new Dictionary<string, float[]>(m.Tensors);
        float s = Scale * userScale;
        foreach (var ((layer, t), (a, b)) in Weights)
        {
            var (rows, cols) = WeightNames.Shape(m.Config, t);
            string name = WeightNames.Hf(layer, t);
            var w = (float[])tensors[name].Clone();
            for (int r = 0; r < rows; r++)
                for (int k = 0; k < Rank; k++)
                {
                    float br = s * b[r * Rank + k];
                    if (br == 0) continue;
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(a.AsSpan(k * cols, cols), br, w.AsSpan(r * cols, cols), w.AsSpan(r * cols, cols));
                }
            tensors[name] = w;
        }
        return new CanonicalModel { Config = m.Config, Tensors = tensors, Tokenizer = m.Tokenizer, Provenance = m.Provenance };
    }

    // ---- PEFT folders ----

    /// <summary>PEFT's name of A or B (<paramref name="ab"/> "A" or "B") of a layer's projection.</summary>
    public static string PeftName(int layer, LayerTensor t, string ab) => "base_model.model." + WeightNames.Hf(layer, t)[..^".weight".Length] + $".lora_{ab}.weight";

    public void WritePeft(string folder, string? baseModel = null)
    {
        Directory.CreateDirectory(folder);
        var targets = Weights.Keys.Select(k => ModuleName(k.Target)).Distinct().Order(StringComparer.Ordinal).ToArray();
        var config = new JsonObject
        {
            ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["base_model_name_or_path"] = baseModel, ["r"] = Rank, ["lora_alpha"] = Alpha,
            ["use_rslora"] = RsLora, ["lora_dropout"] = 0.0, ["bias"] = "none", ["fan_in_fan_out"] = false,
            ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode)t).ToArray()),
        };
        var w = new SafeTensorsWriter();
        w.AddMetadata("format", "pt");
        foreach (var (key, value) in Provenance) w.AddMetadata(ModelPackage.ProvenancePrefix + key, value); // PEFT reads only the tensors
        foreach (var ((layer, t), (a, b)) in Weights.OrderBy(p => p.Key.Layer).ThenBy(p => p.Key.Target))
        {
            w.Add(PeftName(layer, t, "A"), SafeTensorsDType.F32, [Rank, a.Length / Rank], Bytes(a));
            w.Add(PeftName(layer, t, "B"), SafeTensorsDType.F32, [b.Length / Rank, Rank], Bytes(b));
        }
        w.WriteFile(Path.Combine(folder, "adapter_model.safetensors"));
        AtomicFile.Write(Path.Combine(folder, "adapter_config.json"), s => s.Write(Encoding.UTF8.GetBytes(config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n")));
    }

    public static LoraAdapter ReadPeft(string folder, LlamaConfig c)
    {
        string configPath = Path.Combine(folder, "adapter_config.json"), weightsPath = Path.Combine(folder, "adapter_model.safetensors");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{folder}: no adapter_config.json (not a PEFT adapter folder)", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{folder}: no adapter_model.safetensors", weightsPath);
        JsonNode cfg;
        try { cfg = JsonNode.Parse(File.ReadAllText(configPath)) ?? throw new InvalidDataException($"{configPath}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{configPath}: malformed JSON: {e.Message}"); }
        if (cfg["peft_type"]?.GetValue<string>() is { } type && type != "LORA") throw new InvalidDataException($"{configPath}: peft_type {type}; only LORA adapters are read");
        int rank = cfg["r"]?.GetValue<int>() ?? throw new InvalidDataException($"{configPath}: no r");
        float alpha = (float)(cfg["lora_alpha"]?.GetValue<double>() ?? throw new InvalidDataException($"{configPath}: no lora_alpha"));
        bool rs = cfg["use_rslora"]?.GetValue<bool>() ?? false;
        if (cfg["fan_in_fan_out"]?.GetValue<bool>() == true) throw new InvalidDataException($"{configPath}: fan_in_fan_out adapters (GPT-2 style Conv1D) are not LLaMA's");
        var weights = new Dictionary<(int, LayerTensor), (float[], float[])>();
        using var file = SafeTensorsFile.Open(weightsPath);
        foreach (var info in file.Tensors)
        {
            var (layer, target, ab) = ParsePeftName(info.Name, weightsPath);
            var values = Floats(file, info, weightsPath);
            var pair = weights.TryGetValue((layer, target), out var p) ? p : (null!, null!);
            weights[(layer, target)] = ab == 'A' ? (values, pair.Item2) : (pair.Item1, values);
        }
        foreach (var ((layer, t), (a, b)) in weights)
            if (a is null || b is null) throw new InvalidDataException($"{weightsPath}: layer {layer} {ModuleName(t)} has lora_{(a is null ? "A" : "B")} missing");
        var provenance = file.Metadata.Where(p => p.Key.StartsWith(ModelPackage.ProvenancePrefix, StringComparison.Ordinal))
            .ToDictionary(p => p.Key[ModelPackage.ProvenancePrefix.Length..], p => p.Value, StringComparer.Ordinal);
        var adapter = new LoraAdapter { Rank = rank, Alpha = alpha, RsLora = rs, Weights = weights, Provenance = provenance };
        adapter.Check(c, weightsPath);
        return adapter;
    }

    private static (int Layer, LayerTensor Target, char AB) ParsePeftName(string name, string where)
    {
        // base_model.model.model.layers.N.(self_attn|mlp).MODULE.lora_(A|B)[.default].weight
        var parts = name.Split('.');
        int li = Array.IndexOf(parts, "layers");
        if (li < 0 || li + 3 >= parts.Length || !int.TryParse(parts[li + 1], out int layer))
            throw new InvalidDataException($"{where}: tensor {name} is not a LoRA weight of a decoder layer");
        string module = parts[li + 3];
        if (!Modules.TryGetValue(module, out var t)) throw new InvalidDataException($"{where}: tensor {name}: no LoRA target \"{module}\" in a LLaMA layer ({string.Join(", ", Modules.Keys)})");
        string ab = parts.Length > li + 4 ? parts[li + 4] : "";
        return ab switch
        {
            "lora_A" => (layer, t, 'A'),
            "lora_B" => (layer, t, 'B'),
            _ => throw new InvalidDataException($"{where}: tensor {name} is neither lora_A nor lora_B (embedding adapters and DoRA magnitudes are not read)"),
        };
    }

    private static unsafe float[] Floats(SafeTensorsFile file, SafeTensorInfo info, string where)
    {
        var v = new float[info.ElementCount];
        var bytes = file.GetBytes(info);
        switch (info.DType)
        {
            case SafeTensorsDType.F32: System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).CopyTo(v); break;
            case SafeTensorsDType.F16: BlockFormats.DequantizeRow(GgmlType.F16, bytes, v); break;
            case SafeTensorsDType.BF16: BlockFormats.DequantizeRow(GgmlType.BF16, bytes, v); break;
            default: throw new InvalidDataException($"{where}: tensor {info.Name} is {info.DType}; LoRA weights are read as F32, F16 or BF16");
        }
        return v;
    }

    private static byte[] Bytes(float[] v)
    {
        var b = new byte[v.Length * 4];
        Buffer.BlockCopy(v, 0, b, 0, b.Length);
        return b;
    }

    // ---- GGUF adapters (llama.cpp) ----

    public void WriteGguf(string path, LlamaConfig c)
    {
        Check(c, path);
        var w = new GgufWriter();
        w.Add(GgufKeys.GeneralArchitecture, GgufValue.Of("llama"));
        w.Add("general.type", GgufValue.Of("adapter"));
        w.Add("adapter.type", GgufValue.Of("lora"));
        w.Add("adapter.lora.alpha", GgufValue.Of(RsLora ? Alpha * MathF.Sqrt(Rank) : Alpha)); // llama.cpp scales by alpha / r
        foreach (var (key, value) in Provenance.OrderBy(p => p.Key, StringComparer.Ordinal)) w.Add(ModelPackage.ProvenancePrefix + key, GgufValue.Of(value));
        foreach (var ((layer, t), (a, b)) in Weights.OrderBy(p => p.Key.Layer).ThenBy(p => p.Key.Target))
        {
            var (rows, cols) = WeightNames.Shape(c, t);
            string name = WeightNames.Gguf(layer, t);
            w.AddTensor(name + ".lora_a", GgmlType.F32, [cols, Rank], Bytes(a));
            w.AddTensor(name + ".lora_b", GgmlType.F32, [Rank, rows], Bytes(t is LayerTensor.Q or LayerTensor.K ? GgufRows(b, c) : b));
        }
        w.WriteFile(path);
    }

    public static unsafe LoraAdapter ReadGguf(string path, LlamaConfig c)
    {
        using var file = GgufFile.Open(path);
        var md = file.Metadata;
        if (md.GetString("general.type") != "adapter" || md.GetString("adapter.type") != "lora")
            throw new InvalidDataException($"{path}: not a LoRA adapter (general.type {md.GetString("general.type") ?? "missing"}, adapter.type {md.GetString("adapter.type") ?? "missing"})");
        if (md.Architecture is { } arch && arch != "llama") throw new InvalidDataException($"{path}: an adapter of a {arch} model, not a LLaMA one");
        if (!md.TryGet("adapter.lora.alpha", out var alphaValue)) throw new InvalidDataException($"{path}: no adapter.lora.alpha");
        float alpha = Convert.ToSingle(alphaValue.Value, System.Globalization.CultureInfo.InvariantCulture);
        var weights = new Dictionary<(int, LayerTensor), (float[], float[])>();
        int rank = -1;
        var byGguf = Enumerable.Range(0, c.Layers).SelectMany(l => Modules.Values.Select(t => (Name: WeightNames.Gguf(l, t), Layer: l, Target: t))).ToDictionary(x => x.Name);
        foreach (var info in file.Tensors)
        {
            bool isA = info.Name.EndsWith(".lora_a", StringComparison.Ordinal), isB = info.Name.EndsWith(".lora_b", StringComparison.Ordinal);
            if (!isA && !isB) throw new InvalidDataException($"{path}: tensor {info.Name} is neither .lora_a nor .lora_b");
            string baseName = info.Name[..^7];
            if (!byGguf.TryGetValue(baseName, out var site)) throw new InvalidDataException($"{path}: tensor {info.Name}: the base model has no {baseName} to adapt");
            if (info.Shape.Length != 2) throw new InvalidDataException($"{path}: tensor {info.Name} is not a matrix");
            int r = (int)(isA ? info.Shape[1] : info.Shape[0]);
            if (rank < 0) rank = r;
            else if (r != rank) throw new InvalidDataException($"{path}: tensor {info.Name} has rank {r}, others {rank}");
            var values = new float[info.ElementCount];
            if (info.Type == GgmlType.F32) new ReadOnlySpan<float>(file.BasePointer + info.FileOffset, values.Length).CopyTo(values);
            else BlockFormats.DequantizeRow(info.Type, new ReadOnlySpan<byte>(file.BasePointer + info.FileOffset, checked((int)info.ByteSize)), values);
            if (isB && site.Target is LayerTensor.Q or LayerTensor.K)
            {
                var hf = new float[values.Length];
                int rows = values.Length / r;
                for (int g = 0; g < rows; g++) Array.Copy(values, g * r, hf, WeightNames.HfRowForGgufRow(g, c.HeadDim) * r, r);
                values = hf;
            }
            var pair = weights.TryGetValue((site.Layer, site.Target), out var p) ? p : (null!, null!);
            weights[(site.Layer, site.Target)] = isA ? (values, pair.Item2) : (pair.Item1, values);
        }
        if (rank < 0) throw new InvalidDataException($"{path}: an adapter without tensors");
        foreach (var ((layer, t), (a, b)) in weights)
            if (a is null || b is null) throw new InvalidDataException($"{path}: layer {layer} {ModuleName(t)} has lora_{(a is null ? "a" : "b")} missing");
        // llama.cpp's alpha scales by alpha / r: read back as a plain LoRA with that scale.
        var adapter = new LoraAdapter { Rank = rank, Alpha = alpha, Weights = weights, Provenance = ModelPackage.GgufProvenance(md) };
        adapter.Check(c, path);
        return adapter;
    }

    /// <summary>A PEFT folder or a GGUF adapter file.</summary>
    public static LoraAdapter Read(string path, LlamaConfig c) => Directory.Exists(path) ? ReadPeft(path, c) : ReadGguf(path, c);
}
