// duet eval: how good a model is. perplexity: llama-perplexity's method (Duet.Eval.Perplexity), with bits per
// byte and per character beside it.
using System.CommandLine;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Duet.Eval;
using Duet.Eval.Tasks;
using Duet.Inference;
using Duet.Model;

namespace Duet.Cli.Commands;

internal static class EvalCommands
{
    public static Command Create()
    {
        var eval = new Command("eval", "Evaluate a model: perplexity (llama-perplexity's method) with bits per byte and per character, KL divergence, multiple-choice tasks (lm-evaluation-harness's scoring), reports, and verification of the results recorded in a model.");
        eval.Subcommands.Add(PerplexityCommand());
        eval.Subcommands.Add(EvalTaskCommands.Tasks());
        eval.Subcommands.Add(EvalTaskCommands.Report());
        eval.Subcommands.Add(EvalTaskCommands.MakeTasks());
        eval.Subcommands.Add(EvalChatCommand.Create());
        eval.Subcommands.Add(EvalRecord.Verify());
        return eval;
    }

    private static Command PerplexityCommand()
    {
        var model = new Option<string>("--model", "-m") { Description = "a .gguf file or an HF folder with its tokenizer", Required = true };
        var data = new Option<string?>("--data", "-f")
        {
            Description = "a UTF-8 text file, tokenized whole; or a corpus folder of `duet data build`, whose validation split is read (documents joined by a blank line), scored whole and per language",
        };
        var save = new Option<string?>("--save-logits") { Description = "also write the model's log-probabilities to this file, a KL-divergence base (llama-perplexity's --kl-divergence-base format)" };
        var klBase = new Option<string?>("--kl-base") { Description = "KL divergence from the base in this file (written by --save-logits or by llama-perplexity), on its tokens: no --data" };
        var ctx = new Option<int>("--ctx", "-c") { Description = "tokens per chunk; the second half of each is scored", DefaultValueFactory = _ => 512 };
        var chunks = new Option<int?>("--chunks") { Description = "at most this many chunks (default: all the text holds)" };
        var threads = ModelCommands.ThreadsOption();
        var math = ModelCommands.MathOption();
        var json = new Option<bool>("--json") { Description = "print the result as one JSON line" };
        var writeTo = new Option<string?>("--write-to") { Description = "also record the result and its settings in this model's metadata (GGUF duet.provenance.eval.perplexity, or an HF folder's config.json), for duet info and duet eval verify" };
        var cmd = new Command("perplexity", "Perplexity of a model on a text as llama-perplexity computes it (chunks of --ctx tokens from an empty cache, BOS first, the second half scored), with its uncertainty, and bits per byte and per character of the scored text.")
            { model, data, ctx, chunks, threads, math, json, save, klBase, writeTo };
        var cache = new ModelCommands.CacheTypeOptions();
        foreach (var o in cache.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            if (r.GetValue(klBase) is string basePath)
            {
                if (r.GetValue(data) is not null || r.GetValue(save) is not null) throw new ArgumentException("--kl-base reads its tokens from the base file: no --data or --save-logits with it");
                return KlCommand(r.GetRequiredValue(model), basePath, r.GetValue(math), r.GetValue(json), m => cache.Apply(r, m));
            }
            string dataPath = r.GetValue(data) ?? throw new ArgumentException("--data is required (or --kl-base)");
            var options = new PerplexityOptions { Context = r.GetValue(ctx), Chunks = r.GetValue(chunks) };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (result, perLanguage, seconds) = RunPerplexity(r.GetRequiredValue(model), dataPath, options, r.GetValue(math), r.GetValue(save), m => cache.Apply(r, m), (done, all) =>
            {
                if (done == 1 || done == all || done % 10 == 0) Console.Error.WriteLine($"[{done}/{all}] {clock.Elapsed.TotalSeconds:F1} s");
            });
            if (r.GetValue(json))
            {
                foreach (var (set, pr) in perLanguage) Console.WriteLine(JsonSerializer.Serialize(Json(r.GetRequiredValue(model), dataPath, set, pr)));
                var all = Json(r.GetRequiredValue(model), dataPath, "all", result);
                all["seconds"] = Math.Round(seconds, 3);
                all["tokens_per_second"] = Math.Round(result.Chunks * (double)result.Context / seconds, 2);
                Console.WriteLine(JsonSerializer.Serialize(all));
            }
            else
            {
                Console.WriteLine($"{result.Chunks} chunks of {result.Context} tokens, {result.ScoredTokens} scored ({result.ScoredBytes} bytes, {result.ScoredChars} characters)");
                Console.WriteLine($"Final estimate: PPL = {result.Ppl:F4} +/- {result.PplError:F5}");
                Console.WriteLine($"bits per byte {result.BitsPerByte:F4}, bits per character {result.BitsPerChar:F4}");
                Console.WriteLine($"{result.Chunks * (double)result.Context / seconds:F1} tokens/s ({seconds:F1} s)");
                if (perLanguage.Count > 0)
                {
                    Console.WriteLine();
                    Console.WriteLine("| set | chunks | scored tokens | PPL | bits per byte | bits per character |");
                    Console.WriteLine("|---|---|---|---|---|---|");
                    foreach (var (set, pr) in perLanguage.Prepend(("all", result)))
                        Console.WriteLine($"| {set} | {pr.Chunks} | {pr.ScoredTokens} | {pr.Ppl:F4} ± {pr.PplError:F4} | {pr.BitsPerByte:F4} | {pr.BitsPerChar:F4} |");
                }
            }
            if (r.GetValue(writeTo) is string target) EvalRecord.WritePerplexity(target, dataPath, options, result, perLanguage);
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// Perplexity of a model on a text file, or on a corpus's validation split whole and per language (each where it
    /// fills two chunks); with <paramref name="savePath"/>, the whole's log-probabilities saved as a KL-divergence base.
    /// </summary>
    internal static (PerplexityResult All, List<(string Set, PerplexityResult Result)> PerLanguage, double Seconds) RunPerplexity(
        string modelPath, string dataPath, PerplexityOptions options, Duet.Tensors.Kernels.QuantizedMath math, string? savePath, Action<LlamaModel>? configure,
        Action<int, int>? progress)
    {
        var sets = ReadSets(dataPath);
        var (m, tok) = ModelLoader.Load(modelPath);
        m.QuantizedMath = math;
        configure?.Invoke(m);
        using (m)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            PerplexityResult result;
            try
            {
                result = savePath is not null
                    ? KlDivergence.SaveBase(m, tok, sets["all"], savePath, options, progress)
                    : Perplexity.Evaluate(m, tok, sets["all"], options, progress);
            }
            catch (ArgumentException e) { throw new ArgumentException($"{dataPath}: {e.Message}", e); }
            double seconds = clock.Elapsed.TotalSeconds;
            var perLanguage = new List<(string Set, PerplexityResult Result)>();
            foreach (var (set, t) in sets)
            {
                if (set == "all" || sets.Count <= 2) continue; // one language: the whole is that language
                try { perLanguage.Add((set, Perplexity.Evaluate(m, tok, t, options))); }
                catch (ArgumentException e) { Console.Error.WriteLine($"{set}: {e.Message}"); }
            }
            return (result, perLanguage, seconds);
        }
    }

    private static Dictionary<string, object> Json(string model, string data, string set, PerplexityResult pr) => new()
    {
        ["model"] = model, ["data"] = data, ["set"] = set, ["ctx"] = pr.Context, ["chunks"] = pr.Chunks,
        ["scored_tokens"] = pr.ScoredTokens, ["nll_mean"] = pr.MeanNll, ["ppl"] = pr.Ppl, ["ppl_err"] = pr.PplError,
        ["bits_per_byte"] = pr.BitsPerByte, ["bits_per_char"] = pr.BitsPerChar, ["scored_bytes"] = pr.ScoredBytes, ["scored_chars"] = pr.ScoredChars,
    };

    private static int KlCommand(string modelPath, string basePath, Duet.Tensors.Kernels.QuantizedMath math, bool json, Action<LlamaModel> configure)
    {
        var (m, tok) = ModelLoader.Load(modelPath);
        m.QuantizedMath = math;
        configure(m);
        using (m)
        {
            var k = KlDivergence.Evaluate(m, basePath, Perplexity.BosOf(tok), (done, all) => { if (done == 1 || done == all || done % 10 == 0) Console.Error.WriteLine($"[{done}/{all}]"); });
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["model"] = modelPath, ["base"] = basePath, ["ctx"] = k.Context, ["chunks"] = k.Chunks, ["count"] = k.Count,
                    ["ppl"] = k.Ppl, ["ppl_err"] = k.PplError, ["ppl_base"] = k.PplBase, ["ppl_base_err"] = k.PplBaseError,
                    ["ppl_ratio"] = k.PplRatio, ["ppl_ratio_err"] = k.PplRatioError, ["kld_mean"] = k.MeanKld, ["kld_mean_err"] = k.MeanKldError,
                    ["kld_max"] = k.KldPercentiles[100], ["kld_99_9"] = k.KldPercentiles[99.9], ["kld_99"] = k.KldPercentiles[99], ["kld_median"] = k.KldPercentiles[50],
                    ["delta_p_mean"] = k.MeanDeltaP, ["delta_p_rms"] = k.RmsDeltaP, ["same_top"] = k.SameTop, ["same_top_err"] = k.SameTopError,
                }));
                return 0;
            }
            Console.WriteLine("====== Perplexity statistics ======");
            Console.WriteLine($"Mean PPL(Q)                   : {k.Ppl,10:F6} ± {k.PplError,10:F6}");
            Console.WriteLine($"Mean PPL(base)                : {k.PplBase,10:F6} ± {k.PplBaseError,10:F6}");
            Console.WriteLine($"Cor(ln(PPL(Q)), ln(PPL(base))): {100 * k.Correlation,6:F2}%");
            Console.WriteLine($"Mean ln(PPL(Q)/PPL(base))     : {k.LogPplRatio,10:F6} ± {k.LogPplRatioError,10:F6}");
            Console.WriteLine($"Mean PPL(Q)/PPL(base)         : {k.PplRatio,10:F6} ± {k.PplRatioError,10:F6}");
            Console.WriteLine();
            Console.WriteLine("====== KL divergence statistics ======");
            Console.WriteLine($"Mean    KLD: {k.MeanKld,10:F6} ± {k.MeanKldError,10:F6}");
            foreach (var (label, p) in new[] { ("Maximum", 100.0), ("99.9%  ", 99.9), ("99.0%  ", 99), ("Median ", 50), ("10.0%  ", 10), (" 5.0%  ", 5), (" 1.0%  ", 1), ("Minimum", 0) })
                Console.WriteLine($"{label} KLD: {k.KldPercentiles[p],10:F6}");
            Console.WriteLine();
            Console.WriteLine("====== Token probability statistics ======");
            Console.WriteLine($"Mean    Δp: {100 * k.MeanDeltaP,6:F3} ± {100 * k.MeanDeltaPError,5:F3} %");
            foreach (var p in new[] { 100, 99.9, 99, 95, 90, 75, 50, 25, 10, 5, 1, 0.1, 0 })
                Console.WriteLine($"{(p == 100 ? "Maximum" : p == 50 ? "Median " : p == 0 ? "Minimum" : $"{p,4:F1}%  ")} Δp: {100 * k.DeltaPPercentiles[p],6:F3}%");
            Console.WriteLine($"RMS Δp    : {100 * k.RmsDeltaP,6:F3} ± {100 * k.RmsDeltaPError,5:F3} %");
            Console.WriteLine($"Same top p: {100 * k.SameTop,6:F3} ± {100 * k.SameTopError,5:F3} %");
        }
        return 0;
    }

    /// <summary>
    /// "all": the text of a file, or a corpus folder's validation documents joined by a blank line; for a corpus also
    /// one text per language (the documents' "lang"), in the order the languages first appear.
    /// </summary>
    private static Dictionary<string, string> ReadSets(string path)
    {
        if (File.Exists(path)) return new() { ["all"] = File.ReadAllText(path, Encoding.UTF8) };
        var sb = new StringBuilder();
        var byLanguage = new Dictionary<string, StringBuilder>();
        foreach (var d in ReadDocuments(path, "validation"))
        {
            if (sb.Length > 0) sb.Append("\n\n");
            sb.Append(d.Text);
            var lb = byLanguage.TryGetValue(d.Lang, out var existing) ? existing : byLanguage[d.Lang] = new StringBuilder();
            if (lb.Length > 0) lb.Append("\n\n");
            lb.Append(d.Text);
        }
        var sets = new Dictionary<string, string> { ["all"] = sb.ToString() };
        foreach (var (lang, text) in byLanguage) sets[lang] = text.ToString();
        return sets;
    }

    /// <summary>The documents of a corpus folder's split, in shard order; InvalidDataException naming shard and line.</summary>
    internal static IEnumerable<CorpusDocument> ReadDocuments(string corpus, string split)
    {
        foreach (var shard in CorpusFiles.Shards(corpus, split))
        {
            using var file = File.OpenRead(shard);
            using Stream s = shard.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
            using var reader = new StreamReader(s, Encoding.UTF8);
            int line = 0;
            while (reader.ReadLine() is { } l)
            {
                line++;
                if (l.Length == 0) continue;
                CorpusDocument doc;
                try
                {
                    using var json = JsonDocument.Parse(l);
                    var root = json.RootElement;
                    if (!root.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                        throw new InvalidDataException($"{shard}:{line}: a document without a \"text\" string");
                    string lang = root.TryGetProperty("lang", out var lg) && lg.ValueKind == JsonValueKind.String ? lg.GetString()! : "unknown";
                    string id = root.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : $"{Path.GetFileName(shard)}:{line}";
                    string source = root.TryGetProperty("source", out var so) && so.ValueKind == JsonValueKind.String ? so.GetString()! : "";
                    doc = new CorpusDocument(t.GetString()!, lang, id, source);
                }
                catch (JsonException e) { throw new InvalidDataException($"{shard}:{line}: {e.Message}"); }
                yield return doc;
            }
        }
    }
}
