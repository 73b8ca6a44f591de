// The "tokens" section of a corpus folder's manifest.json (written by `duet data tokenize`): the tokenizer, the
// counts and one entry per token shard; and CorpusManifest, which reads manifest.json with one clear error for a
// missing or malformed file. The rest of the manifest (sources, filters, text shards) is Duet.Data's Manifest;
// what reads token shards needs only this section.
using System.Text.Json;

namespace Duet.Formats.Tokens;

/// <summary>The manifest's "tokens" section: what `duet data tokenize` wrote and with which tokenizer.</summary>
public sealed class TokenManifest
{
    /// <summary>The tokenizer's file name (tokenizer.json, tokenizer.model or a .gguf), without its folder.</summary>
    public string Tokenizer { get; set; } = "";
    /// <summary>SHA-256 of the tokenizer file, lowercase hex.</summary>
    public string TokenizerSha256 { get; set; } = "";
    /// <summary>The tokenizer's vocabulary size; every token id is below it.</summary>
    public int VocabSize { get; set; }
    /// <summary>2 or 4 (<see cref="TokenFormat.BytesPerToken"/>).</summary>
    public int BytesPerToken { get; set; }
    /// <summary>The id put before every document, or null when the tokenizer has no BOS.</summary>
    public int? Bos { get; set; }
    /// <summary>The id put after every document, or null when the tokenizer has no EOS.</summary>
    public int? Eos { get; set; }
    /// <summary>Documents and tokens (BOS and EOS included) by split, then language.</summary>
    public SortedDictionary<string, SortedDictionary<string, TokenCount>> Counts { get; set; } = new(StringComparer.Ordinal);
    /// <summary>One token shard per text shard, in the order of the manifest's text shards.</summary>
    public List<TokenShardInfo> Shards { get; set; } = [];
}

/// <summary>Documents and tokens of one split and language.</summary>
public sealed class TokenCount
{
    /// <summary>Documents.</summary>
    public long Documents { get; set; }
    /// <summary>Tokens, BOS and EOS included.</summary>
    public long Tokens { get; set; }
}

/// <summary>One token shard as the manifest lists it.</summary>
/// <param name="Bin">Tokens, relative to the corpus folder (tokens/train-00000.bin).</param>
/// <param name="Idx">Document offsets and languages (tokens/train-00000.idx).</param>
/// <param name="Text">The JSONL shard the tokens come from.</param>
public sealed record TokenShardInfo(string Bin, string Idx, string Text, string Split, long Documents, long Tokens, string BinSha256, string IdxSha256);

/// <summary>manifest.json of a corpus folder, read with one clear error for a missing or malformed file.</summary>
public static class CorpusManifest
{
    /// <summary>The manifest's file name in a corpus folder.</summary>
    public const string Name = "manifest.json";

    // Reading only the tokens section: camelCase names as the pipeline writes them, sorted maps in ordinal order.
    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new OrdinalSortedDictionaryConverter() },
    };

    /// <summary>Reads the manifest at <paramref name="path"/> as <typeparamref name="T"/>; members T does not have are skipped.</summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is not JSON of the manifest's shape, or it is <c>null</c>.</exception>
    public static T Load<T>(string path, JsonSerializerOptions options) where T : class
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no manifest (is its folder the output of `duet data build`?)", path);
        try { return JsonSerializer.Deserialize<T>(File.ReadAllBytes(path), options) ?? throw new InvalidDataException($"{path}: empty manifest"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid manifest: {e.Message}", e); }
    }

    /// <summary>The "tokens" section of the manifest in <paramref name="dir"/>, or null before `duet data tokenize` has run.</summary>
    public static TokenManifest? ReadTokens(string dir) => Load<TokensOnly>(Path.Combine(dir, Name), s_json).Tokens;

    private sealed class TokensOnly
    {
        public TokenManifest? Tokens { get; set; }
    }
}
