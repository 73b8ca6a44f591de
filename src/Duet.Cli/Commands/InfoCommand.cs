// duet info: what Duet runs on here: its version, the runtime, the threads, and the CPU profile that picks the
// kernels (Duet.Tensors.Kernels.CpuProfile; DUET_CPU overrides it).
using System.CommandLine;
using System.Reflection;
using System.Runtime.InteropServices;
using Duet.Tensors.Kernels;

namespace Duet.Cli.Commands;

internal static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Show the version, the runtime and the CPU profile the kernels run by (set DUET_CPU=portable|avx2|avx512[+name|-name...] to override it).");
        cmd.SetAction(_ =>
        {
            var version = typeof(InfoCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            Console.WriteLine($"duet {version}");
            Console.WriteLine($"runtime: {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}");
            Console.WriteLine($"threads: {Environment.ProcessorCount} (kernels use -t THREADS, default all)");
            Console.WriteLine($"cpu: {CpuProfile.Current.Describe()}");
            Console.WriteLine($"profile: {CpuProfile.Current.Name}");
            Console.WriteLine($"runnable here: {string.Join(", ", CpuProfile.Runnable().Select(p => p.Name))}");
            return 0;
        });
        return cmd;
    }
}
