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
        var m = layout.ToModel(parameters, tokenizer);
        var withProvenance = new CanonicalModel { Config = m.Config, Tensors = m.Tensors, Tokenizer = m.Tokenizer, Provenance = ProvenanceOf(ckpt, tokPath) };
        return (withProvenance, ckpt.Path);
    }

    /// <summary>
    /// What made a checkpoint's weights, recorded with them on export: the SHA-256 of the token corpus's manifest and
    /// of the tokenizer file, the training config (JSON), the steps and tokens seen, the last validation loss, and the
    /// source commit of the Duet that exports (its informational version).
    /// </summary>
    internal static Dictionary<string, string> ProvenanceOf(Checkpoint ckpt, string? tokenizerPath)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var h = ckpt.Header;
        var d = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // The Duet that trained (checkpoints since it was recorded), else the one exporting.
            ["source"] = h["source"]?.GetValue<string>() ?? SourceVersion,
        };
        if (h["config"] is JsonObject config)
        {
            d["train_config"] = config.ToJsonString();
            if (h["step"]?.GetValue<int>() is int step && config["batchSize"]?.GetValue<int>() is int batch && config["seqLen"]?.GetValue<int>() is int seq)
            {
                d["train_steps"] = step.ToString(inv);
                d["train_tokens"] = ((long)step * batch * seq).ToString(inv);
            }
            if (CorpusOf(ckpt.Path, config["data"]?.GetValue<string>()) is string corpus && File.Exists(Path.Combine(corpus, "manifest.json")))
                d["corpus_manifest_sha256"] = Sha256(Path.Combine(corpus, "manifest.json"));
        }
        if (h["validationLoss"] is JsonValue loss && loss.TryGetValue(out double v) && double.IsFinite(v)) d["validation_loss"] = v.ToString("R", inv);
        if (tokenizerPath is not null && File.Exists(tokenizerPath)) d["tokenizer_sha256"] = Sha256(tokenizerPath);
        return d;
    }

    // The corpus folder: the run's config.json (RUN/checkpoints/x.ckpt -> RUN/config.json) holds it as an absolute path;
    // the header's copy is as the user wrote it, relative to their config file, so it counts only when absolute.
    private static string? CorpusOf(string checkpointPath, string? headerData)
    {
        var run = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(checkpointPath)));
        var runConfig = run is null ? null : Path.Combine(run, "config.json");
        if (runConfig is not null && File.Exists(runConfig))
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(runConfig));
                if (doc.RootElement.TryGetProperty("data", out var data) && data.ValueKind == System.Text.Json.JsonValueKind.String) return data.GetString();
            }
            catch (System.Text.Json.JsonException) { }
        }
        return headerData is not null && Path.IsPathRooted(headerData) ? headerData : null;
    }

    /// <summary>This Duet's version with its source commit (the assembly's informational version, "1.0.0+COMMIT").</summary>
    public static string SourceVersion { get; } = typeof(TrainedModel).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
        .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";

    internal static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f));
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
