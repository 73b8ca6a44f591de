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
        var model = new Argument<string?>("model") { Description = "a .gguf file or an HF folder: also show its shape and provenance (what made its weights)", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("info", "Show the version, the runtime and the CPU profile the kernels run by (set DUET_CPU=portable|avx2|avx512[+name|-name...] to override it); with a model, its shape and provenance.") { model };
        cmd.SetAction(r =>
        {
            if (r.GetValue(model) is string path)
            {
                using var package = Duet.Model.ModelPackage.Open(path, loadTokenizer: true);
                var c = package.Config;
                Console.WriteLine($"model: {path} ({package.Format}), name '{c.Name}'");
                Console.WriteLine($"shape: dim {c.Dim}, {c.Layers} layers, {c.Heads}/{c.KvHeads} heads, ffn {c.FfnDim}, vocab {c.Vocab}, context {c.ContextLength}; weights {package.Model.Weights.MainType}");
                Console.WriteLine($"tokenizer: {(package.Tokenizer is { } t ? $"{t.VocabSize} tokens" : "none")}");
                if (package.Provenance.Count == 0) Console.WriteLine("provenance: none recorded (not exported by duet export)");
                else foreach (var (k, v) in package.Provenance.OrderBy(p => p.Key, StringComparer.Ordinal)) Console.WriteLine($"provenance.{k}: {v}");
                return 0;
            }
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
