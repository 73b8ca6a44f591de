// A multiple-choice task as lm-evaluation-harness defines one (its task YAML: description, doc_to_text,
// doc_to_choice, target_delimiter, fewshot_delimiter, fewshot_split, metrics), in a JSON file documented in
// docs/eval.md. The built-in ones (MMLU, C-Eval, CMMLU, ARC, HellaSwag, Winogrande and the shipped Duet sets) are
// embedded from Tasks/Definitions/*.json; a user's own file is read the same way.
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Duet.Eval.Tasks;

/// <summary>How a task's choices become log-likelihood requests.</summary>
public enum ChoiceMode
{
    /// <summary>The continuations are the letters A, B, C, ... (MMLU, C-Eval, CMMLU): context + delimiter + letter.</summary>
    Letters,
    /// <summary>The continuations are the choices' texts (ARC, HellaSwag): context + delimiter + text.</summary>
    Texts,
    /// <summary>
    /// Partial evaluation (Winogrande): one context per choice (the sentence up to the blank, filled with the option),
    /// one shared continuation (the rest of the sentence); scored is that continuation.
    /// </summary>
    Partial,
}

public sealed record TaskDefinition
{
    /// <summary>The task's name, as --tasks names it.</summary>
    public required string Name { get; init; }
    /// <summary>What it measures, one line, for reports.</summary>
    public string About { get; init; } = "";
    /// <summary>How rows of the data files become questions: mc (question, choices A-D or a list, answer), arc, hellaswag, winogrande.</summary>
    public required string Reader { get; init; }
    /// <summary>Where the task's data is when --data does not say: a folder relative to the working directory or the Duet checkout (the shipped sets).</summary>
    public string? Data { get; init; }
    /// <summary>Split names a data file's path must contain to be evaluated (e.g. test; val; validation).</summary>
    public string[] EvalSplits { get; init; } = ["test"];
    /// <summary>Split names of the files few-shot examples come from (first K in file order; none: no shots possible).</summary>
    public string[] FewshotSplits { get; init; } = [];
    /// <summary>Template put before the shots and the question (harness "description"), e.g. naming the subject.</summary>
    public string Description { get; init; } = "";
    /// <summary>Template of a question (harness doc_to_text). Fields: see docs/eval.md.</summary>
    public required string Prompt { get; init; }
    [JsonConverter(typeof(JsonStringEnumConverter<ChoiceMode>))]
    public ChoiceMode Choices { get; init; } = ChoiceMode.Texts;
    public string TargetDelimiter { get; init; } = " ";
    public string FewshotDelimiter { get; init; } = "\n\n";
    /// <summary>Metrics reported: acc, acc_norm (log-likelihood per character of the choice), acc_bytes (per byte).</summary>
    public string[] Metrics { get; init; } = ["acc", "acc_norm"];
    /// <summary>Display names of subjects (a file's subject is its name without the split, e.g. abstract_algebra), as the harness's per-subject descriptions name them.</summary>
    public Dictionary<string, string> Subjects { get; init; } = new();
    /// <summary>Chance accuracy where every question has the same number of choices (for reports); else computed.</summary>
    public double? Chance { get; init; }

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Reads a task definition file; InvalidDataException naming the file for what it cannot use.</summary>
    public static TaskDefinition Read(string path) => Parse(File.ReadAllText(path, Encoding.UTF8), path);

    public static TaskDefinition Parse(string json, string where)
    {
        TaskDefinition? t;
        try { t = JsonSerializer.Deserialize<TaskDefinition>(json, Json); }
        catch (JsonException e) { throw new InvalidDataException($"{where}: {e.Message}"); }
        if (t is null) throw new InvalidDataException($"{where}: not a task definition");
        if (!TaskDocs.Readers.Contains(t.Reader)) throw new InvalidDataException($"{where}: unknown reader \"{t.Reader}\" (one of {string.Join(", ", TaskDocs.Readers)})");
        foreach (var m in t.Metrics)
            if (m is not ("acc" or "acc_norm" or "acc_bytes")) throw new InvalidDataException($"{where}: unknown metric \"{m}\" (acc, acc_norm, acc_bytes)");
        if (t.Choices == ChoiceMode.Partial && t.Reader != "winogrande") throw new InvalidDataException($"{where}: choices \"Partial\" needs the winogrande reader");
        Template.Check(t.Prompt, where);
        Template.Check(t.Description, where);
        return t;
    }

