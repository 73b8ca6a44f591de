// Added tokens (special or not): matched in the raw text before normalization and never split.
// Matching is longest-first at each position, scanning left to right, as the HF JavaScript port's
// DictionarySplitter does; lstrip/rstrip trim the whitespace next to a match.
using System.Buffers;

namespace Duet.Tokenizers;

public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false,
    bool SingleWord = false, bool Normalized = false);

public readonly record struct Section(int Start, int Length, int AddedId)
{
    public bool IsAdded => AddedId >= 0;
}

public sealed class AddedVocabulary
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar = new();
    private readonly Dictionary<int, AddedToken> _byId = new();
    private readonly SearchValues<char> _firstChars;

    public IReadOnlyList<AddedToken> Tokens { get; }

    public AddedVocabulary(IEnumerable<AddedToken> tokens)
    {
        Tokens = tokens.ToArray();
        foreach (var t in Tokens)
        {
            if (t.Content.Length == 0) throw new TokenizerFormatException($"added token {t.Id} has empty content");
            _byId[t.Id] = t;
        }
        foreach (var g in Tokens.GroupBy(t => t.Content[0]))
            _byFirstChar[g.Key] = g.OrderByDescending(t => t.Content.Length).ToArray();
        _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
    }

    public bool TryGet(int id, out AddedToken token) => _byId.TryGetValue(id, out token!);
    public bool IsAdded(int id) => _byId.ContainsKey(id);

    /// <summary>
    /// Splits text into sections: runs of plain text and single added tokens. Special tokens are matched
    /// only when <paramref name="parseSpecial"/> is set (llama.cpp's parse_special); HF always matches them.
    /// </summary>
    public void Split(ReadOnlySpan<char> text, bool parseSpecial, List<Section> output)
    {
        int start = output.Count;
        int plain = 0;
        for (int i = 0; i < text.Length;)
        {
            int next = text[i..].IndexOfAny(_firstChars);   // vectorized skip to a possible match
            if (next < 0) break;
            i += next;
            var m = MatchAt(text, i, parseSpecial);
            if (m is null) { i++; continue; }
            if (i > plain) output.Add(new Section(plain, i - plain, -1));
            output.Add(new Section(i, m.Content.Length, m.Id));
            i += m.Content.Length;
            plain = i;
        }
        if (plain < text.Length) output.Add(new Section(plain, text.Length - plain, -1));

        // lstrip / rstrip: trim the whitespace of the neighbouring plain sections.
        for (int k = start; k < output.Count; k++)
        {
            if (!output[k].IsAdded || !_byId.TryGetValue(output[k].AddedId, out var t)) continue;
            if (t.LStrip && k > start && !output[k - 1].IsAdded)
            {
                var p = output[k - 1];
                int len = p.Length;
                while (len > 0 && Text.CharClass.IsWhiteSpace(text[p.Start + len - 1])) len--;
                output[k - 1] = p with { Length = len };
            }
            if (t.RStrip && k + 1 < output.Count && !output[k + 1].IsAdded)
            {
                var p = output[k + 1];
                int skip = 0;
                while (skip < p.Length && Text.CharClass.IsWhiteSpace(text[p.Start + skip])) skip++;
                output[k + 1] = new Section(p.Start + skip, p.Length - skip, -1);
            }
        }
    }

    private AddedToken? MatchAt(ReadOnlySpan<char> text, int i, bool parseSpecial)
    {
        if (!_byFirstChar.TryGetValue(text[i], out var candidates)) return null;
        var rest = text[i..];
        foreach (var t in candidates)
            if ((parseSpecial || !t.Special) && rest.StartsWith(t.Content, StringComparison.Ordinal)) return t;
        return null;
    }
}
