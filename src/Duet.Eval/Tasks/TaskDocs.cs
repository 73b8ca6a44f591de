// Rows of the public layouts made into questions, the way lm-evaluation-harness's task configs read them:
//   mc          MMLU (CSV question,A,B,C,D,answer; HF parquet question, subject, choices[], answer 0-3),
//               C-Eval (id,question,A,B,C,D,answer[,explanation]) and CMMLU (,Question,A,B,C,D,Answer); the Duet sets
//   arc         ARC (JSONL question{stem, choices[{text,label}]}, answerKey; HF question, choices{text[],label[]}, answerKey)
//   hellaswag   HellaSwag (activity_label, ctx_a, ctx_b, endings[], label; the harness's preprocess()), or
//               llama-perplexity's text (already preprocessed)
//   winogrande  Winogrande (sentence with one _, option1, option2, answer 1|2; JSONL, parquet, llama-perplexity's CSV)
// Every defect (no answer, a letter past the choices, an empty choice, a sentence without its blank) is an
// InvalidDataException naming the file and line.
using System.Text.RegularExpressions;

namespace Duet.Eval.Tasks;

/// <summary>
/// A question: the fields its templates name, the choices (answer texts; for Winogrande the sentence up to the
/// blank filled with each option), the index of the right one, and for Winogrande the continuation every choice shares.
/// </summary>
public sealed record TaskDoc(IReadOnlyDictionary<string, string> Fields, string[] Choices, int Gold, string Subject, string Where, string? Target = null);

public static partial class TaskDocs
{
    public static readonly string[] Readers = ["mc", "arc", "hellaswag", "winogrande"];

    /// <summary>MMLU's original CSV files have no header: these are their columns.</summary>
    public static readonly string[] MmluColumns = ["question", "A", "B", "C", "D", "answer"];

    /// <summary>The questions of one file, in file order.</summary>
    public static IEnumerable<TaskDoc> Read(TaskDefinition task, string file, string subject)
    {
        foreach (var row in TaskFiles.Read(file, task.Reader == "mc" ? MmluColumns : null))
            yield return FromRow(task, row, subject);
    }

    public static TaskDoc FromRow(TaskDefinition task, TaskRow row, string fileSubject) => task.Reader switch
    {
        "mc" => MultipleChoice(task, row, fileSubject),
        "arc" => Arc(row, fileSubject),
        "hellaswag" => Hellaswag(row, fileSubject),
        "winogrande" => Winogrande(row, fileSubject),
        _ => throw new InvalidOperationException(task.Reader),
    };

    private static TaskDoc MultipleChoice(TaskDefinition task, TaskRow row, string fileSubject)
    {
        var f = row.Fields;
        string question = Text(row, "question");
        string[] choices;
        if (f.TryGetValue("choices", out var list) && list is not null)
            choices = List(row, "choices", list);
        else
        {
            var letters = new List<string>();
            for (char c = 'A'; c <= 'Z' && f.TryGetValue(c.ToString(), out var v) && v is not null; c++) letters.Add(ValueText(v));
            if (letters.Count == 0) throw new InvalidDataException($"{row.Where}: no choices: neither a choices list nor columns A, B, C, ...");
            choices = letters.ToArray();
        }
        CheckChoices(row, choices);
        int gold = Answer(row, "answer", choices.Length);
        string subject = f.TryGetValue("subject", out var s) && s is string ss && ss.Length > 0 ? ss : fileSubject;
        var fields = new Dictionary<string, string>
        {
            ["question"] = question,
            ["subject"] = task.Subjects.TryGetValue(subject, out var display) ? display : subject.Replace('_', ' '),
        };
        for (int i = 0; i < choices.Length; i++) fields[((char)('A' + i)).ToString()] = choices[i];
        return new TaskDoc(fields, choices, gold, subject, row.Where);
    }

    private static TaskDoc Arc(TaskRow row, string fileSubject)
    {
        var f = row.Fields;
        if (!f.TryGetValue("question", out var q) || q is null) throw new InvalidDataException($"{row.Where}: no question");
        string question;
        object? choicesField;
        if (q is IDictionary<string, object?> qd)
        {
            // original JSONL: question {stem, choices: [{text, label}]}
            question = qd.TryGetValue("stem", out var stem) && stem is string st ? st : throw new InvalidDataException($"{row.Where}: a question without a stem");
            qd.TryGetValue("choices", out choicesField);
        }
        else
        {
            question = ValueText(q);
            f.TryGetValue("choices", out choicesField);
        }
        string[] texts, labels;
        switch (choicesField)
        {
            case IDictionary<string, object?> d when d.TryGetValue("text", out var t) && d.TryGetValue("label", out var l): // HF: {text: [], label: []}
                texts = List(row, "choices.text", t);
                labels = List(row, "choices.label", l);
                break;
            case List<object?> items: // original: [{text, label}]
                texts = items.Select(i => i is IDictionary<string, object?> d && d.TryGetValue("text", out var t) ? ValueText(t) : throw new InvalidDataException($"{row.Where}: a choice without text")).ToArray();
                labels = items.Select(i => i is IDictionary<string, object?> d && d.TryGetValue("label", out var l) ? ValueText(l) : throw new InvalidDataException($"{row.Where}: a choice without a label")).ToArray();
                break;
            default: throw new InvalidDataException($"{row.Where}: no choices (ARC has choices with text and label)");
        }
        if (texts.Length != labels.Length) throw new InvalidDataException($"{row.Where}: {texts.Length} choice texts but {labels.Length} labels");
        CheckChoices(row, texts);
        string key = Text(row, "answerKey");
        int gold = Array.IndexOf(labels, key);
        if (gold < 0) throw new InvalidDataException($"{row.Where}: the answer key \"{key}\" is not one of the labels {string.Join(", ", labels)}");
        return new TaskDoc(new Dictionary<string, string> { ["question"] = question }, texts, gold, fileSubject, row.Where);
    }

