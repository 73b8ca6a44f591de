// Chat fine-tuning: a base model, conversations in JSON lines, the loss on the replies only, packed sequences with
// attention inside each conversation; checkpoints, exact resume, metrics and the loss plot as `duet train` has them.
// Full fine-tuning trains every weight and exports the tuned model with the base's tokenizer and chat template;
// LoRA (Config.Lora) trains adapters over the base kept memory-mapped in its own type and exports the adapter.
//   RUN/config.json, RUN/checkpoints/*.ckpt, RUN/metrics.jsonl, RUN/loss.svg, at the end RUN/model.gguf (full) or
//   RUN/adapter.gguf (llama.cpp's LoRA format) and RUN/adapter/ (a PEFT folder) (LoRA)
// Conversations are split deterministically: every ValidationEvery-th one (by position in the file) is validation.
// Training sequences are visited in a seeded order per epoch; the position (epoch, cursor) is in each checkpoint, so a
// killed run resumes to the same bits as one never stopped.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Duet.Model;
using Duet.Tensors.Parallel;
using Duet.Training.Lora;

namespace Duet.Training.Sft;

public sealed record FineTuneConfig
{
    public string Name { get; init; } = "duet-chat";
    /// <summary>The base model: a .gguf file or an HF folder, with its tokenizer.</summary>
    public required string Base { get; init; }
    /// <summary>Conversations, JSON lines (OpenAI messages or ShareGPT).</summary>
    public required string Data { get; init; }
    public int BatchSize { get; init; } = 8;
    public int SeqLen { get; init; } = 256;
    public int MicroBatches { get; init; } = 1;
    public int Steps { get; init; } = 100;
    public OptimizerOptions Optimizer { get; init; } = new() { LearningRate = 1e-4, MinLearningRate = 1e-5, WarmupSteps = 10, WeightDecay = 0 };
    /// <summary>Every n-th conversation goes to validation (0: none), unless <see cref="ValidationData"/> is given.</summary>
    public int ValidationEvery { get; init; } = 20;
    /// <summary>Held-out conversations in their own file (JSON lines); then every conversation of Data trains.</summary>
    public string? ValidationData { get; init; }
    public int EvalEvery { get; init; } = 25;
    public int CheckpointEvery { get; init; } = 25;
    public int KeepCheckpoints { get; init; } = 2;
    public ulong Seed { get; init; } = 1234;
    /// <summary>NEFTune's alpha (noise on the embeddings while training; 5 in its paper), 0: none.</summary>
    public float NeftuneAlpha { get; init; }
    /// <summary>LoRA adapters over a frozen base instead of full fine-tuning (null: every weight trained).</summary>
    public LoraOptions? Lora { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>A recipe file (JSON with comments; base and data relative to the file's folder), checked.</summary>
    public static FineTuneConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such config", path);
        FineTuneConfig? c;
        try { c = JsonSerializer.Deserialize<FineTuneConfig>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid finetune config: {e.Message}", e); }
        if (c is null) throw new InvalidDataException($"{path}: the config is empty");
        var dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        c = c with
        {
            Base = Path.GetFullPath(Path.Combine(dir, c.Base)), Data = Path.GetFullPath(Path.Combine(dir, c.Data)),
            ValidationData = c.ValidationData is null ? null : Path.GetFullPath(Path.Combine(dir, c.ValidationData)),
        };
        c.Validate();
        return c;
    }

    public void Validate()
    {
        if (BatchSize <= 0 || SeqLen < 2 || Steps <= 0) throw new ArgumentException("batch, sequence length and steps must be positive (sequences of at least 2)");
        if (MicroBatches <= 0 || BatchSize % MicroBatches != 0) throw new ArgumentException($"batch {BatchSize} is not a whole number of {MicroBatches} micro-batches");
        if (NeftuneAlpha < 0 || !float.IsFinite(NeftuneAlpha)) throw new ArgumentException($"NEFTune alpha {NeftuneAlpha} must be 0 or positive");
        Lora?.Validate();
    }
}

public sealed class FineTuner : IDisposable
{
    public FineTuneConfig Config { get; }
    public string RunDirectory { get; }
    public TrainingModel Model { get; }
    public StepRunner Runner { get; }
    public int StartStep { get; private set; }
    public int TrainSequences => _train.Count;
    public int ValidationSequences => _validation.Count;
    public int TruncatedConversations { get; }
    public double? LastValidationLoss { get; private set; }
    public Action<TrainProgress>? Progress { get; set; }
    public List<string> Warnings { get; } = [];

    private readonly Duet.Tokenizers.Tokenizer _tokenizer;
    private readonly IReadOnlyDictionary<string, string> _baseProvenance;
    private readonly List<PackedSequence> _train, _validation;
    private readonly MetricsLog _metrics;
    private readonly WorkerPool _pool;
    private readonly ModelPackage? _package; // LoRA: the base, memory-mapped for the run's life
    private int[] _order = [];
    private int _epoch = -1;
    private long _cursor;

    public string CheckpointDirectory => Path.Combine(RunDirectory, "checkpoints");

    public FineTuner(FineTuneConfig config, string runDirectory, bool resume, WorkerPool? pool = null)
    {
        config.Validate();
        Config = config;
        RunDirectory = runDirectory;
        _pool = pool ?? WorkerPool.Shared;
        CanonicalModel? baseModel = null;
        LlamaConfig baseConfig;
        if (config.Lora is null)
        {
            using var package = ModelPackage.Open(config.Base);
            _tokenizer = package.RequireTokenizer();
            baseModel = package.ToCanonical();
            _baseProvenance = package.Provenance;
            baseConfig = baseModel.Config;
        }
        else
        {
            _package = ModelPackage.Open(config.Base);
            _tokenizer = _package.RequireTokenizer();
            _baseProvenance = _package.Provenance;
            baseConfig = _package.Config;
        }
        try
        {
            if (config.SeqLen > baseConfig.ContextLength) throw new ArgumentException($"sequence length {config.SeqLen} exceeds the base model's context {baseConfig.ContextLength}");
            var encoder = new SftEncoder(_tokenizer);
            var train = new List<SftExample>();
            var validation = new List<SftExample>();
            int i = 0;
            bool split = config.ValidationData is null && config.ValidationEvery > 0;
            foreach (var c in ChatConversations.Read(config.Data))
            {
                var e = encoder.Encode(c);
                (split && i % config.ValidationEvery == config.ValidationEvery - 1 ? validation : train).Add(e);
                i++;
            }
            if (config.ValidationData is not null) validation.AddRange(ChatConversations.Read(config.ValidationData).Select(encoder.Encode));
            if (train.Count == 0) throw new InvalidDataException($"{config.Data}: no conversations to train on");
            _train = SftPacker.Pack(train, config.SeqLen, out int cut1);
            _validation = SftPacker.Pack(validation, config.SeqLen, out int cut2);
            TruncatedConversations = cut1 + cut2;
            Model = config.Lora is { } lora
                ? new TrainingModel(_package!.Model.Weights, new ParameterLayout(baseConfig, lora.Rank, lora.TargetTensors()), lora, config.BatchSize / config.MicroBatches, config.SeqLen, _pool)
                : new TrainingModel(baseConfig, config.BatchSize / config.MicroBatches, config.SeqLen, _pool);
            var options = config.Optimizer.MaxSteps == 0 ? config.Optimizer with { MaxSteps = config.Steps } : config.Optimizer;
            Runner = new StepRunner(Model, options, config.MicroBatches);
            Directory.CreateDirectory(runDirectory);
            _metrics = new MetricsLog(Path.Combine(runDirectory, "metrics.jsonl"));
            if (resume) Resume();
            else
            {
                if (Checkpoints.List(CheckpointDirectory).Count > 0)
                    throw new IOException($"{runDirectory} already holds checkpoints: continue it with --resume, or choose another --out");
                if (baseModel is not null) Model.Layout.Load(baseModel, Model.Parameters);
                else Model.Layout.InitializeLora(Model.Parameters, config.Seed);
                _metrics.Truncate(-1);
                Duet.Formats.AtomicFile.Write(Path.Combine(runDirectory, "config.json"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(config.ToJson())));
            }
        }
        catch
        {
            // a base left mapped or a model left allocated by a failed start would outlive the exception
            Model?.Dispose();
            _metrics?.Dispose();
            _package?.Dispose();
            throw;
        }
    }

    private void Resume()
    {
        var ckpt = Checkpoints.LoadLatest(CheckpointDirectory, Warnings)
            ?? throw new IOException($"{CheckpointDirectory}: no checkpoint to resume from{(Warnings.Count > 0 ? " (" + string.Join("; ", Warnings) + ")" : "")}");
        var h = ckpt.Header;
        var p = ckpt.Arrays;
        if (p["params"].Length != Model.Parameters.Length)
            throw new InvalidDataException($"{ckpt.Path}: {p["params"].Length} parameters, the base model has {Model.Parameters.Length}");
        p["params"].CopyTo(Model.Parameters, 0);
        p["adam.m"].CopyTo(Runner.Optimizer.M, 0);
        p["adam.v"].CopyTo(Runner.Optimizer.V, 0);
        Runner.Optimizer.Steps = h["adamSteps"]!.GetValue<int>();
        Seek(h["loaderEpoch"]!.GetValue<int>(), h["loaderCursor"]!.GetValue<long>());
        StartStep = h["step"]!.GetValue<int>();
        _metrics.Truncate(StartStep - 1);
    }

    private void Seek(int epoch, long cursor)
    {
        _epoch = epoch;
        _cursor = cursor;
        _order = Enumerable.Range(0, _train.Count).ToArray();
        if (epoch >= 0) new NormalRng(Config.Seed ^ NormalRng.Mix((ulong)epoch)).Shuffle(_order.AsSpan()); // portable: the same order on any runtime
    }

    /// <summary>The next batch of training sequences, in a seeded order per epoch.</summary>
    private void Next(int[] inputs, int[] targets, int[] starts)
    {
        int t = Config.SeqLen;
        for (int b = 0; b < Config.BatchSize; b++)
        {
            if (_epoch < 0 || _cursor >= _order.Length) Seek(_epoch + 1, 0);
            var s = _train[_order[_cursor++]];
            s.Inputs.CopyTo(inputs, b * t); s.Targets.CopyTo(targets, b * t); s.Starts.CopyTo(starts, b * t);
        }
    }

    private void SaveCheckpoint(int nextStep)
    {
        var header = new JsonObject
        {
            ["format"] = "duet-finetune", ["version"] = TrainingInfo.FormatVersion, ["step"] = nextStep, ["adamSteps"] = Runner.Optimizer.Steps,
            ["loaderEpoch"] = _epoch, ["loaderCursor"] = _cursor, ["seed"] = Config.Seed, ["config"] = JsonNode.Parse(Config.ToJson()),
            ["validationLoss"] = LastValidationLoss, ["source"] = TrainedModel.SourceVersion,
        };
        Checkpoints.Save(CheckpointDirectory, nextStep, header,
            [("params", Model.Parameters), ("adam.m", Runner.Optimizer.M), ("adam.v", Runner.Optimizer.V)], Config.KeepCheckpoints);
    }

    /// <summary>Mean loss over the reply tokens of the validation conversations (NaN without any).</summary>
    public double Validate()
    {
        double sum = 0;
        long count = 0;
        int t = Config.SeqLen, per = Model.BatchSize;
        var inputs = new int[per * t]; var targets = new int[per * t]; var starts = new int[per * t];
        for (int i = 0; i < _validation.Count; i += per)
        {
            int n = Math.Min(per, _validation.Count - i);
            for (int b = 0; b < n; b++) { _validation[i + b].Inputs.CopyTo(inputs, b * t); _validation[i + b].Targets.CopyTo(targets, b * t); _validation[i + b].Starts.CopyTo(starts, b * t); }
            var (s, c) = Model.Forward(inputs.AsSpan(0, n * t), targets.AsSpan(0, n * t), n, starts.AsSpan(0, n * t));
            sum += s; count += c;
        }
        return count == 0 ? double.NaN : sum / count;
    }

    public void Run(CancellationToken cancel = default)
    {
        var inputs = new int[Config.BatchSize * Config.SeqLen];
        var targets = new int[inputs.Length];
        var starts = new int[inputs.Length];
        var total = Stopwatch.StartNew();
        int done = 0;
        for (int step = StartStep; step < Config.Steps; step++)
        {
            var sw = Stopwatch.StartNew();
            Next(inputs, targets, starts);
            if (Config.NeftuneAlpha > 0) Model.Noise = (Config.NeftuneAlpha, Config.Seed * 0x100000001B3UL + (ulong)step);
            if (Config.Lora is { Dropout: > 0 }) Model.LoraDropoutSeed = NormalRng.Mix(Config.Seed ^ 0xD50u) + (ulong)step;
            var r = Runner.Step(inputs, targets, starts);
            Model.Noise = null; // validation and anything after see the embeddings as they are
            Model.LoraDropoutSeed = null;
            double tps = inputs.Length / sw.Elapsed.TotalSeconds;
            done++;
            var elapsed = total.Elapsed;
            _metrics.Append("train", step, new() { ["loss"] = r.Loss, ["lr"] = r.LearningRate, ["grad_norm"] = r.GradNorm, ["tokens_per_s"] = tps, ["reply_tokens"] = r.Tokens, ["elapsed_s"] = elapsed.TotalSeconds });
            double? val = null;
            bool last = step == Config.Steps - 1;
            if (_validation.Count > 0 && Config.EvalEvery > 0 && ((step + 1) % Config.EvalEvery == 0 || last))
            {
                val = LastValidationLoss = Validate();
                _metrics.Append("validation", step, new() { ["val_loss"] = val.Value });
            }
            Progress?.Invoke(new TrainProgress(step, Config.Steps, r.Loss, r.LearningRate, r.GradNorm, tps, 0, elapsed,
                TimeSpan.FromSeconds(elapsed.TotalSeconds / done * (Config.Steps - step - 1)), val));
            bool stop = cancel.IsCancellationRequested;
            if (last || stop || (Config.CheckpointEvery > 0 && (step + 1) % Config.CheckpointEvery == 0))
            {
                SaveCheckpoint(step + 1);
                LossPlot.Write(Path.Combine(RunDirectory, "loss.svg"), _metrics.Read(), Config.Name);
            }
            if (stop) return;
        }
    }

    /// <summary>
    /// The tuned model with the base's tokenizer (and so its chat template) and its provenance: the base's own entries
    /// under "base." (what made the base), then the fine-tuning's: the base file's and the data's SHA-256, the config,
    /// the steps and reply tokens seen, the last validation loss, the source commit.
    /// </summary>
    public CanonicalModel ToModel()
    {
        if (Config.Lora is not null) throw new InvalidOperationException("a LoRA run's result is its adapter (ToAdapter), or the adapter merged into the base (duet lora merge)");
        var m = Model.Layout.ToModel(Model.Parameters, _tokenizer);
        return new CanonicalModel { Config = m.Config, Tensors = m.Tensors, Tokenizer = m.Tokenizer, Provenance = Lineage() };
    }

    private Dictionary<string, string> Lineage()
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var p = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in _baseProvenance) p["base." + key] = value;
        if (File.Exists(Config.Base)) p["finetune_base_sha256"] = TrainedModel.Sha256(Config.Base);
        p["finetune_data_sha256"] = TrainedModel.Sha256(Config.Data);
        p["finetune_config"] = Config.ToJson().ReplaceLineEndings("").Replace("  ", "");
        p["finetune_steps"] = Runner.Optimizer.Steps.ToString(inv);
        if (LastValidationLoss is double v && double.IsFinite(v)) p["finetune_validation_loss"] = v.ToString("R", inv);
        p["source"] = TrainedModel.SourceVersion;
        return p;
    }

