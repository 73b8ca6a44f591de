// A conversation with a model on an InferenceEngine: what `duet chat` runs, usable by any program. Each turn goes
// to the engine as one request; the engine's slot keeps the conversation's keys and values, so a turn computes
// only what it adds (llama.cpp's chat does the same).
//
// The prompt of a turn is the conversation's tokens as the model saw them (the last prompt and the reply tokens it
// generated, not a re-tokenization of the reply's text, which may split differently), then the tokens of the text
// the template adds: the rendered conversation with the new user turn, minus the text those tokens already stand
// for. Where the template rewrites earlier turns (so its output no longer starts with that text) the whole
// conversation is encoded again, and the engine still reuses the longest common prefix of tokens.
//
// A conversation that outgrows the context loses its oldest exchanges (a user turn and its reply; system turns
// stay), as Ollama does: the next prompt is then encoded whole, and only its system prompt is found cached.
using System.Diagnostics;
using System.Text;
using Duet.Inference.Serving;

namespace Duet.Inference;

/// <summary>How a reply is generated.</summary>
public sealed record ChatReplyOptions
{
    public int MaxTokens { get; init; } = 512;
    public SamplingOptions Sampling { get; init; } = new();
    /// <summary>The reply ends before the first of these strings.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];
}

/// <summary>
/// What a turn cost: the prompt's tokens, those whose keys and values were already cached, the reply's tokens, the
/// time to the first reply token (mostly the new prompt tokens' computation) and in all.
/// </summary>
public sealed record ChatTurnStats(int PromptTokens, int CachedTokens, int CompletionTokens, TimeSpan FirstToken, TimeSpan Total, FinishReason Reason)
{
    /// <summary>Prompt tokens computed in this turn.</summary>
    public int EvaluatedTokens => PromptTokens - CachedTokens;
}

public sealed class ChatSession
{
    private readonly InferenceEngine _engine;
    private readonly PromptFormatter _prompts;
    private readonly List<ChatTurn> _messages = [];
    private readonly List<int> _tokens = [];   // the conversation as the model saw it: the last prompt, then the reply's tokens
    private string _text = "";                 // the rendered text those tokens stand for

    /// <summary>A conversation on <paramref name="engine"/> (best with one slot of its own, so that no other request takes the slot's cache).</summary>
    public ChatSession(InferenceEngine engine, string? system = null)
    {
        _engine = engine;
        _prompts = new PromptFormatter(engine.Tokenizer);
        if (system is not null) _messages.Add(new ChatTurn("system", system));
    }

    public IReadOnlyList<ChatTurn> Messages => _messages;
    /// <summary>"the model's own", or ChatML and why.</summary>
    public string TemplateName => _prompts.TemplateName;
    /// <summary>The last turn's figures, once its reply has been read to the end.</summary>
    public ChatTurnStats? LastTurn { get; private set; }
    /// <summary>Messages dropped so far to keep the conversation within the context (oldest first, never a system turn).</summary>
    public int DroppedMessages { get; private set; }

    /// <summary>The prompt tokens of the next turn if the user says <paramref name="user"/>: the conversation's tokens, then the new ones.</summary>
    public int[] PromptFor(string user) => Prompt(user).Tokens;

    private (int[] Tokens, string Text) Prompt(string user)
    {
        var full = _prompts.Render([.. _messages, new ChatTurn("user", user)]);
        if (_tokens.Count > 0 && full.StartsWith(_text, StringComparison.Ordinal))
            return ([.. _tokens, .. _prompts.EncodeText(full[_text.Length..])], full);
        return (_prompts.EncodeText(full), full);
    }

    /// <summary>
    /// The user's turn and the reply, streamed as text pieces. The turn joins the conversation when the reply has
    /// been read to the end. Where the prompt would not leave room for a reply of <see cref="MinReplyTokens"/> (or
    /// of MaxTokens, if fewer), the oldest exchanges are dropped first; ArgumentException when even the system
    /// turns and the new one alone do not fit.
    /// </summary>
    public IEnumerable<string> Send(string user, ChatReplyOptions? options = null, CancellationToken cancel = default)
    {
        options ??= new ChatReplyOptions();
        int room = Math.Clamp(Math.Min(options.MaxTokens, MinReplyTokens), 1, _engine.Context - 1);
        var (prompt, full) = Prompt(user);
        while (prompt.Length + room > _engine.Context && DropOldestExchange()) (prompt, full) = Prompt(user);
        if (prompt.Length >= _engine.Context)
            throw new ArgumentException($"the conversation no longer fits in the context ({prompt.Length} tokens, the context holds {_engine.Context})");
        return Stream(user, prompt, full, options, cancel);
    }

    /// <summary>The reply room a turn keeps by dropping old exchanges: a quarter of the context, at most 256 tokens.</summary>
    private int MinReplyTokens => Math.Min(256, _engine.Context / 4);

    // The oldest user turn and the replies after it, up to the next user turn; false when no user turn is left.
    private bool DropOldestExchange()
    {
        int first = _messages.FindIndex(m => m.Role == "user");
        if (first < 0) return false;
        int end = first + 1;
        while (end < _messages.Count && _messages[end].Role is not ("user" or "system")) end++;
        _messages.RemoveRange(first, end - first);
        DroppedMessages += end - first;
        _tokens.Clear(); // the history changed: the next prompt is encoded whole
        _text = "";
        return true;
    }

    private IEnumerable<string> Stream(string user, int[] prompt, string full, ChatReplyOptions options, CancellationToken cancel)
    {
        var request = new GenerationRequest
        {
            Prompt = prompt, MaxTokens = Math.Min(options.MaxTokens, _engine.Context - prompt.Length), Sampling = options.Sampling,
            Stop = options.Stop, PenalizePrompt = true,
        };
        var clock = Stopwatch.StartNew();
        var stream = _engine.Submit(request, cancel);
        var reply = new StringBuilder();
        var replyTokens = new List<int>();
        TimeSpan first = default;
        foreach (var t in stream.ReadBlocking(cancel))
        {
            if (replyTokens.Count == 0) first = clock.Elapsed;
            replyTokens.Add(t.Token);
            reply.Append(t.Text);
            if (t.Text.Length > 0) yield return t.Text;
        }
        var result = stream.Result.GetAwaiter().GetResult();
        if (result.TrailingText.Length > 0)
        {
            reply.Append(result.TrailingText);
            yield return result.TrailingText;
        }
        _messages.Add(new ChatTurn("user", user));
        _messages.Add(new ChatTurn("assistant", reply.ToString()));
        _tokens.Clear();
        _tokens.AddRange(prompt);
        _tokens.AddRange(replyTokens);
        _text = full + reply;
        LastTurn = new ChatTurnStats(result.PromptTokens, result.CachedTokens, result.CompletionTokens, replyTokens.Count > 0 ? first : clock.Elapsed, clock.Elapsed, result.Reason);
    }
}
