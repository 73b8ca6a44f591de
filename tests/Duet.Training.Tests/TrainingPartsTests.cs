// Checkpoint files, the metrics log, the loss plot and the data loader: the parts a resumable run stands on.
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Duet.Formats.Tokens;

namespace Duet.Training.Tests;

public sealed class TrainingPartsTests(TrainCorpusFixture fx) : IClassFixture<TrainCorpusFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-parts-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static float[] Data(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        a[0] = -0f; a[1] = float.Epsilon; a[2] = float.MaxValue;
        return a;
    }

    [Fact]
    public void Checkpoint_RoundTrip_KeepsHeaderAndBits_AndKeepsTheNewestK()
    {
        var big = Data(3_000_000, 1);
        for (int step = 10; step <= 40; step += 10)
            Checkpoints.Save(_dir, step, new JsonObject { ["step"] = step, ["note"] = "中文" }, [("params", big), ("small", Data(5, step))], keep: 2);
        Assert.Equal([30, 40], Checkpoints.List(_dir).Select(c => c.Step));
        var warnings = new List<string>();
        var c = Checkpoints.LoadLatest(_dir, warnings)!;
        Assert.Empty(warnings);
        Assert.Equal(40, c.Step);
        Assert.Equal("中文", c.Header["note"]!.GetValue<string>());
        Assert.True(BitConverter.SingleToInt32Bits(c.Arrays["params"][0]) == BitConverter.SingleToInt32Bits(-0f));
        Assert.True(big.AsSpan().SequenceEqual(c.Arrays["params"]));
        Assert.Equal(Data(5, 40), c.Arrays["small"]);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.999)]
    [InlineData(0.00001)]
    public void LoadLatest_TruncatedNewest_WarnsAndReturnsThePrevious(double keepFraction)
    {
        Checkpoints.Save(_dir, 1, new JsonObject { ["step"] = 1 }, [("params", Data(1000, 1))], keep: 5);
        var newest = Checkpoints.Save(_dir, 2, new JsonObject { ["step"] = 2 }, [("params", Data(1000, 2))], keep: 5);
        var bytes = File.ReadAllBytes(newest);
        File.WriteAllBytes(newest, bytes[..(int)(bytes.Length * keepFraction)]);
        var warnings = new List<string>();
        Assert.Equal(1, Checkpoints.LoadLatest(_dir, warnings)!.Step);
        Assert.Contains(warnings, w => w.Contains("step-00000002.ckpt", StringComparison.Ordinal));
        Assert.NotNull(Checkpoints.Verify(newest));
    }

    [Fact]
    public void Load_FlippedByteOrLyingLength_IsRejectedWithoutAHugeAllocation()
    {
        var path = Checkpoints.Save(_dir, 3, new JsonObject { ["step"] = 3 }, [("params", Data(1000, 3))], keep: 5);
        var good = File.ReadAllBytes(path);
        var flipped = (byte[])good.Clone();
        flipped[good.Length - 100] ^= 1;
        File.WriteAllBytes(path, flipped);
        Assert.Contains("checksum", Checkpoints.Verify(path), StringComparison.Ordinal);
        // The float count of the array (after magic, version, header length, header, count, name length, name) set to 2^60.
        int headerLen = BitConverter.ToInt32(good, 12);
        int countAt = 16 + headerLen + 4 + 2 + "params".Length;
        var lying = (byte[])good.Clone();
        BitConverter.GetBytes(1L << 60).CopyTo(lying, countAt);
        File.WriteAllBytes(path, lying);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("more than the file holds", Checkpoints.Verify(path), StringComparison.Ordinal);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000_000);
        var lyingHeader = (byte[])good.Clone();
        BitConverter.GetBytes(int.MaxValue).CopyTo(lyingHeader, 12);
        File.WriteAllBytes(path, lyingHeader);
        Assert.Contains("header length", Checkpoints.Verify(path), StringComparison.Ordinal);
    }

    [Fact]
    public void Save_RemovesStaleTemporaryFiles()
    {
        File.WriteAllText(Path.Combine(_dir, "step-00000009.ckpt.tmp"), "half written");
        Checkpoints.Save(_dir, 10, new JsonObject { ["step"] = 10 }, [("params", Data(10, 1))], keep: 1);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void MetricsLog_TruncateAndTornLine_KeepOnlyWholeRecordsUpToTheStep()
    {
        var path = Path.Combine(_dir, "metrics.jsonl");
        using (var log = new MetricsLog(path))
            for (int s = 0; s < 10; s++) log.Append("train", s, new() { ["loss"] = 10 - s, ["lr"] = 1e-3 });
        File.AppendAllText(path, "{\"kind\":\"train\",\"step\":10,\"lo"); // killed mid-write
        using (var log = new MetricsLog(path))
        {
            Assert.Equal(10, log.Read().Count);
            log.Truncate(5);
            Assert.Equal([0, 1, 2, 3, 4, 5], log.Read().Select(r => r.Step));
            log.Append("validation", 6, new() { ["val_loss"] = 4.5 });
            Assert.Equal(4.5, log.Read()[^1].Values["val_loss"]);
        }
    }

    [Fact]
    public void LossPlot_IsValidSvg_WithBothSeries_AndDeterministic()
    {
        var records = Enumerable.Range(0, 5000).Select(s => new MetricsRecord("train", s, new Dictionary<string, double> { ["loss"] = 9 * Math.Exp(-s / 800.0) + 2 }))
            .Concat(Enumerable.Range(1, 10).Select(s => new MetricsRecord("validation", s * 500 - 1, new Dictionary<string, double> { ["val_loss"] = 9 * Math.Exp(-s / 1.6) + 2.1 })))
            .ToList();
        var svg = LossPlot.Render(records, "test <run>");
        var doc = XDocument.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        var lines = doc.Descendants(ns + "polyline").ToList();
        Assert.Equal(["train", "validation"], lines.Select(l => (string)l.Attribute("class")!));
        Assert.InRange(lines[0].Attribute("points")!.Value.Split(' ').Length, 100, 800); // downsampled to pixel columns
        Assert.Equal(10, doc.Descendants(ns + "circle").Count());
        Assert.Equal(svg, LossPlot.Render(records, "test <run>"));
        XDocument.Parse(LossPlot.Render([], "empty"));
    }

    [Fact]
    public void Loader_ResumedFromAPosition_ReadsTheSameBatchesAsAnUninterruptedOne()
    {
        using var corpus = TokenCorpus.Open(fx.Corpus, "train");
        const int t = 16, rows = 4;
        var a = new TokenLoader(corpus, t, seed: 5);
        var batches = new List<int[]>();
        var inp = new int[rows * t];
        var tgt = new int[rows * t];
        LoaderPosition mid = default;
        int total = (int)(a.Windows / rows * 2 + 3); // past an epoch boundary
        for (int i = 0; i < total; i++)
        {
            if (i == total / 2) mid = a.Position;
            a.Next(rows, inp, tgt);
            batches.Add([.. inp]);
            Assert.Equal(inp.AsSpan(1, t - 1).ToArray(), tgt.AsSpan(0, t - 1).ToArray()); // targets are inputs shifted by one
        }
        var b = new TokenLoader(corpus, t, seed: 5);
        b.Seek(mid);
        for (int i = total / 2; i < total; i++)
        {
            b.Next(rows, inp, tgt);
            Assert.Equal(batches[i], inp);
        }
        // Another seed, another order.
        var other = new TokenLoader(corpus, t, seed: 6);
        other.Next(rows, inp, tgt);
        Assert.NotEqual(batches[0], inp);
    }
}
