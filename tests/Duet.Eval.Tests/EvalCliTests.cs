// duet eval's commands as a user runs them (the built duet.dll as a process): the shipped task sets are what
// make-tasks makes from data/sample, byte for byte; a task run's report renders as a table and a chart; results
// recorded with --write-to leave every tensor's bytes as they were and verify reproduces them, and says so when a
// model does not; a text too short for perplexity is a clear error naming the file.
using System.Diagnostics;
using System.Text.Json.Nodes;
using Duet.Formats.Gguf;
using Duet.Tensors;
using Duet.Model;
using Duet.Tests;
using Duet.Tokenizers.Trainer;

namespace Duet.Eval.Tests;

public sealed class EvalCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-evalcli-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static (int Code, string Out, string Err) Duet(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
        psi.ArgumentList.Add(Repo.DuetDll());
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    /// <summary>A small random model with a tokenizer trained on the shipped English task text, as GGUF.</summary>
    private string Model(string name, ulong seed)
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 400 });
        trainer.AddText(File.ReadAllText(Path.Combine(Repo.Root, "data", "tasks", "duet-next-en", "train.jsonl")));
        var tok = trainer.Train();
        var path = Path.Combine(_dir, name);
        ModelPackage.WriteGguf(CanonicalModel.Random(TinyModel.Config(tok.VocabSize, 1024), seed, tok, std: 0.1f), path, GgmlType.Q8_0);
        return path;
    }

    [Fact]
    public void MakeTasks_FromTheSampleCorpus_GivesTheShippedFilesByteForByte()
    {
        var (code, _, err) = Duet("eval", "make-tasks", "--corpus", "data/sample", "--output", _dir);
        Assert.True(code == 0, err);
        foreach (var lang in new[] { "en", "zh" })
            foreach (var split in new[] { "validation", "train" })
            {
                var shipped = File.ReadAllBytes(Path.Combine(Repo.Root, "data", "tasks", $"duet-next-{lang}", $"{split}.jsonl"));
                Assert.Equal(shipped, File.ReadAllBytes(Path.Combine(_dir, $"duet-next-{lang}", $"{split}.jsonl")));
            }
    }

    [Fact]
    public void WriteTo_ThenVerify_ReproducesAndKeepsTheTensors_AndReportRenders()
    {
        var model = Model("a.gguf", 1);
        var before = TensorBytes(model);
        var report = Path.Combine(_dir, "run.json");
        var (code, output, err) = Duet("eval", "tasks", "--model", model, "--tasks", "duet-next-en", "--limit", "12", "--shots", "1", "--output", report, "--write-to", model);
        Assert.True(code == 0, err);
        Assert.Contains("| duet-next-en | 1 | 12 |", output);
        Assert.Equal(before, TensorBytes(model));
        var run = JsonNode.Parse(File.ReadAllText(report))!;
        Assert.Equal(12, run["tasks"]![0]!["questions"]!.GetValue<int>());
        Assert.Equal(64, run["model_sha256"]!.GetValue<string>().Length);
        Assert.Contains("eval.tasks.duet-next-en", Duet("info", model).Out);

        (code, output, err) = Duet("eval", "verify", model);
        Assert.True(code == 0, output + err);
        Assert.Contains("all 1 recorded evaluations reproduce", output);

        (code, output, err) = Duet("eval", "report", report, "--output", _dir);
        Assert.True(code == 0, err);
        Assert.Contains("| a.gguf |", output);
        Assert.Contains("<svg", File.ReadAllText(Path.Combine(_dir, "report.svg")));
        Assert.Contains("report.svg", File.ReadAllText(Path.Combine(_dir, "report.md")));

        // Another model's weights with these results recorded: verify says they do not reproduce, and fails.
        var other = Model("b.gguf", 2);
        (code, _, err) = Duet("eval", "tasks", "--model", model, "--tasks", "duet-next-en", "--limit", "12", "--shots", "1", "--write-to", other);
        Assert.True(code == 0, err);
        (code, output, _) = Duet("eval", "verify", other);
        Assert.True(code == 1, output);
        Assert.Contains("DIFFERS", output);
    }

    [Fact]
    public void Perplexity_TextShorterThanTwoChunks_NamesTheFile()
    {
        var model = Model("m.gguf", 1);
        var text = Path.Combine(_dir, "short.txt");
        File.WriteAllText(text, "Only a few words.");
        var (code, _, err) = Duet("eval", "perplexity", "--model", model, "--data", text, "--ctx", "64");
        Assert.NotEqual(0, code);
        Assert.Contains(text, err);
        Assert.Contains("needs at least 128 tokens", err);
    }

    private static Dictionary<string, byte[]> TensorBytes(string path)
    {
        using var f = GgufFile.Open(path);
        var d = new Dictionary<string, byte[]>();
        unsafe
        {
            foreach (var t in f.Tensors) d[t.Name] = new ReadOnlySpan<byte>(f.BasePointer + t.FileOffset, checked((int)t.ByteSize)).ToArray();
        }
        return d;
    }
}
