// duet generate / chat / bench: running a model.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Duet.Inference;
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Cli.Commands;

internal static class RunCommands
{
    public static IEnumerable<Command> Create() => [Generate(), Chat(), Bench()];

    private sealed class SamplingOptionsSet
    {
        public Option<float> Temp { get; } = new("--temp") { Description = "temperature; 0 is greedy and deterministic", DefaultValueFactory = _ => 0.8f };
        public Option<int> TopK { get; } = new("--top-k") { Description = "keep the k most likely tokens (0: all)", DefaultValueFactory = _ => 40 };
        public Option<float> TopP { get; } = new("--top-p") { Description = "keep the smallest set with this much probability", DefaultValueFactory = _ => 0.95f };
        public Option<float> MinP { get; } = new("--min-p") { Description = "drop tokens below this fraction of the top token's probability", DefaultValueFactory = _ => 0.05f };
        public Option<float> Repeat { get; } = new("--repeat-penalty") { Description = "penalty for tokens among the last 64 (1: off)", DefaultValueFactory = _ => 1.0f };
        public Option<ulong> Seed { get; } = new("--seed") { Description = "random seed", DefaultValueFactory = _ => 0x5EED };

        public IEnumerable<Option> All => [Temp, TopK, TopP, MinP, Repeat, Seed];

        public SamplingOptions Read(ParseResult r) => new()
        {
            Temperature = r.GetValue(Temp), TopK = r.GetValue(TopK), TopP = r.GetValue(TopP), MinP = r.GetValue(MinP),
            RepeatPenalty = r.GetValue(Repeat), Seed = r.GetValue(Seed),
        };
    }

    private static Option<string> ModelOption() => new("--model", "-m") { Description = "a .gguf file or an HF folder (config.json + safetensors + tokenizer)", Required = true };

    private static (LlamaModel, Tokenizer) Load(string path) => ModelLoader.Load(path);

