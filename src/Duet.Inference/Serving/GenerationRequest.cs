// What a client asks of the engine and what it gets back: a request (prompt ids, limits, sampling, stop
// strings, logit bias, logprobs, an optional output constraint) and a stream of generated tokens that ends
// with a result (why it finished, token counts). Shapes follow the OpenAI API the server exposes.
using System.Threading.Channels;

namespace Duet.Inference.Serving;

public sealed record GenerationRequest
{
    public required int[] Prompt { get; init; }
    public required int MaxTokens { get; init; }
    public SamplingOptions Sampling { get; init; } = new();
    /// <summary>Added to a token's logit before sampling (OpenAI logit_bias: -100 bans, +100 forces).</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }
    /// <summary>Generation ends before the first occurrence of any of these strings, which are not returned.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];
    /// <summary>null: no logprobs; n: the chosen token's logprob and the n most likely alternatives (n &lt;= 20).</summary>
    public int? TopLogprobs { get; init; }
    /// <summary>Restricts which tokens may follow (JSON schema); made per request because it has state.</summary>
    public Constrained.ITokenConstraint? Constraint { get; init; }
    /// <summary>Keep going past end-of-turn tokens (benchmarks that need a fixed number of tokens).</summary>
    public bool IgnoreEos { get; init; }
    /// <summary>
    /// The repeat, presence and frequency penalties count the prompt's tokens too, over the last
    /// <see cref="SamplingOptions.RepeatLastN"/> tokens (llama.cpp's command line); otherwise they count the generated
    /// tokens only, all of them (the OpenAI API).
    /// </summary>
    public bool PenalizePrompt { get; init; }
}

public readonly record struct TokenLogprob(int Token, float Logprob);

/// <summary>One generated token: the text it completes (possibly empty while a character or a possible stop string is held back).</summary>
public sealed record GeneratedToken(int Token, string Text, float Logprob, TokenLogprob[]? TopLogprobs);

public enum FinishReason { Stop, Length, Cancelled }

public sealed record GenerationResult(FinishReason Reason, int PromptTokens, int CompletionTokens, int CachedTokens, string TrailingText)
{
    public string ReasonText => Reason switch { FinishReason.Stop => "stop", FinishReason.Length => "length", _ => "cancelled" };
}

/// <summary>The tokens of one request as they are generated, then its result.</summary>
public sealed class GenerationStream
{
    private readonly Channel<GeneratedToken> _tokens = Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource<GenerationResult> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ChannelReader<GeneratedToken> Tokens => _tokens.Reader;
    /// <summary>Completes after the last token was written; its TrailingText is text released only at the end.</summary>
    public Task<GenerationResult> Result => _result.Task;

    internal void Write(GeneratedToken t) => _tokens.Writer.TryWrite(t);

    internal void Complete(GenerationResult r)
    {
        _tokens.Writer.TryComplete();
        _result.TrySetResult(r);
    }

    internal void Fail(Exception e)
    {
        _tokens.Writer.TryComplete(e);
        _result.TrySetException(e);
    }

    /// <summary>The tokens as they come, blocking between them (for callers that are not async, such as the command line).</summary>
    public IEnumerable<GeneratedToken> ReadBlocking(CancellationToken cancel = default) => Tokens.ReadAllAsync(cancel).ToBlockingEnumerable(cancel);

    /// <summary>Reads the whole stream: text and result (for non-streaming callers).</summary>
    public async Task<(string Text, List<GeneratedToken> Tokens, GenerationResult Result)> ReadAllAsync(CancellationToken cancel = default)
    {
        var sb = new System.Text.StringBuilder();
        var list = new List<GeneratedToken>();
        await foreach (var t in Tokens.ReadAllAsync(cancel).ConfigureAwait(false))
        {
            sb.Append(t.Text);
            list.Add(t);
        }
        var r = await Result.ConfigureAwait(false);
        sb.Append(r.TrailingText);
        return (sb.ToString(), list, r);
    }
}

/// <summary>The engine's queue is full: the server answers 503 (retry later).</summary>
public sealed class EngineBusyException(string message) : Exception(message);
