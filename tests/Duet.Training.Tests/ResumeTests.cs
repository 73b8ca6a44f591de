// Issue 5, acceptance 3: a run killed with SIGKILL at random steps, three times, and resumed each time ends with
// the same weights as an uninterrupted run, bit for bit; a damaged newest checkpoint is detected by its checksum
// and the previous one is used, with a warning. The runs are real `duet train` processes.
using System.Diagnostics;
using System.Text.Json;
using Duet.Tests;

namespace Duet.Training.Tests;

public sealed class ResumeTests(TrainCorpusFixture fx) : IClassFixture<TrainCorpusFixture>
{

    /// <summary>A running `duet` process whose stderr is collected as it comes.</summary>
    private sealed class Run(Process process, System.Text.StringBuilder stderr) : IDisposable
    {
        public Process Process => process;
        public string Stderr { get { lock (stderr) return stderr.ToString(); } }
        public void Dispose() => process.Dispose();
    }

    private static Run Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Repo.DuetDll());
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start duet");
        var err = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (err) err.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new Run(p, err);
    }

    private static string RunToEnd(params string[] args)
    {
        using var r = Start(args);
        Assert.True(r.Process.WaitForExit(300_000), "duet train did not finish in 5 minutes");
        r.Process.WaitForExit(); // drains the stderr events
        Assert.True(r.Process.ExitCode == 0, $"duet {string.Join(' ', args)} exited {r.Process.ExitCode}:\n{r.Stderr}");
        return r.Stderr;
    }

    /// <summary>The last train step logged in metrics.jsonl (a torn last line is ignored), or -1.</summary>
    private static int LastStep(string run)
    {
        var path = Path.Combine(run, "metrics.jsonl");
        if (!File.Exists(path)) return -1;
        int last = -1;
        string[] lines;
        try { lines = File.ReadAllLines(path); } catch (IOException) { return -1; }
        foreach (var l in lines)
        {
            try
            {
                var e = JsonDocument.Parse(l).RootElement;
                if (e.GetProperty("kind").GetString() == "train") last = Math.Max(last, e.GetProperty("step").GetInt32());
            }
            catch (JsonException) { }
        }
        return last;
    }

    private static void KillAtStep(Run r, string run, int step)
    {
        var sw = Stopwatch.StartNew();
        while (LastStep(run) < step)
        {
            if (r.Process.HasExited) Assert.Fail($"the run ended (exit {r.Process.ExitCode}) before step {step}: {r.Stderr}");
            Assert.True(sw.Elapsed < TimeSpan.FromMinutes(3), $"no step {step} after 3 minutes");
            Thread.Sleep(5);
        }
        r.Process.Kill(); // SIGKILL on Unix: no handler runs, no checkpoint is written on the way out
        r.Process.WaitForExit();
    }

    // The step a process said it starts from ("steps 40..150"): a resumed run must start from a checkpoint, not from 0.
    private static int StartStep(string stderr)
    {
        var m = System.Text.RegularExpressions.Regex.Match(stderr, @"steps (\d+)\.\.");
        Assert.True(m.Success, $"no 'steps N..' line in:\n{stderr}");
        return int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static float[] FinalParameters(string run)
    {
        var warnings = new List<string>();
        var c = Checkpoints.LoadLatest(Path.Combine(run, "checkpoints"), warnings) ?? throw new InvalidDataException($"{run}: no checkpoint");
        Assert.Empty(warnings);
        return c.Arrays["params"];
    }

    private static List<double> TrainLosses(string run) => File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))
        .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("kind").GetString() == "train")
        .Select(e => e.GetProperty("loss").GetDouble()).ToList();

    [Fact]
    public void Train_KilledThreeTimesAtRandomSteps_ResumesToTheSameBits()
    {
        var config = fx.WriteConfig("resume", steps: 150, checkpointEvery: 10);
        string a = Path.Combine(fx.Root, "run-a"), b = Path.Combine(fx.Root, "run-b");
        RunToEnd("train", "--config", config, "--out", a);

        var rng = new Random(2026);
        var kills = new[] { rng.Next(12, 45), rng.Next(50, 90), rng.Next(95, 135) };
        using (var p = Start("train", "--config", config, "--out", b)) KillAtStep(p, b, kills[0]);
        for (int i = 1; i < kills.Length; i++)
            using (var p = Start("train", "--resume", b))
            {
                KillAtStep(p, b, kills[i]);
                int start = StartStep(p.Stderr);
                Assert.True(start > 0 && start % 10 == 0 && start <= kills[i - 1] + 1, $"resumed at step {start} after a kill at {kills[i - 1]}");
            }
        Assert.True(StartStep(RunToEnd("train", "--resume", b)) >= 90);

        var pa = FinalParameters(a);
        var pb = FinalParameters(b);
        Assert.Equal(pa.Length, pb.Length);
        Assert.True(pa.AsSpan().SequenceEqual(pb), $"weights differ after kills at steps {string.Join(", ", kills)}");
        // The metrics of the resumed run hold each step once, with the uninterrupted run's losses.
        Assert.Equal(TrainLosses(a), TrainLosses(b));
        Assert.True(File.Exists(Path.Combine(b, "loss.svg")));
    }

    [Fact]
    public void Resume_NewestCheckpointDamaged_WarnsAndUsesThePreviousOne()
    {
        var config = fx.WriteConfig("damaged", steps: 30, checkpointEvery: 10);
        var run = Path.Combine(fx.Root, "run-damaged");
        RunToEnd("train", "--config", config, "--out", run);
        var final = FinalParameters(run);
        var newest = Checkpoints.List(Path.Combine(run, "checkpoints")).Last();
        var bytes = File.ReadAllBytes(newest.Path);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(newest.Path, bytes);

        var err = RunToEnd("train", "--resume", run);
        Assert.Contains("warning", err, StringComparison.Ordinal);
        Assert.Contains(Path.GetFileName(newest.Path), err, StringComparison.Ordinal);
        // Steps 20..29 ran again from the step-20 checkpoint and gave the same weights.
        Assert.True(final.AsSpan().SequenceEqual(FinalParameters(run)));
    }
}
