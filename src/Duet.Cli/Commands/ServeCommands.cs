// duet serve: the OpenAI-compatible HTTP server (Duet.Server) with the web chat page at /.
using System.CommandLine;
using Duet.Server;

namespace Duet.Cli.Commands;

internal static class ServeCommands
{
    public static Command Serve()
    {
        var model = new Option<string>("--model", "-m") { Description = "a .gguf file or an HF folder (config.json + safetensors + tokenizer)", Required = true };
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
        var cmd = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API, with a web chat page at /.")
            { model, host, port, apiKey, parallel, ctx, name, threads, maxBody, math, lora };
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
            string path = r.GetRequiredValue(model);
            if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"{path}: no such file or folder");
            var key = r.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("DUET_API_KEY");
            var options = new ServerOptions
            {
                ModelPath = path, Host = h, Port = p, ApiKey = string.IsNullOrEmpty(key) ? null : key, Parallel = np, Context = r.GetValue(ctx),
                ModelName = r.GetValue(name), MaxBodyBytes = r.GetValue(maxBody), QuantizedMath = r.GetValue(math),
                Adapters = (r.GetValue(lora) ?? []).Select(ModelCommands.ParseLora).ToList(),
            };
            await DuetServer.RunAsync(options, Console.Error.WriteLine);
            return 0;
        });
        return cmd;
    }
}
