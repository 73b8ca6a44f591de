// A training run: corpus -> loader -> model -> steps, with validation, checkpoints, metrics and the loss plot in
// the run folder:
//   RUN/config.json          the resolved config (what `--resume RUN` continues)
//   RUN/checkpoints/*.ckpt   the last K checkpoints: parameters, AdamW moments and step, loader position
//   RUN/metrics.jsonl        one record per step and per validation
//   RUN/loss.svg             train and validation loss
// Resuming loads the newest checkpoint that verifies (a damaged newer one is reported and skipped), truncates the
// metrics to its step and continues: the loader position, optimizer state and parameters are all restored, and
// every computation is deterministic, so the final weights equal an uninterrupted run's bit for bit.
using System.Diagnostics;
using System.Text.Json.Nodes;
using Duet.Formats.Tokens;
using Duet.Model;
using Duet.Tensors.Parallel;

namespace Duet.Training;

public readonly record struct TrainProgress(int Step, int Steps, double Loss, double LearningRate, double GradNorm,
    double TokensPerSecond, double Mfu, TimeSpan Elapsed, TimeSpan Eta, double? ValidationLoss);

public sealed class Trainer : IDisposable
{
    public TrainConfig Config { get; }
    public string RunDirectory { get; }
    public LlamaConfig ModelConfig { get; }
    public TrainingModel Model { get; }
    public StepRunner Runner { get; }
    public int StartStep { get; private set; }
    public double PeakFlopsPerSecond { get; }
    public double? LastValidationLoss { get; private set; }

    /// <summary>Problems met on resume (a damaged checkpoint skipped, for instance), for the user to see.</summary>
    public List<string> Warnings { get; } = [];

    public Action<TrainProgress>? Progress { get; set; }

    private readonly WorkerPool _pool;
    private readonly TokenCorpus _train;
    private readonly TokenCorpus? _validation;
    private readonly TokenLoader _loader;
    private readonly TokenLoader? _valLoader;
    private readonly int[] _inputs, _targets;
    private readonly MetricsLog _metrics;

    public string CheckpointDirectory => Path.Combine(RunDirectory, "checkpoints");

    /// <param name="resume">Continue from the newest checkpoint in <paramref name="runDirectory"/> (an error if there is none).</param>
    public Trainer(TrainConfig config, string runDirectory, bool resume, WorkerPool? pool = null)
    {
        config.Validate();
        Config = config;
        RunDirectory = runDirectory;
        _pool = pool ?? (config.Threads > 0 ? new WorkerPool(config.Threads) : WorkerPool.Shared);
        var data = config.Resolve(config.Data);
        _train = TokenCorpus.Open(data, "train");
        try { _validation = TokenCorpus.Open(data, "validation"); }
        catch (InvalidDataException) when (config.EvalEvery == 0) { _validation = null; }
        ModelConfig = config.Shape.ToConfig(_train.VocabSize, config.SeqLen, config.Name);
        int micro = config.BatchSize / config.MicroBatches;
        Model = new TrainingModel(ModelConfig, micro, config.SeqLen, _pool);
        var options = config.Optimizer.MaxSteps == 0 ? config.Optimizer with { MaxSteps = config.Steps } : config.Optimizer;
        Runner = new StepRunner(Model, options, config.MicroBatches);
        _loader = new TokenLoader(_train, config.SeqLen, config.Seed);
        if (_validation is not null && config.EvalEvery > 0) _valLoader = new TokenLoader(_validation, config.SeqLen, config.Seed, shuffle: false);
        _inputs = new int[config.BatchSize * config.SeqLen];
        _targets = new int[_inputs.Length];
        PeakFlopsPerSecond = config.PeakGflops > 0 ? config.PeakGflops * 1e9 : PeakFlops.Measure(_pool);

        Directory.CreateDirectory(RunDirectory);
        _metrics = new MetricsLog(Path.Combine(RunDirectory, "metrics.jsonl"));
        if (resume) Resume();
        else
        {
            if (Checkpoints.List(CheckpointDirectory).Count > 0)
                throw new IOException($"{RunDirectory} already holds checkpoints: continue it with --resume, or choose another --out");
            Model.Layout.Initialize(Model.Parameters, config.Seed);
            _metrics.Truncate(-1);
            // Paths made absolute, so `--resume RUN` reads this file from RUN and finds the same corpus and tokenizer.
            var saved = config with { Data = config.Resolve(config.Data), Tokenizer = config.Tokenizer is null ? null : config.Resolve(config.Tokenizer) };
            Duet.Formats.AtomicFile.Write(Path.Combine(RunDirectory, "config.json"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(saved.ToJson())));
        }
    }

    private void Resume()
    {
        var ckpt = Checkpoints.LoadLatest(CheckpointDirectory, Warnings)
            ?? throw new IOException($"{CheckpointDirectory}: no checkpoint to resume from{(Warnings.Count > 0 ? " (" + string.Join("; ", Warnings) + ")" : "")}");
        var h = ckpt.Header;
        int step = h["step"]!.GetValue<int>();
        var p = ckpt.Arrays;
        if (p["params"].Length != Model.Parameters.Length)
            throw new InvalidDataException($"{ckpt.Path}: {p["params"].Length} parameters, the config's model has {Model.Parameters.Length}");
        p["params"].CopyTo(Model.Parameters, 0);
        p["adam.m"].CopyTo(Runner.Optimizer.M, 0);
        p["adam.v"].CopyTo(Runner.Optimizer.V, 0);
        Runner.Optimizer.Steps = h["adamSteps"]!.GetValue<int>();
        _loader.Seek(new LoaderPosition(h["loaderEpoch"]!.GetValue<int>(), h["loaderCursor"]!.GetValue<long>()));
        StartStep = step;
        _metrics.Truncate(step - 1);
    }