    /// <summary>Names of the built-in definitions.</summary>
    public static IReadOnlyList<string> BuiltIn { get; } = typeof(TaskDefinition).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
        .Select(n => n[ResourcePrefix.Length..^5]).Order(StringComparer.Ordinal).ToArray();

    private const string ResourcePrefix = "Duet.Eval.Tasks.Definitions.";

    /// <summary>A built-in definition by name (mmlu, ceval, cmmlu, arc, hellaswag, winogrande, ...), or a definition file by path.</summary>
    public static TaskDefinition Resolve(string nameOrPath)
    {
        if (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || File.Exists(nameOrPath)) return Read(nameOrPath);
        using var s = typeof(TaskDefinition).Assembly.GetManifestResourceStream(ResourcePrefix + nameOrPath + ".json")
            ?? throw new ArgumentException($"no task \"{nameOrPath}\": built in are {string.Join(", ", BuiltIn)}; or give a definition file (.json)");
        using var r = new StreamReader(s, Encoding.UTF8);
        return Parse(r.ReadToEnd(), $"built-in task {nameOrPath}");
    }

    /// <summary>
    /// The data folder: <paramref name="given"/>, else the definition's own (relative to the working directory, or to
    /// a folder above the running program: the Duet checkout).
    /// </summary>
    public string ResolveData(string? given)
    {
        if (given is not null) return given;
        if (Data is null) throw new ArgumentException($"the task {Name} needs --data: the folder or file of its data ({string.Join("/", EvalSplits)} split)");
        return Locate(Data) ?? throw new DirectoryNotFoundException($"the data of {Name} ({Data}) is not here; make it with `duet eval make-tasks` or give --data");
    }

    /// <summary>
    /// A path as given if it exists (or is rooted), else the same relative path under a folder above the running
    /// program (the Duet checkout, for the shipped data); null if neither.
    /// </summary>
    public static string? Locate(string path)
    {
        if (Path.IsPathRooted(path) || Directory.Exists(path) || File.Exists(path)) return path;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, path);
            if (Directory.Exists(p) || File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>The definition as JSON, recorded in reports so that a run says exactly which prompts it used.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);
}

/// <summary>
/// The templates' language: {field} is the question's field, {field|strip} the same with white space trimmed at both
/// ends (Python's str.strip()); {{ and }} are literal braces.
/// </summary>
public static class Template
{
    public static string Render(string template, IReadOnlyDictionary<string, string> fields, string where)
    {
        var sb = new StringBuilder(template.Length + 64);
        for (int i = 0; i < template.Length; i++)
        {
            char c = template[i];
            if (c == '{' && i + 1 < template.Length && template[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < template.Length && template[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{') { sb.Append(c); continue; }
            int end = template.IndexOf('}', i);
            var name = template[(i + 1)..end];
            bool strip = name.EndsWith("|strip", StringComparison.Ordinal);
            if (strip) name = name[..^6];
            if (!fields.TryGetValue(name, out var value)) throw new InvalidDataException($"{where}: the template names {{{name}}}, which this question does not have (it has {string.Join(", ", fields.Keys)})");
            sb.Append(strip ? value.Trim() : value);
            i = end;
        }
        return sb.ToString();
    }

    internal static void Check(string template, string where)
    {
        for (int i = 0; i < template.Length; i++)
        {
            if (template[i] == '{' && i + 1 < template.Length && template[i + 1] == '{') { i++; continue; }
            if (template[i] == '}' && i + 1 < template.Length && template[i + 1] == '}') { i++; continue; }
            if (template[i] == '}') throw new InvalidDataException($"{where}: a lone }} in the template \"{template}\" (write }}}} for a brace)");
            if (template[i] != '{') continue;
            int end = template.IndexOf('}', i);
            if (end < 0 || end == i + 1) throw new InvalidDataException($"{where}: an unclosed or empty {{ in the template \"{template}\"");
            i = end;
        }
    }
}
