// duet serve: the OpenAI-compatible HTTP server (Duet.Server), with the Ollama API and the web chat page at /;
// one model or several (--model NAME=PATH repeated, --models DIR), loaded on first use and unloaded when idle.
using System.CommandLine;
using Duet.Server;

namespace Duet.Cli.Commands;

internal static class ServeCommands
{
    public static Command Serve()
    {
        var model = new Option<string[]>("--model", "-m")
        {
            Description = "a .gguf file or an HF folder (config.json + safetensors + tokenizer), or NAME=PATH; repeat to serve several (the first is the default); "
                + "PATH+ADAPTER[:SCALE] serves the model with LoRA adapters (GGUF or PEFT) applied, under its own name",
            AllowMultipleArgumentsPerToken = false,
        };
        var models = new Option<string?>("--models") { Description = "also serve every .gguf file and HF folder in this folder, named by their file names" };
        var keepAlive = new Option<string?>("--keep-alive") { Description = "unload a model idle this long (\"5m\", \"30s\", \"-1\": never); default: never with one model, 5m with several" };
        var maxModels = new Option<int>("--max-models") { Description = "models loaded at once (loading another unloads the one idle the longest)", DefaultValueFactory = _ => 2 };
        var host = new Option<string>("--host") { Description = "address to listen on (loopback by default; 0.0.0.0 exposes the server to the network)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "require 'Authorization: Bearer KEY' on /v1, /tokenize and /detokenize (also read from DUET_API_KEY)" };
        var parallel = new Option<int>("--parallel", "-np") { Description = "sequences decoded together in one batch (slots)", DefaultValueFactory = _ => 4 };
        var ctx = new Option<int?>("--ctx", "-c") { Description = "context per sequence, prompt + reply (default: the model's, at most 4096)" };
        var name = new Option<string?>("--alias") { Description = "model id shown by /v1/models (default: the file name)" };
        var threads = ModelCommands.ThreadsOption();
        var maxBody = new Option<long>("--max-body") { Description = "largest request body in bytes", DefaultValueFactory = _ => 4 << 20 };
        var math = ModelCommands.MathOption();
        var lora = ModelCommands.LoraOption();
        var draft = new Option<string?>("--draft", "-md") { Description = "speculative decoding for the first model with this draft model (a smaller model with the same tokenizer); replies are the same as without it" };
        var lookup = new Option<bool>("--lookup") { Description = "speculative decoding by prompt lookup (drafts from earlier occurrences of the last n-gram; no draft model)" };
        var draftMax = new Option<int>("--draft-max") { Description = "tokens drafted per step at most (as llama.cpp)", DefaultValueFactory = _ => 16 };
        var draftPMin = new Option<float>("--draft-p-min") { Description = "the draft model stops drafting where its best token is less likely than this (as llama.cpp; a random-weight draft needs 0)", DefaultValueFactory = _ => 0.75f };
        var cmd = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API, with a web chat page at /.")
            { model, models, keepAlive, maxModels, host, port, apiKey, parallel, ctx, name, threads, maxBody, math, lora, draft, lookup, draftMax, draftPMin };
        var cache = new ModelCommands.CacheTypeOptions();
        foreach (var o in cache.All) cmd.Options.Add(o);
        cmd.SetAction(async (r, cancel) =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            int p = r.GetValue(port);
            if (p is < 0 or > 65535) throw new ArgumentException($"--port {p}: must be 0..65535");
            string h = r.GetRequiredValue(host);
            if (h != "localhost" && !System.Net.IPAddress.TryParse(h, out _)) throw new ArgumentException($"--host {h}: not an IP address (or localhost)");
            int np = r.GetValue(parallel);
            if (np is < 1 or > 32) throw new ArgumentException($"--parallel {np}: must be 1..32");
            if (r.GetValue(ctx) is int c && c < 2) throw new ArgumentException($"--ctx {c}: must be at least 2");
            var specs = new List<(string? Name, string Path)>();
            foreach (var spec in r.GetValue(model) ?? [])
            {
                int eq = spec.IndexOf('=');
                specs.Add(eq > 0 && !File.Exists(spec) && !Directory.Exists(spec) ? (spec[..eq], spec[(eq + 1)..]) : (null, spec));
            }
            if (r.GetValue(models) is string dir)
            {
                if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"--models {dir}: no such folder");
                foreach (var entry in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
                    if (entry.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || File.Exists(Path.Combine(entry, "config.json"))) specs.Add((null, entry));
            }
            if (specs.Count == 0) throw new ArgumentException("give --model PATH (or NAME=PATH, repeated) or --models DIR");
            foreach (var (_, spec) in specs)
                foreach (var pth in spec.Split('+').Select((x, i) => i == 0 ? x : x.LastIndexOf(':') is int c and > 0 && float.TryParse(x[(c + 1)..], System.Globalization.CultureInfo.InvariantCulture, out _) ? x[..c] : x))
                    if (!File.Exists(pth) && !Directory.Exists(pth)) throw new FileNotFoundException($"{pth}: no such file or folder");
            var named = specs.Select((s, i) => (Name: s.Name ?? (i == 0 && r.GetValue(name) is string alias ? alias : ModelHost.ModelNameOf(s.Path.Split('+')[0])), s.Path)).ToList();
            if (named.Select(m => m.Name).Distinct().Count() != named.Count) throw new ArgumentException($"two models have the same name ({string.Join(", ", named.Select(m => m.Name))}): name them with NAME=PATH");
            TimeSpan? keep = specs.Count > 1 ? TimeSpan.FromMinutes(5) : null;
            if (r.GetValue(keepAlive) is string ka)
            {
                try { keep = ServerOptions.ParseDuration(ka); }
                catch (FormatException e) { throw new ArgumentException($"--keep-alive {e.Message}"); }
                if (keep < TimeSpan.Zero) keep = null;
            }
            if (r.GetValue(maxModels) < 1) throw new ArgumentException("--max-models must be at least 1");
            if (r.GetValue(draft) is string d && !File.Exists(d) && !Directory.Exists(d)) throw new FileNotFoundException($"--draft {d}: no such file or folder");
            if (r.GetValue(draft) is not null && r.GetValue(lookup)) throw new ArgumentException("--draft and --lookup: give one of them");
            if (r.GetValue(draftMax) is < 1 or > 64) throw new ArgumentException($"--draft-max {r.GetValue(draftMax)}: must be 1..64");
            var key = r.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("DUET_API_KEY");
            var options = new ServerOptions
            {
                ModelPath = named[0].Path, ExtraModels = named.Skip(1).ToList(), KeepAlive = keep, MaxLoadedModels = r.GetValue(maxModels), Host = h, Port = p, ApiKey = string.IsNullOrEmpty(key) ? null : key, Parallel = np, Context = r.GetValue(ctx),
                ModelName = named[0].Name, MaxBodyBytes = r.GetValue(maxBody), QuantizedMath = r.GetValue(math),
                KeyCacheType = r.GetValue(cache.Keys), ValueCacheType = r.GetValue(cache.Values),
                Adapters = (r.GetValue(lora) ?? []).Select(ModelCommands.ParseLora).ToList(),
                DraftPath = r.GetValue(draft), Lookup = r.GetValue(lookup), DraftMax = r.GetValue(draftMax), DraftPMin = r.GetValue(draftPMin),
            };
            await DuetServer.RunAsync(options, Console.Error.WriteLine);
            return 0;
        });
        return cmd;
    }
}
