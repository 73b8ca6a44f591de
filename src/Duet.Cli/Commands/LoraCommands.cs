// duet lora merge | convert: LoRA adapters (GGUF as llama.cpp writes them, PEFT folders) merged into a model or
// converted between the two formats. Applying them unmerged at run time: --lora on generate and chat.
using System.CommandLine;
using Duet.Model;

namespace Duet.Cli.Commands;

internal static class LoraCommands
{
    public static Command Create()
    {
        var lora = new Command("lora", "LoRA adapters: merge into a model, convert between GGUF (llama.cpp) and PEFT folders.");
        lora.Subcommands.Add(Merge());
        lora.Subcommands.Add(Convert());
        return lora;
    }

    private static Command Merge()
    {
        var model = new Option<string>("--model", "-m") { Description = "the base model: a .gguf file or an HF folder", Required = true };
        var adapters = ModelCommands.LoraOption();
        adapters.Required = true;
        var output = new Option<string>("--output", "-o") { Description = "the merged model: a .gguf file or an HF folder", Required = true };
        var format = new Option<string?>("--format") { Description = "gguf or safetensors (default: from the output's name)" };
        var type = new Option<string>("--type") { Description = "weight type of the merged model (F32, F16, BF16, Q8_0, ...)", DefaultValueFactory = _ => "F32" };
        var cmd = new Command("merge", "Merge LoRA adapters into a model's weights: W + scale · (alpha/r) · B A for every adapted projection.") { model, adapters, output, format, type };
        cmd.SetAction(r =>
        {
            string outPath = r.GetRequiredValue(output);
            var fmt = r.GetValue(format) is string f ? ModelCommands.ParseFormat(f) : outPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? ModelFormat.Gguf : ModelFormat.SafeTensors;
            CanonicalModel merged;
            string name;
            using (var package = ModelPackage.Open(r.GetRequiredValue(model)))
            {
                merged = package.ToCanonical();
                name = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(package.Path));
            }
            foreach (var spec in r.GetValue(adapters) ?? [])
            {
                var (path, scale) = ModelCommands.ParseLora(spec);
                merged = LoraAdapter.Read(path, merged.Config).MergeInto(merged, scale);
                Console.Error.WriteLine($"merged {path}, scale {scale}");
            }
            ModelPackage.Save(merged, outPath, fmt, ModelPackage.ParseType(r.GetRequiredValue(type)), name + "-merged");
            Console.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }

    private static Command Convert()
    {
        var adapter = new Argument<string>("ADAPTER") { Description = "a GGUF adapter file or a PEFT folder" };
        var model = new Option<string>("--model", "-m") { Description = "the base model the adapter is for (its shapes, and the Q/K row order of GGUF)", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "a .gguf file (llama.cpp's adapter format) or a folder (PEFT)", Required = true };
        var cmd = new Command("convert", "Convert a LoRA adapter between a PEFT folder and llama.cpp's GGUF adapter format.") { adapter, model, output };
        cmd.SetAction(r =>
        {
            LlamaConfig config;
            using (var package = ModelPackage.Open(r.GetRequiredValue(model), loadTokenizer: false)) config = package.Config;
            var a = LoraAdapter.Read(r.GetRequiredValue(adapter), config);
            string outPath = r.GetRequiredValue(output);
            if (outPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) a.WriteGguf(outPath, config);
            else a.WritePeft(outPath, r.GetRequiredValue(model));
            Console.WriteLine($"wrote {outPath}: rank {a.Rank}, scale {a.Scale}, {a.Weights.Count} adapted projections");
            return 0;
        });
        return cmd;
    }
}
