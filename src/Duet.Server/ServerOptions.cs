// What `duet serve` is told, and the limits it enforces before any work starts.
namespace Duet.Server;

public sealed record ServerOptions
{
    public required string ModelPath { get; init; }
    /// <summary>The id /v1/models reports and requests may name; default: the model file's name.</summary>
    public string? ModelName { get; init; }
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8080;
    /// <summary>When set, /v1, /tokenize and /detokenize need "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }
    /// <summary>Sequences decoded together.</summary>
    public int Parallel { get; init; } = 4;
    /// <summary>Context per sequence (prompt + reply); default: the model's, at most 4096.</summary>
    public int? Context { get; init; }
    public int Threads { get; init; }
    /// <summary>How quantized weights meet activations (Integer, as llama.cpp; or Float, as PyTorch on a dequantized GGUF).</summary>
    public Duet.Tensors.Kernels.QuantizedMath QuantizedMath { get; init; }
    /// <summary>The KV cache's element types for keys and values (--cache-type-k / -v): F32, F16 or Q8_0.</summary>
    public Duet.Model.KvCacheType KeyCacheType { get; init; }
    public Duet.Model.KvCacheType ValueCacheType { get; init; }
    /// <summary>LoRA adapters applied at run time, unmerged: (GGUF adapter or PEFT folder, scale).</summary>
    public IReadOnlyList<(string Path, float Scale)> Adapters { get; init; } = [];

    /// <summary>More models served beside the first (name, path): a request's "model" chooses; each loads on first use.</summary>
    public IReadOnlyList<(string Name, string Path)> ExtraModels { get; init; } = [];
    /// <summary>How long a model stays loaded after its last request (null: for ever). Ollama's keep_alive overrides it per request.</summary>
    public TimeSpan? KeepAlive { get; init; }
    /// <summary>Models loaded at once; loading another unloads the one idle the longest (all busy: 503).</summary>
    public int MaxLoadedModels { get; init; } = 2;

    /// <summary>Speculative decoding for the first model: a draft model with its tokenizer (--draft).</summary>
    public string? DraftPath { get; init; }
    /// <summary>Speculative decoding by prompt lookup for every model (--lookup).</summary>
    public bool Lookup { get; init; }
    public int DraftMax { get; init; } = 16;
    public float DraftPMin { get; init; } = 0.75f;

    public long MaxBodyBytes { get; init; } = 4 << 20;
    public int MaxMessages { get; init; } = 512;

    /// <summary>Responses kept for previous_response_id and GET /v1/responses/{id} (the oldest dropped beyond it).</summary>
    public int MaxStoredResponses { get; init; } = 1000;
    public int MaxStopStrings { get; init; } = 4;
    public int MaxLogitBias { get; init; } = 1024;
    public int MaxEmbeddingInputs { get; init; } = 256;
    public int MaxQueue { get; init; } = 256;

    /// <summary>A keep-alive as Ollama writes it: "5m", "1h30m", "45s", a number of seconds, or negative ("-1": for ever). FormatException otherwise.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        var t = text.Trim();
        if (double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double seconds)) return TimeSpan.FromSeconds(seconds);
        var m = System.Text.RegularExpressions.Regex.Match(t, @"^(-)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$");
        if (!m.Success || t.TrimStart('-').Length == 0) throw new FormatException($"\"{GenerationParameters.Clip(t)}\" is not a duration (5m, 30s, 1h, -1)");
        double Part(int g) => m.Groups[g].Success ? double.Parse(m.Groups[g].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var span = TimeSpan.FromHours(Part(2)) + TimeSpan.FromMinutes(Part(3)) + TimeSpan.FromSeconds(Part(4));
        return m.Groups[1].Success ? -span - TimeSpan.FromTicks(1) : span;
    }
}
