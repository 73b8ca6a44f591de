// duet tokenizer {train, convert, info, bench}.
using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Duet.Tokenizers;
using Duet.Tokenizers.Loaders;
using Duet.Tokenizers.Trainer;
using Spectre.Console;

namespace Duet.Cli.Commands;

internal static class TokenizerCommands
{
    public static Command Create()
    {
        var cmd = new Command("tokenizer", "Train, convert, inspect and benchmark tokenizers.");
        cmd.Subcommands.Add(Train());
        cmd.Subcommands.Add(Info());
        cmd.Subcommands.Add(Convert());
        cmd.Subcommands.Add(Bench());
        return cmd;
    }

    private static Command Train()
    {
        var input = new Option<string[]>("--input", "-i")
        {
            Description = "text files (plain or .gz) read as documents separated by blank lines, JSONL shards (.jsonl, .jsonl.gz: the \"text\" field), or a corpus folder of `duet data build` (its train shards)",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var vocab = new Option<int>("--vocab-size") { Description = "tokens in the vocabulary, special and byte tokens included", DefaultValueFactory = _ => 16000 };
        var output = new Option<string>("--out", "-o") { Description = "folder for tokenizer.json, tokenizer_config.json and tokenizer.gguf", Required = true };
        var coverage = new Option<double>("--character-coverage") { Description = "share of characters the base alphabet covers; rarer ones fall back to bytes", DefaultValueFactory = _ => 0.9995 };
        var specials = new Option<string[]>("--special-tokens")
        {
            Description = "special tokens after <unk> <s> </s>",
            DefaultValueFactory = _ => ["<|im_start|>", "<|im_end|>"],
            AllowMultipleArgumentsPerToken = true,
        };
        var cmd = new Command("train", "Train a bilingual byte-fallback BPE tokenizer (SentencePiece style, HF tokenizer.json output).")
        {
            input, vocab, output, coverage, specials,
        };
        cmd.SetAction(r =>
        {
            var files = r.GetRequiredValue(input).SelectMany(CorpusFiles.TrainFiles).ToArray();
            var options = new BpeTrainerOptions
            {
                VocabSize = r.GetValue(vocab),
                CharacterCoverage = r.GetValue(coverage),
                ExtraSpecialTokens = r.GetValue(specials) ?? [],
            };
            if (options.VocabSize is < 300 or > 1_000_000) throw new ArgumentException($"--vocab-size {options.VocabSize}: must be between 300 and 1,000,000");
            if (options.CharacterCoverage is <= 0 or > 1) throw new ArgumentException("--character-coverage must be in (0, 1]");
            var trainer = new BpeTrainer(options);
            var sw = Stopwatch.StartNew();
            Tokenizer? tok = null;
            AnsiConsole.Progress().AutoClear(false).HideCompleted(false).Columns(
                new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var count = ctx.AddTask("counting pre-tokens", maxValue: 1);
                    var merge = ctx.AddTask("merging", maxValue: 1, autoStart: false);
                    trainer.AddFiles(files, new SyncProgress(p => { count.Value = p.Fraction; count.Description = Markup.Escape($"counting: {p.Detail}"); }));
                    count.Value = 1;
                    merge.StartTask();
                    tok = trainer.Train(new SyncProgress(p => { merge.Value = p.Fraction; merge.Description = Markup.Escape($"merging: {p.Detail}"); }));
                    merge.Value = 1;
                });
            var outDir = r.GetRequiredValue(output);
            Directory.CreateDirectory(outDir);
            TokenizerJsonWriter.Save(tok!, Path.Combine(outDir, "tokenizer.json"));
            GgufVocabulary.Save(tok!, Path.Combine(outDir, "tokenizer.gguf"));
            Console.Error.WriteLine($"trained {tok!.VocabSize} tokens on {trainer.CharactersSeen:N0} characters in {sw.Elapsed.TotalSeconds:F1} s; wrote {outDir}/tokenizer.json, tokenizer_config.json, tokenizer.gguf");
            return 0;
        });
        return cmd;
    }

    /// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<TrainerProgress> report) : IProgress<TrainerProgress>
    {
        public void Report(TrainerProgress value) => report(value);
    }

