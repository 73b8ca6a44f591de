// A task run: questions read from the data files, prompts built as the harness builds them (description, the
// shots each followed by the few-shot delimiter, then the question), every choice scored by log-likelihood, and the
// harness's multiple-choice metrics with their standard errors:
//   acc        argmax of the log-likelihoods is the gold choice (ties: the first, as numpy's argmax)
//   acc_norm   argmax of log-likelihood / characters of the choice string (Unicode code points, as Python's len)
//   acc_bytes  argmax of log-likelihood / UTF-8 bytes of the choice string
//   stderr     sample standard deviation / sqrt(n) (the harness's mean_stderr)
using System.Text;
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Eval.Tasks;

public sealed record TaskOptions
{
    /// <summary>Few-shot examples before each question: the first K of the few-shot split (same subject where the reader has subjects).</summary>
    public int Shots { get; init; }
    /// <summary>At most this many questions per data file (per subject for MMLU, C-Eval and CMMLU's files).</summary>
    public int? Limit { get; init; }
    /// <summary>BOS first: null, the tokenizer's rule; false, the harness's HF default.</summary>
    public bool? Bos { get; init; }
    public bool ShareContext { get; init; } = true;
    /// <summary>The longest sequence the model reads (the harness's max_length; longer ones lose their start): default the model's context.</summary>
    public int? MaxLength { get; init; }
}

/// <summary>One question's outcome: each choice's log-likelihood and greedy flag, and the choice each metric picked.</summary>
public sealed record QuestionResult(TaskDoc Doc, string[] Contexts, string[] Continuations, Loglikelihood[] Choices, IReadOnlyDictionary<string, int> Picked)
{
    public bool Correct(string metric) => Picked[metric] == Doc.Gold;
}

public readonly record struct MetricValue(double Value, double Stderr);

public sealed record TaskResult(string Task, int Shots, bool Bos, int Questions, double Chance, IReadOnlyDictionary<string, MetricValue> Metrics,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, MetricValue>> BySubject, double Seconds, long TokensRun, IReadOnlyList<QuestionResult> Details)
{
    /// <summary>The sum of every choice's log-likelihood: a fingerprint of the model on the task, finer than accuracy (duet eval verify compares it).</summary>
    public double LoglikelihoodSum => Details.Sum(d => d.Choices.Sum(c => c.Value));
}

public static class TaskRunner
{
    /// <summary>The questions of a task under <paramref name="data"/> (a data file, or a folder searched for the task's eval split).</summary>
    public static List<TaskDoc> Questions(TaskDefinition task, string data, int? limit)
    {
        var files = TaskFiles.Find(data, task.EvalSplits);
        if (files.Count == 0)
            throw new FileNotFoundException($"no {task.Name} data under {data}: no .csv, .jsonl, .parquet or .txt file whose path names a split {string.Join(" or ", task.EvalSplits)}");
        var docs = new List<TaskDoc>();
        foreach (var f in files)
        {
            var subject = TaskFiles.SubjectOf(f, task.EvalSplits);
            var fileDocs = TaskDocs.Read(task, f, subject);
            if (limit is int l)
            {
                // Per subject (files of one subject, or a subject column in one file), the harness's per-subtask limit.
                var counts = new Dictionary<string, int>();
                fileDocs = fileDocs.Where(d => (counts[d.Subject] = counts.GetValueOrDefault(d.Subject) + 1) <= l);
            }
            docs.AddRange(fileDocs);
        }
        if (docs.Count == 0) throw new InvalidDataException($"{string.Join(", ", files)}: no questions");
        return docs;
    }

    /// <summary>The few-shot pool: the task's few-shot split under <paramref name="data"/>, by subject.</summary>
    public static Dictionary<string, List<TaskDoc>> FewshotPool(TaskDefinition task, string data)
    {
        if (task.FewshotSplits.Length == 0) throw new ArgumentException($"{task.Name} has no few-shot split: use --shots 0");
        if (File.Exists(data)) throw new ArgumentException($"few-shot examples come from the {string.Join("/", task.FewshotSplits)} split: give the folder that holds it, not the file {data}");
        var files = TaskFiles.Find(data, task.FewshotSplits);
        if (files.Count == 0) throw new FileNotFoundException($"no few-shot data under {data}: no file whose path names a split {string.Join(" or ", task.FewshotSplits)}");
        var pool = new Dictionary<string, List<TaskDoc>>();
        foreach (var f in files)
            foreach (var d in TaskDocs.Read(task, f, TaskFiles.SubjectOf(f, task.FewshotSplits)))
            {
                string key = task.Reader == "mc" ? d.Subject : "";
                (pool.TryGetValue(key, out var list) ? list : pool[key] = []).Add(d);
            }
        return pool;
    }

    /// <summary>The choice strings (harness doc_to_choice): letters, texts, or Winogrande's filled sentence starts.</summary>
    public static string[] ChoiceStrings(TaskDefinition task, TaskDoc doc) => task.Choices switch
    {
        ChoiceMode.Letters => Enumerable.Range(0, doc.Choices.Length).Select(i => ((char)('A' + i)).ToString()).ToArray(),
        _ => doc.Choices,
    };

