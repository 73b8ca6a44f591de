// A trained model out of a checkpoint: the shape from the checkpoint's header, the parameters, and the tokenizer
// the run's config named (or one given), as a CanonicalModel; Export writes it through ModelPackage as GGUF or an
// HF safetensors folder, which the inference engine, llama.cpp and transformers run.
using System.Text.Json.Nodes;
using Duet.Model;
using Duet.Tensors;
using Duet.Tokenizers;

namespace Duet.Training;

public static class TrainedModel
{
    /// <summary>The model config a checkpoint header describes.</summary>
    public static LlamaConfig ConfigOf(JsonObject header)
    {
        var m = header["model"] as JsonObject ?? throw new InvalidDataException("checkpoint header: no model");
        int dim = m["dim"]!.GetValue<int>(), heads = m["heads"]!.GetValue<int>();
        var name = header["config"]?["name"]?.GetValue<string>() ?? "duet";
        var c = new LlamaConfig
        {
            Dim = dim, Layers = m["layers"]!.GetValue<int>(), Heads = heads, KvHeads = m["kvHeads"]!.GetValue<int>(), HeadDim = dim / heads,
            RopeDim = dim / heads, FfnDim = m["ffn"]!.GetValue<int>(), Vocab = m["vocab"]!.GetValue<int>(), ContextLength = m["context"]!.GetValue<int>(),
            RopeTheta = m["ropeTheta"]!.GetValue<float>(), NormEps = m["normEps"]!.GetValue<float>(), TiedEmbeddings = m["tied"]!.GetValue<bool>(), Name = name,
        };
        c.Validate();
        return c;
    }

    /// <summary>
    /// Loads <paramref name="path"/> (a .ckpt file, or a run folder whose newest valid checkpoint is used) with the
    /// tokenizer <paramref name="tokenizerPath"/> or the one recorded in the checkpoint.
    /// </summary>
    public static (CanonicalModel Model, string CheckpointPath) Load(string path, string? tokenizerPath = null)
    {
        Checkpoint ckpt;
        if (File.Exists(path)) ckpt = Checkpoints.Load(path);
        else if (Directory.Exists(path))
        {
            var dir = Directory.Exists(Path.Combine(path, "checkpoints")) ? Path.Combine(path, "checkpoints") : path;
            var warnings = new List<string>();
            ckpt = Checkpoints.LoadLatest(dir, warnings) ?? throw new FileNotFoundException($"{path}: no valid checkpoint ({string.Join("; ", warnings)})");
            foreach (var w in warnings) Console.Error.WriteLine($"warning: {w}");
        }
        else throw new FileNotFoundException($"{path}: no such checkpoint or run folder", path);
        var config = ConfigOf(ckpt.Header);
        var layout = new ParameterLayout(config);
        var parameters = ckpt.Arrays.TryGetValue("params", out var p) ? p : throw new InvalidDataException($"{ckpt.Path}: no parameters");
        if (parameters.Length != layout.Count) throw new InvalidDataException($"{ckpt.Path}: {parameters.Length} parameters, its model needs {layout.Count}");
        var tokPath = tokenizerPath ?? ckpt.Header["tokenizer"]?.GetValue<string>();
        Tokenizer? tokenizer = null;
        if (tokPath is not null)
        {
            if (!File.Exists(tokPath) && !Directory.Exists(tokPath)) throw new FileNotFoundException($"{tokPath}: the run's tokenizer is missing; give --tokenizer PATH", tokPath);
            tokenizer = Tokenizer.Load(tokPath);
            if (tokenizer.VocabSize != config.Vocab) throw new InvalidDataException($"{tokPath}: {tokenizer.VocabSize} tokens, the model's vocabulary is {config.Vocab}");
        }
        return (layout.ToModel(parameters, tokenizer), ckpt.Path);
    }

    /// <summary>
    /// Loads <paramref name="path"/> as <see cref="Load"/> does and saves it at <paramref name="output"/> in
    /// <paramref name="format"/> and <paramref name="type"/>, named after the run (GGUF general.name).
    /// </summary>
    public static (CanonicalModel Model, string CheckpointPath) Export(string path, string output, ModelFormat format, GgmlType type, string? tokenizerPath = null)
    {
        var (model, checkpoint) = Load(path, tokenizerPath);
        ModelPackage.Save(model, output, format, type, model.Config.Name);
        return (model, checkpoint);
    }
}