    private static Command Generate()
    {
        var model = ModelOption();
        var prompt = new Option<string>("--prompt", "-p") { Description = "prompt text", Required = true };
        var n = new Option<int>("-n") { Description = "tokens to generate at most", DefaultValueFactory = _ => 128 };
        var threads = ModelCommands.ThreadsOption();
        var ids = new Option<bool>("--print-ids") { Description = "print the generated token ids, one line, instead of text" };
        var math = ModelCommands.MathOption();
        var sampling = new SamplingOptionsSet();
        var cmd = new Command("generate", "Generate text from a prompt, streamed to stdout.") { model, prompt, n, threads, ids, math };
        foreach (var o in sampling.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            var (m, tok) = Load(r.GetRequiredValue(model));
            m.QuantizedMath = r.GetValue(math);
            using (m)
            {
                int max = r.GetValue(n);
                if (max < 0) throw new ArgumentException("-n must be >= 0");
                var promptIds = tok.Encode(r.GetRequiredValue(prompt), addSpecialTokens: true);
                var generated = new List<int>();
                var gen = new Generator(m, tok);
                foreach (var piece in gen.Generate(promptIds, max, sampling.Read(r), onToken: generated.Add))
                    if (!r.GetValue(ids)) { Console.Write(piece); Console.Out.Flush(); }
                Console.WriteLine(r.GetValue(ids) ? string.Join(' ', generated.Where(t => !gen.StopTokens.Contains(t))) : "");
            }
            return 0;
        });
        return cmd;
    }

    private static Command Chat()
    {
        var model = ModelOption();
        var system = new Option<string?>("--system") { Description = "system prompt" };
        var n = new Option<int>("-n") { Description = "tokens per reply at most", DefaultValueFactory = _ => 512 };
        var threads = ModelCommands.ThreadsOption();
        var math = ModelCommands.MathOption();
        var sampling = new SamplingOptionsSet();
        var cmd = new Command("chat", "Chat with a model in the terminal, using its chat template (ChatML by default). Empty line or Ctrl-D ends.") { model, system, n, threads, math };
        foreach (var o in sampling.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            var (m, tok) = Load(r.GetRequiredValue(model));
            m.QuantizedMath = r.GetValue(math);
            using (m)
            {
                var prompts = new PromptFormatter(tok);
                var messages = new List<ChatTurn>();
                if (r.GetValue(system) is string s) messages.Add(new ChatTurn("system", s));
                var gen = new Generator(m, tok);
                var options = sampling.Read(r);
                Console.Error.WriteLine($"chat template: {prompts.TemplateName}; an empty line ends the chat");
                while (true)
                {
                    Console.Error.Write("> ");
                    var line = Console.ReadLine();
                    if (string.IsNullOrWhiteSpace(line)) break;
                    messages.Add(new ChatTurn("user", line));
                    var prompt = prompts.Render(messages);
                    var ids = tok.Encode(prompt, parseSpecial: true);
                    if (ids.Length >= m.Config.ContextLength) { Console.Error.WriteLine("the conversation no longer fits in the context"); break; }
                    var reply = new System.Text.StringBuilder();
                    foreach (var generated in gen.Generate(ids, Math.Min(r.GetValue(n), m.Config.ContextLength - ids.Length), options))
                    {
                        var piece = reply.Length == 0 ? generated.TrimStart() : generated; // a reply starts at its first word
                        Console.Write(piece);
                        reply.Append(piece);
                    }
                    Console.WriteLine();
                    messages.Add(new ChatTurn("assistant", reply.ToString()));
                }
            }
            return 0;
        });
        return cmd;
    }

    private static Command Bench()
    {
        var model = ModelOption();
        var p = new Option<int>("-p") { Description = "prompt tokens to process", DefaultValueFactory = _ => 512 };
        var n = new Option<int>("-n") { Description = "tokens to generate", DefaultValueFactory = _ => 128 };
        var reps = new Option<int>("-r") { Description = "repetitions", DefaultValueFactory = _ => 3 };
        var threads = ModelCommands.ThreadsOption();
        var json = new Option<bool>("--json") { Description = "one JSON line per test, as llama-bench -o jsonl" };
        var math = ModelCommands.MathOption();
        var cmd = new Command("bench", "Prompt processing (pp) and generation (tg) speed in tokens/s, as llama-bench reports them.") { model, p, n, reps, threads, json, math };
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            var path = r.GetRequiredValue(model);
            var cpu = Duet.Tensors.Kernels.CpuProfile.Current;
            Console.Error.WriteLine($"cpu: {cpu.Describe()}");
            using var m = LlamaModel.Load(path);
            m.QuantizedMath = r.GetValue(math);
            int np = r.GetValue(p), ng = r.GetValue(n), reps2 = Math.Max(1, r.GetValue(reps));
            var rng = new Random(42);
            var state = m.CreateState(Math.Max(np, ng) + 1);
            foreach (var (name, count, prompt) in new[] { ($"pp{np}", np, true), ($"tg{ng}", ng, false) })
            {
                if (count <= 0) continue;
                var rates = new List<double>();
                for (int rep = -1; rep < reps2; rep++) // rep -1 warms up (page faults on the mapped weights, JIT tiers)
                {
                    state.Reset();
                    var promptIds = prompt ? Enumerable.Range(0, count).Select(_ => rng.Next(m.Config.Vocab)).ToArray() : [];
                    var sw = Stopwatch.StartNew();
                    if (prompt) m.Prefill(state, promptIds);
                    int token = 1;
                    for (int i = 0; i < count && !prompt; i++)
                    {
                        m.Forward(state, token);
                        token = Sampler.Argmax(state.Logits);
                    }
                    if (rep >= 0) rates.Add(count / sw.Elapsed.TotalSeconds);
                }
                double mean = rates.Average(), sd = Math.Sqrt(rates.Sum(x => (x - mean) * (x - mean)) / Math.Max(1, rates.Count - 1));
                if (r.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["model_filename"] = path, ["model_type"] = m.Weights.MainType.ToString(), ["n_threads"] = r.GetValue(threads),
                        ["math"] = m.QuantizedMath.ToString().ToLowerInvariant(), ["cpu"] = cpu.Name,
                        ["n_prompt"] = prompt ? count : 0, ["n_gen"] = prompt ? 0 : count, ["avg_ts"] = Math.Round(mean, 3), ["stddev_ts"] = Math.Round(sd, 3),
                    }));
                else Console.WriteLine($"{Path.GetFileName(path)} {m.Weights.MainType} t={r.GetValue(threads)}{(m.QuantizedMath == Duet.Tensors.Kernels.QuantizedMath.Float ? " math=float" : "")} {name}: {mean:F2} ± {sd:F2} tokens/s");
            }
            return 0;
        });
        return cmd;
    }
}
