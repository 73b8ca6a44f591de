// Paths of the repository for tests, and running the reference scripts under tests/reference/.
using System.Diagnostics;

namespace Duet.Tests;

internal static class Repo
{
    public static readonly string Root = FindRoot();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Duet.slnx"))) return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (Duet.slnx) above " + AppContext.BaseDirectory);
    }

    public static string Reference(string script) => Path.Combine(Root, "tests", "reference", script);

    /// <summary>The built CLI (duet.dll) for tests that run it as a process: beside the test binaries, else src/Duet.Cli's output.</summary>
    public static string DuetDll()
    {
        var local = Path.Combine(AppContext.BaseDirectory, "duet.dll");
        if (File.Exists(local) && File.Exists(Path.Combine(AppContext.BaseDirectory, "duet.runtimeconfig.json"))) return local;
        foreach (var config in new[] { "Release", "Debug" })
        {
            var p = Path.Combine(Root, "src", "Duet.Cli", "bin", config, "net10.0", "duet.dll");
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException("duet.dll not built");
    }

    /// <summary>Runs a command to completion; fails with its stderr if it exits non-zero.</summary>
    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {p.ExitCode}:\n{err.Result}");
        return output;
    }

    /// <summary>Debian's Python, which has numpy, torch and sentencepiece from apt (test.sh installs them).</summary>
    public static string Python(params string[] args) => Run("/usr/bin/python3", args);
}
