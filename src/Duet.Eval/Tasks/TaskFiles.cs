// The files a user has on disk, as rows: the original CSV files (MMLU's headerless ones; C-Eval's and CMMLU's with a
// header; llama-perplexity's Winogrande CSV), JSON lines (ARC, HellaSwag, Winogrande originals and HF JSON exports),
// HF parquet (through Parquet.Net) and llama-perplexity's HellaSwag text (six lines a question). A row is a
// dictionary of strings, numbers, lists and nested dictionaries, with where it came from (file:line, file:row N).
using System.Text;
using System.Text.Json;
using nietras.SeparatedValues;

namespace Duet.Eval.Tasks;

/// <summary>One record of a data file: its fields, and "file:line" for messages.</summary>
public sealed record TaskRow(IReadOnlyDictionary<string, object?> Fields, string Where);

public static class TaskFiles
{
    private static readonly string[] Extensions = [".csv", ".jsonl", ".json", ".parquet", ".txt"];

    /// <summary>
    /// The data files under <paramref name="path"/> (or the file itself) whose path names one of
    /// <paramref name="splits"/> as a word (test, val, dev, train, validation, ...), in ordinal path order.
    /// </summary>
    public static IReadOnlyList<string> Find(string path, IReadOnlyCollection<string> splits)
    {
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new FileNotFoundException($"no task data at {path}");
        return Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Where(f => Words(Path.GetRelativePath(path, f)).Any(w => splits.Contains(w, StringComparer.OrdinalIgnoreCase)))
            .Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The split-like words of a relative path: its pieces between non-letters (ARC-Challenge-Test.jsonl: arc, challenge, test, jsonl).</summary>
    internal static IEnumerable<string> Words(string relative) =>
        System.Text.RegularExpressions.Regex.Split(relative, "[^A-Za-z]+").Where(w => w.Length > 0);

    /// <summary>
    /// The subject a file holds, from its name (MMLU abstract_algebra_test.csv, C-Eval computer_network_val.csv,
    /// CMMLU test/agronomy.csv) or its folder (HF parquet ceval-exam computer_network/val-00000-of-00001.parquet).
    /// </summary>
    public static string SubjectOf(string file, IReadOnlyCollection<string> splits)
    {
        var stem = Path.GetFileNameWithoutExtension(file);
        foreach (var s in splits)
            if (stem.EndsWith("_" + s, StringComparison.OrdinalIgnoreCase)) return stem[..^(s.Length + 1)];
        bool stemIsSplit = splits.Any(s => stem.Equals(s, StringComparison.OrdinalIgnoreCase) || stem.StartsWith(s + "-", StringComparison.OrdinalIgnoreCase));
        if (stemIsSplit) return Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(file))) ?? "";
        return stem;
    }

    /// <summary>The rows of one data file, by its extension; InvalidDataException naming file and line for what cannot be read.</summary>
    public static IEnumerable<TaskRow> Read(string file, string[]? headerlessColumns = null)
    {
        var ext = Path.GetExtension(file).ToLowerInvariant();
        return ext switch
        {
            ".csv" => ReadCsv(file, headerlessColumns),
            ".jsonl" or ".json" => ReadJsonLines(file),
            ".parquet" => ReadParquet(file),
            ".txt" => ReadHellaswagText(file),
            _ => throw new InvalidDataException($"{file}: not a task data file (.csv, .jsonl, .parquet or llama-perplexity's HellaSwag .txt)"),
        };
    }

    /// <summary>
    /// CSV (RFC 4180 quoting, through Sep). A first row naming a question or sentence column is a header; otherwise the
    /// file is headerless and its columns are <paramref name="headerlessColumns"/> (MMLU: question, A, B, C, D, answer).
    /// </summary>
    private static IEnumerable<TaskRow> ReadCsv(string file, string[]? headerlessColumns)
    {
        using var reader = Sep.New(',').Reader(o => o with { HasHeader = false, Unescape = true, DisableColCountCheck = true }).FromFile(file);
        string[]? names = null;
        int width = 0, next = 1;
        foreach (var row in reader)
        {
            // A row starts where the previous one ended (Sep 0.18 without a header reports the first row's start as its end).
            int line = next;
            next = row.LineNumberToExcl;
            var cells = new string[row.ColCount];
            for (int i = 0; i < cells.Length; i++) cells[i] = row[i].ToString();
            if (names is null)
            {
                if (cells.Any(c => c.Trim() is "question" or "Question" or "sentence"))
                {
                    names = cells.Select(c => c.Trim()).ToArray();
                    width = names.Length;
                    continue;
                }
                names = headerlessColumns ?? throw new InvalidDataException($"{file}:{line}: a CSV file without a header row (no question or sentence column named)");
                width = names.Length;
            }
            if (cells.Length == 1 && cells[0].Length == 0) continue; // a blank line
            if (cells.Length != width)
                throw new InvalidDataException($"{file}:{line}: {cells.Length} columns where the {(ReferenceEquals(names, headerlessColumns) ? "layout" : "header")} has {width} ({string.Join(",", names)})");
            var fields = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
            for (int i = 0; i < width; i++) fields[names[i]] = cells[i];
            yield return new TaskRow(fields, $"{file}:{line}");
        }
    }

    private static IEnumerable<TaskRow> ReadJsonLines(string file)
    {
        using var reader = new StreamReader(file, Encoding.UTF8);
        int line = 0;
        while (reader.ReadLine() is { } l)
        {
            line++;
            if (string.IsNullOrWhiteSpace(l)) continue;
            Dictionary<string, object?> fields;
            try
            {
                using var doc = JsonDocument.Parse(l);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{file}:{line}: a JSON line must be an object");
                fields = (Dictionary<string, object?>)FromJson(doc.RootElement)!;
            }
            catch (JsonException e) { throw new InvalidDataException($"{file}:{line}: malformed JSON: {e.Message}"); }
            yield return new TaskRow(fields, $"{file}:{line}");
        }
    }

    private static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value), StringComparer.OrdinalIgnoreCase),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out long l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>HF parquet exports: lists (choices, endings) and structs (ARC's choices {text, label}) included.</summary>
    private static IEnumerable<TaskRow> ReadParquet(string file)
    {
        IList<Dictionary<string, object>> rows;
        try
        {
            using var s = File.OpenRead(file);
            var result = Parquet.Serialization.ParquetSerializer.DeserializeUntypedAsync(s).GetAwaiter().GetResult();
            rows = result.Data;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{file}: not a readable parquet file: {e.Message}");
        }
        for (int i = 0; i < rows.Count; i++)
            yield return new TaskRow((Dictionary<string, object?>)Normalize((IDictionary<string, object?>)rows[i]!)!, $"{file}:row {i + 1}");
    }

    /// <summary>Parquet.Net's values as the JSON reader gives them: string, long, double, bool, List, Dictionary.</summary>
    private static object? Normalize(object? v) => v switch
    {
        null => null,
        string s => s,
        IDictionary<string, object?> d => d.ToDictionary(p => p.Key, p => Normalize(p.Value), StringComparer.OrdinalIgnoreCase),
        System.Collections.IDictionary d => d.Keys.Cast<object>().ToDictionary(k => k.ToString()!, k => Normalize(d[k]), StringComparer.OrdinalIgnoreCase),
        System.Collections.IEnumerable e => e.Cast<object?>().Select(Normalize).ToList(),
        bool b => b,
        float or double or decimal => Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture),
        sbyte or byte or short or ushort or int or uint or long => Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString(),
    };

    /// <summary>llama-perplexity's HellaSwag file: per question six lines, the context, the index of the right ending (0-3), the four endings.</summary>
    private static IEnumerable<TaskRow> ReadHellaswagText(string file)
    {
        var lines = File.ReadAllLines(file, Encoding.UTF8);
        int n = lines.Length;
        while (n > 0 && lines[n - 1].Length == 0) n--;
        if (n % 6 != 0) throw new InvalidDataException($"{file}:{n}: llama-perplexity's HellaSwag format has six lines per question; the file has {n} lines, not a multiple of 6");
        for (int q = 0; q < n; q += 6)
            yield return new TaskRow(new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase)
            {
                ["query"] = lines[q],
                ["label"] = lines[q + 1],
                ["endings"] = new List<object?> { lines[q + 2], lines[q + 3], lines[q + 4], lines[q + 5] },
            }, $"{file}:{q + 1}");
    }
}