    /// <summary>The requests' texts of one question: contexts (one, or one per choice for Partial) and continuations.</summary>
    public static (string[] Contexts, string[] Continuations) Prompts(TaskDefinition task, TaskDoc doc, IReadOnlyList<TaskDoc> shots)
    {
        var sb = new StringBuilder();
        sb.Append(Template.Render(task.Description, doc.Fields, doc.Where));
        foreach (var ex in shots)
        {
            if (task.Choices == ChoiceMode.Partial) sb.Append(ex.Choices[ex.Gold]).Append(task.TargetDelimiter).Append(ex.Target);
            else sb.Append(Template.Render(task.Prompt, ex.Fields, ex.Where)).Append(task.TargetDelimiter).Append(ChoiceStrings(task, ex)[ex.Gold]);
            sb.Append(task.FewshotDelimiter);
        }
        var choices = ChoiceStrings(task, doc);
        if (task.Choices == ChoiceMode.Partial)
        {
            string prefix = sb.ToString();
            return (choices.Select(c => prefix + c).ToArray(), choices.Select(_ => task.TargetDelimiter + doc.Target).ToArray());
        }
        sb.Append(Template.Render(task.Prompt, doc.Fields, doc.Where));
        string context = sb.ToString();
        return (choices.Select(_ => context).ToArray(), choices.Select(c => task.TargetDelimiter + c).ToArray());
    }

    public static TaskResult Run(TaskDefinition task, string data, LlamaModel model, Tokenizer tokenizer, TaskOptions? options = null, Action<int, int>? progress = null)
    {
        options ??= new TaskOptions();
        if (options.Shots < 0) throw new ArgumentException($"shots must be 0 or more, not {options.Shots}");
        if (options.Limit is <= 0) throw new ArgumentException($"limit must be positive, not {options.Limit}");
        var docs = Questions(task, data, options.Limit);
        var pool = options.Shots > 0 ? FewshotPool(task, data) : null;
        if (options.MaxLength is int ml && (ml < 2 || ml > model.Config.ContextLength))
            throw new ArgumentException($"max length must be within 2..{model.Config.ContextLength} (the model's context), not {ml}");
        var scorer = new LoglikelihoodScorer(model, tokenizer, options.Bos) { ShareContext = options.ShareContext, MaxLength = options.MaxLength ?? model.Config.ContextLength };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var details = new List<QuestionResult>(docs.Count);
        var requests = new List<LoglikelihoodRequest>();
        foreach (var doc in docs)
        {
            IReadOnlyList<TaskDoc> shots = [];
            if (pool is not null)
            {
                var candidates = pool.GetValueOrDefault(task.Reader == "mc" ? doc.Subject : "") ?? [];
                var picked = candidates.Where(d => d.Where != doc.Where).Take(options.Shots).ToList();
                if (picked.Count < options.Shots)
                    throw new InvalidDataException($"{doc.Where}: {options.Shots} shots asked, but the few-shot split has {picked.Count} question(s){(task.Reader == "mc" ? $" of subject {doc.Subject}" : "")}");
                shots = picked;
            }
            var (contexts, continuations) = Prompts(task, doc, shots);
            requests.Clear();
            for (int i = 0; i < contexts.Length; i++) requests.Add(scorer.EncodePair(contexts[i], continuations[i]));
            var lls = scorer.Score(requests);
            details.Add(new QuestionResult(doc, contexts, continuations, lls, Pick(task, doc, lls)));
            progress?.Invoke(details.Count, docs.Count);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        var metrics = Aggregate(task, details);
        var groups = details.GroupBy(d => d.Doc.Subject).ToList();
        var bySubject = groups.Count < 2 ? new Dictionary<string, IReadOnlyDictionary<string, MetricValue>>()
            : groups.ToDictionary(g => g.Key, g => (IReadOnlyDictionary<string, MetricValue>)Aggregate(task, g.ToList()));
        double chance = task.Chance ?? details.Average(d => 1.0 / d.Doc.Choices.Length);
        return new TaskResult(task.Name, options.Shots, scorer.AddBos, details.Count, chance, metrics, bySubject, seconds, scorer.TokensRun, details);
    }

    private static Dictionary<string, int> Pick(TaskDefinition task, TaskDoc doc, Loglikelihood[] lls)
    {
        var choices = ChoiceStrings(task, doc);
        var picked = new Dictionary<string, int>();
        foreach (var metric in task.Metrics)
        {
            int best = 0;
            double bestScore = double.NegativeInfinity;
            for (int i = 0; i < lls.Length; i++)
            {
                double score = metric switch
                {
                    "acc" => lls[i].Value,
                    "acc_norm" => lls[i].Value / CodePoints(choices[i]),
                    "acc_bytes" => lls[i].Value / Encoding.UTF8.GetByteCount(choices[i]),
                    _ => throw new InvalidOperationException(metric),
                };
                if (score > bestScore) { bestScore = score; best = i; }
            }
            picked[metric] = best;
        }
        return picked;
    }

    private static int CodePoints(string s)
    {
        int n = 0;
        foreach (var _ in s.EnumerateRunes()) n++;
        return n;
    }

    private static Dictionary<string, MetricValue> Aggregate(TaskDefinition task, IReadOnlyList<QuestionResult> results)
    {
        var metrics = new Dictionary<string, MetricValue>();
        foreach (var metric in task.Metrics)
        {
            int n = results.Count;
            double mean = results.Count(r => r.Correct(metric)) / (double)n;
            // Sample variance of 0/1 outcomes: Σ(x − mean)² / (n − 1).
            double variance = n > 1 ? results.Sum(r => Math.Pow((r.Correct(metric) ? 1 : 0) - mean, 2)) / (n - 1) : 0;
            metrics[metric] = new MetricValue(mean, Math.Sqrt(variance / n));
        }
        return metrics;
    }
}
