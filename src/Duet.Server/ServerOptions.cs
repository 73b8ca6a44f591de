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
    /// <summary>LoRA adapters applied at run time, unmerged: (GGUF adapter or PEFT folder, scale).</summary>
    public IReadOnlyList<(string Path, float Scale)> Adapters { get; init; } = [];

    public long MaxBodyBytes { get; init; } = 4 << 20;
    public int MaxMessages { get; init; } = 512;

    /// <summary>Responses kept for previous_response_id and GET /v1/responses/{id} (the oldest dropped beyond it).</summary>
    public int MaxStoredResponses { get; init; } = 1000;
    public int MaxStopStrings { get; init; } = 4;
    public int MaxLogitBias { get; init; } = 1024;
    public int MaxEmbeddingInputs { get; init; } = 256;
    public int MaxQueue { get; init; } = 256;
}
