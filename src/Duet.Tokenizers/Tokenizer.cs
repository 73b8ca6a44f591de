// A tokenizer: added tokens -> normalizer -> pre-tokenizer -> BPE model -> post-processor, and back
// through the decoder. Built by the loaders (tokenizer.json, tokenizer.model, GGUF) or the trainer.
// Thread-safe for encoding and decoding once built.
using System.Runtime.InteropServices;
using Duet.Tokenizers.Decoders;
using Duet.Tokenizers.Models;
using Duet.Tokenizers.Normalizers;
using Duet.Tokenizers.PostProcessors;
using Duet.Tokenizers.PreTokenizers;
using Duet.Tokenizers.Text;

namespace Duet.Tokenizers;

/// <summary>Which format a tokenizer was read from; it decides the defaults a user of that format expects.</summary>
public enum TokenizerSource { TokenizerJson, SentencePieceModel, Gguf, Trained }

public sealed class Tokenizer
{
    public BpeModel Model { get; }
    public INormalizer? Normalizer { get; }
    public IPreTokenizer? PreTokenizer { get; }
    public TemplatePostProcessor PostProcessor { get; }
    public AddedVocabulary AddedTokens { get; }
    public TokenDecoder Decoder { get; }
    public TokenizerSource Source { get; }
    /// <summary>Whether special added tokens are recognised in text unless a caller says otherwise (HF: yes; SentencePiece and llama.cpp: no).</summary>
    public bool ParseSpecialByDefault { get; }
    public int VocabSize { get; }
    public int BosId { get; init; } = -1;
    public int EosId { get; init; } = -1;
    public int PadId { get; init; } = -1;
    public int UnknownId => Model.UnknownId;
    /// <summary>Named pre-tokenizer for GGUF's tokenizer.ggml.pre (byte-level models).</summary>
    public string? GgufPre { get; init; }
    public string? ChatTemplate { get; init; }

    // Byte-level pipelines (GPT-2, Llama 3, Qwen) run fused: split, then look each pre-token up in a cache
    // keyed by its original text, and only on a miss map it to byte characters and run BPE.
    private readonly GptPatternKind? _byteLevelSplit;
    private readonly WordCache _wordCache = new(MaxCachedWords);
    private const int MaxCachedWordLength = 128, MaxCachedWords = 1 << 18; // 2 MB of bilingual text holds ~130k distinct pre-tokens: 1 << 17 thrashed on it

    public Tokenizer(BpeModel model, INormalizer? normalizer, IPreTokenizer? preTokenizer, TemplatePostProcessor postProcessor,
        AddedVocabulary added, DecoderKind decoderKind, TokenizerSource source, bool parseSpecialByDefault)
    {
        Model = model;
        Normalizer = normalizer;
        PreTokenizer = preTokenizer;
        PostProcessor = postProcessor;
        AddedTokens = added;
        Source = source;
        ParseSpecialByDefault = parseSpecialByDefault;
        VocabSize = Math.Max(model.VocabSize, added.Tokens.Count == 0 ? 0 : added.Tokens.Max(t => t.Id) + 1);
        _byteLevelSplit = preTokenizer switch
        {
            ByteLevelPreTokenizer { AddPrefixSpace: false, UseRegex: true } => GptPatternKind.Gpt2,
            SequencePreTokenizer { Items: [SplitPreTokenizer { IsRegex: true, Invert: false, Behavior: SplitBehavior.Isolated } sp, ByteLevelPreTokenizer { AddPrefixSpace: false, UseRegex: false }] }
                => GptSplitPattern.Recognize(sp.Pattern),
            _ => null,
        };
        Decoder = new TokenDecoder(decoderKind, PrefixRuleOf(normalizer, preTokenizer), VocabSize,
            id => id < model.VocabSize ? model.IdToToken(id) : null,
            id => id < model.VocabSize && IsByteToken(id), added);
    }

    private bool IsByteToken(int id)
    {
        var t = Model.IdToToken(id);
        if (!(t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>')) return false;
        return Model.Ranking == BpeRanking.Scores ? Model.GetTokenType(id) == TokenType.Byte : Model.ByteFallback;
    }

    // Where the encoder added a '▁' that decoding removes (see TokenDecoder).
    private static PrefixSpaceRule PrefixRuleOf(INormalizer? n, IPreTokenizer? p)
    {
        static IEnumerable<INormalizer> Flat(INormalizer? x) => x switch
        {
            null => [],
            SequenceNormalizer s => s.Items.SelectMany(Flat),
            _ => [x],
        };
        static IEnumerable<IPreTokenizer> FlatP(IPreTokenizer? x) => x switch
        {
            null => [],
            SequencePreTokenizer s => s.Items.SelectMany(FlatP),
            _ => [x],
        };
        foreach (var x in Flat(n))
        {
            if (x is PrependNormalizer pn && pn.Prepend == "\u2581") return PrefixSpaceRule.EverySection;
            if (x is SentencePieceNormalizer sp && sp.AddDummyPrefix) return PrefixSpaceRule.EverySection;
        }
        foreach (var x in FlatP(p))
            if (x is MetaspacePreTokenizer m)
                return m.Scheme switch { PrependScheme.Always => PrefixSpaceRule.EverySection, PrependScheme.First => PrefixSpaceRule.FirstSection, _ => PrefixSpaceRule.None };
        return PrefixSpaceRule.None;
    }

    /// <summary>Encodes text. No BOS/EOS unless <paramref name="addSpecialTokens"/>.</summary>
    public int[] Encode(string text, bool addSpecialTokens = false, bool? parseSpecial = null)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, ids, addSpecialTokens, parseSpecial);
        return ids.ToArray();
    }

