// The tokenizer stored in a GGUF file's metadata (llama.cpp's tokenizer.ggml.* keys), read and written.
//   "llama": SentencePiece BPE: tokens + scores + token_type, byte fallback through <0xXX> byte tokens.
//   "gpt2":  byte-level BPE: tokens + token_type + merges, split regex named by tokenizer.ggml.pre.
// As in llama.cpp, control tokens are recognised in text only with parse-special, user-defined ones always.
using Duet.Formats.Gguf;
using Duet.Tokenizers.Decoders;
using Duet.Tokenizers.Models;
using Duet.Tokenizers.Normalizers;
using Duet.Tokenizers.PostProcessors;
using Duet.Tokenizers.PreTokenizers;

namespace Duet.Tokenizers.Loaders;

public static class GgufVocabulary
{
    public static Tokenizer Load(string path)
    {
        try
        {
            using var file = GgufFile.Open(path);
            return Load(file.Metadata);
        }
        catch (GgufFormatException e) { throw new TokenizerFormatException($"{path}: {e.Message}", e); }
        catch (TokenizerFormatException e) { throw new TokenizerFormatException($"{path}: {e.Message}", e); }
    }

    public static Tokenizer Load(GgufMetadata md)
    {
        var kind = md.GetString(GgufKeys.TokenizerModel) ?? throw new TokenizerFormatException($"no '{GgufKeys.TokenizerModel}': the file has no tokenizer");
        var tokens = md.GetStringArray(GgufKeys.TokenizerTokens) ?? throw new TokenizerFormatException($"no '{GgufKeys.TokenizerTokens}'");
        int n = tokens.Length;
        if (n == 0) throw new TokenizerFormatException($"'{GgufKeys.TokenizerTokens}' is empty");
        var rawTypes = md.GetInt32Array(GgufKeys.TokenizerTokenType);
        if (rawTypes is not null && rawTypes.Length != n)
            throw new TokenizerFormatException($"'{GgufKeys.TokenizerTokenType}' has {rawTypes.Length} entries but '{GgufKeys.TokenizerTokens}' has {n}: the arrays disagree in length");
        var types = new TokenType[n];
        for (int i = 0; i < n; i++)
        {
            int t = rawTypes?[i] ?? 1;
            if (t is < 0 or > 6) throw new TokenizerFormatException($"token {i} '{tokens[i]}' has unknown token_type {t}");
            types[i] = t == 0 ? TokenType.Normal : (TokenType)t;
        }
        int Id(string key, int fallback)
        {
            long v = md.GetInt64(key, fallback);
            if (v < -1 || v >= n) throw new TokenizerFormatException($"'{key}' = {v} is outside the vocabulary of {n} tokens");
            return (int)v;
        }
        var added = new List<AddedToken>();
        for (int i = 0; i < n; i++)
        {
            if (types[i] == TokenType.Control && tokens[i].Length > 0) added.Add(new AddedToken(i, tokens[i], Special: true));
            else if (types[i] == TokenType.UserDefined && tokens[i].Length > 0) added.Add(new AddedToken(i, tokens[i], Special: false));
        }
        var template = md.GetString(GgufKeys.TokenizerChatTemplate);

        if (kind == "llama")
        {
            var scores = md.GetFloatArray(GgufKeys.TokenizerScores) ?? new float[n];
            if (scores.Length != n)
                throw new TokenizerFormatException($"'{GgufKeys.TokenizerScores}' has {scores.Length} entries but '{GgufKeys.TokenizerTokens}' has {n}: the arrays disagree in length");
            CheckUnique(tokens);
            int unk = Id(GgufKeys.TokenizerUnknownTokenId, Array.IndexOf(types, TokenType.Unknown));
            var model = BpeModel.FromScores(tokens, types, scores, unk, byteFallback: types.Contains(TokenType.Byte));
            int bos = Id(GgufKeys.TokenizerBosTokenId, 1 < n ? 1 : -1), eos = Id(GgufKeys.TokenizerEosTokenId, 2 < n ? 2 : -1);
            var post = Post(md, bos, eos, addBosDefault: true);
            var norm = new SentencePieceNormalizer(md.GetBool(GgufKeys.TokenizerAddSpacePrefix, true), md.GetBool(GgufKeys.TokenizerRemoveExtraWhitespaces, false));
            return new Tokenizer(model, norm, null, post, new AddedVocabulary(added), DecoderKind.SentencePiece, TokenizerSource.Gguf, false)
            { BosId = bos, EosId = eos, PadId = Id(GgufKeys.TokenizerPaddingTokenId, -1), ChatTemplate = template };
        }
        if (kind == "gpt2")
        {
            var mergeStrings = md.GetStringArray(GgufKeys.TokenizerMerges) ?? throw new TokenizerFormatException($"no '{GgufKeys.TokenizerMerges}' for a gpt2 tokenizer");
            var merges = new List<(string, string)>(mergeStrings.Length);
            for (int i = 0; i < mergeStrings.Length; i++)
            {
                var s = mergeStrings[i];
                int sp = s.IndexOf(' ', 1);
                if (sp < 0) throw new TokenizerFormatException($"'{GgufKeys.TokenizerMerges}'[{i}] '{s}' has no space between its two tokens");
                merges.Add((s[..sp], s[(sp + 1)..]));
            }
            var pre = md.GetString(GgufKeys.TokenizerPre, "default");
            GptPatternKind pattern = pre switch
            {
                "llama-bpe" or "llama3" or "smaug-bpe" => GptPatternKind.Llama3,
                "qwen2" => GptPatternKind.Qwen2,
                "default" or "gpt-2" or "gpt2" => GptPatternKind.Gpt2,
                _ => throw new TokenizerFormatException($"'{GgufKeys.TokenizerPre}' = '{pre}' is not a supported pre-tokenizer (llama-bpe, qwen2, gpt-2)"),
            };
            CheckUnique(tokens);
            var model = BpeModel.FromMerges(tokens, types, merges, byteFallback: false, ignoreMerges: pattern == GptPatternKind.Llama3,
                fuseUnknown: false, unknownId: Id(GgufKeys.TokenizerUnknownTokenId, -1));
            IPreTokenizer preTok = pattern == GptPatternKind.Gpt2
                ? new ByteLevelPreTokenizer(false, true)
                : new SequencePreTokenizer([new SplitPreTokenizer(GptSplitPattern.PatternOf(pattern), true, SplitBehavior.Isolated, false), new ByteLevelPreTokenizer(false, false)]);
            int bos = Id(GgufKeys.TokenizerBosTokenId, -1), eos = Id(GgufKeys.TokenizerEosTokenId, -1);
            var post = Post(md, bos, eos, addBosDefault: false);
            return new Tokenizer(model, null, preTok, post, new AddedVocabulary(added), DecoderKind.ByteLevel, TokenizerSource.Gguf, false)
            { BosId = bos, EosId = eos, PadId = Id(GgufKeys.TokenizerPaddingTokenId, -1), GgufPre = pre, ChatTemplate = template };
        }
        throw new TokenizerFormatException($"'{GgufKeys.TokenizerModel}' = '{kind}' is not supported (llama, gpt2)");
    }

