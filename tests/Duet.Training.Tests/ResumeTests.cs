// Issue 5, acceptance 3: a run killed with SIGKILL at random steps, three times, and resumed each time ends with
// the same weights as an uninterrupted run, bit for bit; a damaged newest checkpoint is detected by its checksum
// and the previous one is used, with a warning. The runs are real `duet train` processes.
using System.Diagnostics;
using System.Text.Json;
using Duet.Tests;
using static Duet.Training.Tests.DuetProcess;

namespace Duet.Training.Tests;

public sealed class ResumeTests(TrainCorpusFixture fx) : IClassFixture<TrainCorpusFixture>
{

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
