// Decoding: token ids back to bytes, then text.
//
// Every decoder the LLaMA family uses reduces to a fixed byte string per token plus one rule about a
// leading space, so we precompute the bytes once per vocabulary:
// - ByteLevel (GPT-2, Llama 3, Qwen): each character of the token maps back to the byte it stands for.
// - SentencePiece (Replace '▁'->' ', ByteFallback, Fuse, Strip; or Metaspace): '▁' is a space and
//   <0xXX> is the byte XX; the space the encoder put at the start of a section is removed.
// A section starts at the beginning and after every added token (the encoder prefixes each section
// when it prepends '▁' per section, as Llama 2's legacy normalizer and llama.cpp do), so decoding
// inverts encoding exactly, which HF's decoders (stripping only the first token) do not.
using Duet.Tokenizers.Text;

namespace Duet.Tokenizers.Decoders;

public enum DecoderKind { ByteLevel, SentencePiece }

/// <summary>Where the encoder put a dummy-prefix space that decoding must take away.</summary>
public enum PrefixSpaceRule { None, FirstSection, EverySection }

public sealed class TokenDecoder
{
    private readonly byte[][] _bytes;
    private readonly bool[] _isAdded;
    private readonly bool[] _isSpecial;

    public DecoderKind Kind { get; }
    public PrefixSpaceRule PrefixSpace { get; }

    public TokenDecoder(DecoderKind kind, PrefixSpaceRule prefixSpace, int vocabSize, Func<int, string?> tokenOf,
        Func<int, bool> isByteToken, AddedVocabulary added)
    {
        Kind = kind;
        PrefixSpace = prefixSpace;
        _bytes = new byte[vocabSize][];
        _isAdded = new bool[vocabSize];
        _isSpecial = new bool[vocabSize];
        for (int id = 0; id < vocabSize; id++)
        {
            var t = tokenOf(id);
            if (added.TryGet(id, out var a))
            {
                _isAdded[id] = true;
                _isSpecial[id] = a.Special;
                _bytes[id] = Utf8Escape.Encode(a.Content);
            }
            else if (t is null) _bytes[id] = [];
            else if (kind == DecoderKind.ByteLevel) _bytes[id] = ByteLevelBytes(t);
            else if (isByteToken(id)) _bytes[id] = [Convert.ToByte(t.Substring(3, 2), 16)];
            else _bytes[id] = Utf8Escape.Encode(t.Replace('\u2581', ' '));
        }
    }

    private static byte[] ByteLevelBytes(string t)
    {
        var ms = new List<byte>(t.Length);
        foreach (char c in t)
        {
            int b = ByteLevelAlphabet.CharToByte(c);
            if (b >= 0) ms.Add((byte)b);
            else ms.AddRange(Utf8Escape.Encode(c.ToString())); // not from the alphabet: its own UTF-8
        }
        return ms.ToArray();
    }

    public int VocabSize => _bytes.Length;
    public ReadOnlySpan<byte> BytesOf(int id) => _bytes[id];
    public bool IsAdded(int id) => _isAdded[id];
    public bool IsSpecial(int id) => _isSpecial[id];

    /// <summary>Appends the bytes of <paramref name="ids"/>. <paramref name="atSectionStart"/> carries state between calls.</summary>
    public void Decode(ReadOnlySpan<int> ids, bool skipSpecial, List<byte> output, ref DecodeState state)
    {
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_bytes.Length) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the vocabulary (0..{_bytes.Length - 1})");
            if (_isAdded[id])
            {
                if (!(skipSpecial && _isSpecial[id])) output.AddRange(_bytes[id]);
                state.SectionStart = PrefixSpace == PrefixSpaceRule.EverySection;
                state.First = false;
                continue;
            }
            var b = _bytes[id].AsSpan();
            if (state.SectionStart && b.Length > 0)
            {
                if ((PrefixSpace == PrefixSpaceRule.EverySection || (PrefixSpace == PrefixSpaceRule.FirstSection && state.First)) && b[0] == (byte)' ')
                    b = b[1..];
                state.SectionStart = false;
            }
            if (b.Length > 0) state.First = false;
            foreach (byte x in b) output.Add(x);
        }
    }
}

public struct DecodeState
{
    public bool SectionStart { get; set; }
    public bool First { get; set; }
    public static DecodeState Initial => new() { SectionStart = true, First = true };
}
