// Issue 20: data-parallel `duet train` under mpirun. The reference is one process (`duet train` without MPI) on the
// same global batch: two ranks, with and without ZeRO-1, must give its weights and losses bit for bit; a rank killed
// with SIGKILL ends the job quickly with the rank named, and the run resumes on one process to the same bits as the
// uninterrupted run; a rank that stops answering ends the job after DUET_MPI_TIMEOUT; an error on every rank ends
// the job with the rank named and no hang. Real processes under Debian's Open MPI (and MPICH where installed).
using System.Diagnostics;
using Duet.Tests;
using static Duet.Training.Tests.DuetProcess;

namespace Duet.Training.Tests;

public sealed class DataParallelTests(TrainCorpusFixture fx) : IClassFixture<TrainCorpusFixture>
{
    private static readonly Dictionary<string, string> Tag = new() { ["DUET_TEST_JOB"] = MpiJob.JobTag };

    // One thread per rank (two ranks then use the machine's two cores as one process with two threads would), a batch
    // of 8 sequences in the given number of micro-batches.
    private string Rewrite(string name, int steps, int checkpointEvery, int microBatches)
    {
        var path = fx.WriteConfig(name, steps, checkpointEvery);
        var text = File.ReadAllText(path).Replace("\"threads\": 2", "\"threads\": 1").Replace("\"microBatches\": 2", $"\"microBatches\": {microBatches}")
            .Replace("\"batchSize\": 4", "\"batchSize\": 8");
        File.WriteAllText(path, text);
        return path;
    }

    private static void AssertSameRun(string expected, string actual, string what)
    {
        var pa = FinalParameters(expected);
        var pb = FinalParameters(actual);
        Assert.Equal(pa.Length, pb.Length);
        int differing = 0;
        for (int i = 0; i < pa.Length; i++) if (BitConverter.SingleToInt32Bits(pa[i]) != BitConverter.SingleToInt32Bits(pb[i])) differing++;
        Assert.True(differing == 0, $"{what}: {differing} of {pa.Length} weights differ from one process's");
        Assert.Equal(TrainLosses(expected), TrainLosses(actual));
        Assert.Equal(ValidationLosses(expected), ValidationLosses(actual));
    }

