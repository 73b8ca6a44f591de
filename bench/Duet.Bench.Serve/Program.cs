// Load client for OpenAI-compatible servers (duet serve, llama-server): streaming chat requests from many
// concurrent clients, checked and timed.
//   verify:     every request's streamed reply must equal the reply the same request got alone (greedy,
//               end-of-turn tokens banned so each runs to max_tokens), token count included: nothing lost,
//               nothing duplicated, nothing mixed up between concurrent streams.
//   throughput: aggregate generated tokens/s and time to first token (p50/p99) at a given concurrency.
// A request that fails (refused, an HTTP error, a stream cut before data: [DONE]) is reported with how far it got:
// before_response (no byte of the reply), after_headers (headers, no token yet) or mid_stream (tokens came), and the
// replica that served it when a proxy names it (nginx's X-Duet-Replica header, deploy/nginx); the clients carry on.
// --kill-pid P --kill-after K (verify): kill -9 process P (a replica behind the proxy) once K requests have completed;
// then only requests already streaming from that replica (after_headers or mid_stream, from --kill-addr if given)
// may fail: every other request must complete with the reply it got alone.
// Usage: Duet.Bench.Serve --url http://127.0.0.1:8080 --mode verify|throughput --clients N --requests R
//        --max-tokens T [--tool NAME] [--json FILE] [--kill-pid P --kill-after K [--kill-addr HOST:PORT]]
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
        if (r.Failure is not null) throw new InvalidOperationException($"request {i} alone failed ({r.Failure}): {r.Error}");
        expected[i] = (r.Text, r.Tokens);
    }
    int bad = 0, total = 0, completed = 0, retried = 0;
    var failures = new List<Dictionary<string, object?>>();
    var sw = Stopwatch.StartNew();
    var ttft = new List<double>();
    long tokens = 0;
    double killedAt = -1;
    await Task.WhenAll(Enumerable.Range(0, opts.Clients).Select(async c =>
    {
        for (int k = 0; k < opts.Requests; k++)
        {
            int i = (c * opts.Requests + k) % distinct;
            var r = await Stream(Prompt(i));
            bool kill = false;
            lock (ttft)
            {
                total++;
                if (r.Replica?.Contains(',') == true) retried++;
                if (r.Failure is not null)
                {
                    failures.Add(Failure(r, c, k, i, sw.Elapsed.TotalSeconds));
                    continue;
                }
                tokens += r.Tokens;
                ttft.Add(r.Ttft);
                if (r.Text != expected[i].Text || r.Tokens != expected[i].Tokens || r.Tokens != opts.MaxTokens || !r.Done)
                {
                    bad++;
                    if (bad <= 5) Console.Error.WriteLine($"request {i}: {r.Tokens} tokens, done={r.Done}, text differs: {r.Text != expected[i].Text}");
                }
                kill = ++completed == opts.KillAfter && opts.KillPid is not null;
                if (kill) killedAt = sw.Elapsed.TotalSeconds;
            }
            if (kill)
            {
                // kill -9: the replica gets no chance to finish or close its streams.
                using var victim = Process.GetProcessById(opts.KillPid!.Value);
                victim.Kill();
                Console.Error.WriteLine($"killed process {opts.KillPid} ({opts.KillAddr ?? "replica"}) at {killedAt:F2} s, after {opts.KillAfter} completed requests");
            }
        }
    }));
    double secs = sw.Elapsed.TotalSeconds;
    // Allowed to fail: only requests that had started streaming (a byte of the reply arrived) from the killed replica.
    int unexpected = failures.Count(f => opts.KillPid is null || (string)f["stage"]! == "before_response"
        || (opts.KillAddr is not null && (string?)f["replica"] != opts.KillAddr));
    var row = new Dictionary<string, object>
    {
        ["mode"] = "verify", ["clients"] = opts.Clients, ["requests"] = total, ["mismatched"] = bad, ["tokens"] = tokens,
        ["seconds"] = Math.Round(secs, 2), ["tokens_per_s"] = Math.Round(tokens / secs, 1),
        ["ttft_p50_ms"] = Math.Round(Pct(ttft, 50), 1), ["ttft_p99_ms"] = Math.Round(Pct(ttft, 99), 1),
    };
    if (failures.Count > 0 || opts.KillPid is not null || retried > 0)
    {
        row["completed"] = total - failures.Count;
        row["failed"] = failures.Count;
        foreach (var stage in new[] { "before_response", "after_headers", "mid_stream" })
            row["failed_" + stage] = failures.Count(f => (string)f["stage"]! == stage);
        row["failed_unexpected"] = unexpected;
        row["retried_by_proxy"] = retried;
        if (opts.KillPid is not null) { row["killed_pid"] = opts.KillPid; row["killed_at_s"] = Math.Round(killedAt, 2); row["killed_addr"] = opts.KillAddr ?? ""; }
        row["failures"] = failures;
    }
    Report(row);
    return bad == 0 && unexpected == 0 && total == opts.Clients * opts.Requests && (opts.KillPid is null || killedAt >= 0) ? 0 : 1;
}
else
{
    // Warm-up: one request per client, not counted.
    await Task.WhenAll(Enumerable.Range(0, opts.Clients).Select(c => Stream(Prompt(c))));
    var ttft = new List<double>();
    var failures = new List<Dictionary<string, object?>>();
    long tokens = 0;
    var sw = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, opts.Clients).Select(async c =>
    {
        for (int k = 0; k < opts.Requests; k++)
        {
            int i = 1000 + c * opts.Requests + k;
            var r = await Stream(Prompt(i));
            lock (ttft)
            {
                if (r.Failure is not null) failures.Add(Failure(r, c, k, i, sw.Elapsed.TotalSeconds));
                else { tokens += r.Tokens; ttft.Add(r.Ttft); }
            }
        }
    }));
    double secs = sw.Elapsed.TotalSeconds;
    var row = new Dictionary<string, object>
    {
        ["mode"] = "throughput", ["clients"] = opts.Clients, ["requests"] = opts.Clients * opts.Requests, ["tokens"] = tokens,
        ["seconds"] = Math.Round(secs, 2), ["tokens_per_s"] = Math.Round(tokens / secs, 1),
        ["ttft_p50_ms"] = Math.Round(Pct(ttft, 50), 1), ["ttft_p99_ms"] = Math.Round(Pct(ttft, 99), 1),
    };
    if (failures.Count > 0) { row["failed"] = failures.Count; row["failures"] = failures; }
    Report(row);
    return failures.Count == 0 ? 0 : 1;
}