    private static TaskDoc Hellaswag(TaskRow row, string fileSubject)
    {
        var f = row.Fields;
        string query;
        string[] endings;
        if (f.TryGetValue("query", out var q) && q is string qs) // llama-perplexity's text: preprocessed already
        {
            query = qs;
            endings = List(row, "endings", f["endings"]);
        }
        else
        {
            string ctxB = Text(row, "ctx_b");
            string ctx = Text(row, "ctx_a") + " " + Capitalize(ctxB);
            query = Preprocess(Text(row, "activity_label") + ": " + ctx);
            endings = List(row, "endings", f.TryGetValue("endings", out var e) ? e : null).Select(Preprocess).ToArray();
        }
        CheckChoices(row, endings);
        int gold = Answer(row, "label", endings.Length);
        return new TaskDoc(new Dictionary<string, string> { ["query"] = query }, endings, gold, fileSubject, row.Where);
    }

    /// <summary>Python's str.capitalize(): the first character upper case, the rest lower case.</summary>
    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>The harness's HellaSwag preprocess(): strip, " [title]" to ". ", drop [bracketed] artifacts, "  " to " ".</summary>
    internal static string Preprocess(string text)
    {
        text = text.Trim();
        text = text.Replace(" [title]", ". ");
        text = Brackets().Replace(text, "");
        return text.Replace("  ", " ");
    }

    [GeneratedRegex(@"\[.*?\]")]
    private static partial Regex Brackets();

    private static TaskDoc Winogrande(TaskRow row, string fileSubject)
    {
        string sentence = Text(row, "sentence");
        int blank = sentence.IndexOf('_');
        if (blank < 0) throw new InvalidDataException($"{row.Where}: the sentence has no blank (_) to fill");
        string[] options = [Text(row, "option1"), Text(row, "option2")];
        CheckChoices(row, options);
        string answer = Text(row, "answer").Trim();
        int gold = answer switch
        {
            "1" => 0,
            "2" => 1,
            _ => throw new InvalidDataException($"{row.Where}: the answer must be 1 or 2, not \"{answer}\""),
        };
        var filled = options.Select(o => sentence[..blank] + o).ToArray();
        var fields = new Dictionary<string, string> { ["sentence"] = sentence, ["option1"] = options[0], ["option2"] = options[1] };
        return new TaskDoc(fields, filled, gold, fileSubject, row.Where, Target: sentence[(blank + 1)..].Trim());
    }

    private static void CheckChoices(TaskRow row, string[] choices)
    {
        if (choices.Length < 2) throw new InvalidDataException($"{row.Where}: {choices.Length} choice(s); a question needs at least two");
        for (int i = 0; i < choices.Length; i++)
            if (string.IsNullOrWhiteSpace(choices[i])) throw new InvalidDataException($"{row.Where}: choice {(char)('A' + i)} is empty");
    }

    /// <summary>The right answer: a letter (A, B, ...), a 0-based index, or for HF string labels "0".."9".</summary>
    private static int Answer(TaskRow row, string name, int count)
    {
        if (!row.Fields.TryGetValue(name, out var v) || v is null || v is string { Length: 0 })
            throw new InvalidDataException($"{row.Where}: no answer (the {name} field is missing or empty; C-Eval's test split has none: evaluate val)");
        int gold;
        switch (v)
        {
            case long l: gold = (int)l; break;
            case double d when d == Math.Floor(d): gold = (int)d; break;
            case string s when s.Trim() is { Length: 1 } t && char.IsAsciiLetterUpper(t[0]): gold = t[0] - 'A'; break;
            case string s when int.TryParse(s.Trim(), out int i): gold = i; break;
            default: throw new InvalidDataException($"{row.Where}: the answer \"{v}\" is neither a letter A-Z nor an index");
        }
        if (gold < 0 || gold >= count)
            throw new InvalidDataException($"{row.Where}: the answer \"{v}\" names choice {gold + 1}, but there are {count} choices ({string.Join(", ", Enumerable.Range(0, count).Select(i => (char)('A' + i)))})");
        return gold;
    }

    private static string Text(TaskRow row, string name) =>
        row.Fields.TryGetValue(name, out var v) && v is not null ? ValueText(v) : throw new InvalidDataException($"{row.Where}: no {name} field");

    private static string ValueText(object? v) => v switch
    {
        null => "",
        string s => s,
        long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
        double d => d.ToString(System.Globalization.CultureInfo.InvariantCulture),
        bool b => b ? "True" : "False",
        _ => v.ToString() ?? "",
    };

    private static string[] List(TaskRow row, string name, object? v) => v switch
    {
        List<object?> l => l.Select(ValueText).ToArray(),
        string s when s.TrimStart().StartsWith('[') => ParseJsonList(row, name, s),
        _ => throw new InvalidDataException($"{row.Where}: {name} is not a list"),
    };

    private static string[] ParseJsonList(TaskRow row, string name, string s)
    {
        try { return System.Text.Json.JsonSerializer.Deserialize<string[]>(s) ?? []; }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{row.Where}: {name} is not a list: {e.Message}"); }
    }
}
