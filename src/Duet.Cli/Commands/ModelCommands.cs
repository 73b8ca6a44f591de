// duet init / convert / quantize / logits: making, converting and checking model files.
using System.CommandLine;
using System.Globalization;
using Duet.Model;
using Duet.Tensors;
using Duet.Tensors.Parallel;
using Duet.Tokenizers;
using Duet.Formats;

namespace Duet.Cli.Commands;

internal static class ModelCommands
{
    public static IEnumerable<Command> Create() => [Init(), Convert(), Quantize(), Logits()];

    internal static Option<int> ThreadsOption() => new("--threads", "-t")
    {
        Description = "worker threads (default: all cores)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    /// <summary>--cache-type-k / --cache-type-v: the KV cache's element types (llama.cpp's options of those names).</summary>
    internal sealed class CacheTypeOptions
    {
        public Option<KvCacheType> Keys { get; } = new("--cache-type-k", "-ctk")
        {
            Description = "KV cache type for keys: f32 (the values as computed), f16 (half the memory) or q8_0 (34 bytes per 32 values, llama.cpp's q8_0)",
            DefaultValueFactory = _ => KvCacheType.F32,
        };
        public Option<KvCacheType> Values { get; } = new("--cache-type-v", "-ctv")
        {
            Description = "KV cache type for values: f32, f16 or q8_0 (as --cache-type-k)",
            DefaultValueFactory = _ => KvCacheType.F32,
        };

        public IEnumerable<Option> All => [Keys, Values];

        /// <summary>Sets the cache types of the states the model (and a draft model, if any) will create.</summary>
        public void Apply(ParseResult r, LlamaModel m, LlamaModel? draft = null)
        {
            foreach (var x in draft is null ? [m] : new[] { m, draft })
            {
                x.KeyCacheType = r.GetValue(Keys);
                x.ValueCacheType = r.GetValue(Values);
                // A q8_0 cache needs head dims in blocks of 32: say so now rather than at the first state.
                if ((x.KeyCacheType == KvCacheType.Q8_0 || x.ValueCacheType == KvCacheType.Q8_0) && x.Config.HeadDim % 32 != 0)
                    throw new ArgumentException($"a q8_0 KV cache needs a head dimension that is a multiple of 32 (this model's is {x.Config.HeadDim}): use f16 or f32");
            }
        }
    }

    /// <summary>--math: how quantized weights meet activations (<see cref="Duet.Tensors.Kernels.QuantizedMath"/>).</summary>
    internal static Option<Duet.Tensors.Kernels.QuantizedMath> MathOption() => new("--math")
    {
        Description = "quantized weights: integer (activations rounded to 8 bits, as llama.cpp; fastest) or float "
            + "(weights dequantized, float activations, as PyTorch runs a dequantized GGUF; only the weights' rounding, slower prompts)",
        DefaultValueFactory = _ => Duet.Tensors.Kernels.QuantizedMath.Integer,
    };

    /// <summary>--lora FILE[:SCALE] (repeatable): LoRA adapters applied at run time, unmerged (GGUF adapter files or PEFT folders).</summary>
    internal static Option<string[]> LoraOption() => new("--lora")
    {
        Description = "a LoRA adapter to apply at run time without merging: a GGUF adapter (llama.cpp's) or a PEFT folder, optionally :SCALE (default 1); repeatable",
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>Reads each --lora FILE[:SCALE] and applies it to the model.</summary>
    internal static void ApplyLora(LlamaModel model, string[]? specs)
    {
        foreach (var spec in specs ?? [])
        {
            var (path, scale) = ParseLora(spec);
            model.AddAdapter(LoraAdapter.Read(path, model.Config), scale);
            Console.Error.WriteLine($"LoRA adapter {path} applied, scale {scale.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// <summary>FILE or FILE:SCALE (a path may hold ':' itself: the scale is what follows the last one, if it is a number).</summary>
    internal static (string Path, float Scale) ParseLora(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && float.TryParse(spec[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out float scale)) return (spec[..colon], scale);
        return (spec, 1f);
    }

    internal static void UseThreads(int threads)
    {
        if (threads < 1 || threads > 1024) throw new ArgumentException($"--threads {threads}: must be between 1 and 1024");
        if (WorkerPool.Shared.Threads != threads) WorkerPool.SetSharedThreads(threads);
    }

    /// <summary>--format: gguf or safetensors (any case).</summary>
    internal static ModelFormat ParseFormat(string s) => s.ToLowerInvariant() switch
    {
        "gguf" => ModelFormat.Gguf,
        "safetensors" => ModelFormat.SafeTensors,
        _ => throw new ArgumentException($"--format '{s}': gguf or safetensors"),
    };

    /// <summary>Saves a model the CLI made or rewrote; a GGUF is named after its file.</summary>
    private static void Save(CanonicalModel m, string output, ModelFormat format, GgmlType type) =>
        ModelPackage.Save(m, output, format, type, Path.GetFileNameWithoutExtension(output));

    /// <summary>Loads any model with its tokenizer, brings it to canonical form and writes it again (convert and quantize).</summary>
    private static void Rewrite(string inPath, string outPath, ModelFormat format, GgmlType type)
    {
        using var package = ModelPackage.Open(inPath);
        Save(package.ToCanonical(), outPath, format, type);
        Console.Error.WriteLine($"wrote {outPath}");
    }

    private static Command Init()
    {
        Option<int> Int(string name, string desc, int? def = null)
        {
            var o = new Option<int>(name) { Description = desc };
            if (def is int d) o.DefaultValueFactory = _ => d; else o.Required = true;
            return o;
        }
        var dim = Int("--dim", "model width"); var layers = Int("--layers", "transformer blocks"); var heads = Int("--heads", "attention heads");
        var kvHeads = Int("--kv-heads", "key/value heads (grouped-query attention when fewer than --heads)");
        var ffn = Int("--ffn", "SwiGLU hidden width"); var vocab = Int("--vocab", "vocabulary size (ignored with --tokenizer)", 32000);
        var ctx = Int("--ctx", "context length", 2048);
        var seed = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 1 };
        var theta = new Option<float>("--rope-theta") { Description = "RoPE base", DefaultValueFactory = _ => 10000f };
        var eps = new Option<float>("--norm-eps") { Description = "RMSNorm epsilon", DefaultValueFactory = _ => 1e-5f };
        var tied = new Option<bool>("--tied") { Description = "share the embedding and output matrices" };
        var std = new Option<float>("--std") { Description = "standard deviation of the random matrices", DefaultValueFactory = _ => 0.02f };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "embed this tokenizer (its size sets the vocabulary); default: a placeholder SentencePiece vocabulary" };
        var output = new Option<string>("--out", "-o") { Description = "output .gguf file, or folder for safetensors", Required = true };
        var format = new Option<string>("--format") { Description = "gguf or safetensors", DefaultValueFactory = _ => "gguf" };
        var type = new Option<string>("--type") { Description = "F32, F16 (also BF16, Q8_0, Q4_0 for GGUF)", DefaultValueFactory = _ => "F32" };
        var cmd = new Command("init", "Write a random-weight LLaMA model (for tests and benchmarks).")
        {
            dim, layers, heads, kvHeads, ffn, vocab, ctx, seed, theta, eps, tied, std, tokenizer, output, format, type,
        };
        cmd.SetAction(r =>
        {
            var fmt = ParseFormat(r.GetValue(format)!);
            var t = ModelPackage.ParseType(r.GetValue(type)!);
            Tokenizer? tok = r.GetValue(tokenizer) is string tp ? Tokenizer.Load(tp) : null;
            int d = r.GetValue(dim), h = r.GetValue(heads);
            if (h <= 0 || d % h != 0) throw new ArgumentException($"--dim {d} must be a positive multiple of --heads {h}");
            var c = new LlamaConfig
            {
                Dim = d, Layers = r.GetValue(layers), Heads = h, KvHeads = r.GetValue(kvHeads), HeadDim = d / h, RopeDim = d / h,
                FfnDim = r.GetValue(ffn), Vocab = tok?.VocabSize ?? r.GetValue(vocab), ContextLength = r.GetValue(ctx),
                RopeTheta = r.GetValue(theta), NormEps = r.GetValue(eps), TiedEmbeddings = r.GetValue(tied),
                RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
            };
            c.Validate();
            var m = CanonicalModel.Random(c, r.GetValue(seed), tok, r.GetValue(std));
            Save(m, r.GetRequiredValue(output), fmt, t);
            Console.Error.WriteLine($"wrote {r.GetRequiredValue(output)}");
            return 0;
        });
        return cmd;
    }

    private static Command Convert()
    {
        var input = new Argument<string>("input") { Description = "a .gguf file or an HF folder (config.json + safetensors)" };
        var output = new Argument<string>("output") { Description = "output .gguf file, or folder for safetensors" };
        var format = new Option<string>("--format") { Description = "gguf or safetensors (default: from the output name)" };
        var type = new Option<string>("--type") { Description = "F32, F16, BF16 (safetensors or GGUF); Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1 (GGUF)", DefaultValueFactory = _ => "F16" };
        var cmd = new Command("convert", "Convert a model between GGUF and HF safetensors (the Q/K row permutation is applied or undone).") { input, output, format, type };
        cmd.SetAction(r =>
        {
            var outPath = r.GetRequiredValue(output);
            var fmt = r.GetValue(format) is string f ? ParseFormat(f) : outPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? ModelFormat.Gguf : ModelFormat.SafeTensors;
            Rewrite(r.GetRequiredValue(input), outPath, fmt, ModelPackage.ParseType(r.GetValue(type)!));
            return 0;
        });
        return cmd;
    }

    private static Command Quantize()
    {
        var input = new Argument<string>("input") { Description = "a .gguf file or an HF folder" };
        var output = new Argument<string>("output") { Description = "output .gguf file" };
        var type = new Option<string>("--type") { Description = "Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, F16, BF16, F32", Required = true };
        var cmd = new Command("quantize", "Quantize a model's matrices into a GGUF file (norms stay F32; rows that are not a whole number of blocks fall back to F16).") { input, output, type };
        cmd.SetAction(r =>
        {
            Rewrite(r.GetRequiredValue(input), r.GetRequiredValue(output), ModelFormat.Gguf, ModelPackage.ParseType(r.GetRequiredValue(type)));
            return 0;
        });
        return cmd;
    }

    private static Command Logits()
    {
        var model = new Option<string>("--model", "-m") { Description = "a .gguf file or an HF folder", Required = true };
        var ids = new Option<string>("--ids") { Description = "token ids separated by spaces", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "float32 .npy file of shape [T, vocab]", Required = true };
        var threads = ThreadsOption();
        var math = MathOption();
        var cmd = new Command("logits", "Write the logits at every position of a token sequence (teacher forcing) as .npy.") { model, ids, output, threads, math };
        cmd.SetAction(r =>
        {
            UseThreads(r.GetValue(threads));
            var tokens = r.GetRequiredValue(ids).Split([' ', ','], StringSplitOptions.RemoveEmptyEntries)
                .Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new FormatException($"--ids: '{s}' is not an integer")).ToArray();
            if (tokens.Length == 0) throw new ArgumentException("--ids: no token ids");
            using var package = ModelPackage.Open(r.GetRequiredValue(model), loadTokenizer: false);
            var m = package.Model;
            m.QuantizedMath = r.GetValue(math);
            var logits = m.LogitsOf(tokens);
            NpyFile.WriteFloat32(r.GetRequiredValue(output), logits);
            return 0;
        });
        return cmd;
    }
}