// One failed request for the report (and a line on stderr); tokens_received counts the pieces of text that came
// (one per token whose text was not held back).
Dictionary<string, object?> Failure(Reply r, int client, int k, int prompt, double at)
{
    Console.Error.WriteLine($"failed: client {client} request {k} (prompt {prompt}) at {at:F2} s: {r.Failure}, {r.Pieces} tokens of text received, replica {r.Replica ?? "?"}: {r.Error}");
    return new()
    {
        ["client"] = client, ["request"] = k, ["prompt"] = prompt, ["at_s"] = Math.Round(at, 2), ["stage"] = r.Failure,
        ["tokens_received"] = r.Pieces, ["replica"] = r.Replica?.Split(", ")[^1], ["tried"] = r.Replica, ["error"] = r.Error,
    };
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

// A streamed request, never throwing: Failure is null when the reply came back whole (HTTP 200 and data: [DONE]), else
// before_response (no byte of the reply: refused, reset, or an HTTP error status), after_headers (the reply had begun,
// no token yet) or mid_stream (tokens had come). Replica: the proxy's X-Duet-Replica header (the addresses tried).
async Task<Reply> Stream(string prompt)
{
    var p = new Progress();
    string? failure = null, error = null;
    try
    {
        await StreamInto(prompt, p);
        if (p.Status is int status) (failure, error) = ("before_response", $"HTTP {status}: {p.Text}");
        else if (!p.Done) (failure, error) = (p.Pieces == 0 ? "after_headers" : "mid_stream", "the stream ended without data: [DONE]");
    }
    catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException or JsonException)
    {
        failure = !p.Started ? "before_response" : p.Pieces == 0 ? "after_headers" : "mid_stream";
        error = e.GetType().Name + ": " + e.Message;
    }
    return new(p.Status is null ? p.Text.ToString() : "", p.Usage, p.Ttft, p.Done, failure, p.Replica, p.Pieces, error);
}

async Task StreamInto(string prompt, Progress p)
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
    if (res.Headers.TryGetValues("X-Duet-Replica", out var names)) p.Replica = string.Join(", ", names);
    if (!res.IsSuccessStatusCode)
    {
        var error = await res.Content.ReadAsStringAsync();
        p.Status = (int)res.StatusCode;
        p.Text.Append(error.AsSpan(0, Math.Min(error.Length, 200)));
        return;
    }
    p.Started = true;
    using var reader = new StreamReader(await res.Content.ReadAsStreamAsync());
    while (await reader.ReadLineAsync() is { } line)
    {
        if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
        var data = line[6..];
        if (data == "[DONE]") { p.Done = true; break; }
        using var doc = JsonDocument.Parse(data);
        var root = doc.RootElement;
        if (root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) p.Usage = u.GetProperty("completion_tokens").GetInt32();
        if (!root.TryGetProperty("choices", out var choices) || choices.GetArrayLength() == 0) continue;
        if (choices[0].TryGetProperty("delta", out var delta) && delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
        {
            var piece = content.GetString()!;
            if (piece.Length > 0)
            {
                if (p.Ttft < 0) p.Ttft = sw.Elapsed.TotalMilliseconds;
                p.Pieces++;
            }
            p.Text.Append(piece);
        }
    }
}

sealed record Reply(string Text, int Tokens, double Ttft, bool Done, string? Failure, string? Replica, int Pieces, string? Error);

// How far a request got: whether the reply had begun (HTTP 200 headers), its pieces of text so far, [DONE].
sealed class Progress
{
    public bool Started, Done;
    public int? Status;
    public int Pieces, Usage = -1;
    public double Ttft = -1;
    public string? Replica;
    public readonly StringBuilder Text = new();
}

sealed record Args(string Url, string Mode, int Clients, int Requests, int MaxTokens, string Tool, string? Json, int? KillPid, int KillAfter, string? KillAddr)
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
        int? killPid = Array.IndexOf(a, "--kill-pid") >= 0 ? Int("--kill-pid", 0) : null;
        if (killPid is not null && mode != "verify") throw new ArgumentException("--kill-pid goes with --mode verify");
        return new(Get("--url", "http://127.0.0.1:8080"), mode, Int("--clients", 1), Int("--requests", 4), Int("--max-tokens", 64), Get("--tool", "duet"),
            Array.IndexOf(a, "--json") >= 0 ? Get("--json", "") : null, killPid, Int("--kill-after", 1), Array.IndexOf(a, "--kill-addr") >= 0 ? Get("--kill-addr", "") : null);
    }
}
