// duet eval: how good a model is. perplexity: llama-perplexity's method (Duet.Eval.Perplexity), with bits per
// byte and per character beside it.
using System.CommandLine;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Duet.Eval;
using Duet.Inference;

namespace Duet.Cli.Commands;

internal static class EvalCommands
{
    public static Command Create()
    {
        var eval = new Command("eval", "Evaluate a model: perplexity (llama-perplexity's method), bits per byte and per character.");
        eval.Subcommands.Add(PerplexityCommand());
        return eval;
    }

    private static Command PerplexityCommand()
    {
        var model = new Option<string>("--model", "-m") { Description = "a .gguf file or an HF folder with its tokenizer", Required = true };
        var data = new Option<string>("--data", "-f")
        {
            Description = "a UTF-8 text file, tokenized whole; or a corpus folder of `duet data build`, whose validation split is read (documents joined by a blank line)",
            Required = true,
        };
        var ctx = new Option<int>("--ctx", "-c") { Description = "tokens per chunk; the second half of each is scored", DefaultValueFactory = _ => 512 };
        var chunks = new Option<int?>("--chunks") { Description = "at most this many chunks (default: all the text holds)" };
        var threads = ModelCommands.ThreadsOption();
        var math = ModelCommands.MathOption();
        var json = new Option<bool>("--json") { Description = "print the result as one JSON line" };
        var cmd = new Command("perplexity", "Perplexity of a model on a text as llama-perplexity computes it (chunks of --ctx tokens from an empty cache, BOS first, the second half scored), with its uncertainty, and bits per byte and per character of the scored text.")
            { model, data, ctx, chunks, threads, math, json };
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            string dataPath = r.GetRequiredValue(data);
            string text = ReadText(dataPath);
            var (m, tok) = ModelLoader.Load(r.GetRequiredValue(model));
            m.QuantizedMath = r.GetValue(math);
            using (m)
            {
                var options = new PerplexityOptions { Context = r.GetValue(ctx), Chunks = r.GetValue(chunks) };
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var result = Perplexity.Evaluate(m, tok, text, options, (done, all) =>
                {
                    if (done == 1 || done == all || done % 10 == 0) Console.Error.WriteLine($"[{done}/{all}] {clock.Elapsed.TotalSeconds:F1} s");
                });
                double seconds = clock.Elapsed.TotalSeconds;
                if (r.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["model"] = r.GetRequiredValue(model), ["data"] = dataPath, ["ctx"] = result.Context, ["chunks"] = result.Chunks,
                        ["scored_tokens"] = result.ScoredTokens, ["nll_mean"] = result.MeanNll, ["ppl"] = result.Ppl, ["ppl_err"] = result.PplError,
                        ["bits_per_byte"] = result.BitsPerByte, ["bits_per_char"] = result.BitsPerChar, ["scored_bytes"] = result.ScoredBytes,
                        ["scored_chars"] = result.ScoredChars, ["seconds"] = Math.Round(seconds, 3),
                        ["tokens_per_second"] = Math.Round(result.Chunks * (double)result.Context / seconds, 2),
                    }));
                else
                {
                    Console.WriteLine($"{result.Chunks} chunks of {result.Context} tokens, {result.ScoredTokens} scored ({result.ScoredBytes} bytes, {result.ScoredChars} characters)");
                    Console.WriteLine($"Final estimate: PPL = {result.Ppl:F4} +/- {result.PplError:F5}");
                    Console.WriteLine($"bits per byte {result.BitsPerByte:F4}, bits per character {result.BitsPerChar:F4}");
                    Console.WriteLine($"{result.Chunks * (double)result.Context / seconds:F1} tokens/s ({seconds:F1} s)");
                }
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>The text of a file, or a corpus folder's validation documents joined by a blank line.</summary>
    private static string ReadText(string path)
    {
        if (File.Exists(path)) return File.ReadAllText(path, Encoding.UTF8);
        var sb = new StringBuilder();
        foreach (var shard in CorpusFiles.Shards(path, "validation"))
        {
            using var file = File.OpenRead(shard);
            using Stream s = shard.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
            using var reader = new StreamReader(s, Encoding.UTF8);
            int line = 0;
            while (reader.ReadLine() is { } l)
            {
                line++;
                if (l.Length == 0) continue;
                try
                {
                    using var doc = JsonDocument.Parse(l);
                    if (!doc.RootElement.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                        throw new InvalidDataException($"{shard}:{line}: a document without a \"text\" string");
                    if (sb.Length > 0) sb.Append("\n\n");
                    sb.Append(t.GetString());
                }
                catch (JsonException e) { throw new InvalidDataException($"{shard}:{line}: {e.Message}"); }
            }
        }
        return sb.ToString();
    }
}
