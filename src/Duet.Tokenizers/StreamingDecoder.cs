// Decodes tokens one at a time for streaming output (SSE, a terminal). A UTF-8 character whose bytes
// arrive in several tokens (byte fallback, byte-level BPE) is held back until it is complete, so a
// Chinese character is never printed broken; bytes that can never complete become U+FFFD.
using System.Buffers;
using System.Text;
using Duet.Tokenizers.Decoders;

namespace Duet.Tokenizers;

public sealed class StreamingDecoder
{
    private readonly TokenDecoder _decoder;
    private readonly bool _skipSpecial;
    private readonly List<byte> _pending = new(16);
    private readonly StringBuilder _text = new(16);
    private DecodeState _state = DecodeState.Initial;

    internal StreamingDecoder(TokenDecoder decoder, bool skipSpecial)
    {
        _decoder = decoder;
        _skipSpecial = skipSpecial;
    }

    /// <summary>Adds one token and returns the text that is now complete (possibly empty).</summary>
    public string Push(int id)
    {
        _decoder.Decode([id], _skipSpecial, _pending, ref _state);
        return Drain(final: false);
    }

    /// <summary>
    /// Decodes <paramref name="ids"/> (a prompt) without output, so that the tokens pushed next decode as its
    /// continuation: a leading space of the first generated piece is then part of the text (" world" after
    /// "Hello"), as in the decode of the whole sequence, not a prefix to strip.
    /// </summary>
    public void Prime(ReadOnlySpan<int> ids)
    {
        _decoder.Decode(ids, _skipSpecial, _pending, ref _state);
        _pending.Clear();
    }

    /// <summary>Returns whatever is held back, incomplete characters as U+FFFD. Call at the end of the stream.</summary>
    public string Flush() => Drain(final: true);

    public void Reset()
    {
        _pending.Clear();
        _state = DecodeState.Initial;
    }

    private string Drain(bool final)
    {
        if (_pending.Count == 0) return "";
        var bytes = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending);
        var sb = _text.Clear();
        int i = 0;
        while (i < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes[i..], out var rune, out int used);
            if (status == OperationStatus.NeedMoreData && !final) break; // an incomplete character at the end: wait
            sb.Append(status == OperationStatus.Done ? rune.ToString() : "\uFFFD");
            i += used;
        }
        _pending.RemoveRange(0, i);
        return sb.ToString();
    }
}
