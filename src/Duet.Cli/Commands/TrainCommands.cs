// duet train, duet export, duet bench-train: pretraining runs, exporting a checkpoint as GGUF or safetensors, and
// the speed of whole training steps (for the table against PyTorch in bench/README.md).
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Duet.Model;
using Duet.Tensors.Parallel;
using Duet.Training;
using Spectre.Console;

namespace Duet.Cli.Commands;

internal static class TrainCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Train();
        yield return Export();
        yield return BenchTrain();
    }

    private static Command Train()
    {
        var config = new Option<string?>("--config", "-c") { Description = "the run's config (models/duet-tiny/train.json, for one): corpus, model shape or preset, batch, optimizer, schedule" };
        var output = new Option<string?>("--out", "-o") { Description = "run folder for checkpoints, metrics.jsonl and loss.svg (default: runs/NAME)" };
        var resume = new Option<string?>("--resume") { Description = "continue the run in this folder from its newest valid checkpoint" };
        var restart = new Option<bool>("--restart") { Description = "start over in --out even if it holds a run (its checkpoints and metrics are deleted)" };
        var micro = new Option<int?>("--micro-batches") { Description = "override the config's microBatches (under mpirun -np N a multiple of N: each rank runs microBatches / N of every batch)" };
        var zero = new Option<bool>("--zero") { Description = "under mpirun: ZeRO-1, each rank keeps and updates the optimizer state of its shard of the parameters only (same results, less memory)" };
        var cmd = new Command("train", "Pretrain a LLaMA-architecture model on the CPU from a tokenized corpus, with checkpoints, metrics and a loss plot. " +
            "Under mpirun -np N (or srun) the batches are shared by N data-parallel ranks with the same results as one process.")
        {
            config, output, resume, restart, micro, zero,
        };
        cmd.SetAction(r =>
        {
            var resumeDir = r.GetValue(resume);
            var configPath = r.GetValue(config);
            if (resumeDir is null && configPath is null) throw new ArgumentException("give --config FILE (a new run) or --resume RUN (continue one)");
            if (resumeDir is not null && r.GetValue(output) is not null) throw new ArgumentException("--resume RUN continues in RUN; --out is for new runs");
            var c = TrainConfig.Load(configPath ?? Path.Combine(resumeDir!, "config.json"));
            if (r.GetValue(micro) is int mb) { c = c with { MicroBatches = mb }; c.Validate(); }
            var world = MpiCommands.Join();
            if (world is null && r.GetValue(zero)) throw new ArgumentException("--zero shards the optimizer over MPI ranks: run under mpirun -np N");
            var run = resumeDir ?? r.GetValue(output) ?? Path.Combine("runs", c.Name);
            if (r.GetValue(restart) && Directory.Exists(run) && (world is null || world.Rank == 0))
            {
                if (resumeDir is not null) throw new ArgumentException("--restart starts a new run; --resume continues one");
                if (Directory.Exists(Path.Combine(run, "checkpoints"))) Directory.Delete(Path.Combine(run, "checkpoints"), recursive: true);
                foreach (var f in new[] { "metrics.jsonl", "loss.svg", "config.json" }) File.Delete(Path.Combine(run, f));
            }
            world?.Barrier(); // rank 0 has cleared a restarted run before any rank looks at it
            using var cancel = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
            using var trainer = new Trainer(c, run, resume: resumeDir is not null, world: world, zero: r.GetValue(zero));
            foreach (var w in trainer.Warnings) MpiCommands.Say($"warning: {w}");
            MpiCommands.Say($"{c.Name}: {trainer.Model.Layout.Count:N0} parameters (dim {trainer.ModelConfig.Dim}, {trainer.ModelConfig.Layers} layers, " +
                $"{trainer.ModelConfig.Heads}/{trainer.ModelConfig.KvHeads} heads, ffn {trainer.ModelConfig.FfnDim}, vocab {trainer.ModelConfig.Vocab}), " +
                $"batch {c.BatchSize} × {c.SeqLen}, steps {trainer.StartStep}..{c.Steps}, peak {trainer.PeakFlopsPerSecond / 1e9:F0} GFLOP/s; run folder {run}");
            if (trainer.Parallel is { } dp)
                MpiCommands.Say($"data-parallel: {world!.Size} ranks ({world.Version}), {dp.LocalMicroBatches} of {dp.MicroBatches} micro-batches each, " +
                    (dp.Zero ? "ZeRO-1 (optimizer state sharded)" : "optimizer state replicated"));
            TrainProgress last = default;
            if (world is { Rank: > 0 }) { trainer.Progress = p => last = p; trainer.Run(cancel.Token); } // rank 0 reports for the job
            else last = RunWithProgress(trainer.StartStep, c.Steps, p => trainer.Progress = p, () => trainer.Run(cancel.Token));
            bool stopped = last.Step + 1 < c.Steps;
            MpiCommands.Say(stopped
                ? $"stopped after step {last.Step + 1}; checkpoint saved. Continue with: duet train --resume {run}"
                : $"done: train loss {last.Loss:F4}, validation loss {trainer.LastValidationLoss:F4}; {run}/checkpoints, metrics.jsonl, loss.svg. Export with: duet export {run} --format gguf --out MODEL.gguf");
            return stopped ? 130 : 0;
        });
        return cmd;
    }

    /// <summary>
    /// Runs a training loop with its progress shown: a Spectre.Console bar on a terminal, else a line every 10 steps and
    /// at each validation. Returns the last progress reported.
    /// </summary>
    internal static TrainProgress RunWithProgress(int startStep, int steps, Action<Action<TrainProgress>> attach, Action run)
    {
        TrainProgress last = default;
        if (AnsiConsole.Profile.Capabilities.Interactive)
        {
            AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("training", maxValue: steps);
                    task.Value = startStep;
                    attach(p => { last = p; task.Value = p.Step + 1; task.Description = Markup.Escape(Describe(p)); });
                    run();
                });
        }
        else
        {
            attach(p =>
            {
                last = p;
                if (p.Step % 10 == 0 || p.ValidationLoss is not null || p.Step == p.Steps - 1) Console.Error.WriteLine(Describe(p));
            });
            run();
        }
        return last;
    }

    private static string Describe(TrainProgress p) =>
        $"step {p.Step + 1}/{p.Steps} loss {p.Loss:F4}" + (p.ValidationLoss is double v ? $" val {v:F4}" : "") +
        $" lr {p.LearningRate:E2} norm {p.GradNorm:F2} {p.TokensPerSecond:N0} tok/s" + (p.Mfu > 0 ? $" MFU {p.Mfu:P1}" : "") + $" ETA {p.Eta:hh\\:mm\\:ss}";

    private static Command Export()
    {
        var source = new Argument<string>("CHECKPOINT") { Description = "a .ckpt file, or a run folder (its newest valid checkpoint)" };
        var format = new Option<string>("--format", "-f") { Description = "gguf (tokenizer embedded) or safetensors (a folder with config.json, generation_config.json, tokenizer.json)", DefaultValueFactory = _ => "gguf" };
        var output = new Option<string>("--out", "-o") { Description = "the .gguf file or the safetensors folder", Required = true };
        var type = new Option<string>("--type") { Description = "GGUF tensor type F32, F16, Q8_0, Q4_0, Q4_K, Q6_K; safetensors F32, F16, BF16", DefaultValueFactory = _ => "F32" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "the tokenizer to embed (default: the one the run's config named)" };
        var cmd = new Command("export", "Export a training checkpoint as a GGUF file (llama.cpp) or a Hugging Face safetensors folder (transformers).")
        {
            source, format, output, type, tokenizer,
        };
        cmd.SetAction(r =>
        {
            var fmt = ModelCommands.ParseFormat(r.GetValue(format)!);
            var t = ModelPackage.ParseType(r.GetValue(type)!);
            var outPath = r.GetRequiredValue(output);
            var (model, path) = TrainedModel.Export(r.GetValue(source)!, outPath, fmt, t, r.GetValue(tokenizer));
            Console.Error.WriteLine($"exported {path} ({model.Config.Name}, {model.Tensors.Values.Sum(x => (long)x.Length):N0} parameters) to {outPath}");
            return 0;
        });
        return cmd;
    }

    private static Command BenchTrain()
    {
        var preset = new Option<string>("--preset") { Description = "model shape: duet-tiny or 15m", DefaultValueFactory = _ => "15m" };
        var vocab = new Option<int>("--vocab") { Description = "vocabulary size", DefaultValueFactory = _ => 32000 };
        var batch = new Option<int>("--batch", "-b") { Description = "sequences per step", DefaultValueFactory = _ => 8 };
        var seq = new Option<int>("--seq") { Description = "tokens per sequence", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "timed steps (after 2 warm-up steps)", DefaultValueFactory = _ => 10 };
        var threads = ModelCommands.ThreadsOption();
        var json = new Option<bool>("--json") { Description = "print one JSON line" };
        var parts = new Option<bool>("--parts") { Description = "also print the wall time of each part of a step (embedding, per-layer blocks summed over the layers, head, cross-entropy, optimizer)" };
        var cmd = new Command("bench-train", "Training speed: tokens/s and MFU of whole steps (forward, backward, AdamW) on random tokens.")
        {
            preset, vocab, batch, seq, steps, threads, json, parts,
        };
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            int b = r.GetValue(batch), t = r.GetValue(seq), v = r.GetValue(vocab), n = r.GetValue(steps);
            if (b < 1 || t < 2 || v < 2 || n < 1) throw new ArgumentException("--batch, --seq, --vocab and --steps must be positive");
            var name = r.GetValue(preset)!;
            var config = ModelShape.Preset(name).ToConfig(v, t, name);
            using var model = new TrainingModel(config, b, t);
            model.Layout.Initialize(model.Parameters, 1);
            var runner = new StepRunner(model, new OptimizerOptions { LearningRate = 1e-3, WarmupSteps = 0 }, 1);
            var rng = new Random(1);
            var inputs = new int[b * t];
            var targets = new int[b * t];
            var times = new List<double>();
            double loss = 0;
            var profile = r.GetValue(parts) ? new StepProfile() : null;
            model.Profile = profile;
            for (int s = 0; s < n + 2; s++)
            {
                for (int i = 0; i < inputs.Length; i++) { inputs[i] = rng.Next(v); targets[i] = rng.Next(v); }
                if (s == 2) profile?.Clear();
                var sw = Stopwatch.StartNew();
                loss = runner.Step(inputs, targets).Loss;
                if (s >= 2) times.Add(sw.Elapsed.TotalSeconds);
            }
            times.Sort();
            double median = times[times.Count / 2];
            double tps = b * t / median;
            double peak = PeakFlops.Measure(WorkerPool.Shared);
            double mfu = tps * PeakFlops.PerToken(config, t) / peak;
            if (r.GetValue(json))
            {
                var line = new Dictionary<string, object>
                {
                    ["peer"] = "duet", ["preset"] = name, ["vocab"] = v, ["batch"] = b, ["seq"] = t, ["threads"] = WorkerPool.Shared.Threads,
                    ["step_ms"] = Math.Round(median * 1e3, 2), ["tokens_per_s"] = Math.Round(tps, 1), ["mfu"] = Math.Round(mfu, 4),
                    ["peak_gflops"] = Math.Round(peak / 1e9, 1), ["params"] = model.Layout.Count, ["loss"] = Math.Round(loss, 4),
                };
                if (profile is not null) line["parts_ms"] = profile.Parts.ToDictionary(x => x.Part, x => Math.Round(x.Milliseconds / n, 2));
                Console.WriteLine(JsonSerializer.Serialize(line));
            }
            else
                Console.WriteLine($"{name} (vocab {v}, {model.Layout.Count:N0} parameters), batch {b} × {t}, {WorkerPool.Shared.Threads} threads: " +
                    $"{median * 1e3:F1} ms/step, {tps:N0} tokens/s, MFU {mfu:P1} of {peak / 1e9:F0} GFLOP/s");
            if (profile is not null && !r.GetValue(json))
            {
                // mean over the timed steps (the line above gives the median step)
                double total = profile.Parts.Sum(x => x.Milliseconds);
                foreach (var (part, ms) in profile.Parts) Console.WriteLine($"  {part,-32} {ms / n,9:F1} ms/step {ms / total,7:P1}");
            }
            return 0;
        });
        return cmd;
    }
}
