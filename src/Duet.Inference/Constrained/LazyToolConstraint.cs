// tool_choice "auto" with the arguments still guaranteed: the reply is free text until it starts a call in the model's
// format (the trigger: "<tool_call>" anywhere, "[TOOL_CALLS]" anywhere, or Llama 3's "{" as the reply's first
// character), and from there on the call's frame and schema constrain it (the framed JsonConstraint, fed the text from
// the trigger on), so a call the model begins always parses and validates, while a reply without one is untouched.
using System.Text;
using Duet.Tokenizers;

namespace Duet.Inference.Constrained;

public sealed class LazyToolConstraint : ITokenConstraint
{
    private readonly TokenTrie _table;
    private readonly Tokenizer _tokenizer;
    private readonly string _trigger;
    private readonly bool _atStart;
    private readonly Func<JsonConstraint> _create;
    private readonly List<byte> _text = [];
    private JsonConstraint? _inner;

    /// <param name="trigger">the text that begins a call</param>
    /// <param name="atStart">the trigger counts only as the reply's first non-blank text (Llama 3's bare JSON call)</param>
    /// <param name="create">the constraint of a whole call, frame included (ToolCallConstraint.Create)</param>
    public LazyToolConstraint(Tokenizer tokenizer, string trigger, bool atStart, Func<JsonConstraint> create)
    {
        _tokenizer = tokenizer;
        _table = TokenTrie.For(tokenizer);
        _trigger = trigger;
        _atStart = atStart;
        _create = create;
    }

    /// <summary>The reply has started a call (the constraint is on).</summary>
    public bool Active => _inner is not null;

    public void Apply(Span<float> logits) => _inner?.Apply(logits);
    public void Apply(Span<float> logits, int remainingTokens) => _inner?.Apply(logits, remainingTokens);

    public void Accept(int token)
    {
        if (_inner is not null) { _inner.Accept(token); return; }
        var bytes = (uint)token < (uint)_table.Bytes.Length && _table.Bytes[token] is { } b ? b : Encoding.UTF8.GetBytes(_tokenizer.IdToToken(token));
        int before = _text.Count;
        _text.AddRange(bytes);
        var text = Encoding.UTF8.GetString(_text.ToArray());
        int at = _atStart ? (text.TrimStart().StartsWith(_trigger, StringComparison.Ordinal) ? text.Length - text.TrimStart().Length : -1) : text.IndexOf(_trigger, StringComparison.Ordinal);
        if (at < 0) return;
        // The call began: a constraint of the whole call, fed what was written from the trigger on. A token that ran
        // past what the frame allows (rare) leaves the reply as text, unconstrained.
        var inner = _create();
        if (inner.TryFeed(text[at..])) _inner = inner;
        else _text.Clear();
    }

    public bool IsComplete => _inner?.IsComplete ?? false;
    public bool ContinuesAfterComplete => _inner?.ContinuesAfterComplete ?? false;

    public void Reset()
    {
        _inner = null;
        _text.Clear();
    }
}
