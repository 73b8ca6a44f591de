// Issue 20, acceptance 6: Duet without MPI. A plain run never loads libmpi; asking for MPI where there is none, or
// where the library is of a flavour Duet does not know, is a clear error, also inside a launcher's job. And the
// pieces of data-parallel training that need no second process: the launcher's environment, the sharded optimizer.
using System.Diagnostics;
using Duet.Mpi;
using Duet.Model;
using Duet.Tests;
using static Duet.Training.Tests.DuetProcess;

namespace Duet.Training.Tests;

public sealed class MpiBindingTests(TrainCorpusFixture fx) : IClassFixture<TrainCorpusFixture>
{
    [Theory]
    [InlineData("OMPI_COMM_WORLD_RANK=1,OMPI_COMM_WORLD_SIZE=4", 1, 4, "Open MPI")]
    [InlineData("PMI_RANK=0,PMI_SIZE=2", 0, 2, "Hydra")]
    [InlineData("SLURM_PROCID=3,SLURM_NTASKS=8", 3, 8, "srun")]
    public void Detect_LauncherEnvironment_RankAndSize(string vars, int rank, int size, string launcher)
    {
        var env = vars.Split(',').Select(v => v.Split('=')).ToDictionary(v => v[0], v => v[1]);
        var l = MpiLaunch.Detect(k => env.GetValueOrDefault(k));
        Assert.NotNull(l);
        Assert.Equal((rank, size), (l.Value.Rank, l.Value.Size));
        Assert.Contains(launcher, l.Value.Launcher);
        Assert.Null(MpiLaunch.Detect(_ => null));
        var bad = Assert.Throws<MpiException>(() => MpiLaunch.Detect(k => k switch { "PMI_RANK" => "5", "PMI_SIZE" => "2", _ => null }));
        Assert.Contains("PMI_RANK=5", bad.Message);
    }

    private static (int Exit, string Stderr) RunDuet(IDictionary<string, string> env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Repo.DuetDll());
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var k in new[] { "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID", "SLURM_NTASKS" }) psi.Environment.Remove(k);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(300_000));
        return (p.ExitCode, err.Result);
    }

    [Fact]
    public void Train_NoLauncher_NeverLoadsMpi()
    {
        var config = fx.WriteConfig("no-mpi", steps: 2, checkpointEvery: 2);
        var (exit, err) = RunDuet(new Dictionary<string, string> { ["DUET_MPI_LIBRARY"] = "/nonexistent/libmpi.so" }, "train", "--config", config, "--out", Path.Combine(fx.Root, "no-mpi"));
        Assert.True(exit == 0, err);
        (exit, err) = RunDuet(new Dictionary<string, string> { ["DUET_MPI_LIBRARY"] = "/nonexistent/libmpi.so" }, "train", "--config", config, "--out", Path.Combine(fx.Root, "no-mpi-zero"), "--zero");
        Assert.Equal(1, exit);
        Assert.Contains("--zero shards the optimizer over MPI ranks: run under mpirun", err);
    }

    [Fact]
    public void Train_LaunchedButNoLibrary_SaysWhatToInstall()
    {
        var config = fx.WriteConfig("no-lib", steps: 2, checkpointEvery: 2);
        var env = new Dictionary<string, string> { ["DUET_MPI_LIBRARY"] = "/nonexistent/libmpi.so", ["OMPI_COMM_WORLD_RANK"] = "0", ["OMPI_COMM_WORLD_SIZE"] = "2" };
        var (exit, err) = RunDuet(env, "train", "--config", config, "--out", Path.Combine(fx.Root, "no-lib"));
        Assert.Equal(1, exit);
        Assert.Contains("started by Open MPI's mpirun as rank 0 of 2, but no MPI library could be loaded (tried /nonexistent/libmpi.so): install Debian's openmpi-bin", err);
        Assert.DoesNotContain("   at ", err); // a message, not a stack trace
    }

    [Fact]
    public void MpiInfo_UnknownFlavour_RefusedWithItsVersion()
    {
        // A library that answers MPI_Get_library_version but is neither Open MPI nor of MPICH's ABI.
        var dir = Path.Combine(fx.Root, "fake-mpi");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "fake.c"), """
            #include <string.h>
            int MPI_Get_library_version(char *v, int *len) { strcpy(v, "FooMPI 9.1 (not a real MPI)"); *len = (int)strlen(v); return 0; }
            """);
        var lib = Path.Combine(dir, "libfoompi.so");
        using (var cc = Process.Start(new ProcessStartInfo("cc", ["-shared", "-fPIC", "-o", lib, Path.Combine(dir, "fake.c")]) { RedirectStandardError = true })!)
        {
            cc.WaitForExit();
            Assert.True(cc.ExitCode == 0, "cc failed: " + cc.StandardError.ReadToEnd());
        }
        var (exit, err) = RunDuet(new Dictionary<string, string> { ["DUET_MPI_LIBRARY"] = lib }, "mpi", "info");
        Assert.Equal(1, exit);
        Assert.Contains("is an MPI library Duet does not know (\"FooMPI 9.1 (not a real MPI)\")", err);
        Assert.Contains("Open MPI's ABI and MPICH's", err);
    }

    [Fact]
    public void AdamW_Shards_UpdateTheSameBitsAsTheWholeModel()
    {
        var layout = new ParameterLayout(ModelShape.Preset("duet-tiny").ToConfig(300, 32, "t"));
        var rng = new Random(3);
        var p0 = Enumerable.Range(0, (int)layout.Count).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var g = Enumerable.Range(0, (int)layout.Count).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var options = new OptimizerOptions { LearningRate = 1e-2, WarmupSteps = 0, WeightDecay = 0.1 };
        var whole = new AdamW(layout, options);
        var pw = (float[])p0.Clone();
        for (int s = 0; s < 3; s++) whole.Update(pw, g, 1e-2, 0.7);
        // Three shards on chunk boundaries, the last ragged; each updates its part from its own slice of the gradient.
        var ps = (float[])p0.Clone();
        long c = AdamW.Chunk;
        long[] cuts = [0, 3 * c, 7 * c, layout.Count];
        for (int k = 0; k < 3; k++)
        {
            var shard = new AdamW(layout, options, cuts[k], cuts[k + 1]);
            var gs = g.AsSpan((int)cuts[k], (int)(cuts[k + 1] - cuts[k])).ToArray();
            for (int s = 0; s < 3; s++) shard.Update(ps, gs, 1e-2, 0.7, gradientsFirst: cuts[k]);
            Assert.True(whole.M.AsSpan((int)cuts[k], shard.M.Length).SequenceEqual(shard.M));
        }
        Assert.True(pw.AsSpan().SequenceEqual(ps));
        // The norm from shard partials in chunk order is the whole norm's bits.
        var partials = new List<double>();
        for (int k = 0; k < 3; k++)
        {
            var part = new double[(cuts[k + 1] - cuts[k] + c - 1) / c];
            AdamW.SquareSums(g, cuts[k], cuts[k + 1] - cuts[k], part, Duet.Tensors.Parallel.WorkerPool.Shared);
            partials.AddRange(part);
        }
        Assert.Equal(whole.GlobalNorm(g), AdamW.NormOf(partials.ToArray()));
    }
}
