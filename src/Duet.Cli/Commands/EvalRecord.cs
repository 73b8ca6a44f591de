// Evaluation results inside the weights: duet eval perplexity|tasks --write-to MODEL records each result with the
// settings that reproduce it (data path and its SHA-256, context, shots, BOS, ...) as provenance entries,
// eval.perplexity and eval.tasks.NAME (GGUF duet.provenance.eval.*, tensors copied byte for byte; or an HF folder's
// config.json duet_provenance). duet info MODEL lists them; duet eval verify MODEL re-runs each and says whether it
// reproduces: perplexity within 1e-4 and the tasks' log-likelihood sums within 1e-5, relative (other CPUs' kernels
// sum in another order; another model's weights move them far more), accuracy within one question (a near tie may
// fall the other way).
using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Duet.Eval;
using Duet.Eval.Tasks;
using Duet.Formats;
using Duet.Formats.Gguf;
using Duet.Model;

namespace Duet.Cli.Commands;

internal static class EvalRecord
{
    public const string Prefix = "eval.";

    /// <summary>SHA-256 of the data an evaluation read (its files in order).</summary>
    public static string DataSha256(IEnumerable<string> files) => TaskReport.Sha256(files);

    private static IEnumerable<string> PerplexityFiles(string data) => File.Exists(data) ? [data] : CorpusFiles.Shards(data, "validation");

    private static IEnumerable<string> TaskDataFiles(TaskDefinition task, string data, int shots) =>
        TaskFiles.Find(data, shots > 0 ? [.. task.EvalSplits, .. task.FewshotSplits] : task.EvalSplits);

    public static void WritePerplexity(string target, string data, PerplexityOptions options, PerplexityResult all, List<(string Set, PerplexityResult Result)> perLanguage)
    {
        var sets = new JsonObject();
        foreach (var (set, r) in perLanguage.Prepend(("all", all)))
            sets[set] = new JsonObject
            {
                ["ppl"] = r.Ppl, ["ppl_err"] = r.PplError, ["bits_per_byte"] = r.BitsPerByte, ["bits_per_char"] = r.BitsPerChar,
                ["chunks"] = r.Chunks, ["scored_tokens"] = r.ScoredTokens,
            };
        var record = new JsonObject
        {
            ["data"] = data, ["data_sha256"] = DataSha256(PerplexityFiles(data)), ["ctx"] = options.Context, ["chunks"] = options.Chunks, ["sets"] = sets,
        };
        Record(target, new() { [Prefix + "perplexity"] = record.ToJsonString() });
    }

    /// <summary>Records every task of a report made by duet eval tasks.</summary>
    public static void Write(string target, string modelPath, JsonObject report)
    {
        var entries = new Dictionary<string, string>();
        foreach (var t in report["tasks"]!.AsArray())
        {
            var task = TaskDefinition.Parse(t!["definition"]!.ToJsonString(), "the report");
            string data = t["data"]!.GetValue<string>();
            int shots = t["shots"]!.GetValue<int>();
            var record = new JsonObject
            {
                ["data"] = data, ["data_sha256"] = DataSha256(TaskDataFiles(task, data, shots)), ["shots"] = shots, ["limit"] = t["limit"]?.DeepClone(),
                ["bos"] = t["bos"]!.GetValue<bool>(), ["max_length"] = t["max_length"]?.DeepClone(), ["questions"] = t["questions"]!.GetValue<int>(),
                ["chance"] = t["chance"]!.GetValue<double>(), ["metrics"] = t["metrics"]!.DeepClone(), ["loglikelihood_sum"] = t["loglikelihood_sum"]!.GetValue<double>(), ["definition"] = t["definition"]!.DeepClone(),
            };
            entries[Prefix + "tasks." + task.Name] = record.ToJsonString();
        }
        if (Path.GetFullPath(target) != Path.GetFullPath(modelPath)) Console.Error.WriteLine($"note: recording the results of {modelPath} in {target}");
        Record(target, entries);
    }

    /// <summary>Adds provenance entries to a GGUF file (tensors kept byte for byte) or an HF folder's config.json, atomically.</summary>
    public static void Record(string target, Dictionary<string, string> entries)
    {
        if (File.Exists(target))
        {
            GgufEdit.EditMetadata(target, w =>
            {
                foreach (var (key, value) in entries) w.Set(ModelPackage.ProvenancePrefix + key, GgufValue.Of(value));
            });
        }
        else if (File.Exists(Path.Combine(target, "config.json")))
        {
            var path = Path.Combine(target, "config.json");
            var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            var p = config[ModelPackage.ProvenanceJsonKey] as JsonObject ?? new JsonObject();
            foreach (var (key, value) in entries) p[key] = value;
            config[ModelPackage.ProvenanceJsonKey] = p;
            AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n")));
        }
        else throw new FileNotFoundException($"--write-to {target}: neither a GGUF file nor an HF folder with config.json");
        Console.Error.WriteLine($"recorded {string.Join(", ", entries.Keys)} in {target}");
    }

