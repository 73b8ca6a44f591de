// The weights of a LLaMA model, bound in place to the memory-mapped file they came from (GGUF, or HF
// safetensors with config.json): matrices are views, never copies; only the small norm vectors are
// expanded to float. Names and shapes are checked against the config before anything runs.
using System.Text.Json;
using Duet.Formats.Gguf;
using Duet.Formats.SafeTensors;
using Duet.Tensors;
using Duet.Tensors.Kernels;
using Duet.Tensors.Quant;

namespace Duet.Model;

public sealed class LayerWeights
{
    public required float[] AttnNorm { get; init; }
    public required float[] FfnNorm { get; init; }
    public required WeightMatrix Q { get; init; }
    public required WeightMatrix K { get; init; }
    public required WeightMatrix V { get; init; }
    public required WeightMatrix O { get; init; }
    public required WeightMatrix Gate { get; init; }
    public required WeightMatrix Up { get; init; }
    public required WeightMatrix Down { get; init; }
}

public sealed unsafe class LlamaWeights : IDisposable
{
    private readonly IDisposable[] _files;

    public LlamaConfig Config { get; }
    public WeightMatrix Embedding { get; }
    public WeightMatrix Output { get; }
    public float[] OutputNorm { get; }
    public LayerWeights[] Layers { get; }
    /// <summary>Per-frequency divisors (GGUF rope_freqs, llama.cpp's form of Llama 3 RoPE scaling), or null.</summary>
    public float[]? RopeFreqFactors { get; }
    public GgmlType MainType => Layers[0].Q.Type;

    private LlamaWeights(LlamaConfig config, WeightMatrix embedding, WeightMatrix output, float[] outputNorm, LayerWeights[] layers,
        float[]? ropeFreqs, IDisposable[] files)
    {
        Config = config; Embedding = embedding; Output = output; OutputNorm = outputNorm; Layers = layers; RopeFreqFactors = ropeFreqs; _files = files;
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }

    /// <summary>Binds a GGUF file's tensors (llama.cpp names) without copying them.</summary>
    public static LlamaWeights FromGguf(GgufFile file)
    {
        var emb = file.TryGetTensor(WeightNames.GgufEmbedding, out var e) ? e! : throw new InvalidDataException($"GGUF: no tensor '{WeightNames.GgufEmbedding}'");
        var c = LlamaConfig.FromGguf(file.Metadata, emb.Shape.Length == 2 ? (int)emb.Shape[1] : 0);
        WeightMatrix Matrix(string name, int rows, int cols)
        {
            if (!file.TryGetTensor(name, out var t)) throw new InvalidDataException($"GGUF: no tensor '{name}'");
            // GGUF shapes list ne0 (the row length) first.
            if (t!.Shape.Length != 2 || t.Shape[0] != cols || t.Shape[1] != rows)
                throw new InvalidDataException($"GGUF: tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{cols}, {rows}]");
            if (!BlockFormats.CanDequantize(t.Type)) throw new InvalidDataException($"GGUF: tensor '{name}' has type {t.Type}, which Duet cannot compute with yet");
            return new WeightMatrix(t.Type, file.GetTensorPointer(t), rows, cols);
        }
        float[] Vector(string name, int n)
        {
            if (!file.TryGetTensor(name, out var t)) throw new InvalidDataException($"GGUF: no tensor '{name}'");
            if (t!.ElementCount != n || t.Shape.Length != 1) throw new InvalidDataException($"GGUF: tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{n}]");
            var v = new float[n];
            BlockFormats.DequantizeRow(t.Type, file.GetTensorBytes(t), v);
            return v;
        }
        var layers = BindLayers(c, (l, t) => WeightNames.Gguf(l, t), Matrix, Vector);
        var embedding = Matrix(WeightNames.GgufEmbedding, c.Vocab, c.Dim);
        bool tied = !file.TryGetTensor(WeightNames.GgufOutput, out _);
        float[]? ropeFreqs = file.TryGetTensor(WeightNames.GgufRopeFreqs, out _) ? Vector(WeightNames.GgufRopeFreqs, c.RopeDim / 2) : null;
        return new LlamaWeights(c with { TiedEmbeddings = tied }, embedding, tied ? embedding : Matrix(WeightNames.GgufOutput, c.Vocab, c.Dim),
            Vector(WeightNames.GgufOutputNorm, c.Dim), layers, ropeFreqs, [file]);
    }

