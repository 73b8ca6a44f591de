// Reads and writes Hugging Face tokenizer.json (+ tokenizer_config.json beside it).
// Supports what LLaMA-family tokenizers use; anything else is refused with a message naming it.
using System.Text;
using System.Text.Json;
using Duet.Tokenizers.Decoders;
using Duet.Tokenizers.Models;
using Duet.Tokenizers.Normalizers;
using Duet.Tokenizers.PostProcessors;
using Duet.Tokenizers.PreTokenizers;

namespace Duet.Tokenizers.Loaders;

public static class TokenizerJson
{
    public static Tokenizer Load(string path)
    {
        byte[] json;
        try { json = File.ReadAllBytes(path); }
        catch (IOException e) { throw new TokenizerFormatException($"{path}: cannot read: {e.Message}", e); }
        var configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", "tokenizer_config.json");
        // Not "cond ? bytes : null": the null would become a null byte[], then an empty but present ReadOnlyMemory
        // (invalid JSON) through the array conversion.
        ReadOnlyMemory<byte>? config = null;
        if (File.Exists(configPath)) config = File.ReadAllBytes(configPath);
        try { return Parse(json, config); }
        catch (TokenizerFormatException e) { throw new TokenizerFormatException($"{path}: {e.Message}", e); }
    }

