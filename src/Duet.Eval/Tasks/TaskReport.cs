// Reports of task runs: one JSON file per run (the model and its SHA-256, the settings, per task the definition it
// used, every metric with its standard error, per subject, speed), and a local leaderboard made from several runs:
// a Markdown table and an SVG bar chart (accuracy per task and model, standard error bars, the chance level dashed).
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Duet.Eval.Tasks;

public static class TaskReport
{
    public const int Version = 1;

    /// <summary>SHA-256 of a model: a file's bytes, or an HF folder's config.json and *.safetensors in name order.</summary>
    public static string ModelSha256(string path) => Sha256(File.Exists(path) ? [path] : Directory.EnumerateFiles(path)
        .Where(f => Path.GetFileName(f) == "config.json" || f.EndsWith(".safetensors", StringComparison.Ordinal)).Order(StringComparer.Ordinal));

    /// <summary>SHA-256 over the files' bytes one after another, in the given order.</summary>
    public static string Sha256(IEnumerable<string> files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var f in files)
        {
            using var s = File.OpenRead(f);
            int n;
            while ((n = s.Read(buffer)) > 0) sha.AppendData(buffer, 0, n);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>A task's result as the report's JSON object (no per-question details).</summary>
    public static JsonObject ToJson(TaskResult r, TaskDefinition task, string data, TaskOptions options)
    {
        var metrics = new JsonObject();
        foreach (var (name, m) in r.Metrics) metrics[name] = new JsonObject { ["value"] = m.Value, ["stderr"] = m.Stderr };
        var subjects = new JsonObject();
        foreach (var (subject, ms) in r.BySubject.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var o = new JsonObject();
            foreach (var (name, m) in ms) o[name] = new JsonObject { ["value"] = m.Value, ["stderr"] = m.Stderr };
            subjects[subject] = o;
        }
        return new JsonObject
        {
            ["task"] = r.Task, ["about"] = task.About, ["data"] = data, ["shots"] = r.Shots, ["limit"] = options.Limit, ["bos"] = r.Bos,
            ["share_context"] = options.ShareContext, ["max_length"] = options.MaxLength,
            ["questions"] = r.Questions, ["chance"] = r.Chance, ["metrics"] = metrics, ["loglikelihood_sum"] = r.LoglikelihoodSum, ["subjects"] = subjects,
            ["seconds"] = Math.Round(r.Seconds, 3), ["questions_per_second"] = Math.Round(r.Questions / Math.Max(r.Seconds, 1e-9), 3), ["tokens_run"] = r.TokensRun,
            ["definition"] = JsonNode.Parse(task.ToJson()),
        };
    }

    public static JsonObject Run(string model, string modelSha256, IEnumerable<JsonObject> tasks) => new()
    {
        ["duet_eval_report"] = Version, ["model"] = model, ["model_name"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(model)),
        ["model_sha256"] = modelSha256, ["tasks"] = new JsonArray(tasks.Select(t => (JsonNode)t).ToArray()),
    };

    /// <summary>One row of a leaderboard: a run's model, and per task its metric value, stderr, chance.</summary>
    public sealed record Entry(string Model, string Task, int Shots, string Metric, double Value, double Stderr, double Chance, int Questions);

    /// <summary>Reads report files; InvalidDataException naming the file for what is not a report.</summary>
    public static List<Entry> Read(IEnumerable<string> files, string metric)
    {
        var entries = new List<Entry>();
        foreach (var f in files)
        {
            JsonNode? root;
            try { root = JsonNode.Parse(File.ReadAllText(f, Encoding.UTF8)); }
            catch (JsonException e) { throw new InvalidDataException($"{f}: malformed JSON: {e.Message}"); }
            if (root?["duet_eval_report"] is null || root["tasks"] is not JsonArray tasks) throw new InvalidDataException($"{f}: not a report of duet eval tasks (no duet_eval_report and tasks)");
            string model = root["model_name"]?.GetValue<string>() ?? f;
            foreach (var t in tasks)
            {
                if (t?["metrics"]?[metric] is not JsonObject m) continue;
                entries.Add(new Entry(model, t["task"]!.GetValue<string>(), t["shots"]!.GetValue<int>(), metric,
                    m["value"]!.GetValue<double>(), m["stderr"]!.GetValue<double>(), t["chance"]!.GetValue<double>(), t["questions"]!.GetValue<int>()));
            }
        }
        if (entries.Count == 0) throw new InvalidDataException($"no task in {string.Join(", ", files)} has the metric {metric}");
        return entries;
    }

    private static string Column(Entry e) => e.Shots == 0 ? e.Task : $"{e.Task} ({e.Shots}-shot)";

    /// <summary>Models down, tasks across: value ± stderr in percent, chance in the last row.</summary>
    public static string Markdown(IReadOnlyList<Entry> entries)
    {
        var columns = entries.Select(Column).Distinct().ToList();
        var models = entries.Select(e => e.Model).Distinct().ToList();
        var sb = new StringBuilder();
        sb.Append($"| model ({entries[0].Metric}, %) |");
        foreach (var c in columns) sb.Append(' ').Append(c).Append(" |");
        sb.Append("\n|---|").Append(string.Concat(columns.Select(_ => "---|"))).Append('\n');
        foreach (var m in models)
        {
            sb.Append("| ").Append(m).Append(" |");
            foreach (var c in columns)
            {
                var e = entries.LastOrDefault(x => x.Model == m && Column(x) == c);
                sb.Append(e is null ? " |" : string.Create(CultureInfo.InvariantCulture, $" {100 * e.Value:F1} ± {100 * e.Stderr:F1} |"));
            }
            sb.Append('\n');
        }
        sb.Append("| chance |");
        foreach (var c in columns) sb.Append(string.Create(CultureInfo.InvariantCulture, $" {100 * entries.First(x => Column(x) == c).Chance:F1} |"));
        return sb.Append('\n').ToString();
    }

    private static readonly string[] Colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"];

    /// <summary>A grouped bar chart: a group per task, a bar per model (standard error whiskers), chance dashed.</summary>
    public static string Svg(IReadOnlyList<Entry> entries)
    {
        var columns = entries.Select(Column).Distinct().ToList();
        var models = entries.Select(e => e.Model).Distinct().ToList();
        const int bar = 22, gap = 28, left = 48, top = 24, height = 220;
        // Wide enough for the task names under the groups (about 7 px a character at 11 px) and the title.
        int groupWidth = Math.Max(models.Count * bar + gap, columns.Max(c => c.Length) * 7 + 12);
        int width = Math.Max(left + columns.Count * groupWidth + 20, 400), legendTop = top + height + 44;
        int total = legendTop + models.Count * 18 + 8;
        var ci = CultureInfo.InvariantCulture;
        string Y(double v) => (top + height * (1 - Math.Clamp(v, 0, 1))).ToString("F1", ci);
        var sb = new StringBuilder();
        sb.Append(ci, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{total}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append(ci, $"<text x=\"{left}\" y=\"14\">{Escape(entries[0].Metric)} (%), ± standard error; dashed: chance</text>\n");
        for (int t = 0; t <= 100; t += 25)
        {
            sb.Append(ci, $"<line x1=\"{left}\" x2=\"{width - 10}\" y1=\"{Y(t / 100.0)}\" y2=\"{Y(t / 100.0)}\" stroke=\"#ddd\"/>");
            sb.Append(ci, $"<text x=\"{left - 6}\" y=\"{Y(t / 100.0)}\" text-anchor=\"end\" dominant-baseline=\"middle\">{t}</text>\n");
        }
        for (int c = 0; c < columns.Count; c++)
        {
            int x0 = left + c * groupWidth + (groupWidth - models.Count * bar) / 2;
            foreach (var (e, i) in models.Select((m, i) => (entries.LastOrDefault(x => x.Model == m && Column(x) == columns[c]), i)))
            {
                if (e is null) continue;
                int x = x0 + i * bar;
                sb.Append(ci, $"<rect x=\"{x}\" y=\"{Y(e.Value)}\" width=\"{bar - 4}\" height=\"{(height * Math.Clamp(e.Value, 0, 1)):F1}\" fill=\"{Colors[i % Colors.Length]}\"><title>{Escape(e.Model)} {Escape(columns[c])}: {100 * e.Value:F1} ± {100 * e.Stderr:F1}</title></rect>");
                double mid = x + (bar - 4) / 2.0;
                sb.Append(ci, $"<line x1=\"{mid:F1}\" x2=\"{mid:F1}\" y1=\"{Y(e.Value - e.Stderr)}\" y2=\"{Y(e.Value + e.Stderr)}\" stroke=\"#333\"/>\n");
            }
            double chance = entries.First(x => Column(x) == columns[c]).Chance;
            sb.Append(ci, $"<line x1=\"{x0 - 4}\" x2=\"{x0 + models.Count * bar}\" y1=\"{Y(chance)}\" y2=\"{Y(chance)}\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>");
            sb.Append(ci, $"<text x=\"{x0 + models.Count * bar / 2.0:F1}\" y=\"{top + height + 16}\" text-anchor=\"middle\">{Escape(columns[c])}</text>\n");
        }
        for (int i = 0; i < models.Count; i++)
        {
            int y = legendTop + i * 18;
            sb.Append(ci, $"<rect x=\"{left}\" y=\"{y - 10}\" width=\"12\" height=\"12\" fill=\"{Colors[i % Colors.Length]}\"/><text x=\"{left + 18}\" y=\"{y}\">{Escape(models[i])}</text>\n");
        }
        return sb.Append("</svg>\n").ToString();
    }

    private static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
