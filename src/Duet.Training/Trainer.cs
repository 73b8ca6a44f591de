// A training run: corpus -> loader -> model -> steps, with validation, checkpoints, metrics and the loss plot in
// the run folder:
//   RUN/config.json          the resolved config (what `--resume RUN` continues)
//   RUN/checkpoints/*.ckpt   the last K checkpoints: parameters, AdamW moments and step, loader position
//   RUN/metrics.jsonl        one record per step and per validation
//   RUN/loss.svg             train and validation loss
// Resuming loads the newest checkpoint that verifies (a damaged newer one is reported and skipped), truncates the
// metrics to its step and continues: the loader position, optimizer state and parameters are all restored, and
// every computation is deterministic, so the final weights equal an uninterrupted run's bit for bit.
// Under MPI (a world of R > 1 ranks) each rank reads its own micro-batches of every global batch and
// Distributed/DataParallel.cs shares the step; rank 0 alone writes the config, metrics, plot and checkpoints, which
// hold the whole state, so a run resumes on any number of ranks (or none) with the same bits.
using System.Diagnostics;
using System.Text.Json.Nodes;
using Duet.Formats.Tokens;
using Duet.Model;
using Duet.Mpi;
using Duet.Tensors.Parallel;
using Duet.Training.Distributed;

namespace Duet.Training;

public readonly record struct TrainProgress(int Step, int Steps, double Loss, double LearningRate, double GradNorm,
    double TokensPerSecond, double Mfu, TimeSpan Elapsed, TimeSpan Eta, double? ValidationLoss, double CommSeconds = 0);

public sealed class Trainer : IDisposable
{
    public TrainConfig Config { get; }
    public string RunDirectory { get; }
    public LlamaConfig ModelConfig { get; }
    public TrainingModel Model { get; }
    public StepRunner Runner { get; }
    /// <summary>The data-parallel side when the run has more than one rank (null on one process).</summary>
    public DataParallel? Parallel { get; }
    public MpiWorld? World { get; }
    private bool Writes => World is null || World.Rank == 0;
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
    private readonly MetricsLog? _metrics;
    private readonly int _firstRow, _rows; // this rank's rows of a global batch

    public string CheckpointDirectory => Path.Combine(RunDirectory, "checkpoints");

    /// <param name="resume">Continue from the newest checkpoint in <paramref name="runDirectory"/> (an error if there is none).</param>
    /// <param name="world">the MPI job this process is a rank of (null or one rank: train alone)</param>
    /// <param name="zero">ZeRO-1: each rank keeps and updates the optimizer state of its shard only</param>
    public Trainer(TrainConfig config, string runDirectory, bool resume, WorkerPool? pool = null, MpiWorld? world = null, bool zero = false)
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
        if (world is { Size: > 1 })
        {
            World = world;
            Parallel = new DataParallel(world, Model, options, config.MicroBatches, zero, _pool);
        }
        _loader = new TokenLoader(_train, config.SeqLen, config.Seed);
        if (_validation is not null && config.EvalEvery > 0) _valLoader = new TokenLoader(_validation, config.SeqLen, config.Seed, shuffle: false);
        int local = Parallel?.LocalMicroBatches ?? config.MicroBatches;
        _rows = local * micro;
        _firstRow = (World?.Rank ?? 0) * _rows;
        _inputs = new int[Math.Max(_rows, micro) * config.SeqLen];
        _targets = new int[_inputs.Length];
        // Each rank measures the peak of its own threads; the job's peak is their sum.
        PeakFlopsPerSecond = (config.PeakGflops > 0 ? config.PeakGflops * 1e9 : PeakFlops.Measure(_pool)) * (World?.Size ?? 1);

        if (Writes)
        {
            Directory.CreateDirectory(RunDirectory);
            _metrics = new MetricsLog(Path.Combine(RunDirectory, "metrics.jsonl"));
        }
        if (resume) Resume();
        else
        {
            if (Checkpoints.List(CheckpointDirectory).Count > 0)
                throw new IOException($"{RunDirectory} already holds checkpoints: continue it with --resume, or choose another --out");
            Model.Layout.Initialize(Model.Parameters, config.Seed);
            _metrics?.Truncate(-1);
            // Paths made absolute, so `--resume RUN` reads this file from RUN and finds the same corpus and tokenizer.
            var saved = config with { Data = config.Resolve(config.Data), Tokenizer = config.Tokenizer is null ? null : config.Resolve(config.Tokenizer) };
            if (Writes) Duet.Formats.AtomicFile.Write(Path.Combine(RunDirectory, "config.json"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(saved.ToJson())));
        }
        if (World is not null)
        {
            // Every rank must start from the same step (each read the checkpoints itself: a shared folder).
            var steps = new int[World.Size];
            World.AllGather<int>([StartStep], steps);
            if (steps.Distinct().Count() != 1)
                throw new IOException($"the ranks found different checkpoints to resume from (steps {string.Join(", ", steps)}): the run folder {RunDirectory} must be one shared folder that every rank sees the same");
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
        if (Parallel is not null) Parallel.LoadMoments(p["adam.m"], p["adam.v"]);
        else
        {
            p["adam.m"].CopyTo(Runner.Optimizer.M, 0);
            p["adam.v"].CopyTo(Runner.Optimizer.V, 0);
        }
        Optimizer.Steps = h["adamSteps"]!.GetValue<int>();
        _loader.Seek(new LoaderPosition(h["loaderEpoch"]!.GetValue<int>(), h["loaderCursor"]!.GetValue<long>()));
        StartStep = step;
        _metrics?.Truncate(step - 1);
    }