    public static Tokenizer Parse(ReadOnlyMemory<byte> tokenizerJson, ReadOnlyMemory<byte>? tokenizerConfigJson = null)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(tokenizerJson, new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException e) { throw new TokenizerFormatException($"not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine}): {e.Message}", e); }
        using (doc)
        {
            JsonElement? cfg = null;
            JsonDocument? cfgDoc = null;
            if (tokenizerConfigJson is { } c)
            {
                try { cfgDoc = JsonDocument.Parse(c); cfg = cfgDoc.RootElement; }
                catch (JsonException e) { throw new TokenizerFormatException($"tokenizer_config.json is not valid JSON: {e.Message}", e); }
            }
            using (cfgDoc) return Build(doc.RootElement, cfg);
        }
    }

    private static Tokenizer Build(JsonElement root, JsonElement? cfg)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException("the top level is not a JSON object");
        var model = Required(root, "model", "the top level");
        var type = OptString(model, "type") ?? (model.TryGetProperty("merges", out _) ? "BPE" : null);
        if (type != "BPE") throw new TokenizerFormatException($"model type '{type ?? "(missing)"}' is not supported (only BPE)");
        if (model.TryGetProperty("dropout", out var dr) && dr.ValueKind == JsonValueKind.Number && dr.GetDouble() != 0)
            throw new TokenizerFormatException("BPE dropout is not supported");
        foreach (var k in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (!string.IsNullOrEmpty(OptString(model, k))) throw new TokenizerFormatException($"BPE '{k}' is not supported");

        // vocab: token -> id
        var vocabEl = Required(model, "vocab", "model");
        if (vocabEl.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException("model.vocab is not an object");
        var pairs = new List<(string Token, int Id)>();
        int maxId = -1;
        foreach (var p in vocabEl.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw new TokenizerFormatException($"model.vocab['{p.Name}'] is not a non-negative integer id");
            pairs.Add((p.Name, id));
            maxId = Math.Max(maxId, id);
        }
        if (maxId > 16_000_000) throw new TokenizerFormatException($"model.vocab has id {maxId}, too large for a vocabulary");
        var tokens = new string[maxId + 1];
        foreach (var (t, id) in pairs)
        {
            if (tokens[id] is not null) throw new TokenizerFormatException($"model.vocab gives id {id} to both '{tokens[id]}' and '{t}'");
            tokens[id] = t;
        }
        for (int i = 0; i < tokens.Length; i++) tokens[i] ??= $"\0<missing id {i}>";

        // merges: "a b" strings (tokenizers < 0.20) or [a, b] pairs
        var merges = new List<(string, string)>();
        if (model.TryGetProperty("merges", out var mergesEl) && mergesEl.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var m in mergesEl.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.String)
                {
                    var s = m.GetString()!;
                    int sp = s.IndexOf(' ', StringComparison.Ordinal);
                    if (sp < 0) throw new TokenizerFormatException($"model.merges[{i}] '{s}' has no space between its two tokens");
                    int sp2 = s.IndexOf(' ', sp + 1);
                    merges.Add((s[..sp], sp2 < 0 ? s[(sp + 1)..] : s[(sp + 1)..sp2])); // like JS split(" ", 2)
                }
                else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                    merges.Add((m[0].GetString()!, m[1].GetString()!));
                else throw new TokenizerFormatException($"model.merges[{i}] is neither \"a b\" nor [\"a\", \"b\"]");
                i++;
            }
        }
        else if (model.TryGetProperty("merges", out _)) throw new TokenizerFormatException("model.merges is not an array");

        var unkToken = OptString(model, "unk_token");
        int unkId = -1;
        var types = new TokenType[tokens.Length];
        Array.Fill(types, TokenType.Normal);
        if (unkToken is not null)
        {
            unkId = Array.IndexOf(tokens, unkToken);
            if (unkId >= 0) types[unkId] = TokenType.Unknown;
        }

        // added tokens
        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var a in at.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.Object || !a.TryGetProperty("id", out var idEl) || !idEl.TryGetInt32(out int id) || id < 0
                    || OptString(a, "content") is not { Length: > 0 } content)
                    throw new TokenizerFormatException($"added_tokens[{i}] needs an integer 'id' and a non-empty 'content'");
                if (id < tokens.Length && tokens[id] != content && !tokens[id].StartsWith('\0'))
                    throw new TokenizerFormatException($"added_tokens[{i}] '{content}' has id {id}, which the vocabulary gives to '{tokens[id]}'");
                added.Add(new AddedToken(id, content, OptBool(a, "special") ?? false, OptBool(a, "lstrip") ?? false,
                    OptBool(a, "rstrip") ?? false, OptBool(a, "single_word") ?? false, OptBool(a, "normalized") ?? false));
                i++;
            }
        }

        var bpe = BpeModel.FromMerges(tokens, types, merges, OptBool(model, "byte_fallback") ?? false,
            OptBool(model, "ignore_merges") ?? false, OptBool(model, "fuse_unk") ?? false, unkId);
        var normalizer = ReadNormalizer(root.TryGetProperty("normalizer", out var n) ? n : default, "normalizer");
        var pre = ReadPreTokenizer(root.TryGetProperty("pre_tokenizer", out var pt) ? pt : default, "pre_tokenizer");
        var vocab = new AddedVocabulary(added);
        Func<string, int> idOf = s => added.FirstOrDefault(a => a.Content == s)?.Id ?? (bpe.TryGetId(s, out int id) ? id : throw new TokenizerFormatException($"post_processor names '{s}', which is not a token"));
        var post = ReadPostProcessor(root.TryGetProperty("post_processor", out var pp) ? pp : default, idOf);
        var decoderKind = ReadDecoder(root.TryGetProperty("decoder", out var d) ? d : default);

        string? Special(string key) => cfg is { } c && c.TryGetProperty(key, out var v)
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.ValueKind == JsonValueKind.Object ? OptString(v, "content") : null
            : null;
        int IdOrMinus(string? s) => s is null ? -1 : added.FirstOrDefault(a => a.Content == s)?.Id ?? (bpe.TryGetId(s, out int id) ? id : -1);
        bool? cfgAddBos = cfg is { } cc && cc.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind is JsonValueKind.True or JsonValueKind.False ? ab.GetBoolean() : null;
        bool? cfgAddEos = cfg is { } ce && ce.TryGetProperty("add_eos_token", out var ae) && ae.ValueKind is JsonValueKind.True or JsonValueKind.False ? ae.GetBoolean() : null;
        int bos = IdOrMinus(Special("bos_token")), eos = IdOrMinus(Special("eos_token"));
        if (cfgAddBos is not null || cfgAddEos is not null)
        {
            // tokenizer_config.json's flags win, as in transformers' LlamaTokenizerFast.update_post_processor.
            var prefix = cfgAddBos ?? post.Prefix.Count > 0 ? (bos >= 0 ? new[] { bos } : []) : Array.Empty<int>();
            var suffix = cfgAddEos ?? post.Suffix.Count > 0 ? (eos >= 0 ? new[] { eos } : []) : Array.Empty<int>();
            if (cfgAddBos == true && bos < 0) prefix = [.. post.Prefix];
            post = new TemplatePostProcessor(prefix, suffix);
        }
        string? pre2 = pre is SequencePreTokenizer sq ? sq.Items.OfType<SplitPreTokenizer>().FirstOrDefault()?.Pattern : (pre as SplitPreTokenizer)?.Pattern;
        string? ggufPre = pre2 is null ? (pre is ByteLevelPreTokenizer { UseRegex: true } ? "gpt-2" : null) : GptSplitPattern.Recognize(pre2) switch
        {
            GptPatternKind.Llama3 => "llama-bpe",
            GptPatternKind.Qwen2 => "qwen2",
            GptPatternKind.Gpt2 => "gpt-2",
            _ => null,
        };
        return new Tokenizer(bpe, normalizer, pre, post, vocab, decoderKind, TokenizerSource.TokenizerJson, parseSpecialByDefault: true)
        {
            BosId = bos,
            EosId = eos,
            PadId = IdOrMinus(Special("pad_token")),
            GgufPre = ggufPre,
            ChatTemplate = cfg is { } ct && ct.TryGetProperty("chat_template", out var tpl) && tpl.ValueKind == JsonValueKind.String ? tpl.GetString() : null,
        };
    }

    private static INormalizer? ReadNormalizer(JsonElement e, string where)
    {
        if (e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return null;
        var type = OptString(e, "type");
        switch (type)
        {
            case "Sequence":
                var items = Required(e, "normalizers", where);
                return new SequenceNormalizer(items.EnumerateArray().Select((x, i) => ReadNormalizer(x, $"{where}.normalizers[{i}]")).OfType<INormalizer>().ToArray());
            case "Prepend": return new PrependNormalizer(OptString(e, "prepend") ?? throw Missing("prepend", where));
            case "Replace":
                var pat = Required(e, "pattern", where);
                var lit = OptString(pat, "String") ?? throw new TokenizerFormatException($"{where}: only literal (\"String\") Replace patterns are supported");
                return new ReplaceNormalizer(lit, OptString(e, "content") ?? throw Missing("content", where));
            case "NFC": return new UnicodeNormalizer(NormalizationForm.FormC);
            case "NFD": return new UnicodeNormalizer(NormalizationForm.FormD);
            case "NFKC": return new UnicodeNormalizer(NormalizationForm.FormKC);
            case "NFKD": return new UnicodeNormalizer(NormalizationForm.FormKD);
            case "Lowercase": return new LowercaseNormalizer();
            default: throw new TokenizerFormatException($"{where}: normalizer type '{type}' is not supported");
        }
    }

    private static IPreTokenizer? ReadPreTokenizer(JsonElement e, string where)
    {
        if (e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return null;
        var type = OptString(e, "type");
        switch (type)
        {
            case "Sequence":
                var items = Required(e, "pretokenizers", where);
                return new SequencePreTokenizer(items.EnumerateArray().Select((x, i) => ReadPreTokenizer(x, $"{where}.pretokenizers[{i}]")).OfType<IPreTokenizer>().ToArray());
            case "Split":
                var pat = Required(e, "pattern", where);
                bool isRegex = pat.TryGetProperty("Regex", out _);
                var p = OptString(pat, isRegex ? "Regex" : "String") ?? throw Missing("pattern", where);
                var behavior = OptString(e, "behavior") switch
                {
                    "Isolated" or null => SplitBehavior.Isolated,
                    "Removed" => SplitBehavior.Removed,
                    var b => throw new TokenizerFormatException($"{where}: Split behavior '{b}' is not supported"),
                };
                return new SplitPreTokenizer(p, isRegex, behavior, OptBool(e, "invert") ?? false);
            case "ByteLevel": return new ByteLevelPreTokenizer(OptBool(e, "add_prefix_space") ?? true, OptBool(e, "use_regex") ?? true);
            case "Metaspace":
                var rep = OptString(e, "replacement") ?? "\u2581";
                if (rep.Length != 1) throw new TokenizerFormatException($"{where}: Metaspace replacement must be one character");
                var scheme = OptBool(e, "add_prefix_space") == false ? PrependScheme.Never : OptString(e, "prepend_scheme") switch
                {
                    "first" => PrependScheme.First,
                    "never" => PrependScheme.Never,
                    _ => PrependScheme.Always,
                };
                return new MetaspacePreTokenizer(rep[0], scheme, OptBool(e, "split") ?? true);
            case "Digits": return new DigitsPreTokenizer(OptBool(e, "individual_digits") ?? false);
            default: throw new TokenizerFormatException($"{where}: pre-tokenizer type '{type}' is not supported");
        }
    }

    private static TemplatePostProcessor ReadPostProcessor(JsonElement e, Func<string, int> idOf)
    {
        if (e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return TemplatePostProcessor.None;
        switch (OptString(e, "type"))
        {
            case "ByteLevel": return TemplatePostProcessor.None;
            case "Sequence":
                var procs = Required(e, "processors", "post_processor").EnumerateArray().Select(x => ReadPostProcessor(x, idOf)).ToList();
                return new TemplatePostProcessor(procs.SelectMany(x => x.Prefix).ToArray(), procs.SelectMany(x => x.Suffix).ToArray());
            case "TemplateProcessing":
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenSeq = false;
                foreach (var item in Required(e, "single", "post_processor").EnumerateArray())
                {
                    if (item.TryGetProperty("Sequence", out _)) { seenSeq = true; continue; }
                    if (!item.TryGetProperty("SpecialToken", out var st)) throw new TokenizerFormatException("post_processor.single has an item that is neither Sequence nor SpecialToken");
                    var name = OptString(st, "id") ?? throw Missing("id", "post_processor.single");
                    int id = e.TryGetProperty("special_tokens", out var sts) && sts.TryGetProperty(name, out var def)
                        && def.TryGetProperty("ids", out var ids) && ids.GetArrayLength() == 1 ? ids[0].GetInt32() : idOf(name);
                    (seenSeq ? suffix : prefix).Add(id);
                }
                return new TemplatePostProcessor(prefix, suffix);
            case var t: throw new TokenizerFormatException($"post_processor type '{t}' is not supported");
        }
    }

    private static DecoderKind ReadDecoder(JsonElement e)
    {
        if (e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) throw new TokenizerFormatException("no decoder: cannot turn ids back into text");
        var parts = new List<string>();
        void Flatten(JsonElement x)
        {
            var t = OptString(x, "type") ?? "";
            if (t == "Sequence") foreach (var y in Required(x, "decoders", "decoder").EnumerateArray()) Flatten(y);
            else if (t == "Replace") parts.Add($"Replace:{OptString(Required(x, "pattern", "decoder"), "String")}->{OptString(x, "content")}");
            else parts.Add(t);
        }
        Flatten(e);
        if (parts.Contains("ByteLevel")) return DecoderKind.ByteLevel;
        if (parts.Contains("Metaspace") || parts.Contains("Replace:\u2581-> ")) return DecoderKind.SentencePiece;
        throw new TokenizerFormatException($"decoder [{string.Join(", ", parts)}] is not supported (ByteLevel, Metaspace, or Replace('▁',' ')+ByteFallback+Fuse+Strip)");
    }

    private static JsonElement Required(JsonElement e, string name, string where)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            throw Missing(name, where);
        return v;
    }

    private static TokenizerFormatException Missing(string name, string where) => new($"{where}: missing '{name}'");
    private static string? OptString(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    private static bool? OptBool(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
}
