// Writes a tokenizer as Hugging Face tokenizer.json (+ tokenizer_config.json beside it), in the layout
// the tokenizers library serializes, so transformers, tokenizers and the JavaScript port load it.
// A SentencePiece model (ranked by scores) is written with merges, as HF's own converter does: every
// split of a piece into two pieces, in order of the piece's score.
using System.Text.Encodings.Web;
using System.Text.Json;
using Duet.Tokenizers.Decoders;
using Duet.Tokenizers.Models;
using Duet.Formats;

namespace Duet.Tokenizers.Loaders;

public static class TokenizerJsonWriter
{
    /// <summary>Writes <paramref name="path"/> (tokenizer.json) and tokenizer_config.json in the same folder, atomically.</summary>
    public static void Save(Tokenizer tok, string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        AtomicFile.Write(path, s => Write(tok, s));
        AtomicFile.Write(Path.Combine(dir, "tokenizer_config.json"), s => WriteConfig(tok, s));
    }

    private static readonly JsonWriterOptions s_options = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Write(Tokenizer tok, Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, s_options);
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        foreach (var a in tok.AddedTokens.Tokens.OrderBy(a => a.Id))
        {
            w.WriteStartObject();
            w.WriteNumber("id", a.Id); w.WriteString("content", a.Content); w.WriteBoolean("single_word", a.SingleWord);
            w.WriteBoolean("lstrip", a.LStrip); w.WriteBoolean("rstrip", a.RStrip); w.WriteBoolean("normalized", a.Normalized);
            w.WriteBoolean("special", a.Special);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WritePropertyName("normalizer");
        if (tok.Normalizer is null) w.WriteNullValue(); else tok.Normalizer.WriteJson(w);
        w.WritePropertyName("pre_tokenizer");
        if (tok.PreTokenizer is null) w.WriteNullValue(); else tok.PreTokenizer.WriteJson(w);
        w.WritePropertyName("post_processor");
        if (tok.PostProcessor.Prefix.Count + tok.PostProcessor.Suffix.Count == 0) w.WriteNullValue();
        else tok.PostProcessor.WriteJson(w, tok.IdToToken);
        w.WritePropertyName("decoder");
        WriteDecoder(w, tok.Decoder);
        WriteModel(w, tok);
        w.WriteEndObject();
    }

    private static void WriteDecoder(Utf8JsonWriter w, TokenDecoder d)
    {
        w.WriteStartObject();
        if (d.Kind == DecoderKind.ByteLevel)
        {
            w.WriteString("type", "ByteLevel"); w.WriteBoolean("add_prefix_space", false); w.WriteBoolean("trim_offsets", false); w.WriteBoolean("use_regex", false);
        }
        else
        {
            // Llama 2's decoder: '▁' -> ' ', <0xXX> -> byte, join, drop the dummy-prefix space.
            w.WriteString("type", "Sequence");
            w.WriteStartArray("decoders");
            w.WriteStartObject(); w.WriteString("type", "Replace"); w.WriteStartObject("pattern"); w.WriteString("String", "\u2581"); w.WriteEndObject(); w.WriteString("content", " "); w.WriteEndObject();
            w.WriteStartObject(); w.WriteString("type", "ByteFallback"); w.WriteEndObject();
            w.WriteStartObject(); w.WriteString("type", "Fuse"); w.WriteEndObject();
            if (d.PrefixSpace != PrefixSpaceRule.None)
            {
                w.WriteStartObject(); w.WriteString("type", "Strip"); w.WriteString("content", " "); w.WriteNumber("start", 1); w.WriteNumber("stop", 0); w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    private static void WriteModel(Utf8JsonWriter w, Tokenizer tok)
    {
        var m = tok.Model;
        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        if (m.UnknownId >= 0) w.WriteString("unk_token", m.IdToToken(m.UnknownId)); else w.WriteNull("unk_token");
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", m.Ranking == BpeRanking.Scores || m.FuseUnknown);
        w.WriteBoolean("byte_fallback", m.ByteFallback);
        w.WriteBoolean("ignore_merges", m.IgnoreMerges);
        w.WriteStartObject("vocab");
        var written = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < m.VocabSize; i++)
            if (written.Add(m.IdToToken(i))) w.WriteNumber(m.IdToToken(i), i);
        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (var (l, r) in MergesOf(m))
        {
            w.WriteStartArray(); w.WriteStringValue(l); w.WriteStringValue(r); w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>The merges list: the model's own, or derived from SentencePiece scores.</summary>
    public static IEnumerable<(string, string)> MergesOf(BpeModel m)
    {
        if (m.Ranking == BpeRanking.Merges) return m.MergeList;
        var merges = new List<(float Score, int L, int R, string Ls, string Rs)>();
        for (int id = 0; id < m.VocabSize; id++)
        {
            if (m.GetTokenType(id) is not (TokenType.Normal or TokenType.UserDefined or TokenType.Unused)) continue;
            var p = m.IdToToken(id);
            for (int s = 1; s < p.Length; s++)
            {
                if (char.IsLowSurrogate(p[s]) && char.IsHighSurrogate(p[s - 1])) continue;
                if (m.TryGetId(p.AsSpan(0, s), out int l) && m.TryGetId(p.AsSpan(s), out int r))
                    merges.Add((m.GetScore(id), l, r, p[..s], p[s..]));
            }
        }
        return merges.OrderByDescending(x => x.Score).ThenBy(x => x.L).ThenBy(x => x.R).Select(x => (x.Ls, x.Rs));
    }

    private static void WriteConfig(Tokenizer tok, Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, s_options);
        w.WriteStartObject();
        w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
        w.WriteBoolean("add_bos_token", tok.PostProcessor.Prefix.Count > 0);
        w.WriteBoolean("add_eos_token", tok.PostProcessor.Suffix.Count > 0);
        if (tok.BosId >= 0) w.WriteString("bos_token", tok.IdToToken(tok.BosId));
        if (tok.EosId >= 0) w.WriteString("eos_token", tok.IdToToken(tok.EosId));
        if (tok.UnknownId >= 0) w.WriteString("unk_token", tok.IdToToken(tok.UnknownId));
        if (tok.PadId >= 0) w.WriteString("pad_token", tok.IdToToken(tok.PadId));
        w.WriteBoolean("clean_up_tokenization_spaces", false);
        if (tok.ChatTemplate is not null) w.WriteString("chat_template", tok.ChatTemplate);
        w.WriteEndObject();
    }
}