    private void SaveCheckpoint(int nextStep)
    {
        var header = new JsonObject
        {
            ["format"] = "duet-train",
            ["version"] = TrainingInfo.FormatVersion,
            ["step"] = nextStep,
            ["adamSteps"] = Runner.Optimizer.Steps,
            ["loaderEpoch"] = _loader.Position.Epoch,
            ["loaderCursor"] = _loader.Position.Cursor,
            ["seed"] = Config.Seed,
            ["config"] = JsonNode.Parse(Config.ToJson()),
            ["model"] = new JsonObject
            {
                ["dim"] = ModelConfig.Dim, ["layers"] = ModelConfig.Layers, ["heads"] = ModelConfig.Heads, ["kvHeads"] = ModelConfig.KvHeads,
                ["ffn"] = ModelConfig.FfnDim, ["vocab"] = ModelConfig.Vocab, ["context"] = ModelConfig.ContextLength,
                ["ropeTheta"] = ModelConfig.RopeTheta, ["normEps"] = ModelConfig.NormEps, ["tied"] = ModelConfig.TiedEmbeddings,
            },
            ["tokenizer"] = Config.Tokenizer is null ? null : Config.Resolve(Config.Tokenizer),
            ["validationLoss"] = LastValidationLoss,
            ["source"] = TrainedModel.SourceVersion, // the Duet that trained: recorded in exported weights' provenance
        };
        Checkpoints.Save(CheckpointDirectory, nextStep, header,
            [("params", Model.Parameters), ("adam.m", Runner.Optimizer.M), ("adam.v", Runner.Optimizer.V)], Config.KeepCheckpoints);
    }

    /// <summary>Mean validation loss over the first EvalWindows windows of the validation split.</summary>
    public double Validate()
    {
        if (_valLoader is null) throw new InvalidOperationException("no validation split");
        int windows = (int)Math.Min(Config.EvalWindows, _valLoader.Windows);
        int per = Model.BatchSize;
        double sum = 0;
        long count = 0;
        for (int w = 0; w < windows; w += per)
        {
            int rows = Math.Min(per, windows - w);
            var inp = _inputs.AsSpan(0, rows * Config.SeqLen);
            var tgt = _targets.AsSpan(0, rows * Config.SeqLen);
            _valLoader.ReadInOrder(w, rows, inp, tgt);
            var (s, c) = Runner.Evaluate(inp, tgt);
            sum += s; count += c;
        }
        return count == 0 ? double.NaN : sum / count;
    }

    /// <summary>Runs from <see cref="StartStep"/> to the configured number of steps (or until cancelled, after a checkpoint).</summary>
    public void Run(CancellationToken cancel = default)
    {
        double flopsPerToken = PeakFlops.PerToken(ModelConfig, Config.SeqLen);
        var total = Stopwatch.StartNew();
        int done = 0;
        for (int step = StartStep; step < Config.Steps; step++)
        {
            var sw = Stopwatch.StartNew();
            _loader.Next(Config.BatchSize, _inputs, _targets);
            var r = Runner.Step(_inputs, _targets);
            double seconds = sw.Elapsed.TotalSeconds;
            double tps = _inputs.Length / seconds;
            double mfu = tps * flopsPerToken / PeakFlopsPerSecond;
            done++;
            var elapsed = total.Elapsed;
            var eta = TimeSpan.FromSeconds(elapsed.TotalSeconds / done * (Config.Steps - step - 1));
            _metrics.Append("train", step, new()
            {
                ["loss"] = r.Loss, ["lr"] = r.LearningRate, ["grad_norm"] = r.GradNorm, ["tokens_per_s"] = tps, ["mfu"] = mfu, ["elapsed_s"] = elapsed.TotalSeconds,
            });
            double? val = null;
            bool last = step == Config.Steps - 1;
            if (_valLoader is not null && Config.EvalEvery > 0 && ((step + 1) % Config.EvalEvery == 0 || last))
            {
                val = LastValidationLoss = Validate();
                _metrics.Append("validation", step, new() { ["val_loss"] = val.Value });
            }
            Progress?.Invoke(new TrainProgress(step, Config.Steps, r.Loss, r.LearningRate, r.GradNorm, tps, mfu, elapsed, eta, val));
            bool stop = cancel.IsCancellationRequested;
            if (last || stop || (Config.CheckpointEvery > 0 && (step + 1) % Config.CheckpointEvery == 0))
            {
                SaveCheckpoint(step + 1);
                LossPlot.Write(Path.Combine(RunDirectory, "loss.svg"), _metrics.Read(), Config.Name);
            }
            if (stop) return;
        }
    }

    public void Dispose()
    {
        Model.Dispose();
        _train.Dispose();
        _validation?.Dispose();
        _metrics.Dispose();
        if (_pool != WorkerPool.Shared) _pool.Dispose();
    }
}
