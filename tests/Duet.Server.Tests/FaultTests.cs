// Issue 6, acceptance 4: over a thousand malformed or hostile requests against a real server process, each
// answered with the right 4xx and OpenAI-shaped error JSON, valid requests answered between them, and
// clients that hang up mid-stream leave no busy slot behind (read from /metrics).
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Duet.Server.Tests;

public sealed class FaultTests(ServerFixture fx) : IClassFixture<ServerFixture>
{
    private HttpClient Client(string? key = ServerFixture.Key)
    {
        var c = new HttpClient { BaseAddress = fx.Server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return c;
    }

    private sealed record Case(string Name, string Path, byte[] Body, int Status, string? Key = ServerFixture.Key, string Method = "POST");

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    private const string Valid = """{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}""";

    // Fields of a chat request with values of the wrong type or out of range, each a 400.
    private static readonly (string Field, string Value)[] BadFields =
    [
        ("messages", "\"hi\""), ("messages", "[]"), ("messages", "[1]"), ("messages", "[{\"content\":\"x\"}]"),
        ("messages", "[{\"role\":\"wizard\",\"content\":\"x\"}]"), ("messages", "[{\"role\":\"user\",\"content\":5}]"),
        ("messages", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]"),
        ("max_tokens", "-1"), ("max_tokens", "0"), ("max_tokens", "\"ten\""), ("max_tokens", "1.5"), ("max_tokens", "1e30"),
        ("max_tokens", "100000000"), ("max_completion_tokens", "99999999999"), ("temperature", "\"hot\""), ("temperature", "-1"),
        ("temperature", "3"), ("top_p", "1.5"), ("top_p", "[]"), ("top_k", "-4"), ("min_p", "2"), ("presence_penalty", "9"),
        ("frequency_penalty", "-9"), ("seed", "\"x\""), ("seed", "1.5"), ("stop", "5"), ("stop", "[1,2]"),
        ("stop", "[\"a\",\"b\",\"c\",\"d\",\"e\"]"), ("n", "3"), ("stream", "\"yes\""), ("stream_options", "1"),
        ("logprobs", "1"), ("top_logprobs", "50"), ("logit_bias", "[]"), ("logit_bias", "{\"abc\":1}"), ("logit_bias", "{\"5\":500}"),
        ("logit_bias", "{\"99999999\":1}"), ("response_format", "\"json\""), ("response_format", "{\"type\":\"xml\"}"),
        ("response_format", "{\"type\":\"json_schema\"}"), ("tools", "[{\"type\":\"function\"}]"), ("model", "7"),
        // tool calling (issue 19)
        ("tools", "{}"), ("tools", "[]"), ("tools", "[{\"type\":\"function\",\"function\":{\"name\":\"\"}}]"),
        ("tools", "[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":\"x\"}}]"),
        ("tools", "[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},{\"type\":\"function\",\"function\":{\"name\":\"a\"}}]"),
        ("tool_choice", "\"required\""), ("tool_choice", "\"always\""), ("tool_choice", "7"), ("functions", "[]"), ("function_call", "\"auto\""),
        ("messages", "[{\"role\":\"tool\",\"content\":\"x\"}]"),
        ("messages", "[{\"role\":\"assistant\",\"tool_calls\":{}}]"),
        ("messages", "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{}}]}]"),
        ("messages", "[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"a\",\"arguments\":\"[1]\"}}]}]"),
    ];

    private static List<Case> Cases(int seed)
    {
        var rng = new Random(seed);
        var cases = new List<Case>();
        var valid = U(Valid);
        // Truncated JSON at every length, and random bytes.
        for (int i = 0; i < valid.Length; i++) cases.Add(new("truncated", "/v1/chat/completions", valid[..i], 400));
        for (int i = 0; i < 250; i++)
        {
            var b = new byte[rng.Next(1, 200)];
            rng.NextBytes(b);
            b[0] = (byte)"{[\"x"[rng.Next(4)]; // not a valid JSON start followed by noise, or a valid start followed by noise
            cases.Add(new("random bytes", "/v1/chat/completions", b, 400));
        }
        // Invalid UTF-8 inside a string.
        foreach (var bad in new byte[][] { [0xC3], [0xFF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE4, 0xBD] })
            for (int i = 0; i < 6; i++)
            {
                var body = U("{\"messages\":[{\"role\":\"user\",\"content\":\"ab").Concat(bad).Concat(U("cd\"}],\"max_tokens\":2}")).ToArray();
                cases.Add(new("invalid utf-8", i % 2 == 0 ? "/v1/chat/completions" : "/v1/embeddings", i % 2 == 0 ? body : U("{\"input\":\"x").Concat(bad).Concat(U("\"}")).ToArray(), 400));
            }
        // Wrong types and ranges, field by field, several times over with the other fields varied.
        for (int round = 0; round < 12; round++)
            foreach (var (field, value) in BadFields)
            {
                var o = new Dictionary<string, string> { ["messages"] = "[{\"role\":\"user\",\"content\":\"hi\"}]", ["max_tokens"] = "2" };
                if (round % 3 == 1) o["temperature"] = "0.5";
                if (round % 3 == 2) o["stream"] = "true";
                o[field] = value;
                cases.Add(new($"bad {field}={value}", "/v1/chat/completions", U("{" + string.Join(',', o.Select(kv => $"\"{kv.Key}\":{kv.Value}")) + "}"), 400));
            }
        // Not an object, empty, deep nesting, too many messages, a prompt longer than the context.
        foreach (var body in new[] { "[]", "\"x\"", "42", "null", "", " ", "{}", "{\"messages\":null}" })
            cases.Add(new("not an object", "/v1/chat/completions", U(body), 400));
        cases.Add(new("deep", "/v1/chat/completions", U(new string('[', 5000) + new string(']', 5000)), 400));
        cases.Add(new("too many messages", "/v1/chat/completions",
            U("{\"messages\":[" + string.Join(',', Enumerable.Repeat("{\"role\":\"user\",\"content\":\"a\"}", 600)) + "]}"), 400));
        for (int i = 0; i < 10; i++)
            cases.Add(new("prompt too long", "/v1/chat/completions",
                U("{\"messages\":[{\"role\":\"user\",\"content\":\"" + string.Concat(Enumerable.Repeat("Debian 自由 ", 400 + i)) + "\"}]}"), 400));
        // Completions, embeddings, tokenize: wrong shapes.
        foreach (var body in new[] { "{}", "{\"prompt\":5}", "{\"prompt\":[\"a\",\"b\"]}", "{\"prompt\":[-1]}", "{\"prompt\":\"x\",\"echo\":true}", "{\"prompt\":\"x\",\"logprobs\":99}", "{\"prompt\":[]}" })
            for (int i = 0; i < 5; i++) cases.Add(new("completions", "/v1/completions", U(body), 400));
        foreach (var body in new[] { "{}", "{\"input\":5}", "{\"input\":[]}", "{\"input\":[{}]}", "{\"input\":\"x\",\"encoding_format\":\"hex\"}", "{\"input\":\"x\",\"dimensions\":3}", "{\"input\":[99999999]}" })
            for (int i = 0; i < 5; i++) cases.Add(new("embeddings", "/v1/embeddings", U(body), 400));
        // The Responses and Ollama routes (issue 19).
        foreach (var (path, body, status) in new[]
        {
            ("/v1/responses", "{}", 400), ("/v1/responses", "{\"input\":5}", 400), ("/v1/responses", "{\"input\":[{\"type\":\"image\"}]}", 400),
            ("/v1/responses", "{\"input\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400), ("/v1/responses", "{\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", 400),
            ("/v1/responses", "{\"input\":\"x\",\"previous_response_id\":\"resp_nope\"}", 404), ("/v1/responses", "{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"xml\"}}}", 400),
            ("/v1/responses", "{\"input\":[{\"type\":\"function_call_output\"}]}", 400), ("/v1/responses", "{\"input\":\"x\",\"reasoning\":{}}", 400),
            ("/api/chat", "{}", 400), ("/api/chat", "{\"model\":\"nope\",\"messages\":[]}", 404), ("/api/generate", "{\"model\":5}", 400),
            ("/api/embed", "{\"model\":\"nope\",\"input\":\"x\"}", 404), ("/api/show", "{}", 400),
        })
            for (int i = 0; i < 3; i++) cases.Add(new("issue 19 routes", path, U(body), status));
        foreach (var (path, body) in new[] { ("/tokenize", "{}"), ("/tokenize", "{\"content\":1}"), ("/detokenize", "{\"tokens\":\"x\"}"), ("/detokenize", "{\"tokens\":[-5]}") })
            for (int i = 0; i < 5; i++) cases.Add(new("utility", path, U(body), 400));
        // Keys: missing, wrong, wrong scheme, on every protected route.
        foreach (var path in new[] { "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/tokenize", "/detokenize" })
            for (int i = 0; i < 8; i++)
                cases.Add(new("key", path, U(Valid), 401, (i % 4) switch { 0 => null, 1 => "wrong", 2 => "test-key-", _ => "TEST-KEY" }));
        for (int i = 0; i < 8; i++) cases.Add(new("key get", "/v1/models", [], 401, i % 2 == 0 ? null : "nope", "GET"));
        // Unknown routes and wrong methods.
        for (int i = 0; i < 10; i++) cases.Add(new("unknown route", $"/v1/nothing{i}", U(Valid), 404));
        for (int i = 0; i < 5; i++) cases.Add(new("wrong method", "/v1/chat/completions", [], 405, Method: "GET"));
        return cases.OrderBy(_ => rng.Next()).ToList();
    }

    private static async Task<(int Status, string Body)> Send(HttpClient http, Case c)
    {
        using var req = new HttpRequestMessage(new HttpMethod(c.Method), c.Path);
        if (c.Method == "POST") req.Content = new ByteArrayContent(c.Body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
        if (c.Key is null) req.Headers.Authorization = null;
        else req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", c.Key);
        using var res = await http.SendAsync(req);
        return ((int)res.StatusCode, await res.Content.ReadAsStringAsync());
    }

    private static void AssertOpenAiError(string body, string what)
    {
        using var doc = JsonDocument.Parse(body);
        var e = doc.RootElement.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(e.GetProperty("message").GetString()), what);
        Assert.Equal(JsonValueKind.String, e.GetProperty("type").ValueKind);
    }

    [Fact]
    public async Task HostileRequests_EachGetsTheRight4xx_AndValidRequestsStillWork()
    {
        using var http = new HttpClient { BaseAddress = fx.Server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        var cases = Cases(2026);
        Assert.True(cases.Count >= 1000, $"only {cases.Count} cases");
        int validAnswered = 0;
        for (int i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            var (status, body) = await Send(http, c);
            Assert.True(c.Status == status, $"{c.Name} ({Encoding.UTF8.GetString(c.Body.AsSpan(0, Math.Min(120, c.Body.Length)))}) -> {status}, expected {c.Status}: {body}");
            if (status != 405 && c.Path.StartsWith("/api/", StringComparison.Ordinal))
                Assert.False(string.IsNullOrWhiteSpace(JsonDocument.Parse(body).RootElement.GetProperty("error").GetString()), c.Name); // Ollama's {"error": "..."}
            else if (status != 405) AssertOpenAiError(body, c.Name);
            if (i % 50 == 0)
            {
                var (ok, okBody) = await Send(http, new Case("valid", "/v1/chat/completions", U(Valid), 200));
                Assert.True(ok == 200, okBody);
                validAnswered++;
            }
        }
        Assert.True(validAnswered >= 20);
        Assert.False(fx.Server.Exited);
    }

    [Fact]
    public async Task TenMegabyteBodies_Are413_AndTheServerGoesOn()
    {
        using var http = Client();
        var big = new byte[10 << 20];
        Array.Fill(big, (byte)' ');
        U("{\"messages\":[{\"role\":\"user\",\"content\":\"").CopyTo(big, 0);
        for (int i = 0; i < 4; i++)
        {
            using var content = i % 2 == 0 ? (HttpContent)new ByteArrayContent(big) : new StreamContent(new MemoryStream(big)); // with and without Content-Length
            if (i % 2 == 1) content.Headers.ContentLength = null;
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            try
            {
                using var res = await http.PostAsync(i < 2 ? "/v1/chat/completions" : "/v1/embeddings", content);
                Assert.Equal(HttpStatusCode.RequestEntityTooLarge, res.StatusCode);
                AssertOpenAiError(await res.Content.ReadAsStringAsync(), "413");
            }
            catch (HttpRequestException e) when (e.InnerException is IOException)
            {
                // The server answered 413 and closed the connection while the client was still sending: also a refusal.
            }
        }
        using var ok = await http.PostAsync("/v1/chat/completions", new StringContent(Valid, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    private static async Task<double> Metric(HttpClient http, string name)
    {
        var text = await http.GetStringAsync("/metrics");
        var line = text.Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task ClientsHangingUpMidStream_LeaveNoBusySlot()
    {
        // No draining: .NET's client would otherwise read the rest of a disposed response (up to 1 MB) to reuse the
        // connection, which is not hanging up. A browser's abort closes the connection, as this does.
        using var http = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = fx.Server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServerFixture.Key);
        var body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me everything.\"}],\"max_tokens\":200,\"stream\":true,\"ignore_eos\":true}";
        const string Cancelled = "duet_generation_requests_total{outcome=\"cancelled\"}", Finished = "duet_generation_requests_total{outcome=\"finished\"}";
        double cancelled0 = await Metric(http, Cancelled), finished0 = await Metric(http, Finished);
        for (int round = 0; round < 3; round++)
        {
            var tasks = Enumerable.Range(0, 6).Select(async i =>
            {
                using var cts = new CancellationTokenSource();
                using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                using var res = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
                Assert.Equal(HttpStatusCode.OK, res.StatusCode);
                using var stream = await res.Content.ReadAsStreamAsync(cts.Token);
                using var reader = new StreamReader(stream);
                int events = 0;
                while (events < 2 + i && await reader.ReadLineAsync(cts.Token) is { } line)
                    if (line.StartsWith("data: ", StringComparison.Ordinal)) events++;
                await cts.CancelAsync(); // hang up mid-stream
            }).ToArray();
            await Task.WhenAll(tasks);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (await Metric(http, "duet_slots_busy") > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.Equal(0, await Metric(http, "duet_slots_busy"));
            Assert.Equal(0, await Metric(http, "duet_queue_depth"));
        }
        // Each of the 18 requests ends once, as cancelled or (when the tiny test model wrote all 200 tokens into the
        // socket before its client hung up, which a loaded machine allows) finished; most are hang-ups.
        double cancelled = await Metric(http, Cancelled) - cancelled0, finished = await Metric(http, Finished) - finished0;
        Assert.True(cancelled + finished == 18 && cancelled >= 12, $"{cancelled} requests counted as cancelled, {finished} as finished:\n{await http.GetStringAsync("/metrics")}");
        using var ok = await http.PostAsync("/v1/chat/completions", new StringContent(Valid, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Health_And_Metrics_NeedNoKey()
    {
        using var http = Client(key: null);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
        var text = await http.GetStringAsync("/metrics");
        foreach (var name in new[] { "duet_http_requests_total", "duet_prompt_tokens_total", "duet_completion_tokens_total", "duet_queue_depth", "duet_slots_busy", "duet_generation_tokens_per_second" })
            Assert.Contains("# TYPE " + name, text, StringComparison.Ordinal);
    }
}
