// The edges of metrics.jsonl that TrainingPartsTests does not reach: a record appended after a torn line (no
// Truncate in between), lines that are JSON but not records, and values that do not survive JSON (NaN).
namespace Duet.Training.Tests;

public sealed class MetricsLogEdgeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-metrics-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void MetricsLog_AppendAfterATornLineWithoutTruncate_KeepsTheNewRecord()
    {
        var path = Path.Combine(_dir, "metrics.jsonl");
        File.WriteAllText(path, "{\"kind\":\"train\",\"step\":0,\"loss\":3}\n{\"kind\":\"train\",\"step\":1,\"lo");
        using var log = new MetricsLog(path);
        log.Append("train", 1, new() { ["loss"] = 2.5 });
        Assert.Equal([0, 1], log.Read().Select(r => r.Step));
    }

    [Fact]
    public void MetricsLog_OddButParseableLines_AreSkippedNotThrown()
    {
        var path = Path.Combine(_dir, "metrics.jsonl");
        File.WriteAllText(path, "{\"kind\":\"train\",\"step\":1.5}\n{\"kind\":\"train\",\"step\":1e12}\n{\"kind\":7,\"step\":1}\n[]\n42\n{\"kind\":\"train\",\"step\":2,\"loss\":1}\n");
        using var log = new MetricsLog(path);
        Assert.Equal([2], log.Read().Select(r => r.Step));
        log.Truncate(5);
        Assert.Equal([2], log.Read().Select(r => r.Step));
    }

    [Fact]
    public void MetricsLog_ValuesRoundTrip_NonFiniteDropped()
    {
        var path = Path.Combine(_dir, "metrics.jsonl");
        using var log = new MetricsLog(path);
        log.Append("train", 3, new() { ["loss"] = 0.1 + 0.2, ["tokens_per_s"] = 12345, ["grad_norm"] = double.NaN });
        var r = Assert.Single(log.Read());
        Assert.Equal("train", r.Kind);
        Assert.Equal(0.1 + 0.2, r.Values["loss"]);
        Assert.Equal(12345, r.Values["tokens_per_s"]);
        Assert.False(r.Values.ContainsKey("grad_norm"));
    }
}
