// metrics.jsonl of a run: one JSON object per line, {"kind": "train"|"validation", "step": N, ...values}, appended
// and flushed per record. A resumed run first truncates the log to its checkpoint's step, since the killed run may
// have logged steps it never checkpointed; so a resumed run's log equals an uninterrupted one's step for step.
// Reading skips a torn last line (a run killed mid-write), and any line that is not a record; appending to a file
// that ends in a torn line starts a new line first, so the torn fragment never swallows the next record.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Duet.Training;

public sealed record MetricsRecord(string Kind, int Step, IReadOnlyDictionary<string, double> Values);

public sealed class MetricsLog(string path) : IDisposable
{
    private FileStream? _file;

    public string Path { get; } = path;

    public void Append(string kind, int step, Dictionary<string, double> values)
    {
        var sb = new StringBuilder();
        sb.Append("{\"kind\":").Append(JsonSerializer.Serialize(kind)).Append(",\"step\":").Append(step.ToString(CultureInfo.InvariantCulture));
        foreach (var (k, v) in values)
            sb.Append(',').Append(JsonSerializer.Serialize(k)).Append(':').Append(double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null");
        sb.Append("}\n");
        if (_file is null)
        {
            bool torn = EndsInATornLine(Path);
            _file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
            if (torn) _file.WriteByte((byte)'\n');
        }
        _file.Write(Encoding.UTF8.GetBytes(sb.ToString()));
        _file.Flush();
    }

    /// <summary>Keeps the records with step ≤ <paramref name="maxStep"/> (−1: none), atomically.</summary>
    public void Truncate(int maxStep)
    {
        _file?.Dispose();
        _file = null;
        var keep = new StringBuilder();
        if (File.Exists(Path))
            foreach (var line in File.ReadAllLines(Path))
                if (Parse(line) is { } r && r.Step <= maxStep) keep.Append(line).Append('\n');
        Duet.Formats.AtomicFile.Write(Path, s => s.Write(Encoding.UTF8.GetBytes(keep.ToString())));
    }

    public List<MetricsRecord> Read()
    {
        _file?.Flush();
        if (!File.Exists(Path)) return [];
        string[] lines;
        using (var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var reader = new StreamReader(fs))
            lines = reader.ReadToEnd().Split('\n');
        return lines.Select(Parse).OfType<MetricsRecord>().ToList();
    }

    private static bool EndsInATornLine(string path)
    {
        if (!File.Exists(path)) return false;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (fs.Length == 0) return false;
        fs.Seek(-1, SeekOrigin.End);
        return fs.ReadByte() != '\n';
    }

    // A record, or null for a torn line or a line that is not one ({"kind": string, "step": int32, ...numbers}).
    private static MetricsRecord? Parse(string line)
    {
        if (line.Length == 0) return null;
        try
        {
            using var doc = JsonDocument.Parse(line);
            var e = doc.RootElement;
            if (e.ValueKind != JsonValueKind.Object
                || !e.TryGetProperty("kind", out var kind) || kind.ValueKind != JsonValueKind.String
                || !e.TryGetProperty("step", out var step) || step.ValueKind != JsonValueKind.Number || !step.TryGetInt32(out int s))
                return null;
            var values = new Dictionary<string, double>();
            foreach (var p in e.EnumerateObject())
                if (p.Value.ValueKind == JsonValueKind.Number && p.Name != "step" && p.Value.TryGetDouble(out double v) && double.IsFinite(v)) values[p.Name] = v;
            return new MetricsRecord(kind.GetString()!, s, values);
        }
        catch (JsonException) { return null; } // a torn line
    }

    public void Dispose() => _file?.Dispose();
}