    public static Command Verify()
    {
        var model = new Argument<string>("MODEL") { Description = "a .gguf file or HF folder whose recorded evaluations (duet eval ... --write-to) to re-run" };
        var threads = ModelCommands.ThreadsOption();
        var math = ModelCommands.MathOption();
        var cmd = new Command("verify", "Re-run the evaluations recorded in a model (perplexity, tasks) with their recorded settings and say whether each reproduces: perplexity within 1e-4 and log-likelihood sums within 1e-5 relative, accuracy within one question. Exit code 1 if one does not.")
            { model, threads, math };
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            string path = r.GetRequiredValue(model);
            IReadOnlyDictionary<string, string> provenance;
            using (var package = ModelPackage.Open(path, loadTokenizer: false)) provenance = package.Provenance;
            var records = provenance.Where(p => p.Key.StartsWith(Prefix, StringComparison.Ordinal)).OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
            if (records.Count == 0)
            {
                Console.Error.WriteLine($"{path} records no evaluations (record some with duet eval perplexity|tasks --write-to {path})");
                return 1;
            }
            bool ok = true;
            Console.WriteLine("| evaluation | recorded | now | verdict |");
            Console.WriteLine("|---|---|---|---|");
            foreach (var (key, value) in records)
            {
                JsonObject rec;
                try { rec = JsonNode.Parse(value)!.AsObject(); }
                catch (Exception e) when (e is JsonException or InvalidOperationException) { Console.WriteLine($"| {key} | unreadable: {e.Message} | | FAILS |"); ok = false; continue; }
                foreach (var (what, recorded, now, good) in key == Prefix + "perplexity" ? VerifyPerplexity(path, rec, r.GetValue(math)) : VerifyTask(path, key[(Prefix + "tasks.").Length..], rec, r.GetValue(math)))
                {
                    Console.WriteLine($"| {what} | {recorded} | {now} | {(good ? "reproduces" : "DIFFERS")} |");
                    ok &= good;
                }
            }
            Console.WriteLine(ok ? $"all {records.Count} recorded evaluations reproduce" : "some recorded evaluations do not reproduce");
            return ok ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>The data a record names: as recorded (relative to the working directory), else under the Duet checkout.</summary>
    private static string Locate(string data) => TaskDefinition.Locate(data)
        ?? throw new FileNotFoundException($"the recorded data {data} is not here (run from the folder it was recorded in)");

    private static IEnumerable<(string What, string Recorded, string Now, bool Good)> DataCheck(string name, string recordedSha, IEnumerable<string> files)
    {
        string now = DataSha256(files);
        if (now != recordedSha) yield return ($"{name}: data", recordedSha[..12], now[..12], false);
    }

    private static IEnumerable<(string, string, string, bool)> VerifyPerplexity(string model, JsonObject rec, Duet.Tensors.Kernels.QuantizedMath math)
    {
        string data = Locate(rec["data"]!.GetValue<string>());
        foreach (var d in DataCheck("perplexity", rec["data_sha256"]!.GetValue<string>(), PerplexityFiles(data))) yield return d;
        var options = new PerplexityOptions { Context = rec["ctx"]!.GetValue<int>(), Chunks = rec["chunks"]?.GetValue<int>() };
        var (all, perLanguage, _) = EvalCommands.RunPerplexity(model, data, options, math, null, null, null);
        foreach (var (set, now) in perLanguage.Prepend(("all", all)))
        {
            if (rec["sets"]?[set] is not JsonObject was) continue;
            double ppl = was["ppl"]!.GetValue<double>();
            yield return ($"perplexity {set} (ctx {options.Context})", $"PPL {ppl:F4}", $"PPL {now.Ppl:F4}", Math.Abs(now.Ppl / ppl - 1) <= 1e-4);
        }
    }

    private static IEnumerable<(string, string, string, bool)> VerifyTask(string model, string name, JsonObject rec, Duet.Tensors.Kernels.QuantizedMath math)
    {
        var task = TaskDefinition.Parse(rec["definition"]!.ToJsonString(), $"the recorded definition of {name}");
        string data = Locate(rec["data"]!.GetValue<string>());
        int shots = rec["shots"]!.GetValue<int>();
        foreach (var d in DataCheck(name, rec["data_sha256"]!.GetValue<string>(), TaskDataFiles(task, data, shots))) yield return d;
        var options = new TaskOptions
        {
            Shots = shots, Limit = rec["limit"]?.GetValue<int>(), Bos = rec["bos"]!.GetValue<bool>(), MaxLength = rec["max_length"]?.GetValue<int>(),
        };
        TaskResult result;
        var (m, tok) = Duet.Inference.ModelLoader.Load(model);
        m.QuantizedMath = math;
        using (m) result = TaskRunner.Run(task, data, m, tok, options);
        int n = result.Questions;
        double llWas = rec["loglikelihood_sum"]!.GetValue<double>();
        yield return ($"{name} log-likelihood sum ({n} questions)", $"{llWas:F3}", $"{result.LoglikelihoodSum:F3}",
            Math.Abs(result.LoglikelihoodSum - llWas) <= 1e-5 * Math.Max(1, Math.Abs(llWas)));
        foreach (var (metric, was) in rec["metrics"]!.AsObject())
        {
            double recorded = was!["value"]!.GetValue<double>(), now = result.Metrics[metric].Value;
            yield return ($"{name} {metric} ({shots}-shot, {n} questions)", $"{100 * recorded:F2}%", $"{100 * now:F2}%",
                n == rec["questions"]!.GetValue<int>() && Math.Abs(now - recorded) <= 1.0 / n + 1e-12);
        }
    }
}
