// Issue 19, acceptance 5: one server, two models (--model NAME=PATH twice). Each answers to its name (and the
// OpenAI and Ollama lists show both); an unknown name gets each API's 404; a model loads on its first request and,
// idle past --keep-alive, is unloaded: /api/ps empties, the model files are unmapped and the server's file-backed
// resident memory falls by the weights (read from /proc/PID/status; the whole breakdown printed in the test output).
using System.Net.Http.Json;
using System.Text.Json;
using Xunit.Abstractions;

namespace Duet.Server.Tests;

public sealed class MultiModelTests(ITestOutputHelper output)
{
    private static long Kb(int pid, string field) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal)).Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries)[1],
            System.Globalization.CultureInfo.InvariantCulture);

    private static string Rss(int pid) => $"RSS {Kb(pid, "VmRSS") / 1024.0:F1} MB (anonymous {Kb(pid, "RssAnon") / 1024.0:F1}, file {Kb(pid, "RssFile") / 1024.0:F1}, shared {Kb(pid, "RssShmem") / 1024.0:F1})";

    [Fact]
    public async Task TwoModels_AnswerToTheirNames_UnknownIs404_IdleOnesUnload()
    {
        using var server = new ServerProcess(TestModels.Path, "--model", $"big={TestModels.BigPath}", "--keep-alive", "2s", "--max-models", "2", "--parallel", "2", "--threads", "2");
        await server.WaitReadyAsync(TimeSpan.FromSeconds(90));
        using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        string first = ServerFixture.ModelName;

        var listed = JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Equal([first, "big"], listed);
        var tags = JsonDocument.Parse(await http.GetStringAsync("/api/tags")).RootElement.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()).ToList();
        Assert.Equal([first, "big"], tags);

        async Task<JsonElement> Chat(string model)
        {
            using var r = await http.PostAsJsonAsync("/v1/chat/completions", new { model, messages = new[] { new { role = "user", content = "Hi" } }, max_tokens = 4, temperature = 0 });
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.IsSuccessStatusCode, text);
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        string before = Rss(server.Pid);
        Assert.Equal("big", (await Chat("big")).GetProperty("model").GetString());       // loads on first use
        Assert.Equal(first, (await Chat(first)).GetProperty("model").GetString());
        using (var r = await http.PostAsJsonAsync("/api/chat", new { model = "big:latest", messages = new[] { new { role = "user", content = "Hi" } }, stream = false, options = new { num_predict = 2 } }))
            Assert.Equal("big", JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("model").GetString());
        var running = JsonDocument.Parse(await http.GetStringAsync("/api/ps")).RootElement.GetProperty("models").GetArrayLength();
        Assert.Equal(2, running);
        string loaded = Rss(server.Pid);
        long fileLoaded = Kb(server.Pid, "RssFile");
        Assert.Contains(File.ReadLines($"/proc/{server.Pid}/maps"), l => l.EndsWith("big-2k.gguf", StringComparison.Ordinal));

        using (var r = await http.PostAsJsonAsync("/v1/chat/completions", new { model = "nope", messages = new[] { new { role = "user", content = "Hi" } } }))
        {
            Assert.Equal(404, (int)r.StatusCode);
            Assert.Equal("model_not_found", JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
        }
        using (var r = await http.PostAsJsonAsync("/api/generate", new { model = "nope", prompt = "x" }))
        {
            Assert.Equal(404, (int)r.StatusCode);
            Assert.Contains("model 'nope' not found", JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        }

        // Idle past the keep-alive (2 s; the sweep runs every second): both unload.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (JsonDocument.Parse(await http.GetStringAsync("/api/ps")).RootElement.GetProperty("models").GetArrayLength() > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the idle models were not unloaded");
            await Task.Delay(250);
        }
        // The weights are unmapped (the files leave /proc/PID/maps) and their pages leave the resident set.
        long bigKb = new FileInfo(TestModels.BigPath).Length / 1024;
        long fileAfter = Kb(server.Pid, "RssFile");
        for (var until = DateTime.UtcNow.AddSeconds(10); fileAfter > fileLoaded - bigKb * 8 / 10 && DateTime.UtcNow < until; fileAfter = Kb(server.Pid, "RssFile")) await Task.Delay(200);
        output.WriteLine($"before the requests (first model loaded): {before}");
        output.WriteLine($"both models loaded:                     {loaded}");
        output.WriteLine($"both unloaded:                          {Rss(server.Pid)}");
        Assert.DoesNotContain(File.ReadLines($"/proc/{server.Pid}/maps"), l => l.Contains(".gguf", StringComparison.Ordinal));
        Assert.True(fileAfter <= fileLoaded - bigKb * 8 / 10, $"file-backed RSS {fileLoaded} kB -> {fileAfter} kB; the big model's {bigKb} kB of weights should leave it");
        Assert.Equal("ok", JsonDocument.Parse(await http.GetStringAsync("/health")).RootElement.GetProperty("status").GetString()); // idle, not failed
        Assert.Equal(first, (await Chat(first)).GetProperty("model").GetString());       // and loads again
    }

    /// <summary>An adapter served as a model of its own ("fr" = the base + a LoRA adapter): the request's model chooses it.</summary>
    [Fact]
    public async Task AdapterAsAModel_ChosenByName_SameAsTheEngineWithTheAdapter()
    {
        var dir = Directory.CreateTempSubdirectory("duet-adapter-model-").FullName;
        try
        {
            Duet.Model.LlamaConfig config;
            using (var probe = Duet.Model.LlamaModel.Load(TestModels.Path)) config = probe.Config;
            var adapter = Path.Combine(dir, "fr.gguf");
            Duet.Model.LoraAdapter.Random(config, 4, 8, [Duet.Model.LayerTensor.Q, Duet.Model.LayerTensor.V, Duet.Model.LayerTensor.Down], seed: 3, std: 0.3f, bStd: 0.3f).WriteGguf(adapter, config);
            using var server = new ServerProcess(TestModels.Path, "--model", $"fr={TestModels.Path}+{adapter}:0.5", "--threads", "2");
            await server.WaitReadyAsync(TimeSpan.FromSeconds(90));
            using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
            async Task<string> Complete(string model)
            {
                using var r = await http.PostAsJsonAsync("/v1/completions", new { model, prompt = "Debian is", max_tokens = 8, temperature = 0, logit_bias = TestModels.NoStop() });
                var text = await r.Content.ReadAsStringAsync();
                Assert.True(r.IsSuccessStatusCode, text);
                return JsonDocument.Parse(text).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
            }
            string plain = await Complete(ServerFixture.ModelName), fr = await Complete("fr");
            Assert.NotEqual(plain, fr);

            // The same greedy tokens as the engine in-process with the adapter applied at scale 0.5.
            var (model, tok) = Duet.Inference.ModelLoader.Load(TestModels.Path);
            using (model)
            {
                model.AddAdapter(Duet.Model.LoraAdapter.Read(adapter, model.Config), 0.5f);
                using var engine = new Duet.Inference.Serving.InferenceEngine(model, tok, new Duet.Inference.Serving.EngineOptions { Slots = 1, Context = 256 });
                var bias = TestModels.NoStop().ToDictionary(p => p.Key, _ => float.NegativeInfinity);
                var (text, _, _) = await engine.Submit(new Duet.Inference.Serving.GenerationRequest
                {
                    Prompt = tok.Encode("Debian is", addSpecialTokens: true), MaxTokens = 8, LogitBias = bias,
                    Sampling = new Duet.Inference.SamplingOptions { Temperature = 0 },
                }).ReadAllAsync();
                Assert.Equal(text, fr);
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
