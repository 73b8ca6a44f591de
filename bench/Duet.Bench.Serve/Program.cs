// Load client for OpenAI-compatible servers (duet serve, llama-server): streaming chat requests from many
// concurrent clients, checked and timed.
//   verify:     every request's streamed reply must equal the reply the same request got alone (greedy,
//               end-of-turn tokens banned so each runs to max_tokens), token count included: nothing lost,
//               nothing duplicated, nothing mixed up between concurrent streams.
//   throughput: aggregate generated tokens/s and time to first token (p50/p99) at a given concurrency.
// Usage: Duet.Bench.Serve --url http://127.0.0.1:8080 --mode verify|throughput --clients N --requests R
//        --max-tokens T [--tool NAME] [--json FILE]
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

var opts = Args.Parse(args);
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
{
    BaseAddress = new Uri(opts.Url), Timeout = TimeSpan.FromMinutes(10),
};
string model = await ModelId();
var bans = await StopTokenBans();

string Prompt(int i) => $"Request {i}: tell me about Debian, 自由软件 and the quick brown fox number {i * 7919 % 1000}.";

if (opts.Mode == "verify")
{
    int distinct = Math.Min(opts.Requests * opts.Clients, 40);
    var expected = new (string Text, int Tokens)[distinct];
    for (int i = 0; i < distinct; i++)
    {
        var r = await Stream(Prompt(i));
        expected[i] = (r.Text, r.Tokens);
    }
    int bad = 0, total = 0;
    var sw = Stopwatch.StartNew();
    var ttft = new List<double>();
    long tokens = 0;
    await Task.WhenAll(Enumerable.Range(0, opts.Clients).Select(async c =>
    {
        for (int k = 0; k < opts.Requests; k++)
        {
            int i = (c * opts.Requests + k) % distinct;
            var r = await Stream(Prompt(i));
            lock (ttft)
            {
                total++;
                tokens += r.Tokens;
                ttft.Add(r.Ttft);
                if (r.Text != expected[i].Text || r.Tokens != expected[i].Tokens || r.Tokens != opts.MaxTokens || !r.Done)
                {
                    bad++;
                    if (bad <= 5) Console.Error.WriteLine($"request {i}: {r.Tokens} tokens, done={r.Done}, text differs: {r.Text != expected[i].Text}");
                }
            }
        }
    }));
    double secs = sw.Elapsed.TotalSeconds;
    Report(new()
    {
        ["mode"] = "verify", ["clients"] = opts.Clients, ["requests"] = total, ["mismatched"] = bad, ["tokens"] = tokens,
        ["seconds"] = Math.Round(secs, 2), ["tokens_per_s"] = Math.Round(tokens / secs, 1),
        ["ttft_p50_ms"] = Math.Round(Pct(ttft, 50), 1), ["ttft_p99_ms"] = Math.Round(Pct(ttft, 99), 1),
    });
    return bad == 0 && total == opts.Clients * opts.Requests ? 0 : 1;
}
else
{
    // Warm-up: one request per client, not counted.
    await Task.WhenAll(Enumerable.Range(0, opts.Clients).Select(c => Stream(Prompt(c))));
    var ttft = new List<double>();
    long tokens = 0;
    var sw = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, opts.Clients).Select(async c =>
    {
        for (int k = 0; k < opts.Requests; k++)
        {
            var r = await Stream(Prompt(1000 + c * opts.Requests + k));
            lock (ttft) { tokens += r.Tokens; ttft.Add(r.Ttft); }
        }
    }));
    double secs = sw.Elapsed.TotalSeconds;
    Report(new()
    {
        ["mode"] = "throughput", ["clients"] = opts.Clients, ["requests"] = opts.Clients * opts.Requests, ["tokens"] = tokens,
        ["seconds"] = Math.Round(secs, 2), ["tokens_per_s"] = Math.Round(tokens / secs, 1),
        ["ttft_p50_ms"] = Math.Round(Pct(ttft, 50), 1), ["ttft_p99_ms"] = Math.Round(Pct(ttft, 99), 1),
    });
    return 0;
}