    private static List<double> ValidationLosses(string run) => File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))
        .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("kind").GetString() == "validation")
        .Select(e => e.GetProperty("val_loss").GetDouble()).ToList();

    [Fact]
    public void Train_TwoRanksAndZero_SameBitsAsOneProcess()
    {
        var config = Rewrite("dp", steps: 12, checkpointEvery: 6, microBatches: 4); // 2 micro-batches per rank: local accumulation too
        string one = Path.Combine(fx.Root, "dp-one"), two = Path.Combine(fx.Root, "dp-two"), zero = Path.Combine(fx.Root, "dp-zero");
        RunToEnd("train", "--config", config, "--out", one);
        var (exit, output) = MpiJob.Run(2, Tag, "train", "--config", config, "--out", two);
        Assert.True(exit == 0, output);
        Assert.Contains("data-parallel: 2 ranks", output);
        AssertSameRun(one, two, "2 ranks");
        (exit, output) = MpiJob.Run(2, Tag, "train", "--config", config, "--out", zero, "--zero");
        Assert.True(exit == 0, output);
        Assert.Contains("ZeRO-1", output);
        AssertSameRun(one, zero, "2 ranks with ZeRO-1");
        // Rank 0 alone writes: one line per step in metrics.jsonl, with the time spent communicating.
        var metrics = File.ReadAllLines(Path.Combine(two, "metrics.jsonl"));
        Assert.Equal(12 + 2, metrics.Length);
        Assert.Contains("\"comm_s\"", metrics[0]);
    }

    [Fact]
    public void Train_RankKilled_JobEndsNamingItAndResumesOnOneProcessToTheSameBits()
    {
        var config = Rewrite("dp-kill", steps: 40, checkpointEvery: 5, microBatches: 2);
        string reference = Path.Combine(fx.Root, "dp-kill-ref"), run = Path.Combine(fx.Root, "dp-kill-run");
        RunToEnd("train", "--config", config, "--out", reference);

        using (var job = MpiJob.Start(2, Tag, "train", "--config", config, "--out", run))
        {
            var sw = Stopwatch.StartNew();
            while (LastStep(run) < 12)
            {
                Assert.False(job.Process.HasExited, $"the job ended before step 12:\n{job.Stderr}");
                Assert.True(sw.Elapsed < TimeSpan.FromMinutes(3), "no step 12 after 3 minutes");
                Thread.Sleep(10);
            }
            int pid = MpiJob.RankPid(1) ?? throw new InvalidOperationException("rank 1's process not found");
            var killed = Stopwatch.StartNew();
            Process.GetProcessById(pid).Kill(); // SIGKILL
            Assert.True(job.Process.WaitForExit(30_000), $"the job did not end within 30 s of rank 1's death:\n{job.Stderr}");
            job.Process.WaitForExit();
            Assert.NotEqual(0, job.Process.ExitCode);
            Assert.Matches(@"rank 1\b", job.Stderr);
            Assert.True(killed.Elapsed < TimeSpan.FromSeconds(30));
            Assert.True(LastStep(run) < 39, "the job ran on without rank 1");
        }
        // Resumed on one process (no mpirun) from the last checkpoint the two ranks wrote.
        var stderr = RunToEnd("train", "--resume", run);
        Assert.True(StartStep(stderr) >= 10, stderr);
        AssertSameRun(reference, run, "killed on 2 ranks, resumed on 1");
    }

    [Fact]
    public void Train_RankStopsAnswering_JobEndsAfterTheTimeout()
    {
        var config = Rewrite("dp-stuck", steps: 200, checkpointEvery: 100, microBatches: 2);
        var run = Path.Combine(fx.Root, "dp-stuck");
        var env = new Dictionary<string, string>(Tag) { ["DUET_MPI_TIMEOUT"] = "3" };
        using var job = MpiJob.Start(2, env, "train", "--config", config, "--out", run);
        var sw = Stopwatch.StartNew();
        while (LastStep(run) < 2)
        {
            Assert.False(job.Process.HasExited, job.Stderr);
            Assert.True(sw.Elapsed < TimeSpan.FromMinutes(3), "no step 2 after 3 minutes");
            Thread.Sleep(10);
        }
        int pid = MpiJob.RankPid(1) ?? throw new InvalidOperationException("rank 1's process not found");
        Assert.Equal(0, Kill(pid, 19)); // SIGSTOP: alive, but silent
        try
        {
            Assert.True(job.Process.WaitForExit(60_000), $"the job hung with rank 1 stopped:\n{job.Stderr}");
            job.Process.WaitForExit();
            Assert.NotEqual(0, job.Process.ExitCode);
            Assert.Contains("rank 0 of 2", job.Stderr);
            Assert.Contains("has not completed after 3 s", job.Stderr);
        }
        finally
        {
            try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    [Fact]
    public void Train_MicroBatchesNotAMultipleOfRanks_EveryRankEndsWithTheError()
    {
        var config = Rewrite("dp-odd", steps: 2, checkpointEvery: 1, microBatches: 2);
        var sw = Stopwatch.StartNew();
        var (exit, output) = MpiJob.Run(3, Tag, "train", "--config", config, "--out", Path.Combine(fx.Root, "dp-odd"));
        Assert.NotEqual(0, exit);
        Assert.Matches(@"rank \d of 3: error: 2 micro-batches cannot be shared by 3 ranks", output);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(120));
    }

    [Fact]
    public void MpiCheck_EveryCollective_CorrectOnOpenMpiAndMpich()
    {
        var (exit, output) = MpiJob.Run(3, Tag, "mpi", "check");
        Assert.True(exit == 0, output);
        Assert.Contains("Open MPI", output);
        foreach (var c in new[] { "barrier", "broadcast", "all-reduce (sum)", "all-reduce (max)", "reduce-scatter", "all-gather", "all-gather-v", "gather", "gather-v", "all-to-all-v" })
            Assert.Contains($"{c}: ok", output);
        // MPICH's ABI (integer handles): test.sh installs Debian's mpich beside Open MPI.
        Assert.True(File.Exists("/usr/bin/mpiexec.mpich"), "MPICH is not installed: apt-get install mpich (test.sh installs it)");
        (exit, output) = MpiJob.RunWith("/usr/bin/mpiexec.mpich", 2, Tag, "mpi", "check");
        Assert.True(exit == 0, output);
        Assert.Contains("(Mpich ABI)", output);
        Assert.Contains("all-to-all-v: ok", output);
    }

    [Fact]
    public void DataBuild_SampleRecipeOnTwoRanks_SameBytesAsOneProcessAndTheShippedCorpus()
    {
        // Issue 20, acceptance 3: the shipped corpus's own recipe over Debian's documentation packages (test.sh installs them).
        var recipe = Path.Combine(Repo.Root, "data", "recipes", "sample.json");
        string one = Path.Combine(fx.Root, "sample-one"), two = Path.Combine(fx.Root, "sample-two");
        RunToEnd("data", "build", "--recipe", recipe, "--out", one);
        var (exit, output) = MpiJob.Run(2, Tag, "data", "build", "--recipe", recipe, "--out", two);
        Assert.True(exit == 0, output);
        AssertSameFiles(one, two);
        // And the shipped data/sample, when the packages are the versions it was built from (a Debian point release may change a page).
        var shipped = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Repo.Root, "data", "sample", "manifest.json"))).RootElement.GetProperty("sources");
        var built = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(two, "manifest.json"))).RootElement.GetProperty("sources");
        bool sameVersions = shipped.EnumerateObject().All(s => built.TryGetProperty(s.Name, out var b)
            && s.Value.GetProperty("packageVersion").GetString() == b.GetProperty("packageVersion").GetString());
        if (sameVersions) AssertSameFiles(Path.Combine(Repo.Root, "data", "sample"), two, ignore: ["README.md", "LICENSES"]);
    }

    [Fact]
    public void DataBuild_ManyFilesWithDuplicatesAcrossRanks_SameBytesAsOneProcess()
    {
        // 70 source files (several rounds of 16 files per rank), documents repeated and lightly edited across files that
        // different ranks prepare: exact and near dedup must see them in one process's order.
        var src = Path.Combine(fx.Root, "dup-src");
        Directory.CreateDirectory(src);
        var texts = new List<string>();
        using (var reader = new StreamReader(new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(Repo.Root, "data", "sample", "train", "train-00000.jsonl.gz")), System.IO.Compression.CompressionMode.Decompress)))
            for (string? line; texts.Count < 140 && (line = reader.ReadLine()) is not null;)
                texts.Add(System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!);
        for (int f = 0; f < 70; f++)
        {
            var docs = new List<string> { texts[f], texts[(f * 7 + 3) % 140] };                 // exact repeats across files
            if (f % 5 == 0) docs.Add(texts[(f + 1) % 140].Replace(". ", ".  ") + " 补充");       // near-duplicates
            File.WriteAllLines(Path.Combine(src, $"part-{f:D3}.jsonl"), docs.Select(t => System.Text.Json.JsonSerializer.Serialize(new { text = t })));
        }
        File.WriteAllText(Path.Combine(src, "empty.txt"), "   \n");
        var recipe = Path.Combine(fx.Root, "dup-recipe.json");
        File.WriteAllText(recipe, """
            { "name": "dup", "sources": [ { "name": "parts", "paths": ["dup-src", "no-such-dir"] } ], "languages": ["en", "zh"],
              "dedup": { "exact": true, "near": true }, "split": { "validationFraction": 0.2 }, "samplesPerReason": 5, "shardCharacters": 40000 }
            """);
        string one = Path.Combine(fx.Root, "dup-one"), two = Path.Combine(fx.Root, "dup-two"), three = Path.Combine(fx.Root, "dup-three");
        RunToEnd("data", "build", "--recipe", recipe, "--out", one);
        var (exit, output) = MpiJob.Run(2, Tag, "data", "build", "--recipe", recipe, "--out", two);
        Assert.True(exit == 0, output);
        AssertSameFiles(one, two);
        (exit, output) = MpiJob.Run(3, Tag, "data", "build", "--recipe", recipe, "--out", three);
        Assert.True(exit == 0, output);
        AssertSameFiles(one, three);
        var manifest = File.ReadAllText(Path.Combine(one, "manifest.json"));
        Assert.Contains("dedup.exact", manifest);
        Assert.Contains("dedup.near", manifest);
        Assert.Contains("missing_path", manifest);
    }

    private static void AssertSameFiles(string expected, string actual, string[]? ignore = null)
    {
        static List<string> Files(string dir, string[] ignore) => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dir, f)).Where(f => !ignore.Any(i => f.StartsWith(i, StringComparison.Ordinal))).Order(StringComparer.Ordinal).ToList();
        var a = Files(expected, ignore ?? []);
        Assert.Equal(a, Files(actual, ignore ?? []));
        foreach (var f in a)
            Assert.True(File.ReadAllBytes(Path.Combine(expected, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, f))), $"{f} differs");
    }
}
