// duet data {build, tokenize, inspect, verify}: the corpus pipeline of a recipe, its token shards, and what it kept and dropped.
// duet data langid-profiles (hidden, for maintainers): rebuilds the language tagger's n-gram profiles.
using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Duet.Data;
using Duet.Data.LanguageId;
using Duet.Data.Tokens;
using Duet.Formats.Tokens;
using Spectre.Console;

namespace Duet.Cli.Commands;

internal static class DataCommands
{
    public static Command Create()
    {
        var cmd = new Command("data", "Build a corpus from a recipe (extract, clean, language-tag, filter, dedup, split, shard), tokenize it, and inspect it.");
        cmd.Subcommands.Add(Build());
        cmd.Subcommands.Add(Tokenize());
        cmd.Subcommands.Add(Inspect());
        cmd.Subcommands.Add(LangIdProfiles());
        cmd.Subcommands.Add(Verify());
        cmd.Subcommands.Add(ChatSet());
        return cmd;
    }

    private static Command Verify()
    {
        var dir = new Argument<string>("DIR") { Description = "a folder written by `duet data build` (data/sample, for one)" };
        var cmd = new Command("verify", "Check that every shard of a corpus matches its manifest (SHA-256 of the JSONL text, documents, characters).") { dir };
        cmd.SetAction(r =>
        {
            var d = r.GetValue(dir)!;
            var problems = CorpusVerifier.Verify(d);
            foreach (var p in problems) Console.Error.WriteLine(p);
            var m = Manifest.Load(Path.Combine(d, "manifest.json"));
            if (problems.Count > 0) { Console.Error.WriteLine($"{d}: {problems.Count} problem(s)"); return 1; }
            Console.WriteLine($"{d}: {m.Shards.Count} shards match manifest.json ({m.Shards.Sum(s => s.Documents):N0} documents, {m.Shards.Sum(s => s.Characters):N0} characters)");
            return 0;
        });
        return cmd;
    }