    private static void CheckUnique(string[] tokens)
    {
        var seen = new HashSet<string>(tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
            if (!seen.Add(tokens[i])) throw new TokenizerFormatException($"token {i} '{tokens[i]}' appears twice in '{GgufKeys.TokenizerTokens}'");
    }

    private static TemplatePostProcessor Post(GgufMetadata md, int bos, int eos, bool addBosDefault)
    {
        bool addBos = md.GetBool(GgufKeys.TokenizerAddBosToken, addBosDefault) && bos >= 0;
        bool addEos = md.GetBool(GgufKeys.TokenizerAddEosToken, false) && eos >= 0;
        return new TemplatePostProcessor(addBos ? [bos] : [], addEos ? [eos] : []);
    }

    /// <summary>Writes a GGUF file that holds only the vocabulary (as llama.cpp's ggml-vocab-*.gguf files do).</summary>
    public static void Save(Tokenizer tok, string path)
    {
        var w = new GgufWriter();
        w.Add(GgufKeys.GeneralArchitecture, GgufValue.Of("llama"));
        w.Add(GgufKeys.GeneralName, GgufValue.Of(Path.GetFileNameWithoutExtension(path)));
        w.AddMetadata(ToMetadata(tok));
        w.WriteFile(path);
    }

    /// <summary>The tokenizer.ggml.* keys that describe <paramref name="tok"/>, in llama.cpp's layout.</summary>
    public static List<KeyValuePair<string, GgufValue>> ToMetadata(Tokenizer tok)
    {
        int n = tok.VocabSize;
        var tokens = new string[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            tokens[i] = tok.IdToToken(i);
            types[i] = (int)tok.GetTokenType(i);
        }
        var md = new List<KeyValuePair<string, GgufValue>>();
        void Add(string k, GgufValue v) => md.Add(new(k, v));
        bool byteLevel = tok.Decoder.Kind == DecoderKind.ByteLevel;
        Add(GgufKeys.TokenizerModel, GgufValue.Of(byteLevel ? "gpt2" : "llama"));
        if (byteLevel)
            Add(GgufKeys.TokenizerPre, GgufValue.Of(tok.GgufPre ?? throw new NotSupportedException("this byte-level tokenizer's split regex has no llama.cpp pre-tokenizer name")));
        Add(GgufKeys.TokenizerTokens, GgufValue.Of(tokens));
        if (!byteLevel)
        {
            var scores = new float[n];
            if (tok.Model.Ranking == BpeRanking.Scores)
                for (int i = 0; i < tok.Model.VocabSize; i++) scores[i] = tok.Model.GetScore(i);
            else
            {
                // Merge ranks as scores: the pair a+b made by merge r gets -(r+1), so "highest score first"
                // picks the same pair as "lowest rank first".
                var merges = tok.Model.MergeList;
                for (int r = merges.Count - 1; r >= 0; r--)
                    if (tok.Model.TryGetId(merges[r].Left + merges[r].Right, out int id)) scores[id] = -(r + 1);
            }
            Add(GgufKeys.TokenizerScores, GgufValue.Of(scores));
        }
        Add(GgufKeys.TokenizerTokenType, GgufValue.Of(types));
        if (byteLevel) Add(GgufKeys.TokenizerMerges, GgufValue.Of(tok.Model.MergeList.Select(m => m.Left + " " + m.Right).ToArray()));
        if (tok.BosId >= 0) Add(GgufKeys.TokenizerBosTokenId, GgufValue.Of((uint)tok.BosId));
        if (tok.EosId >= 0) Add(GgufKeys.TokenizerEosTokenId, GgufValue.Of((uint)tok.EosId));
        if (tok.UnknownId >= 0) Add(GgufKeys.TokenizerUnknownTokenId, GgufValue.Of((uint)tok.UnknownId));
        if (tok.PadId >= 0) Add(GgufKeys.TokenizerPaddingTokenId, GgufValue.Of((uint)tok.PadId));
        Add(GgufKeys.TokenizerAddBosToken, GgufValue.Of(tok.PostProcessor.Prefix.Count > 0));
        Add(GgufKeys.TokenizerAddEosToken, GgufValue.Of(tok.PostProcessor.Suffix.Count > 0));
        if (!byteLevel) Add(GgufKeys.TokenizerAddSpacePrefix, GgufValue.Of(tok.Decoder.PrefixSpace != PrefixSpaceRule.None));
        if (tok.ChatTemplate is not null) Add(GgufKeys.TokenizerChatTemplate, GgufValue.Of(tok.ChatTemplate));
        return md;
    }
}
