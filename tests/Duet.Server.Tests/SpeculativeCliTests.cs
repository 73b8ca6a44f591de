// Speculative decoding from the command line and the server: `duet generate --lookup / --draft` prints the same
// tokens as plain `duet generate` (a Q8_0 model: its single-token kernels are the invariant ones the drafts are
// checked with), `duet serve --draft` gives the same greedy reply as without it and counts its drafts in /metrics,
// and a draft model with another tokenizer is refused with the reason.
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Duet.Model;
using Duet.Tests;
using Duet.Tokenizers.Trainer;

namespace Duet.Server.Tests;

public sealed class SpeculativeCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-spec-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static (int Exit, string Out, string Err) RunDuet(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Repo.DuetDll());
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "duet did not finish in 2 minutes");
        return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    // A prompt that repeats itself (prompt lookup finds n-grams in it); end-of-turn tokens banned by --ignore-eos is
    // not a CLI option, so the reply may end early: equal outputs are compared whatever their length.
    private const string Prompt = "Debian is a free operating system. Debian is a free operating system. Debian is";

    [Fact]
    public void Generate_WithLookupOrDraft_PrintsThePlainTokens()
    {
        string[] common = ["generate", "-m", TestModels.Path, "-p", Prompt, "-n", "48", "--temp", "0", "--print-ids", "-t", "2"];
        var plain = RunDuet(common);
        Assert.True(plain.Exit == 0, plain.Err);
        Assert.True(plain.Out.Trim().Split(' ').Length >= 8, plain.Out);
        var lookup = RunDuet([.. common, "--lookup", "--timings"]);
        Assert.True(lookup.Exit == 0, lookup.Err);
        Assert.Equal(plain.Out, lookup.Out);
        Assert.Contains("speculative decoding (prompt lookup)", lookup.Err);
        // The same weights as the draft (the 2k-context copy): nearly all drafts hold.
        var draft = RunDuet([.. common, "--draft", TestModels.LongContextPath, "--draft-p-min", "0", "--timings"]);
        Assert.True(draft.Exit == 0, draft.Err);
        Assert.Equal(plain.Out, draft.Out);
        Assert.Matches(@"speculative decoding \(draft model\): [1-9]\d* tokens drafted, [1-9]\d* accepted", draft.Err);
    }

    [Fact]
    public void Generate_DraftWithAnotherTokenizer_IsRefusedWithTheReason()
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = TestModels.Tokenizer.VocabSize });
        foreach (var line in File.ReadLines(Path.Combine(Repo.Root, "tests", "TestData", "bilingual-test.txt")).Skip(2000).Take(800)) trainer.AddText(line);
        var other = trainer.Train();
        var path = Path.Combine(_dir, "other.gguf");
        ModelPackage.WriteGguf(CanonicalModel.Random(TestModels.Config(other.VocabSize), 3, other, std: 0.25f), path, Duet.Tensors.GgmlType.Q8_0);
        var r = RunDuet("generate", "-m", TestModels.Path, "-p", Prompt, "-n", "4", "--draft", path);
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("not the model's tokenizer", r.Err);
    }

    [Fact]
    public async Task Serve_WithDraft_SameGreedyReplyAndDraftsCounted()
    {
        var body = new { messages = new[] { new { role = "user", content = Prompt } }, max_tokens = 40, temperature = 0, logit_bias = TestModels.NoStop() };
        async Task<(string Reply, string Metrics)> Ask(params string[] extra)
        {
            using var server = new ServerProcess(TestModels.Path, ["--parallel", "2", "-t", "2", .. extra]);
            await server.WaitReadyAsync(TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = server.BaseUri };
            using var r = await http.PostAsJsonAsync("/v1/chat/completions", body);
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            return (doc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!, await http.GetStringAsync("/metrics"));
        }
        var plain = await Ask();
        var spec = await Ask("--draft", TestModels.LongContextPath, "--draft-p-min", "0");
        Assert.Equal(plain.Reply, spec.Reply);
        Assert.Contains("duet_draft_tokens_total 0", plain.Metrics);
        var accepted = System.Text.RegularExpressions.Regex.Match(spec.Metrics, @"duet_draft_tokens_accepted_total (\d+)");
        Assert.True(accepted.Success && int.Parse(accepted.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, spec.Metrics);
    }
}
