// `mpirun -np N dotnet duet.dll ...` for the data-parallel tests: Debian's Open MPI (openmpi-bin, which test.sh
// installs), run as root where the tests run as root, not bound to cores (the ranks share this machine's cores with
// the test runner), with stderr collected as it comes.
using System.Diagnostics;
using Duet.Tests;

namespace Duet.Training.Tests;

internal static class MpiJob
{
    public static string Mpirun => File.Exists("/usr/bin/mpirun.openmpi") ? "/usr/bin/mpirun.openmpi"
        : throw new InvalidOperationException("Open MPI's mpirun is not installed: apt-get install openmpi-bin (test.sh installs it)");

    public static DuetProcess.Run Start(int ranks, IDictionary<string, string>? env, params string[] args) => Launch(Mpirun, ranks, env, args);

    /// <summary>The same job under another launcher (MPICH's mpiexec.mpich), or null when it is not installed.</summary>
    public static DuetProcess.Run Launch(string launcher, int ranks, IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo(launcher) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-np");
        psi.ArgumentList.Add(ranks.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (launcher.Contains("openmpi", StringComparison.Ordinal))
            foreach (var a in new[] { "--oversubscribe", "--bind-to", "none" }) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(Repo.DuetDll());
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        psi.Environment["OMPI_MCA_rmaps_base_oversubscribe"] = "1";
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {launcher}");
        var text = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new DuetProcess.Run(p, text);
    }

    /// <summary>Runs a job to its end (5 minutes at most); returns its exit code and output (stdout and stderr).</summary>
    public static (int Exit, string Output) Run(int ranks, IDictionary<string, string>? env, params string[] args) => RunWith(Mpirun, ranks, env, args);

    public static (int Exit, string Output) RunWith(string launcher, int ranks, IDictionary<string, string>? env, params string[] args)
    {
        using var r = Launch(launcher, ranks, env, args);
        if (!r.Process.WaitForExit(300_000))
        {
            r.Process.Kill(entireProcessTree: true);
            Assert.Fail($"{launcher} -np {ranks} duet {string.Join(' ', args)} did not end in 5 minutes:\n{r.Stderr}");
        }
        r.Process.WaitForExit();
        return (r.Process.ExitCode, r.Stderr);
    }

    /// <summary>The process of rank <paramref name="rank"/> among the launcher's descendants (Open MPI sets OMPI_COMM_WORLD_RANK).</summary>
    public static int? RankPid(int rank)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var cmd = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (!cmd.Contains("duet.dll", StringComparison.Ordinal)) continue;
                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (env.Contains($"OMPI_COMM_WORLD_RANK={rank}") && env.Contains("DUET_TEST_JOB=" + JobTag)) return pid;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return null;
    }

    /// <summary>Set in the jobs of this test process, so that RankPid finds only their ranks.</summary>
    public static readonly string JobTag = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