    private static Command Build()
    {
        var recipe = new Option<string>("--recipe", "-r") { Description = "the recipe (data/recipes/NAME.json)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "output folder: train/ and validation/ shards, manifest.json, dropped.jsonl", Required = true };
        var cmd = new Command("build", "Run a data recipe: sources -> clean -> language tag -> quality filters -> exact and near dedup -> split -> JSONL shards + manifest. " +
            "Under mpirun -np N the source files are shared by N ranks, with the same output as one process.")
        {
            recipe, output,
        };
        cmd.SetAction(r =>
        {
            var path = r.GetRequiredValue(recipe);
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such recipe", path);
            var world = MpiCommands.Join();
            using var pipeline = new DataPipeline(Recipe.Load(path), r.GetRequiredValue(output), world);
            var sw = Stopwatch.StartNew();
            Manifest? manifest = null;
            if (world is { Rank: > 0 }) { pipeline.Run(path); return 0; } // rank 0 reports and writes for the job
            AnsiConsole.Status().Start("reading sources", ctx =>
            {
                pipeline.Progress = (docs, chars) => ctx.Status($"{docs:N0} documents, {chars / 1e6:F1} M characters read ({chars / 1e6 / Math.Max(1e-3, sw.Elapsed.TotalSeconds):F1} M/s)");
                manifest = pipeline.Run(path);
            });
            PrintSummary(manifest!, sw.Elapsed);
            if (world is not null)
                Console.Error.WriteLine($"{world.Size} ranks; rank 0 committed (dedup, shards) for {pipeline.CommitSeconds:F1} s of {sw.Elapsed.TotalSeconds:F1} s");
            return 0;
        });
        return cmd;
    }

    private static Command Tokenize()
    {
        var dir = new Argument<string>("DIR") { Description = "a folder written by `duet data build`" };
        var tok = TokenizeCommands.TokenizerOption();
        var threads = new Option<int>("--threads") { Description = "encoding threads (the output does not depend on it)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var output = new Option<string?>("--out", "-o") { Description = "write the token shards and a manifest there, leaving DIR untouched (default: into DIR)" };
        var cmd = new Command("tokenize", "Encode the text shards into binary token shards (DIR/tokens/*.bin + .idx) and add token counts per language to the manifest.")
        {
            dir, tok, threads, output,
        };
        cmd.SetAction(r =>
        {
            var d = r.GetValue(dir)!;
            int n = r.GetValue(threads);
            if (n < 1) throw new ArgumentException($"--threads {n}: at least 1");
            var corpus = CorpusTokenizer.ReadCorpus(d); // a missing or empty corpus fails before the tokenizer loads
            var tokenizer = CorpusTokenizer.Load(r.GetRequiredValue(tok));
            tokenizer.Threads = n;
            var sw = Stopwatch.StartNew();
            long total = corpus.Shards.Sum(s => s.Documents);
            AnsiConsole.Status().Start("tokenizing", ctx =>
            {
                tokenizer.Progress = (docs, tokens) => ctx.Status($"{docs:N0} / {total:N0} documents, {tokens:N0} tokens ({tokens / 1e3 / Math.Max(1e-3, sw.Elapsed.TotalSeconds):N0} k tokens/s)");
                tokenizer.Run(d, corpus, r.GetValue(output));
            });
            PrintTokens(corpus.Tokens!);
            AnsiConsole.MarkupLine($"{corpus.Tokens!.Shards.Count} token shards in {sw.Elapsed.TotalSeconds:F1} s ({Markup.Escape(Path.Combine(r.GetValue(output) ?? d, CorpusTokenizer.Folder))})");
            return 0;
        });
        return cmd;
    }

    private static void PrintTokens(TokenManifest t)
    {
        var table = new Table().AddColumns("", "documents", "tokens");
        foreach (var (split, langs) in t.Counts)
            foreach (var (lang, c) in langs) table.AddRow($"tokens {split} ({Markup.Escape(lang)})", $"{c.Documents:N0}", $"{c.Tokens:N0}");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(Markup.Escape($"tokenizer {t.Tokenizer} (vocabulary {t.VocabSize:N0}, {t.BytesPerToken} bytes per token, bos {t.Bos?.ToString() ?? "none"}, eos {t.Eos?.ToString() ?? "none"})"));
    }

    private static void PrintSummary(Manifest m, TimeSpan? elapsed)
    {
        var t = new Table().AddColumns("", "documents", "characters");
        foreach (var (name, s) in m.Sources) t.AddRow($"source {Markup.Escape(name)}", $"{s.Documents:N0}", $"{s.Characters:N0}");
        foreach (var (name, s) in m.Sources)
            foreach (var (reason, n) in s.Skipped) t.AddRow($"  skipped {Markup.Escape(name)}: {Markup.Escape(reason)}", $"{n:N0}", "");
        foreach (var (reason, d) in m.Dropped) t.AddRow($"dropped: {Markup.Escape(reason)}", $"{d.Documents:N0}", $"{d.Characters:N0}");
        foreach (var (split, langs) in m.Kept)
            foreach (var (lang, d) in langs) t.AddRow($"kept {split} ({Markup.Escape(lang)})", $"{d.Documents:N0}", $"{d.Characters:N0}");
        AnsiConsole.Write(t);
        long bytes = m.Sources.Values.Sum(s => s.Bytes);
        if (elapsed is { } e) AnsiConsole.MarkupLine($"{m.Shards.Count} shards in {e.TotalSeconds:F1} s: {bytes / 1e6:F1} MB read, {bytes / 1e6 / Math.Max(1e-3, e.TotalSeconds):F2} MB/s");
    }

    private static Command Inspect()
    {
        var dir = new Argument<string>("DIR") { Description = "a folder written by `duet data build`" };
        var samples = new Option<int>("--samples", "-n") { Description = "dropped samples shown per reason", DefaultValueFactory = _ => 2 };
        var cmd = new Command("inspect", "Show per filter how many documents and characters were dropped, with samples, and what was kept.") { dir, samples };
        cmd.SetAction(r =>
        {
            var d = r.GetValue(dir)!;
            var m = Manifest.Load(Path.Combine(d, "manifest.json"));
            PrintSummary(m, null);
            if (m.Tokens is not null) PrintTokens(m.Tokens);
            var dropped = Path.Combine(d, "dropped.jsonl");
            if (!File.Exists(dropped)) return 0;
            int n = r.GetValue(samples);
            foreach (var group in File.ReadLines(dropped).Select(l => JsonDocument.Parse(l).RootElement).GroupBy(e => e.GetProperty("reason").GetString()))
            {
                AnsiConsole.MarkupLine($"[bold]{Markup.Escape(group.Key ?? "")}[/]");
                foreach (var e in group.Take(n))
                {
                    var text = e.GetProperty("text").GetString() ?? "";
                    if (text.Length > 300) text = text[..300] + "…";
                    AnsiConsole.MarkupLine($"  [grey]{Markup.Escape(e.GetProperty("id").GetString() ?? "")}[/]: {Markup.Escape(text.ReplaceLineEndings(" ⏎ "))}");
                }
            }
            return 0;
        });
        return cmd;
    }

    private static Command LangIdProfiles()
    {
        var output = new Option<string>("--out", "-o") { Description = $"the profile file to write ({HandbookProfiles.ShippedPath} in the repository)", Required = true };
        var sample = new Option<string?>("--sample") { Description = $"also write the tests' held-out sample ({HandbookProfiles.SamplePath})" };
        var root = new Option<string>("--handbook") { Description = "the handbook's HTML folder", DefaultValueFactory = _ => HandbookCorpus.DefaultRoot };
        var cmd = new Command("langid-profiles", "Rebuild the language tagger's character n-gram profiles from the installed Debian handbook " +
                                                 "(apt-get install debian-handbook) and show the tagger's accuracy on the held-out chapters.")
        {
            output, sample, root,
        };
        cmd.Hidden = true;
        cmd.SetAction(r =>
        {
            var dir = r.GetRequiredValue(root);
            var path = r.GetRequiredValue(output);
            var paragraphs = HandbookProfiles.Read(dir);
            var version = HandbookProfiles.Version(dir);
            var profiles = HandbookProfiles.Build(paragraphs, version);
            Write(path, profiles.ToUtf8());
            var model = new NgramLanguageModel(profiles);
            Console.WriteLine($"{path}: {profiles.Languages.Count} languages, {model.Size:N0} distinct n-grams, {new FileInfo(path).Length:N0} bytes");
            if (r.GetValue(sample) is { } samplePath)
            {
                var picked = HandbookProfiles.Sample(paragraphs);
                Write(samplePath, new UTF8Encoding(false).GetBytes(HandbookProfiles.FormatSample(picked, version)));
                Console.WriteLine($"{samplePath}: {picked.Count} held-out paragraphs");
            }
            Console.WriteLine("Tagger with these profiles on held-out paragraphs of at least 200 characters (locale, expected tag, correct/all, tags):");
            Console.WriteLine(HandbookProfiles.Format(HandbookProfiles.Evaluate(paragraphs, t => LanguageTagger.Tag(LanguageTagger.Score(t, model)))));
            return 0;
        });
        return cmd;
    }

    private static void Write(string path, byte[] bytes) => Duet.Formats.AtomicFile.Write(path, s => s.Write(bytes));

    private static Command ChatSet()
    {
        var corpus = new Option<string>("--corpus") { Description = "a corpus folder of duet data build (data/sample): both splits are read", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "folder for train.jsonl and validation.jsonl", DefaultValueFactory = _ => "data/chat" };
        var cmd = new Command("chat-set", "Make the bilingual instruction set from a corpus, deterministically: man-page command questions (Chinese), Debian Handbook and Reference section questions (both languages), hand-written greetings, identity and refusals; OpenAI-messages JSON lines for duet finetune.")
            { corpus, output };
        cmd.SetAction(r =>
        {
            string dir = r.GetRequiredValue(corpus), outDir = r.GetRequiredValue(output);
            var docs = new[] { "train", "validation" }.SelectMany(split => EvalCommands.ReadDocuments(dir, split))
                .Select(d => new Duet.Data.Chat.ChatSource(d.Text, d.Lang, d.Source, d.Id));
            var pairs = Duet.Data.Chat.ChatSetBuilder.Build(docs);
            Directory.CreateDirectory(outDir);
            foreach (var (split, validation) in new[] { ("train", false), ("validation", true) })
            {
                var lines = pairs.Where(p => Duet.Data.Chat.ChatSetBuilder.IsValidation(p) == validation).Select(Duet.Data.Chat.ChatSetBuilder.ToJsonLine).ToList();
                var file = Path.Combine(outDir, split + ".jsonl");
                Duet.Formats.AtomicFile.Write(file, s => s.Write(System.Text.Encoding.UTF8.GetBytes(string.Concat(lines.Select(l => l + "\n")))));
                Console.WriteLine($"{file}: {lines.Count} conversations");
            }
            foreach (var g in pairs.GroupBy(p => (p.Kind, Zh: p.User.Any(c => c is >= '\u4E00' and <= '\u9FFF'))))
                Console.WriteLine($"  {g.Key.Kind} ({(g.Key.Zh ? "zh" : "en")}): {g.Count()}");
            return 0;
        });
        return cmd;
    }
}
