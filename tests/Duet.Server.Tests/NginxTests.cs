// Issue 20: `duet serve` scaled out behind nginx. deploy/replicas.sh (run here as a process, as a user would) starts
// three replicas of the test model on loopback, renders deploy/nginx/duet.conf.template, starts nginx and watches the
// replicas' /health. Through nginx: whole replies spread over the replicas; a streamed reply arrives piece by piece
// (its first piece while the replica is still generating, so nginx does not buffer it); a replica killed with
// kill -9 costs no later request: at once nginx retries on another replica the request that found it dead, and
// within seconds the watcher marks it down (nginx's /health counts 2 of 3). Stopping the script stops nginx and the
// replicas. Skipped when nginx is not installed (test.sh installs nginx-light).
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Duet.Tests;
using Xunit.Abstractions;

namespace Duet.Server.Tests;

public sealed class NginxTests(ITestOutputHelper output)
{
    private sealed record Reply(HttpStatusCode Status, string? Replica, string Text);

    // Greedy, end-of-turn tokens banned: every reply runs to max_tokens.
    private static Dictionary<string, object> Body(string prompt, int maxTokens, bool stream)
    {
        var body = new Dictionary<string, object>
        {
            ["messages"] = new[] { new { role = "user", content = prompt } }, ["max_tokens"] = maxTokens, ["temperature"] = 0, ["stream"] = stream,
            ["logit_bias"] = TestModels.NoStop().ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value),
        };
        if (stream) body["stream_options"] = new { include_usage = true };
        return body;
    }

    private static string? ReplicaOf(HttpResponseMessage r) => r.Headers.TryGetValues("X-Duet-Replica", out var v) ? string.Join(", ", v) : null;

    private static async Task<Reply> Whole(HttpClient http, string prompt)
    {
        using var r = await http.PostAsJsonAsync("/v1/chat/completions", Body(prompt, 8, stream: false));
        var text = await r.Content.ReadAsStringAsync();
        return new(r.StatusCode, ReplicaOf(r), text);
    }

    /// <summary>A streamed reply read line by line; at its first piece of text, onFirst runs (the reply still open).</summary>
    private static async Task<(Reply Reply, int Pieces, int Tokens, bool Done, T First)> Streamed<T>(HttpClient http, string prompt, int maxTokens, Func<string?, Task<T>> onFirst)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(Body(prompt, maxTokens, stream: true)) };
        using var r = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        string? replica = ReplicaOf(r);
        if (!r.IsSuccessStatusCode) return (new(r.StatusCode, replica, await r.Content.ReadAsStringAsync()), 0, 0, false, default!);
        Assert.StartsWith("text/event-stream", r.Content.Headers.ContentType?.MediaType);
        // Passed on by nginx (proxy_pass_header), so a proxy in front of it does not buffer the stream either.
        Assert.Equal("no", Assert.Single(r.Headers.GetValues("X-Accel-Buffering")));
        using var reader = new StreamReader(await r.Content.ReadAsStreamAsync());
        var text = new System.Text.StringBuilder();
        int pieces = 0, tokens = -1;
        bool done = false;
        T first = default!;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            if (line == "data: [DONE]") { done = true; break; }
            using var doc = JsonDocument.Parse(line[6..]);
            if (doc.RootElement.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) tokens = u.GetProperty("completion_tokens").GetInt32();
            var choices = doc.RootElement.GetProperty("choices");
            if (choices.GetArrayLength() == 0 || !choices[0].GetProperty("delta").TryGetProperty("content", out var c) || c.GetString() is not { Length: > 0 } piece) continue;
            if (pieces++ == 0) first = await onFirst(replica);
            text.Append(piece);
        }
        return (new(r.StatusCode, replica, text.ToString()), pieces, tokens, done, first);
    }

    private static async Task<double> Gauge(HttpClient direct, string name)
    {
        var line = (await direct.GetStringAsync("/metrics")).Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private const int Long = 600; // the streamed reply's tokens, within the 2,048 of context

    [NginxFact]
    public async Task Replicas_BehindNginx_StreamUnbuffered_SurviveAKilledReplica()
    {
        var sw = Stopwatch.StartNew();
        var set = new ReplicaSet(TestModels.BigPath, 3, "--parallel", "2", "--ctx", "2048", "--threads", "1");
        try
        {
            await set.WaitReadyAsync(3, TimeSpan.FromSeconds(90));
            output.WriteLine($"3 replicas and nginx ready in {sw.Elapsed.TotalSeconds:F1} s");
            using var http = new HttpClient { BaseAddress = set.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
            string[] addrs = [.. Enumerable.Range(1, 3).Select(i => $"127.0.0.1:{set.ReplicaPort(i)}")];

            // Whole replies, six at once: all answered, by more than one replica (least_conn).
            var whole = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Whole(http, $"Hello {i}")));
            foreach (var w in whole)
            {
                Assert.True(w.Status == HttpStatusCode.OK, w.Text);
                Assert.Equal(8, JsonDocument.Parse(w.Text).RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
                Assert.Contains(w.Replica, addrs);
            }
            Assert.True(whole.Select(w => w.Replica).Distinct().Count() >= 2, string.Join(" ", whole.Select(w => w.Replica)));

            // A streamed reply through nginx arrives as it is generated: when its first piece arrives, the replica (read
            // directly) has generated only the first few of its tokens; a proxy that held the reply until it ended would
            // hand over the first piece only then. Each replica streams once first, directly: the CLI jits methods
            // optimized from their first call, and a replica's first streamed reply waited on compiling its streaming
            // path while its decoding loop, compiled by the whole replies above, ran on. /metrics is read through the
            // same clients, their connections open. The 26M-parameter model decodes slowly enough that the reading
            // is of the proxy, not of the client's own pace: 2-3 of 600 tokens (the 2.6M test model, 440 tokens, after
            // this CLI change: 42-118 once warm, 223-402 cold).
            var direct = addrs.ToDictionary(a => a, a => new HttpClient { BaseAddress = new Uri("http://" + a), Timeout = TimeSpan.FromSeconds(30) });
            foreach (var a in addrs)
            {
                var warm = await Streamed(direct[a], "Hello", 8, _ => Task.FromResult(0));
                Assert.True(warm.Reply.Status == HttpStatusCode.OK && warm.Done, warm.Reply.Text);
            }
            var before = new Dictionary<string, double>();
            foreach (var a in addrs) before[a] = await Gauge(direct[a], "duet_completion_tokens_total");
            var (reply, pieces, tokens, done, generatedAtFirst) = await Streamed(http, "Tell me a long story", Long,
                async r => await Gauge(direct[r!.Split(", ")[^1]], "duet_completion_tokens_total") - before[r!.Split(", ")[^1]]);
            foreach (var c in direct.Values) c.Dispose();
            Assert.True(reply.Status == HttpStatusCode.OK, reply.Text);
            Assert.True(done, "the stream ended without data: [DONE]");
            Assert.Equal(Long, tokens);
            Assert.True(pieces > 100, $"{pieces} pieces of text");
            output.WriteLine($"first piece of the stream through nginx when the replica had generated {generatedAtFirst} of {Long} tokens");
            Assert.InRange(generatedAtFirst, 1, Long / 4);
            // The same request answered whole gives the same text (greedy, replicas with the same weights).
            using (var r = await http.PostAsJsonAsync("/v1/chat/completions", Body("Tell me a long story", Long, stream: false)))
                Assert.Equal(reply.Text, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

            // kill -9 one replica. Right away, before the health watcher has seen it: every request succeeds, and one
            // that nginx sent to the dead replica was sent again to another (X-Duet-Replica lists both).
            using (var victim = Process.GetProcessById(set.ReplicaPid(2))) victim.Kill();
            var killedAt = sw.Elapsed;
            var after = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Whole(http, $"After {i}")));
            foreach (var w in after) Assert.True(w.Status == HttpStatusCode.OK, w.Text);
            Assert.Contains(after, w => w.Replica is { } r && r.StartsWith(addrs[1] + ", ", StringComparison.Ordinal));
            Assert.All(after, w => Assert.NotEqual(addrs[1], w.Replica!.Split(", ")[^1]));
            var streamed = await Streamed(http, "After the kill", 16, _ => Task.FromResult(0));
            Assert.True(streamed.Done && streamed.Tokens == 16, streamed.Reply.Text);

            // The watcher marks it down and reloads nginx: /health counts 2 of 3, upstreams.conf says down.
            var health = "";
            for (var deadline = Stopwatch.StartNew(); deadline.Elapsed < TimeSpan.FromSeconds(15); await Task.Delay(200))
            {
                health = await http.GetStringAsync("/health");
                if (health.Contains("\"healthy\":2", StringComparison.Ordinal)) break;
            }
            Assert.Contains("\"healthy\":2", health);
            output.WriteLine($"marked down {(sw.Elapsed - killedAt).TotalSeconds:F1} s after the kill: {health.Trim()}");
            Assert.Contains($"server {addrs[1]} max_fails=1 fail_timeout=10s down;", File.ReadAllText(Path.Combine(set.Work, "nginx", "upstreams.conf")));
            var later = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Whole(http, $"Later {i}")));
            foreach (var w in later)
            {
                Assert.True(w.Status == HttpStatusCode.OK, w.Text);
                Assert.DoesNotContain(addrs[1], w.Replica);
            }
            streamed = await Streamed(http, "Later still", 16, _ => Task.FromResult(0));
            Assert.True(streamed.Done && streamed.Tokens == 16, streamed.Reply.Text);

            // Stopping the script (SIGTERM) stops nginx and the replicas.
            int nginxPid = int.Parse(File.ReadAllText(Path.Combine(set.Work, "nginx", "nginx.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            int[] replicaPids = [set.ReplicaPid(1), set.ReplicaPid(3)];
            Assert.True(set.Stop(TimeSpan.FromSeconds(20)), "replicas.sh did not stop on SIGTERM:\n" + set.Log);
            foreach (int pid in replicaPids.Append(nginxPid))
                Assert.False(Directory.Exists($"/proc/{pid}"), $"process {pid} outlived replicas.sh:\n{set.Log}");
            output.WriteLine($"whole test {sw.Elapsed.TotalSeconds:F1} s");
        }
        catch
        {
            output.WriteLine(set.Log);
            throw;
        }
        finally
        {
            set.Dispose();
        }
    }
}

