// duet generate / chat / bench: running a model.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Duet.Inference;
using Duet.Inference.Serving;
using Duet.Model;
using Duet.Tokenizers;
using Duet.Training;

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

    /// <summary>Speculative decoding on the command line (llama.cpp's --model-draft, --draft-max, --draft-p-min, lookup decoding).</summary>
    private sealed class SpeculationOptionsSet
    {
        public Option<string?> Draft { get; } = new("--draft", "-md")
        {
            Description = "speculative decoding with this draft model (.gguf or HF folder; a smaller model with the same tokenizer): it drafts tokens, the model checks them in one batched pass; the output stays the model's own, token for token (docs/serving.md)",
        };
        public Option<bool> Lookup { get; } = new("--lookup")
        {
            Description = "speculative decoding by prompt lookup: drafts are the tokens that followed the last n-gram where it occurred earlier in the prompt or reply (no draft model; pays off when the reply quotes its input)",
        };
        public Option<int> DraftMax { get; } = new("--draft-max") { Description = "tokens drafted per step at most (as llama.cpp)", DefaultValueFactory = _ => 16 };
        public Option<float> DraftPMin { get; } = new("--draft-p-min") { Description = "the draft model stops drafting where its best token is less likely than this (as llama.cpp; a random-weight draft needs 0)", DefaultValueFactory = _ => 0.75f };

        public IEnumerable<Option> All => [Draft, Lookup, DraftMax, DraftPMin];

        /// <summary>The engine's speculation settings, or null; a draft model is loaded and owned by the caller (disposed with it).</summary>
        public Speculation? Read(ParseResult r, Tokenizer tok, out LlamaModel? draftModel)
        {
            draftModel = null;
            var path = r.GetValue(Draft);
            bool lookup = r.GetValue(Lookup);
            if (path is null && !lookup) return null;
            if (path is not null && lookup) throw new ArgumentException("--draft and --lookup: give one of them");
            if (path is not null) draftModel = Speculation.LoadDraft(path, tok);
            return new Speculation { Draft = draftModel, MaxTokens = r.GetValue(DraftMax), MinProbability = r.GetValue(DraftPMin) };
        }
    }

    private static Option<string> ModelOption() => new("--model", "-m") { Description = "a .gguf file or an HF folder (config.json + safetensors + tokenizer)", Required = true };

    private static (LlamaModel, Tokenizer) Load(string path) => ModelLoader.Load(path);

    private static Option<string[]> StopOption() => new("--stop")
    {
        Description = "end the output before this string (repeat for several)", AllowMultipleArgumentsPerToken = false, DefaultValueFactory = _ => [],
    };

    // One slot of its own, batch-invariant kernels off: the fast prompt kernels, and the same tokens as
    // LlamaModel.Prefill then Forward (the engine's rows of one sequence run the same kernels). With speculation the
    // generating steps run the invariant kernels (the prompt keeps the fast ones): the same tokens for quantized
    // models, where those are the single-token kernels; for float weights, the tokens `duet serve` gives.
    private static InferenceEngine Engine(LlamaModel m, Tokenizer tok, int context, Speculation? speculation = null) =>
        new(m, tok, new EngineOptions { Slots = 1, Context = Math.Clamp(context, 2, m.Config.ContextLength), BatchInvariant = false, Speculation = speculation });

    private static void PrintSpeculation(InferenceEngine engine)
    {
        var mt = engine.Metrics;
        if (engine.Options.Speculation is null) return;
        Console.Error.WriteLine($"[speculative decoding ({(engine.Options.Speculation.Draft is null ? "prompt lookup" : "draft model")}): " +
            $"{mt.DraftedTokensTotal} tokens drafted, {mt.AcceptedDraftTokensTotal} accepted ({mt.DraftAcceptanceRate:P1}); " +
            $"{mt.CompletionTokensTotal} tokens in {mt.StepsTotal} steps]");
    }

    private static Command Generate()
    {
        var model = ModelOption();
        var prompt = new Option<string>("--prompt", "-p") { Description = "prompt text", Required = true };
        var n = new Option<int>("-n") { Description = "tokens to generate at most", DefaultValueFactory = _ => 128 };
        var threads = ModelCommands.ThreadsOption();
        var ids = new Option<bool>("--print-ids") { Description = "print the generated token ids, one line, instead of text" };
        var math = ModelCommands.MathOption();
        var stop = StopOption();
        var schema = new Option<string?>("--json-schema") { Description = "constrain the output to JSON valid against this schema (the schema's text, or @FILE)" };
        var json = new Option<bool>("--json") { Description = "constrain the output to a JSON object" };
        var sampling = new SamplingOptionsSet();
        var lora = ModelCommands.LoraOption();
        var speculation = new SpeculationOptionsSet();
        var timings = new Option<bool>("--timings") { Description = "print on stderr the prompt and generation speeds (and with --draft or --lookup, the drafts taken)" };
        var cache = new ModelCommands.CacheTypeOptions();
        var cmd = new Command("generate", "Generate text from a prompt, streamed to stdout.") { model, prompt, n, threads, ids, math, stop, schema, json, lora, timings };
        foreach (var o in sampling.All) cmd.Options.Add(o);
        foreach (var o in speculation.All) cmd.Options.Add(o);
        foreach (var o in cache.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            int max = r.GetValue(n);
            if (max < 0) throw new ArgumentException("-n must be >= 0");
            var (m, tok) = Load(r.GetRequiredValue(model));
            ModelCommands.ApplyLora(m, r.GetValue(lora));
            m.QuantizedMath = r.GetValue(math);
            using (m)
            {
                var promptIds = tok.Encode(r.GetRequiredValue(prompt), addSpecialTokens: true);
                if (promptIds.Length == 0) throw new ArgumentException("the prompt has no tokens");
                if (promptIds.Length >= m.Config.ContextLength)
                    throw new ArgumentException($"the prompt ({promptIds.Length} tokens) does not fit in the context ({m.Config.ContextLength} tokens)");
                var generated = new List<int>();
                var spec = speculation.Read(r, tok, out var draftModel);
                using var ownedDraft = draftModel;
                cache.Apply(r, m, draftModel);
                if (max > 0)
                {
                    using var engine = Engine(m, tok, promptIds.Length + max, spec);
                    var clock = Stopwatch.StartNew();
                    TimeSpan first = default;
                    var request = new GenerationRequest
                    {
                        Prompt = promptIds, MaxTokens = Math.Min(max, engine.Context - promptIds.Length), Sampling = sampling.Read(r),
                        Stop = r.GetValue(stop) ?? [], Constraint = Constraint(r.GetValue(schema), r.GetValue(json), tok, engine), PenalizePrompt = true,
                    };
                    var stream = engine.Submit(request);
                    foreach (var t in stream.ReadBlocking())
                    {
                        if (generated.Count == 0) first = clock.Elapsed;
                        generated.Add(t.Token);
                        if (!r.GetValue(ids)) { Console.Write(t.Text); Console.Out.Flush(); }
                    }
                    var total = clock.Elapsed;
                    if (!r.GetValue(ids)) Console.Write(stream.Result.GetAwaiter().GetResult().TrailingText);
                    if (r.GetValue(timings))
                    {
                        Console.Error.WriteLine($"[prompt {promptIds.Length} tokens, {first.TotalSeconds:F3} s to the first token; generation {generated.Count} tokens, " +
                            $"{(generated.Count > 1 ? (generated.Count - 1) / Math.Max(1e-9, (total - first).TotalSeconds) : 0):F2} tokens/s after the first]");
                        PrintSpeculation(engine);
                    }
                }
                Console.WriteLine(r.GetValue(ids) ? string.Join(' ', generated) : "");
            }
            return 0;
        });
        return cmd;
    }

    private static Duet.Inference.Constrained.JsonConstraint? Constraint(string? schema, bool anyObject, Tokenizer tok, InferenceEngine engine)
    {
        if (schema is null && !anyObject) return null;
        if (schema is not null && anyObject) throw new ArgumentException("--json and --json-schema: give one of them");
        JsonElement? parsed = null;
        if (schema is not null)
        {
            var text = schema.StartsWith('@') ? File.ReadAllText(schema[1..]) : schema;
            try { parsed = JsonDocument.Parse(text).RootElement.Clone(); }
            catch (JsonException e) { throw new ArgumentException($"--json-schema is not JSON: {e.Message}"); }
        }
        try { return Duet.Inference.Constrained.JsonConstraint.Create(tok, parsed, [.. engine.StopTokens], engine.Model.Config.Vocab); }
        catch (Duet.Inference.Constrained.SchemaException e) { throw new ArgumentException($"--json-schema: {e.Message}"); }
    }

    private static Command Chat()
    {
        var model = ModelOption();
        var system = new Option<string?>("--system") { Description = "system prompt" };
        var n = new Option<int>("-n") { Description = "tokens per reply at most", DefaultValueFactory = _ => 512 };
        var ctx = new Option<int>("--ctx-size", "-c") { Description = "context of the conversation in tokens (default: the model's, at most 4096)" };
        var threads = ModelCommands.ThreadsOption();
        var math = ModelCommands.MathOption();
        var stop = StopOption();
        var timings = new Option<bool>("--timings") { Description = "after each reply, print on stderr the prompt tokens computed and cached and the speeds" };
        var sampling = new SamplingOptionsSet();
        var lora = ModelCommands.LoraOption();
        var mcp = new Option<string[]>("--mcp")
        {
            Description = "start a Model Context Protocol server over stdio (\"COMMAND ARGS\", repeatable) and offer its tools to the model; the calls it makes are run and their results given back",
            AllowMultipleArgumentsPerToken = false,
        };
        var toolChoice = new Option<string>("--tool-choice") { Description = "with --mcp: auto (the model decides), required (a call), none, or a tool's name (that call)", DefaultValueFactory = _ => "auto" };
        var speculation = new SpeculationOptionsSet();
        var cmd = new Command("chat", "Chat with a model in the terminal, using its chat template (ChatML by default). A turn computes only what it adds to the conversation (the keys and values of the earlier turns stay cached). Empty line or Ctrl-D ends.")
            { model, system, n, ctx, threads, math, stop, timings, lora, mcp, toolChoice };
        var cache = new ModelCommands.CacheTypeOptions();
        foreach (var o in sampling.All) cmd.Options.Add(o);
        foreach (var o in speculation.All) cmd.Options.Add(o);
        foreach (var o in cache.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            var (m, tok) = Load(r.GetRequiredValue(model));
            ModelCommands.ApplyLora(m, r.GetValue(lora));
            m.QuantizedMath = r.GetValue(math);
            using (m)
            {
                int context = r.GetValue(ctx) is > 0 and var c ? c : Math.Min(m.Config.ContextLength, 4096);
                if (context > m.Config.ContextLength) throw new ArgumentException($"--ctx-size {context} is larger than the model's context ({m.Config.ContextLength})");
                var spec = speculation.Read(r, tok, out var draftModel);
                using var ownedDraft = draftModel;
                cache.Apply(r, m, draftModel);
                using var engine = Engine(m, tok, context, spec);
                if (r.GetValue(mcp) is { Length: > 0 } servers)
                    return McpChat.Run(engine, servers, r.GetValue(toolChoice)!, r.GetValue(system), r.GetValue(n), sampling.Read(r), r.GetValue(stop) ?? []).GetAwaiter().GetResult();
                var session = new ChatSession(engine, r.GetValue(system));
                var options = new ChatReplyOptions { MaxTokens = r.GetValue(n), Sampling = sampling.Read(r), Stop = r.GetValue(stop) ?? [] };
                Console.Error.WriteLine($"chat template: {session.TemplateName}; an empty line ends the chat");
                while (true)
                {
                    Console.Error.Write("> ");
                    var line = Console.ReadLine();
                    if (string.IsNullOrWhiteSpace(line)) break;
                    IEnumerable<string> reply;
                    int dropped = session.DroppedMessages;
                    try { reply = session.Send(line, options); }
                    catch (ArgumentException e) { Console.Error.WriteLine(e.Message); break; }
                    if (session.DroppedMessages > dropped)
                        Console.Error.WriteLine($"[the {session.DroppedMessages - dropped} oldest messages were dropped to fit the context of {engine.Context} tokens]");
                    bool started = false;
                    foreach (var piece in reply)
                    {
                        var shown = started ? piece : piece.TrimStart(); // a reply is shown from its first word
                        started |= shown.Length > 0;
                        Console.Write(shown);
                        Console.Out.Flush();
                    }
                    Console.WriteLine();
                    if (r.GetValue(timings) && session.LastTurn is { } st)
                        Console.Error.WriteLine($"[prompt {st.EvaluatedTokens} tokens computed, {st.CachedTokens} cached, {st.FirstToken.TotalSeconds:F3} s to the first token; " +
                            $"reply {st.CompletionTokens} tokens, {(st.CompletionTokens > 1 ? (st.CompletionTokens - 1) / Math.Max(1e-9, (st.Total - st.FirstToken).TotalSeconds) : 0):F1} tokens/s]");
                    if (r.GetValue(timings)) PrintSpeculation(engine);
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
        var parallel = new Option<int>("--parallel", "-np")
        {
            Description = "also generate with this many sequences at once, each step one batch as `duet serve` runs it (batch-invariant kernels), and report the aggregate tokens/s (llama-batched-bench's S_TG)",
            DefaultValueFactory = _ => 1,
        };
        var cache = new ModelCommands.CacheTypeOptions();
        var cmd = new Command("bench", "Prompt processing (pp) and generation (tg) speed in tokens/s, as llama-bench reports them.") { model, p, n, reps, threads, json, math, parallel };
        foreach (var o in cache.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            var path = r.GetRequiredValue(model);
            var cpu = Duet.Tensors.Kernels.CpuProfile.Current;
            Console.Error.WriteLine($"cpu: {cpu.Describe()}");
            using var m = LlamaModel.Load(path);
            m.QuantizedMath = r.GetValue(math);
            cache.Apply(r, m);
            int np = r.GetValue(p), ng = r.GetValue(n), reps2 = Math.Max(1, r.GetValue(reps));
            var rng = new Random(42);
            var state = m.CreateState(Math.Max(np, ng) + 1);
            int par = r.GetValue(parallel);
            if (par < 1 || par > LlamaState.MaxBatch) { Console.Error.WriteLine($"error: --parallel must be 1..{LlamaState.MaxBatch}"); return 2; }
            var streams = par > 1 ? Enumerable.Range(0, par).Select(_ => m.CreateState(ng + 1)).ToArray() : [];
            var scratch = par > 1 ? m.CreateState(1) : null;
            var tests = new List<(string Name, int Count, bool Prompt, int Width)> { ($"pp{np}", np, true, 1), ($"tg{ng}", ng, false, 1) };
            if (par > 1) tests.Add(($"tg{ng} x{par}", ng, false, par));
            foreach (var (name, count, prompt, width) in tests)
            {
                if (count <= 0) continue;
                var rates = new List<double>();
                for (int rep = -1; rep < reps2; rep++) // rep -1 warms up (page faults on the mapped weights, JIT tiers)
                {
                    if (width > 1)
                    {
                        double rate = BatchedDecode(m, scratch!, streams, count);
                        if (rep >= 0) rates.Add(rate);
                        continue;
                    }
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
                // Float-weight prompts against the FMA peak measured here (issue 21: F16 prompts at half of it): the matrix
                // products of every layer, attention over the prompt's average length, the output row of the last token.
                // (Quantized weights run int8 products: their peak is another one.)
                bool floatWeights = m.Weights.MainType is Duet.Tensors.GgmlType.F32 or Duet.Tensors.GgmlType.F16 or Duet.Tensors.GgmlType.BF16;
                double peak = prompt && floatWeights ? PeakFlops.Measure(Duet.Tensors.Parallel.WorkerPool.Shared) : 0;
                var cf = m.Config;
                double flopsPerToken = 2.0 * cf.Layers * (2.0 * cf.Dim * cf.QDim + 2.0 * cf.Dim * cf.KvDim + 3.0 * cf.Dim * cf.FfnDim)
                    + 4.0 * cf.Layers * cf.QDim * (count + 1) / 2.0 + 2.0 * cf.Vocab * cf.Dim / Math.Max(1, count);
                double ofPeak = prompt && peak > 0 ? mean * flopsPerToken / peak : 0;
                if (r.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["model_filename"] = path, ["model_type"] = m.Weights.MainType.ToString(), ["n_threads"] = r.GetValue(threads),
                        ["math"] = m.QuantizedMath.ToString().ToLowerInvariant(), ["cpu"] = cpu.Name,
                        ["type_k"] = m.KeyCacheType.ToString().ToLowerInvariant(), ["type_v"] = m.ValueCacheType.ToString().ToLowerInvariant(),
                        ["n_prompt"] = prompt ? count : 0, ["n_gen"] = prompt ? 0 : count, ["n_parallel"] = width, ["avg_ts"] = Math.Round(mean, 3), ["stddev_ts"] = Math.Round(sd, 3),
                        ["fma_peak_gflops"] = Math.Round(peak / 1e9, 1), ["fraction_of_peak"] = Math.Round(ofPeak, 4),
                    }));
                else Console.WriteLine($"{Path.GetFileName(path)} {m.Weights.MainType} t={r.GetValue(threads)}{(m.QuantizedMath == Duet.Tensors.Kernels.QuantizedMath.Float ? " math=float" : "")}{(m.KeyCacheType != KvCacheType.F32 || m.ValueCacheType != KvCacheType.F32 ? $" kv={m.KeyCacheType}/{m.ValueCacheType}".ToLowerInvariant() : "")} {name}: {mean:F2} ± {sd:F2} tokens/s" +
                    (ofPeak > 0 ? $" ({ofPeak:P1} of the FMA peak, {peak / 1e9:F0} GFLOP/s measured)" : ""));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// <paramref name="streams"/>.Length sequences decoding greedily side by side, one batch per step with the server's
    /// batch-invariant kernels, from different first tokens; aggregate generated tokens/s.
    /// </summary>
    private static double BatchedDecode(LlamaModel m, LlamaState scratch, LlamaState[] streams, int steps)
    {
        int n = streams.Length, vocab = m.Config.Vocab;
        var tokens = new int[n];
        var rows = Enumerable.Range(0, n).ToArray();
        var logits = new float[n * vocab];
        for (int i = 0; i < n; i++) { streams[i].Reset(); tokens[i] = 1 + i % (vocab - 1); }
        var sw = Stopwatch.StartNew();
        for (int step = 0; step < steps; step++)
        {
            m.ForwardRows(scratch, streams, tokens, rows, logits, invariant: true);
            for (int i = 0; i < n; i++) tokens[i] = Sampler.Argmax(logits.AsSpan(i * vocab, vocab));
        }
        return (double)n * steps / sw.Elapsed.TotalSeconds;
    }
}