    /// <summary>A LoRA run's adapter, in HF row order (the base's Q/K order undone for a GGUF base).</summary>
    public LoraAdapter ToAdapter()
    {
        var lora = Config.Lora ?? throw new InvalidOperationException("not a LoRA run");
        var a = Model.Layout.ToAdapter(Model.Parameters, lora.Alpha, lora.RsLora);
        a = new LoraAdapter { Rank = a.Rank, Alpha = a.Alpha, RsLora = a.RsLora, Weights = a.Weights, Provenance = Lineage() };
        return Model.Config.RopeStyle == Duet.Tensors.Kernels.RopeStyle.Normal && Model.Base is not null ? a.WithHfRowOrder(Model.Config) : a;
    }

    /// <summary>Writes the run's result: RUN/model.gguf (full fine-tuning), or RUN/adapter.gguf and the PEFT folder RUN/adapter (LoRA). Returns the paths.</summary>
    public IReadOnlyList<string> Export()
    {
        if (Config.Lora is null)
        {
            var path = Path.Combine(RunDirectory, "model.gguf");
            ModelPackage.WriteGguf(ToModel(), path, Duet.Tensors.GgmlType.F32, Config.Name);
            return [path];
        }
        var adapter = ToAdapter();
        var gguf = Path.Combine(RunDirectory, "adapter.gguf");
        var peft = Path.Combine(RunDirectory, "adapter");
        adapter.WriteGguf(gguf, Model.Config);
        adapter.WritePeft(peft, Config.Base);
        return [gguf, peft];
    }

    public void Dispose()
    {
        Model.Dispose();
        _metrics.Dispose();
        _package?.Dispose();
    }
}