/// <summary>Skipped unless nginx is installed (xunit 2 has no runtime skip, so the attribute decides at discovery).</summary>
public sealed class NginxFactAttribute : FactAttribute
{
    public NginxFactAttribute()
    {
        if (ReplicaSet.Nginx() is null) Skip = "nginx is not installed (apt-get install -y nginx-light; test.sh installs it)";
    }
}

/// <summary>deploy/replicas.sh as a process: N `duet serve` replicas of a model behind nginx on loopback ports.</summary>
public sealed class ReplicaSet : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _log = new();
    private readonly int _replicas;

    public int Port { get; }
    public Uri BaseUri => new($"http://127.0.0.1:{Port}");
    public string Work { get; }
    public string Log { get { lock (_log) return _log.ToString(); } }
    public int ReplicaPort(int i) => Port + i;
    public int ReplicaPid(int i) => int.Parse(File.ReadAllText(Path.Combine(Work, $"replica-{i}.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    public static string? Nginx() =>
        new[] { "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx" }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, "nginx")))
            .FirstOrDefault(File.Exists);

    public ReplicaSet(string model, int replicas, params string[] extra)
    {
        _replicas = replicas;
        Port = FreePorts(replicas + 1);
        Work = Directory.CreateTempSubdirectory("duet-nginx-test-").FullName;
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(Repo.Root, "deploy", "replicas.sh"), "-m", model, "-n", replicas.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--base-port", (Port + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--work", Work, "--lifetime", "300", "--nginx-workers", "1" }.Concat(extra))
            psi.ArgumentList.Add(a);
        psi.Environment["DUET_DLL"] = Repo.DuetDll();
        psi.Environment["NGINX_BIN"] = Nginx()!;
        _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start deploy/replicas.sh");
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Waits until nginx's /health answers 200 with every replica healthy.</summary>
    public async Task WaitReadyAsync(int healthy, TimeSpan timeout)
    {
        using var http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(5) };
        for (var sw = Stopwatch.StartNew(); sw.Elapsed < timeout; await Task.Delay(200))
        {
            if (_process.HasExited) throw new InvalidOperationException($"replicas.sh exited with {_process.ExitCode}:\n{Log}");
            try
            {
                using var r = await http.GetAsync("/health");
                if (r.StatusCode == HttpStatusCode.OK && (await r.Content.ReadAsStringAsync()).Contains($"\"healthy\":{healthy}", StringComparison.Ordinal)) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
        }
        throw new TimeoutException($"nginx and {_replicas} replicas not ready in {timeout}:\n{Log}");
    }

    /// <summary>SIGTERM to the script, as a service manager would stop it; true when it exited in time.</summary>
    public bool Stop(TimeSpan timeout)
    {
        if (_process.HasExited) return true;
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
        return _process.WaitForExit(timeout);
    }

    /// <summary>A block of free loopback ports (nginx, then the replicas).</summary>
    private static int FreePorts(int count)
    {
        var rng = new Random();
        for (int attempt = 0; attempt < 100; attempt++)
        {
            int start = rng.Next(20000, 60000 - count);
            var held = new List<TcpListener>();
            try
            {
                for (int p = start; p < start + count; p++)
                {
                    var l = new TcpListener(IPAddress.Loopback, p);
                    l.Start();
                    held.Add(l);
                }
                return start;
            }
            catch (SocketException) { }
            finally
            {
                foreach (var l in held) l.Stop();
            }
        }
        throw new InvalidOperationException("no block of free loopback ports");
    }

    public void Dispose()
    {
        try
        {
            if (!Stop(TimeSpan.FromSeconds(20))) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { Directory.Delete(Work, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
