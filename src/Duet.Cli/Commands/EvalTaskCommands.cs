// duet eval tasks | report | make-tasks: multiple-choice tasks as lm-evaluation-harness scores them (Duet.Eval.Tasks),
// a local leaderboard from their reports, and the shipped English and Chinese task sets made from a corpus.
using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Duet.Eval.Tasks;
using Duet.Formats;
using Duet.Inference;

namespace Duet.Cli.Commands;

internal static class EvalTaskCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Tasks()
    {
        var model = new Option<string>("--model", "-m") { Description = "a .gguf file or an HF folder with its tokenizer", Required = true };
        var tasks = new Option<string>("--tasks") { Description = $"tasks, comma-separated: built in are {string.Join(", ", TaskDefinition.BuiltIn)}; or definition files (.json, see docs/eval.md)", Required = true };
        var data = new Option<string[]>("--data", "-d")
        {
            Description = "where a task's data is: DIR or FILE for a single task, TASK=DIR for several (the shipped duet-next-* sets need none)",
            AllowMultipleArgumentsPerToken = false,
        };
        var shots = new Option<int>("--shots", "-k") { Description = "few-shot examples before each question (the first K of the task's dev or train split)", DefaultValueFactory = _ => 0 };
        var limit = new Option<int?>("--limit") { Description = "at most N questions per subject (per data file)" };
        var bos = new Option<string>("--bos") { Description = "BOS first in every encoding: auto (the tokenizer's rule, as llama.cpp), yes, or no (lm-evaluation-harness's HF default)", DefaultValueFactory = _ => "auto" };
        bos.AcceptOnlyFromAmong("auto", "yes", "no");
        var maxLength = new Option<int?>("--max-length") { Description = "the longest sequence the model reads; longer prompts lose their start (default: the model's context)" };
        var noShare = new Option<bool>("--no-shared-context") { Description = "run every choice's whole sequence, as the harness does, instead of the question's context once" };
        var output = new Option<string?>("--output", "-o") { Description = "write the run's report (JSON) to this file" };
        var writeTo = new Option<string?>("--write-to") { Description = "also record the results and their settings in this GGUF file's metadata (duet.provenance.eval.*), for duet info and duet eval verify" };
        var threads = ModelCommands.ThreadsOption();
        var math = ModelCommands.MathOption();
        var cmd = new Command("tasks", "Multiple-choice tasks (MMLU, C-Eval, CMMLU, ARC, HellaSwag, Winogrande, the shipped duet-next-en/zh) scored by log-likelihood as lm-evaluation-harness does: acc, acc_norm, acc_bytes with standard errors.")
            { model, tasks, data, shots, limit, bos, maxLength, noShare, output, writeTo, threads, math };
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            var definitions = r.GetRequiredValue(tasks).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(TaskDefinition.Resolve).ToList();
            var dataPaths = DataPaths(definitions, r.GetValue(data) ?? []);
            var options = new TaskOptions
            {
                Shots = r.GetValue(shots), Limit = r.GetValue(limit), MaxLength = r.GetValue(maxLength), ShareContext = !r.GetValue(noShare),
                Bos = r.GetValue(bos) switch { "yes" => true, "no" => false, _ => null },
            };
            string modelPath = r.GetRequiredValue(model);
            var report = RunTasks(modelPath, definitions, dataPaths, options, r.GetValue(math));
            if (r.GetValue(output) is string o) AtomicFile.Write(o, s => s.Write(Encoding.UTF8.GetBytes(report.ToJsonString(Indented) + "\n")));
            if (r.GetValue(writeTo) is string target) EvalRecord.Write(target, modelPath, report);
            return 0;
        });
        return cmd;
    }

    /// <summary>Each task's data folder: --data DIR for one task, TASK=DIR for several, else the definition's own.</summary>
    private static Dictionary<string, string> DataPaths(List<TaskDefinition> definitions, string[] given)
    {
        var paths = new Dictionary<string, string>();
        foreach (var g in given)
        {
            int eq = g.IndexOf('=');
            if (eq > 0 && definitions.Any(d => d.Name == g[..eq])) paths[g[..eq]] = g[(eq + 1)..];
            else if (definitions.Count == 1) paths[definitions[0].Name] = g;
            else throw new ArgumentException($"--data {g}: with several tasks, say whose data it is: TASK=DIR ({string.Join(", ", definitions.Select(d => d.Name))})");
        }
        return definitions.ToDictionary(d => d.Name, d => d.ResolveData(paths.GetValueOrDefault(d.Name)));
    }

    /// <summary>Runs the tasks on the model, prints a table, and returns the report.</summary>
    internal static JsonObject RunTasks(string modelPath, List<TaskDefinition> definitions, Dictionary<string, string> dataPaths, TaskOptions options, Duet.Tensors.Kernels.QuantizedMath math)
    {
        var (m, tok) = ModelLoader.Load(modelPath);
        m.QuantizedMath = math;
        var entries = new List<JsonObject>();
        using (m)
        {
            Console.WriteLine("| task | shots | questions | acc | acc_norm | acc_bytes | chance | questions/s |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|");
            foreach (var task in definitions)
            {
                string data = dataPaths[task.Name];
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var result = TaskRunner.Run(task, data, m, tok, options, (done, all) =>
                {
                    if (done == all || clock.Elapsed.TotalSeconds > 5) { Console.Error.WriteLine($"{task.Name}: [{done}/{all}]"); clock.Restart(); }
                });
                string Cell(string metric) => result.Metrics.TryGetValue(metric, out var v) ? $"{100 * v.Value:F1} ± {100 * v.Stderr:F1}" : "";
                Console.WriteLine($"| {task.Name} | {result.Shots} | {result.Questions} | {Cell("acc")} | {Cell("acc_norm")} | {Cell("acc_bytes")} | {100 * result.Chance:F1} | {result.Questions / result.Seconds:F2} |");
                entries.Add(TaskReport.ToJson(result, task, data, options));
            }
        }
        return TaskReport.Run(modelPath, TaskReport.ModelSha256(modelPath), entries);
    }

    public static Command Report()
    {
        var runs = new Argument<string[]>("RUN") { Description = "reports written by duet eval tasks --output", Arity = ArgumentArity.OneOrMore };
        var metric = new Option<string>("--metric") { Description = "acc, acc_norm or acc_bytes", DefaultValueFactory = _ => "acc" };
        var output = new Option<string?>("--output", "-o") { Description = "a folder to write report.md (the table beside the chart) and report.svg into" };
        var cmd = new Command("report", "A local leaderboard from task reports: a Markdown table (printed) and an SVG bar chart with standard errors and the chance level.") { runs, metric, output };
        cmd.SetAction(r =>
        {
            var entries = TaskReport.Read(r.GetRequiredValue(runs), r.GetValue(metric)!);
            string table = TaskReport.Markdown(entries);
            Console.Write(table);
            if (r.GetValue(output) is string dir)
            {
                Directory.CreateDirectory(dir);
                AtomicFile.Write(Path.Combine(dir, "report.svg"), s => s.Write(Encoding.UTF8.GetBytes(TaskReport.Svg(entries))));
                string md = $"<table><tr><td>\n\n{table}\n</td><td><img src=\"report.svg\" alt=\"{entries[0].Metric} per task and model\"></td></tr></table>\n";
                AtomicFile.Write(Path.Combine(dir, "report.md"), s => s.Write(Encoding.UTF8.GetBytes(md)));
                Console.Error.WriteLine($"wrote {Path.Combine(dir, "report.md")} and report.svg");
            }
            return 0;
        });
        return cmd;
    }

    public static Command MakeTasks()
    {
        var corpus = new Option<string>("--corpus") { Description = "a corpus folder of duet data build (data/sample): questions from its validation split, few-shot examples from its train split", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "folder to write duet-next-LANG/validation.jsonl and train.jsonl into", DefaultValueFactory = _ => "data/tasks" };
        var questions = new Option<int>("--questions") { Description = "at most this many questions per language", DefaultValueFactory = _ => 200 };
        var shotQuestions = new Option<int>("--shot-questions") { Description = "questions per language in the few-shot (train) file", DefaultValueFactory = _ => 16 };
        var cmd = new Command("make-tasks", "Make the shipped task sets from a corpus, deterministically: duet-next-en and duet-next-zh (which paragraph comes next, among four of the same length).")
            { corpus, output, questions, shotQuestions };
        cmd.SetAction(r =>
        {
            string dir = r.GetRequiredValue(corpus), outDir = r.GetRequiredValue(output);
            var validation = EvalCommands.ReadDocuments(dir, "validation").ToList();
            var train = EvalCommands.ReadDocuments(dir, "train").ToList();
            foreach (var lang in new[] { "en", "zh" })
            {
                var folder = Path.Combine(outDir, $"duet-next-{lang}");
                Directory.CreateDirectory(folder);
                foreach (var (split, docs, count) in new[] { ("validation", validation, r.GetValue(questions)), ("train", train, r.GetValue(shotQuestions)) })
                {
                    // Paragraphs of about 10-80 tokens in either language (a Chinese character is about a token), so that
                    // a question and its longest choice fit a small model's context (duet-tiny's is 256).
                    var bounds = lang == "zh" ? new CorpusTaskOptions { Questions = count, MinChars = 12, MaxChars = 100 } : new CorpusTaskOptions { Questions = count, MinChars = 40, MaxChars = 300 };
                    var lines = CorpusTasks.NextParagraph(docs, lang, bounds);
                    if (lines.Count == 0) throw new InvalidDataException($"{dir}: no {lang} paragraph pairs in the {split} split to make questions of");
                    var file = Path.Combine(folder, $"{split}.jsonl");
                    AtomicFile.Write(file, s => s.Write(Encoding.UTF8.GetBytes(string.Concat(lines.Select(l => l + "\n")))));
                    Console.WriteLine($"{file}: {lines.Count} questions");
                }
            }
            return 0;
        });
        return cmd;
    }
}