    private static Command Info()
    {
        var tok = TokenizeCommands.TokenizerOption();
        var cmd = new Command("info", "Show what a tokenizer is: kind, vocabulary, special tokens.") { tok };
        cmd.SetAction(r =>
        {
            var t = Tokenizer.Load(r.GetRequiredValue(tok));
            var table = new Table().AddColumn("property").AddColumn("value");
            table.AddRow("source", t.Source.ToString());
            table.AddRow("decoder", t.Decoder.Kind.ToString());
            table.AddRow("vocab size", t.VocabSize.ToString());
            table.AddRow("merge ranking", t.Model.Ranking.ToString());
            table.AddRow("byte fallback", t.Model.ByteFallback.ToString());
            table.AddRow("added tokens", t.AddedTokens.Tokens.Count.ToString());
            table.AddRow("bos / eos / unk", Markup.Escape($"{Name(t, t.BosId)} / {Name(t, t.EosId)} / {Name(t, t.UnknownId)}"));
            table.AddRow("adds (prefix, suffix)", Markup.Escape($"[{string.Join(",", t.PostProcessor.Prefix)}] [{string.Join(",", t.PostProcessor.Suffix)}]"));
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
        static string Name(Tokenizer t, int id) => id < 0 ? "-" : $"{id} {t.IdToToken(id)}";
    }

    private static Command Convert()
    {
        var tok = TokenizeCommands.TokenizerOption();
        var output = new Option<string>("--out", "-o") { Description = "tokenizer.json, or a .gguf file holding only the vocabulary", Required = true };
        var cmd = new Command("convert", "Write a tokenizer as tokenizer.json or as GGUF vocabulary keys.") { tok, output };
        cmd.SetAction(r =>
        {
            var t = Tokenizer.Load(r.GetRequiredValue(tok));
            var outPath = r.GetRequiredValue(output);
            if (outPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) GgufVocabulary.Save(t, outPath);
            else TokenizerJsonWriter.Save(t, outPath);
            Console.Error.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }

    private static Command Bench()
    {
        var tok = TokenizeCommands.TokenizerOption();
        var input = new Option<string>("--input", "-i") { Description = "UTF-8 text file, encoded line by line", Required = true };
        var runs = new Option<int>("--runs") { Description = "timed passes after one warm-up pass", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "print one JSON line" };
        var cmd = new Command("bench", "Encode throughput on one thread, in MB/s of input (median of the runs): cold (a fresh tokenizer's first pass over the text: every word a cache miss) and warm (the same instance again).") { tok, input, runs, json };
        cmd.SetAction(r =>
        {
            var path = r.GetRequiredValue(tok);
            var bytes = File.ReadAllBytes(r.GetRequiredValue(input));
            var lines = Encoding.UTF8.GetString(bytes).Split('\n');
            var ids = new List<int>();
            long tokens = 0;
            double Pass(Tokenizer t)
            {
                var sw = Stopwatch.StartNew();
                tokens = 0;
                foreach (var line in lines) { ids.Clear(); t.Encode(line, ids); tokens += ids.Count; }
                return sw.Elapsed.TotalSeconds;
            }
            int n = Math.Max(1, r.GetValue(runs));
            // Cold: each pass a new instance (loaded outside the timing) that has seen no text. The first three instances
            // warm the JIT and are not counted: tiered compilation reaches its final code only after a few seconds (the
            // first two cold passes of llama3 ran at a third of the speed of the later ones). Warm: the last instance
            // again, its caches full of this text.
            Tokenizer t = Tokenizer.Load(path);
            Pass(t);
            for (int i = 0; i < 2; i++) { t = Tokenizer.Load(path); Pass(t); }
            var cold = new double[n];
            for (int i = 0; i < n; i++)
            {
                t = Tokenizer.Load(path);
                GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect(); // the previous instance's garbage is not this pass's cost
                cold[i] = Pass(t);
            }
            var warm = Enumerable.Range(0, n).Select(_ => Pass(t)).Order().ToArray();
            Array.Sort(cold);
            double Mbps(double s) => bytes.Length / 1e6 / s;
            double coldMbps = Mbps(cold[n / 2]), warmMbps = Mbps(warm[n / 2]);
            if (r.GetValue(json))
                Console.WriteLine($"{{\"tool\":\"duet\",\"tokenizer\":\"{path.Replace("\\", "\\\\")}\",\"bytes\":{bytes.Length},\"tokens\":{tokens},\"mb_per_s\":{warmMbps:F3},\"cold_mb_per_s\":{coldMbps:F3},\"warm_mb_per_s\":{warmMbps:F3}}}");
            else
                Console.WriteLine($"{path}: {bytes.Length} bytes, {tokens} tokens; cold {coldMbps:F2} MB/s (median of {n} fresh instances, {Mbps(cold[^1]):F2}-{Mbps(cold[0]):F2}), warm {warmMbps:F2} MB/s ({Mbps(warm[^1]):F2}-{Mbps(warm[0]):F2})");
            return 0;
        });
        return cmd;
    }
}
