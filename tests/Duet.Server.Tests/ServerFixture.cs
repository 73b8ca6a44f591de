// A real `duet serve` process on loopback, serving a small random-weight model with a bilingual BPE
// tokenizer trained inside the test (ChatML template). Random weights make gibberish, which is fine: the
// tests check the protocol, the limits and the scheduling, and compare tokens against the engine itself.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Duet.Model;
using Duet.Tests;
using Duet.Tokenizers;
using Duet.Tokenizers.Trainer;

namespace Duet.Server.Tests;

public sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _log = new();

    public int Port { get; }
    public Uri BaseUri => new($"http://127.0.0.1:{Port}");
    public string Log { get { lock (_log) return _log.ToString(); } }
    public bool Exited => _process.HasExited;
    public int Pid => _process.Id;

    public ServerProcess(string model, params string[] extra)
    {
        Port = FreePort();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Repo.DuetDll());
        foreach (var a in new[] { "serve", "--model", model, "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture) }.Concat(extra))
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start duet serve");
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Waits until GET /health answers 200.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(5) };
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (_process.HasExited) throw new InvalidOperationException($"duet serve exited with {_process.ExitCode}:\n{Log}");
            try
            {
                using var r = await http.GetAsync("/health");
                if (r.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        throw new TimeoutException($"duet serve did not become ready in {timeout}:\n{Log}");
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }


    public void Dispose()
    {
        try { if (!_process.HasExited) { _process.Kill(entireProcessTree: true); _process.WaitForExit(10_000); } }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}

/// <summary>The model files the server tests share, made once per test run.</summary>
public static class TestModels
{
    private static readonly Lazy<(string Path, Tokenizer Tokenizer)> s_model = new(Make);

    public static string Path => s_model.Value.Path;
    public static Tokenizer Tokenizer => s_model.Value.Tokenizer;

    public static LlamaConfig Config(int vocab) => new()
    {
        Dim = 128, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 32, RopeDim = 32, FfnDim = 256, Vocab = vocab, ContextLength = 512,
        RopeStyle = Duet.Tensors.Kernels.RopeStyle.Normal,
    };

    private static (string, Tokenizer) Make()
    {
        var dir = Directory.CreateTempSubdirectory("duet-server-tests-").FullName;
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 1000 });
        foreach (var line in File.ReadLines(System.IO.Path.Combine(Repo.Root, "tests", "TestData", "bilingual-test.txt")).Take(1500)) trainer.AddText(line);
        var tok = trainer.Train();
        var path = System.IO.Path.Combine(dir, "tiny-chat.gguf");
        ModelPackage.WriteGguf(CanonicalModel.Random(Config(tok.VocabSize), 11, tok, std: 0.25f), path, Duet.Tensors.GgmlType.Q8_0);
        return (path, Tokenizer.Load(path));
    }

    private static readonly Lazy<string> s_long = new(() =>
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path)!, "tiny-chat-2k.gguf");
        ModelPackage.WriteGguf(CanonicalModel.Random(Config(Tokenizer.VocabSize) with { ContextLength = 2048 }, 11, Tokenizer, std: 0.25f), path, Duet.Tensors.GgmlType.Q8_0);
        return path;
    });

    private static readonly Lazy<string> s_big = new(() =>
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path)!, "big-2k.gguf");
        var config = Config(Tokenizer.VocabSize) with { Dim = 512, Layers = 8, Heads = 8, KvHeads = 8, HeadDim = 64, RopeDim = 64, FfnDim = 1536, ContextLength = 2048 };
        ModelPackage.WriteGguf(CanonicalModel.Random(config, 12, Tokenizer, std: 0.05f), path, Duet.Tensors.GgmlType.Q8_0);
        return path;
    });

    /// <summary>A larger model (26 M parameters, 2,048 tokens of context): loading and unloading it shows in the server's memory.</summary>
    public static string BigPath => s_big.Value;

    /// <summary>The same kind of model with a context of 2,048 tokens (prompts that describe tools).</summary>
    public static string LongContextPath => s_long.Value;

    /// <summary>logit_bias entries that ban every end-of-turn token, so a reply runs to max_tokens.</summary>
    public static Dictionary<int, int> NoStop()
    {
        var d = new Dictionary<int, int>();
        foreach (int t in Duet.Inference.StopTokens.Of(Tokenizer)) d[t] = -100;
        return d;
    }
}

/// <summary>One server for a test class: 4 slots, API key "test-key".</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string Key = "test-key";
    public ServerProcess Server { get; private set; } = null!;
    public static string ModelName => System.IO.Path.GetFileNameWithoutExtension(TestModels.Path);

    public async Task InitializeAsync()
    {
        Server = new ServerProcess(TestModels.Path, "--api-key", Key, "--parallel", "4", "--ctx", "256", "--threads", "2");
        await Server.WaitReadyAsync(TimeSpan.FromSeconds(90));
    }

    public Task DisposeAsync()
    {
        Server.Dispose();
        return Task.CompletedTask;
    }
}
