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
    private readonly byte[] _triggerBytes;
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
        _triggerBytes = Encoding.UTF8.GetBytes(trigger);
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
        if (_atStart && _text.Count > 0 && !IsBlank(_text) && !StartsWithTrigger()) return; // the reply began otherwise: never a call
        var bytes = (uint)token < (uint)_table.Bytes.Length && _table.Bytes[token] is { } b ? b : Encoding.UTF8.GetBytes(_tokenizer.IdToToken(token));
        int before = _text.Count;
        _text.AddRange(bytes);
        // Only where the new bytes could complete the trigger is looked at (no decoding of the whole reply per token).
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_text);
        int at;
        if (_atStart)
        {
            int first = 0;
            while (first < span.Length && span[first] is (byte)' ' or (byte)'\n' or (byte)'\t' or (byte)'\r') first++;
            at = span[first..].StartsWith(_triggerBytes) ? first : -1;
        }
        else
        {
            int from = Math.Max(0, before - _triggerBytes.Length + 1);
            at = span[from..].IndexOf(_triggerBytes);
            if (at >= 0) at += from;
        }
        if (at < 0) return;
        // The call began: a constraint of the whole call, fed what was written from the trigger on. A token that ran
        // past what the frame allows (rare) leaves the reply as text, unconstrained.
        var inner = _create();
        if (inner.TryFeed(Encoding.UTF8.GetString(span[at..]))) _inner = inner;
        else _text.Clear();
    }

    private static bool IsBlank(List<byte> text) => text.TrueForAll(c => c is (byte)' ' or (byte)'\n' or (byte)'\t' or (byte)'\r');

    private bool StartsWithTrigger()
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_text);
        int first = 0;
        while (first < span.Length && span[first] is (byte)' ' or (byte)'\n' or (byte)'\t' or (byte)'\r') first++;
        var rest = span[first..];
        return rest.Length < _triggerBytes.Length ? _triggerBytes.AsSpan().StartsWith(rest) : rest.StartsWith(_triggerBytes);
    }

    public bool IsComplete => _inner?.IsComplete ?? false;
    public bool ContinuesAfterComplete => _inner?.ContinuesAfterComplete ?? false;

    public void Reset()
    {
        _inner = null;
        _text.Clear();
    }
}
