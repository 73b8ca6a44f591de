// Everything a training run needs, in one JSON file (`duet train --config FILE.json`): the corpus, the model shape
// (or a named preset), batch and sequence, the optimizer and schedule, evaluation and checkpoint cadence, seed and
// threads. Unknown keys are an error, so a misspelled hyper-parameter cannot silently take its default. Paths are
// relative to the config file's folder. The resolved config is saved beside the checkpoints and inside each one.
using System.Text.Json;
using System.Text.Json.Serialization;
using Duet.Model;

namespace Duet.Training;

/// <summary>The architecture of the model to train (the vocabulary comes from the corpus's tokenizer).</summary>
public sealed record ModelShape
{
    public int Dim { get; init; } = 288;
    public int Layers { get; init; } = 6;
    public int Heads { get; init; } = 6;
    public int KvHeads { get; init; } = 6;
    public int Ffn { get; init; } = 768;
    public double RopeTheta { get; init; } = 10000;
    public double NormEps { get; init; } = 1e-5;
    public bool TiedEmbeddings { get; init; }

    /// <summary>Named shapes: "duet-tiny" (the first Duet model), "15m" (llama2.c's stories15M: dim 288, 6 layers).</summary>
    public static ModelShape Preset(string name) => name switch
    {
        "duet-tiny" => new ModelShape { Dim = 256, Layers = 4, Heads = 8, KvHeads = 4, Ffn = 704, RopeTheta = 10000, TiedEmbeddings = true },
        "15m" => new ModelShape { Dim = 288, Layers = 6, Heads = 6, KvHeads = 6, Ffn = 768, TiedEmbeddings = true },
        _ => throw new ArgumentException($"unknown model preset '{name}' (duet-tiny, 15m)"),
    };

    public LlamaConfig ToConfig(int vocab, int context, string name) => new()
    {
        Dim = Dim, Layers = Layers, Heads = Heads, KvHeads = KvHeads, HeadDim = Heads > 0 ? Dim / Heads : 0, FfnDim = Ffn, Vocab = vocab,
        ContextLength = context, NormEps = (float)NormEps, RopeTheta = (float)RopeTheta, RopeDim = Heads > 0 ? Dim / Heads : 0,
        TiedEmbeddings = TiedEmbeddings, Name = name,
    };
}

public sealed record TrainConfig
{
    public string Name { get; init; } = "duet";
    /// <summary>A corpus folder of `duet data build` + `duet data tokenize` (train and validation token shards).</summary>
    public required string Data { get; init; }
    /// <summary>The tokenizer the corpus was tokenized with (tokenizer.json); embedded in exports and used for samples.</summary>
    public string? Tokenizer { get; init; }
    /// <summary>A preset name (ModelShape.Preset) or null for <see cref="Model"/>.</summary>
    public string? Preset { get; init; }
    public ModelShape? Model { get; init; }
    /// <summary>Sequences per optimizer step (all micro-batches together).</summary>
    public int BatchSize { get; init; } = 8;
    public int SeqLen { get; init; } = 256;
    /// <summary>Gradient accumulation: the batch is run in this many parts.</summary>
    public int MicroBatches { get; init; } = 1;
    public int Steps { get; init; } = 1000;
    public OptimizerOptions Optimizer { get; init; } = new();
    public int EvalEvery { get; init; } = 100;
    /// <summary>Validation windows (of SeqLen tokens) per evaluation.</summary>
    public int EvalWindows { get; init; } = 32;
    public int CheckpointEvery { get; init; } = 100;
    public int KeepCheckpoints { get; init; } = 3;
    public ulong Seed { get; init; } = 1234;
    /// <summary>Worker threads; 0 = all cores.</summary>
    public int Threads { get; init; }
    /// <summary>Peak FLOP/s of this machine for MFU; 0 = measured at start.</summary>
    public double PeakGflops { get; init; }

    [JsonIgnore] public string BaseDirectory { get; init; } = ".";

    public string Resolve(string path) => Path.GetFullPath(Path.Combine(BaseDirectory, path));

    public ModelShape Shape => Preset is { } p ? ModelShape.Preset(p) : Model ?? throw new ArgumentException("the config names neither a preset nor a model shape");

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public void Validate()
    {
        void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"train config: {what}"); }
        Check(BatchSize > 0 && MicroBatches > 0 && BatchSize % MicroBatches == 0, $"batchSize {BatchSize} must be a positive multiple of microBatches {MicroBatches}");
        Check(SeqLen is > 1 and <= 1 << 16, $"seqLen {SeqLen} must be in 2..65536");
        Check(Steps > 0, $"steps {Steps} must be positive");
        Check(EvalEvery >= 0 && EvalWindows >= 0 && CheckpointEvery >= 0, "evalEvery, evalWindows and checkpointEvery must not be negative");
        Check(KeepCheckpoints >= 1, "keepCheckpoints must be at least 1");
        Check(Threads >= 0, "threads must not be negative");
        Check(Preset is not null || Model is not null, "give a preset or a model shape");
        Check(Preset is null || Model is null, "give a preset or a model shape, not both");
        _ = Shape;
        Optimizer.Validate();
    }

    public static TrainConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such config", path);
        TrainConfig? c;
        try { c = JsonSerializer.Deserialize<TrainConfig>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid train config: {e.Message}", e); }
        if (c is null) throw new InvalidDataException($"{path}: the config is empty");
        c = c with { BaseDirectory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "." };
        c.Validate();
        return c;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}