    /// <summary>Encodes UTF-8; invalid bytes reach the model through byte fallback (see Utf8Escape).</summary>
    public int[] EncodeUtf8(ReadOnlySpan<byte> utf8, bool addSpecialTokens = false, bool? parseSpecial = null)
        => Encode(Utf8Escape.Decode(utf8), addSpecialTokens, parseSpecial);

    [ThreadStatic] private static List<Section>? t_sections;
    [ThreadStatic] private static List<string>? t_words;

    public void Encode(string text, List<int> ids, bool addSpecialTokens = false, bool? parseSpecial = null)
    {
        int start = ids.Count;
        var sections = t_sections ??= new List<Section>();
        var words = t_words ??= new List<string>();
        sections.Clear();
        AddedTokens.Split(text, parseSpecial ?? ParseSpecialByDefault, sections);
        for (int si = 0; si < sections.Count; si++)
        {
            var s = sections[si];
            if (s.IsAdded) { ids.Add(s.AddedId); continue; }
            if (s.Length == 0) continue;
            string x = s.Length == text.Length ? text : text.Substring(s.Start, s.Length);
            if (Normalizer is not null) x = Normalizer.Normalize(x);
            if (x.Length == 0) continue;
            if (PreTokenizer is null) { Model.Encode(x, ids); continue; }
            if (_byteLevelSplit is { } kind) { EncodeByteLevel(kind, x, ids); continue; }
            words.Clear();
            PreTokenizer.PreTokenize(x, si, words);
            foreach (var w in words) Model.Encode(w, ids);
        }
        if (addSpecialTokens) PostProcessor.Apply(ids, start);
    }

    private void EncodeByteLevel(GptPatternKind kind, string text, List<int> ids)
    {
        Span<byte> bytes = stackalloc byte[4 * MaxCachedWordLength];
        Span<char> mapped = stackalloc char[4 * MaxCachedWordLength];
        for (int i = 0; i < text.Length;)
        {
            int end = GptSplitPattern.MatchAt(kind, text, i);
            var word = text.AsSpan(i, end - i);
            i = end;
            if (word.Length >= MaxCachedWordLength)
            {
                Model.Encode(Text.ByteLevelAlphabet.Map(word), ids);
                continue;
            }
            if (_wordCache.TryGet(word, out var cached)) { ids.AddRange(cached); continue; }
            int n = Utf8Escape.Encode(word, bytes);
            for (int k = 0; k < n; k++) mapped[k] = Text.ByteLevelAlphabet.ByteToChar[bytes[k]];
            int start = ids.Count;
            Model.Encode(mapped[..n], ids, cache: false);
            _wordCache.Add(word, CollectionsMarshal.AsSpan(ids)[start..]);
        }
    }

    public int CountTokens(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        Encode(text, ids, addSpecialTokens);
        return ids.Count;
    }

    /// <summary>Decodes to bytes exactly as encoded (escaped invalid bytes come back raw).</summary>
    public byte[] DecodeToBytes(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>(ids.Length * 4);
        var state = DecodeState.Initial;
        Decoder.Decode(ids, skipSpecialTokens, bytes, ref state);
        return bytes.ToArray();
    }

    /// <summary>Decodes to text; byte sequences that are not valid UTF-8 become U+FFFD, as in HF.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
        => Utf8Escape.DecodeLossy(DecodeToBytes(ids, skipSpecialTokens));

    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(Decoder, skipSpecialTokens);

    public string IdToToken(int id)
    {
        if (AddedTokens.TryGet(id, out var a)) return a.Content;
        if ((uint)id < (uint)Model.VocabSize) return Model.IdToToken(id);
        throw new ArgumentOutOfRangeException(nameof(id), $"token id {id} is outside the vocabulary (0..{VocabSize - 1})");
    }

    public int? TokenToId(string token)
    {
        foreach (var a in AddedTokens.Tokens) if (a.Content == token) return a.Id;
        return Model.TryGetId(token, out int id) ? id : null;
    }

    /// <summary>Token attribute for GGUF's token_type: from the model, with added tokens as control or user-defined.</summary>
    public TokenType GetTokenType(int id)
    {
        if (AddedTokens.TryGet(id, out var a)) return a.Special ? TokenType.Control : TokenType.UserDefined;
        if ((uint)id >= (uint)Model.VocabSize) return TokenType.Unused;
        var t = Model.GetTokenType(id);
        if (t == TokenType.Normal && IsByteToken(id)) return TokenType.Byte;
        return t;
    }

    /// <summary>Loads tokenizer.json (a folder or file), tokenizer.model, or the vocabulary of a .gguf file.</summary>
    public static Tokenizer Load(string path) => Loaders.TokenizerLoader.Load(path);
}
