// Real `duet` processes for the resume tests: started with stderr collected as it comes, killed with SIGKILL once
// metrics.jsonl shows a step, and the run's newest checkpoint and logged losses read back.
using System.Diagnostics;
using System.Text.Json;
using Duet.Tests;

namespace Duet.Training.Tests;

internal static class DuetProcess
{
    /// <summary>A running `duet` process whose stderr is collected as it comes.</summary>
    internal sealed class Run(Process process, System.Text.StringBuilder stderr) : IDisposable
    {
        public Process Process => process;
        public string Stderr { get { lock (stderr) return stderr.ToString(); } }
        public void Dispose() => process.Dispose();
    }

    internal static Run Start(params string[] args)
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

    internal static string RunToEnd(params string[] args)
    {
        using var r = Start(args);
        Assert.True(r.Process.WaitForExit(300_000), $"duet {args[0]} did not finish in 5 minutes");
        r.Process.WaitForExit(); // drains the stderr events
        Assert.True(r.Process.ExitCode == 0, $"duet {string.Join(' ', args)} exited {r.Process.ExitCode}:\n{r.Stderr}");
        return r.Stderr;
    }

    /// <summary>The last train step logged in metrics.jsonl (a torn last line is ignored), or -1.</summary>
    internal static int LastStep(string run)
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

    internal static void KillAtStep(Run r, string run, int step)
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
    internal static int StartStep(string stderr)
    {
        var m = System.Text.RegularExpressions.Regex.Match(stderr, @"steps (\d+)\.\.");
        Assert.True(m.Success, $"no 'steps N..' line in:\n{stderr}");
        return int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    internal static float[] FinalParameters(string run)
    {
        var warnings = new List<string>();
        var c = Checkpoints.LoadLatest(Path.Combine(run, "checkpoints"), warnings) ?? throw new InvalidDataException($"{run}: no checkpoint");
        Assert.Empty(warnings);
        return c.Arrays["params"];
    }

    internal static List<double> TrainLosses(string run) => File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))
        .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("kind").GetString() == "train")
        .Select(e => e.GetProperty("loss").GetDouble()).ToList();
}
