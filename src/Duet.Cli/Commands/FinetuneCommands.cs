// duet finetune: chat fine-tuning of a model on conversations in JSON lines, the loss on the replies only
// (Duet.Training.Sft.FineTuner), with checkpoints, --resume, metrics and the loss plot. Full fine-tuning writes the
// tuned model to RUN/model.gguf with the base's tokenizer and chat template; --lora trains adapters over the base as
// it is (memory-mapped, quantized or not) and writes RUN/adapter.gguf (llama.cpp) and RUN/adapter/ (PEFT).
using System.CommandLine;
using Duet.Model;
using Duet.Training;
using Duet.Training.Sft;

namespace Duet.Cli.Commands;

internal static class FinetuneCommands
{
    public static Command Create()
    {
        var baseModel = new Option<string?>("--base", "-m") { Description = "the model to tune: a .gguf file or an HF folder, with its tokenizer" };
        var data = new Option<string?>("--data", "-d") { Description = "conversations, JSON lines: {\"messages\": [{\"role\", \"content\"}...]} (OpenAI) or {\"conversations\": [{\"from\", \"value\"}...]} (ShareGPT)" };
        var output = new Option<string?>("--out", "-o") { Description = "the run folder (checkpoints, metrics.jsonl, loss.svg, model.gguf)" };
        var resume = new Option<string?>("--resume") { Description = "continue the run in this folder from its newest checkpoint" };
        var configFile = new Option<string?>("--config") { Description = "a recipe file (JSON, as RUN/config.json is written; base and data relative to it); options given on the command line override it" };
        var restart = new Option<bool>("--restart") { Description = "start over in --out even if it holds a run (its checkpoints and metrics are deleted)" };
        var steps = new Option<int>("--steps") { Description = "optimizer steps", DefaultValueFactory = _ => 100 };
        var batch = new Option<int>("--batch") { Description = "sequences per step", DefaultValueFactory = _ => 8 };
        var seqLen = new Option<int>("--seq-len") { Description = "tokens per packed sequence", DefaultValueFactory = _ => 256 };
        var micro = new Option<int>("--micro-batches") { Description = "gradient accumulation: the batch in this many parts", DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--lr") { Description = "peak learning rate (cosine decay to a tenth)", DefaultValueFactory = _ => 1e-4 };
        var warmup = new Option<int>("--warmup") { Description = "warm-up steps", DefaultValueFactory = _ => 10 };
        var valData = new Option<string?>("--validation-data") { Description = "held-out conversations in their own file (then every conversation of --data trains)" };
        var valEvery = new Option<int>("--validation-every") { Description = "every n-th conversation is held out for validation (0: none)", DefaultValueFactory = _ => 20 };
        var evalEvery = new Option<int>("--eval-every") { Description = "validate every n steps", DefaultValueFactory = _ => 25 };
        var ckptEvery = new Option<int>("--checkpoint-every") { Description = "checkpoint every n steps", DefaultValueFactory = _ => 25 };
        var seed = new Option<ulong>("--seed") { Description = "the order of the sequences", DefaultValueFactory = _ => 1234 };
        var neftune = new Option<float>("--neftune") { Description = "NEFTune: noise of this alpha on the embeddings while training (5 in its paper; 0: none)", DefaultValueFactory = _ => 0f };
        var lora = new Option<string?>("--lora")
        {
            Description = "LoRA over the frozen base instead of full fine-tuning: r=RANK,alpha=ALPHA,targets=q,k,v,o,gate,up,down[,rslora] "
                + "(keys not given: r=16, alpha=32, all seven projections); the base stays in its own type (F32, F16, BF16, Q8_0, Q4_0, K-quants)",
        };
        var threads = ModelCommands.ThreadsOption();
        var cmd = new Command("finetune", "Fine-tune a model on chat conversations: the model's own chat template, the loss on the assistant's replies only, conversations packed with attention kept inside each; checkpoints and exact --resume.")
            { baseModel, data, output, resume, configFile, restart, steps, batch, seqLen, micro, lr, warmup, valData, valEvery, evalEvery, ckptEvery, seed, neftune, lora, threads };
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            FineTuneConfig config;
            string run;
            if (r.GetValue(resume) is string resumeDir)
            {
                run = resumeDir;
                var saved = Path.Combine(run, "config.json");
                if (!File.Exists(saved)) throw new FileNotFoundException($"{run}: no config.json (not a finetune run folder)", saved);
                config = System.Text.Json.JsonSerializer.Deserialize<FineTuneConfig>(File.ReadAllText(saved), FineTuneConfig.Json)
                    ?? throw new InvalidDataException($"{saved}: empty");
            }
            else
            {
                run = r.GetValue(output) ?? throw new ArgumentException("--out is required (or --resume RUN)");
                bool Given(Option o) => r.GetResult(o) is { Implicit: false };
                var file = r.GetValue(configFile) is string cf ? FineTuneConfig.Load(cf) : null;
                string? basePath = r.GetValue(baseModel) ?? file?.Base, dataPath = r.GetValue(data) ?? file?.Data;
                T Pick<T>(Option<T> o, T fromFile) => file is null || Given(o) ? r.GetValue(o)! : fromFile;
                var opt = file?.Optimizer;
                config = new FineTuneConfig
                {
                    Base = Path.GetFullPath(basePath ?? throw new ArgumentException("--base is required (or --config FILE naming it)")),
                    Data = Path.GetFullPath(dataPath ?? throw new ArgumentException("--data is required (or --config FILE naming it)")),
                    Steps = Pick(steps, file?.Steps ?? 0), BatchSize = Pick(batch, file?.BatchSize ?? 0), SeqLen = Pick(seqLen, file?.SeqLen ?? 0), MicroBatches = Pick(micro, file?.MicroBatches ?? 0),
                    ValidationEvery = Pick(valEvery, file?.ValidationEvery ?? 0),
                    ValidationData = r.GetValue(valData) is string vd ? Path.GetFullPath(vd) : file?.ValidationData, EvalEvery = Pick(evalEvery, file?.EvalEvery ?? 0), CheckpointEvery = Pick(ckptEvery, file?.CheckpointEvery ?? 0),
                    Seed = Pick(seed, file?.Seed ?? 0), NeftuneAlpha = Pick(neftune, file?.NeftuneAlpha ?? 0), KeepCheckpoints = file?.KeepCheckpoints ?? 2,
                    Lora = r.GetValue(lora) is string spec ? Training.Lora.LoraOptions.Parse(spec) : file?.Lora,
                    Optimizer = opt is not null && !Given(lr) && !Given(warmup) ? opt
                        : (opt ?? new OptimizerOptions { WeightDecay = 0 }) with { LearningRate = Pick(lr, opt?.LearningRate ?? 0), MinLearningRate = Pick(lr, opt?.LearningRate ?? 0) / 10, WarmupSteps = Pick(warmup, opt?.WarmupSteps ?? 0) },
                    Name = file?.Name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(run))),
                };
                if (r.GetValue(restart) && Directory.Exists(run))
                {
                    if (Directory.Exists(Path.Combine(run, "checkpoints"))) Directory.Delete(Path.Combine(run, "checkpoints"), recursive: true);
                    foreach (var f in new[] { "metrics.jsonl", "loss.svg", "config.json" }) File.Delete(Path.Combine(run, f));
                }
            }
            using var cancel = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
            using var tuner = new FineTuner(config, run, resume: r.GetValue(resume) is not null);
            foreach (var w in tuner.Warnings) Console.Error.WriteLine($"warning: {w}");
            Console.Error.WriteLine($"{config.Name}: {tuner.Model.Layout.Count:N0} {(config.Lora is { } lo ? $"LoRA parameters (rank {lo.Rank}, alpha {lo.Alpha}{(lo.RsLora ? ", rsLoRA" : "")}, {string.Join(",", lo.Targets)}) over the frozen {tuner.Model.Base!.MainType}" : "parameters from")} {config.Base}; {tuner.TrainSequences} training and {tuner.ValidationSequences} validation sequences of {config.SeqLen} tokens"
                + (tuner.TruncatedConversations > 0 ? $" ({tuner.TruncatedConversations} conversations longer than a sequence were cut)" : "") + $"; steps {tuner.StartStep}..{config.Steps}; run folder {run}");
            var last = TrainCommands.RunWithProgress(tuner.StartStep, config.Steps, p => tuner.Progress = p, () => tuner.Run(cancel.Token));
            if (cancel.IsCancellationRequested)
            {
                Console.Error.WriteLine($"stopped after step {last.Step + 1}; checkpoint saved. Continue with: duet finetune --resume {run}");
                return 130;
            }
            var written = tuner.Export();
            Console.Error.WriteLine($"done: train loss {last.Loss:F4} on replies{(tuner.LastValidationLoss is double v ? $", validation {v:F4}" : "")}; wrote {string.Join(" and ", written)}. Chat with: "
                + (config.Lora is null ? $"duet chat --model {written[0]}" : $"duet chat --model {config.Base} --lora {written[0]}"));
            return 0;
        });
        return cmd;
    }
}