void Report(Dictionary<string, object> row)
{
    row["tool"] = opts.Tool;
    row["max_tokens"] = opts.MaxTokens;
    var line = JsonSerializer.Serialize(row);
    Console.WriteLine(line);
    if (opts.Json is { } f) File.AppendAllText(f, line + "\n");
}

static double Pct(List<double> xs, double p)
{
    if (xs.Count == 0) return 0;
    var s = xs.Order().ToArray();
    return s[Math.Min(s.Length - 1, (int)Math.Ceiling(p / 100 * s.Length) - 1)];
}

async Task<string> ModelId()
{
    using var doc = JsonDocument.Parse(await http.GetStringAsync("/v1/models"));
    return doc.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;
}

// End-of-turn tokens banned with logit_bias so every reply runs to max_tokens (both servers take logit_bias).
async Task<Dictionary<string, int>> StopTokenBans()
{
    var bans = new Dictionary<string, int>();
    foreach (var t in new[] { "</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>" })
    {
        using var res = await http.PostAsync("/tokenize", new StringContent(JsonSerializer.Serialize(new { content = t, add_special = false, parse_special = true }), Encoding.UTF8, "application/json"));
        if (!res.IsSuccessStatusCode) continue;
        using var doc = JsonDocument.Parse(await res.Content.ReadAsStringAsync());
        var ids = doc.RootElement.GetProperty("tokens");
        if (ids.GetArrayLength() == 1) bans[ids[0].GetInt32().ToString(CultureInfo.InvariantCulture)] = -100;
    }
    return bans;
}

async Task<(string Text, int Tokens, double Ttft, bool Done)> Stream(string prompt)
{
    var body = JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["model"] = model, ["messages"] = new[] { new { role = "user", content = prompt } }, ["max_tokens"] = opts.MaxTokens,
        ["temperature"] = 0, ["stream"] = true, ["stream_options"] = new { include_usage = true }, ["logit_bias"] = bans,
    });
    var sw = Stopwatch.StartNew();
    using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
    req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
    req.Headers.ConnectionClose = true; // a connection per request: llama-server drops reused keep-alive connections under load
    using var res = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
    res.EnsureSuccessStatusCode();
    using var reader = new StreamReader(await res.Content.ReadAsStreamAsync());
    var text = new StringBuilder();
    double ttft = -1;
    int usageTokens = -1;
    bool done = false;
    while (await reader.ReadLineAsync() is { } line)
    {
        if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
        var data = line[6..];
        if (data == "[DONE]") { done = true; break; }
        using var doc = JsonDocument.Parse(data);
        var root = doc.RootElement;
        if (root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) usageTokens = u.GetProperty("completion_tokens").GetInt32();
        if (!root.TryGetProperty("choices", out var choices) || choices.GetArrayLength() == 0) continue;
        if (choices[0].TryGetProperty("delta", out var delta) && delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
        {
            var piece = content.GetString()!;
            if (piece.Length > 0 && ttft < 0) ttft = sw.Elapsed.TotalMilliseconds;
            text.Append(piece);
        }
    }
    return (text.ToString(), usageTokens, ttft, done);
}

sealed record Args(string Url, string Mode, int Clients, int Requests, int MaxTokens, string Tool, string? Json)
{
    public static Args Parse(string[] a)
    {
        string Get(string name, string def)
        {
            int i = Array.IndexOf(a, name);
            return i >= 0 && i + 1 < a.Length ? a[i + 1] : def;
        }
        int Int(string name, int def) => int.Parse(Get(name, def.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        var mode = Get("--mode", "throughput");
        if (mode is not ("verify" or "throughput")) throw new ArgumentException("--mode verify|throughput");
        return new(Get("--url", "http://127.0.0.1:8080"), mode, Int("--clients", 1), Int("--requests", 4), Int("--max-tokens", 64), Get("--tool", "duet"),
            Array.IndexOf(a, "--json") >= 0 ? Get("--json", "") : null);
    }
}