    /// <summary>Binds an HF folder: config.json and model.safetensors or the shards named by model.safetensors.index.json.</summary>
    public static LlamaWeights FromHfFolder(string folder)
    {
        var configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{folder}: no config.json", configPath);
        var c = LlamaConfig.FromHf(HfConfig.Load(configPath));
        var files = new List<SafeTensorsFile>();
        var byName = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        try
        {
            var index = Path.Combine(folder, "model.safetensors.index.json");
            IEnumerable<string> shards;
            if (File.Exists(index))
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
                if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{index}: no weight_map object");
                shards = map.EnumerateObject().Select(p => p.Value.GetString() ?? "").Distinct().ToList();
                foreach (var s in shards)
                    if (s.Length == 0 || s.Contains('/') || s.Contains('\\') || s.StartsWith('.')) throw new InvalidDataException($"{index}: shard name '{s}' is not a plain file name");
            }
            else shards = ["model.safetensors"];
            foreach (var s in shards)
            {
                var f = SafeTensorsFile.Open(Path.Combine(folder, s));
                files.Add(f);
                foreach (var t in f.Tensors) byName[t.Name] = f;
            }
            WeightMatrix Matrix(string name, int rows, int cols)
            {
                if (!byName.TryGetValue(name, out var f)) throw new InvalidDataException($"{folder}: no tensor '{name}'");
                var t = f.GetTensor(name);
                if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != cols)
                    throw new InvalidDataException($"{folder}: tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{rows}, {cols}]");
                return new WeightMatrix(TypeOf(t), f.GetPointer(t), rows, cols);
            }
            float[] Vector(string name, int n)
            {
                if (!byName.TryGetValue(name, out var f)) throw new InvalidDataException($"{folder}: no tensor '{name}'");
                var t = f.GetTensor(name);
                if (t.ElementCount != n || t.Shape.Length != 1) throw new InvalidDataException($"{folder}: tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{n}]");
                var v = new float[n];
                BlockFormats.DequantizeRow(TypeOf(t), f.GetBytes(t), v);
                return v;
            }
            var layers = BindLayers(c, WeightNames.Hf, Matrix, Vector);
            var embedding = Matrix(WeightNames.HfEmbedding, c.Vocab, c.Dim);
            bool tied = !byName.ContainsKey(WeightNames.HfOutput);
            return new LlamaWeights(c with { TiedEmbeddings = tied }, embedding, tied ? embedding : Matrix(WeightNames.HfOutput, c.Vocab, c.Dim),
                Vector(WeightNames.HfOutputNorm, c.Dim), layers, null, files.ToArray());
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }

        static GgmlType TypeOf(SafeTensorInfo t) => SafeTensorsTypes.TryToGgml(t.DType, out var type) ? type
            : throw new InvalidDataException($"tensor '{t.Name}' has dtype {t.DType}; LLaMA weights must be {SafeTensorsTypes.Names}");
    }

    private static LayerWeights[] BindLayers(LlamaConfig c, Func<int, LayerTensor, string> name,
        Func<string, int, int, WeightMatrix> matrix, Func<string, int, float[]> vector)
    {
        var layers = new LayerWeights[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            WeightMatrix M(LayerTensor t) { var (r, k) = WeightNames.Shape(c, t); return matrix(name(l, t), r, k); }
            layers[l] = new LayerWeights
            {
                AttnNorm = vector(name(l, LayerTensor.AttnNorm), c.Dim),
                FfnNorm = vector(name(l, LayerTensor.FfnNorm), c.Dim),
                Q = M(LayerTensor.Q), K = M(LayerTensor.K), V = M(LayerTensor.V), O = M(LayerTensor.O),
                Gate = M(LayerTensor.Gate), Up = M(LayerTensor.Up), Down = M(LayerTensor.Down),
            };
        }
        return layers;
    }
}