    /// <summary>The optimizer that steps: this process's, or this rank's in a data-parallel run.</summary>
    private AdamW Optimizer => Parallel?.Optimizer ?? Runner.Optimizer;

    private void SaveCheckpoint(int nextStep)
    {
        var (m, v) = Parallel is not null ? Parallel.GatherMoments() ?? default : (Runner.Optimizer.M, Runner.Optimizer.V);
        if (!Writes) return;
        var header = new JsonObject
        {
            ["format"] = "duet-train",
            ["version"] = TrainingInfo.FormatVersion,
            ["step"] = nextStep,
            ["adamSteps"] = Optimizer.Steps,
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
            [("params", Model.Parameters), ("adam.m", m), ("adam.v", v)], Config.KeepCheckpoints);
    }

    /// <summary>
    /// Mean validation loss over the first EvalWindows windows of the validation split, in batches of the model's
    /// micro-batch; under MPI the batches are dealt round the ranks and their sums added in batch order, the same bits.
    /// </summary>
    public double Validate()
    {
        if (_valLoader is null) throw new InvalidOperationException("no validation split");
        int windows = (int)Math.Min(Config.EvalWindows, _valLoader.Windows);
        int per = Model.BatchSize;
        int batches = (windows + per - 1) / per;
        var sums = new double[2 * batches]; // per batch: loss sum, count (zero where another rank computes it)
        int ranks = World?.Size ?? 1, rank = World?.Rank ?? 0;
        for (int b = rank; b < batches; b += ranks)
        {
            int w = b * per, rows = Math.Min(per, windows - w);
            var inp = _inputs.AsSpan(0, rows * Config.SeqLen);
            var tgt = _targets.AsSpan(0, rows * Config.SeqLen);
            _valLoader.ReadInOrder(w, rows, inp, tgt);
            (sums[2 * b], int c) = Runner.Evaluate(inp, tgt);
            sums[2 * b + 1] = c;
        }
        World?.AllReduce<double>(sums, MpiOp.Sum); // each entry has one rank's value and zeros: exact in any order
        double sum = 0;
        long count = 0;
        for (int b = 0; b < batches; b++) { sum += sums[2 * b]; count += (long)sums[2 * b + 1]; }
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
            var inputs = _inputs.AsSpan(0, _rows * Config.SeqLen);
            var targets = _targets.AsSpan(0, inputs.Length);
            _loader.Next(Config.BatchSize, inputs, targets, _firstRow, _rows);
            StepResult r;
            double commSeconds = 0, exchangeWait = 0;
            bool stop = cancel.IsCancellationRequested;
            if (Parallel is null) r = Runner.Step(inputs, targets);
            else
            {
                // Every rank stops after the same step: the wish to stop travels with the step's statistics.
                var pr = Parallel.Step(inputs, targets, stop);
                (r, commSeconds, exchangeWait, stop) = (pr.Result, pr.CommSeconds, pr.ExchangeWaitSeconds, pr.StopRequested);
            }
            double seconds = sw.Elapsed.TotalSeconds;
            double tps = (double)Config.BatchSize * Config.SeqLen / seconds;
            double mfu = tps * flopsPerToken / PeakFlopsPerSecond;
            done++;
            var elapsed = total.Elapsed;
            var eta = TimeSpan.FromSeconds(elapsed.TotalSeconds / done * (Config.Steps - step - 1));
            var record = new Dictionary<string, double>
            {
                ["loss"] = r.Loss, ["lr"] = r.LearningRate, ["grad_norm"] = r.GradNorm, ["tokens_per_s"] = tps, ["mfu"] = mfu, ["elapsed_s"] = elapsed.TotalSeconds,
            };
            if (Parallel is not null) { record["comm_s"] = commSeconds; record["exchange_wait_s"] = exchangeWait; record["step_s"] = seconds; }
            _metrics?.Append("train", step, record);
            double? val = null;
            bool last = step == Config.Steps - 1;
            if (_valLoader is not null && Config.EvalEvery > 0 && ((step + 1) % Config.EvalEvery == 0 || last))
            {
                val = LastValidationLoss = Validate();
                _metrics?.Append("validation", step, new() { ["val_loss"] = val.Value });
            }
            Progress?.Invoke(new TrainProgress(step, Config.Steps, r.Loss, r.LearningRate, r.GradNorm, tps, mfu, elapsed, eta, val, commSeconds));
            if (last || stop || (Config.CheckpointEvery > 0 && (step + 1) % Config.CheckpointEvery == 0))
            {
                SaveCheckpoint(step + 1);
                if (_metrics is not null) LossPlot.Write(Path.Combine(RunDirectory, "loss.svg"), _metrics.Read(), Config.Name);
            }
            if (stop) return;
        }
    }

    public void Dispose()
    {
        Parallel?.Dispose();
        Model.Dispose();
        _train.Dispose();
        _validation?.Dispose();
        _metrics?.Dispose();
        if (_pool != WorkerPool.Shared) _pool.Dispose();
    }
}
