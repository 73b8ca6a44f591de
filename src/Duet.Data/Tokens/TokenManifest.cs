// The manifest's "tokens" section (written by `duet data tokenize`), and reading and rewriting manifest.json
// so that what `duet data build` wrote comes back byte for byte.
using System.Text.Json;
using System.Text.Json.Serialization;
using Duet.Formats;

namespace Duet.Data.Tokens;

public sealed class TokenManifest
{
    /// <summary>The tokenizer's file name (tokenizer.json, tokenizer.model or a .gguf), without its folder.</summary>
    public string Tokenizer { get; set; } = "";
    public string TokenizerSha256 { get; set; } = "";
    public int VocabSize { get; set; }
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

public sealed class TokenCount
{
    public long Documents { get; set; }
    public long Tokens { get; set; }
}

/// <param name="Bin">Tokens, relative to the corpus folder (tokens/train-00000.bin).</param>
/// <param name="Idx">Document offsets and languages (tokens/train-00000.idx).</param>
/// <param name="Text">The JSONL shard the tokens come from.</param>
public sealed record TokenShardInfo(string Bin, string Idx, string Text, string Split, long Documents, long Tokens, string BinSha256, string IdxSha256);

/// <summary>manifest.json of a corpus folder.</summary>
public static class ManifestFile
{
    public const string Name = "manifest.json";

    // As DataPipeline writes it; sorted maps keep ordinal order when read back (see OrdinalSortedDictionaryConverter).
    internal static readonly JsonSerializerOptions Json = new(DataPipeline.OutputJson)
    {
        WriteIndented = true,
        Converters = { new OrdinalSortedDictionaryConverter() },
    };

    public static Manifest Read(string dir) => Manifest.Load(Path.Combine(dir, Name));

    public static byte[] Serialize(Manifest manifest) => JsonSerializer.SerializeToUtf8Bytes(manifest, Json);

    /// <summary>Replaces manifest.json atomically (temporary file, then rename).</summary>
    public static void Write(string dir, Manifest manifest)
    {
        var bytes = Serialize(manifest);
        AtomicFile.Write(Path.Combine(dir, Name), s => s.Write(bytes));
    }

    // The serializer builds a SortedDictionary with its default constructor, whose comparer is culture-aware
    // ('_' before '.' under ICU); the manifest's maps are ordinal. Written the same way as without the converter.
    private sealed class OrdinalSortedDictionaryConverter : JsonConverterFactory
    {
        public override bool CanConvert(Type t) => t.IsGenericType && t.GetGenericTypeDefinition() == typeof(SortedDictionary<,>) && t.GetGenericArguments()[0] == typeof(string);

        public override JsonConverter CreateConverter(Type t, JsonSerializerOptions options)
            => (JsonConverter)Activator.CreateInstance(typeof(Converter<>).MakeGenericType(t.GetGenericArguments()[1]))!;

        private sealed class Converter<T> : JsonConverter<SortedDictionary<string, T>>
        {
            public override SortedDictionary<string, T> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
            {
                if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException($"expected an object, found {reader.TokenType}");
                var d = new SortedDictionary<string, T>(StringComparer.Ordinal);
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    var key = reader.GetString()!;
                    reader.Read();
                    d[key] = JsonSerializer.Deserialize<T>(ref reader, options)!;
                }
                return d;
            }

            public override void Write(Utf8JsonWriter writer, SortedDictionary<string, T> value, JsonSerializerOptions options)
            {
                writer.WriteStartObject();
                IEnumerable<KeyValuePair<string, T>> ordered = value.Comparer == StringComparer.Ordinal ? value : value.OrderBy(kv => kv.Key, StringComparer.Ordinal);
                foreach (var (k, v) in ordered)
                {
                    writer.WritePropertyName(k);
                    JsonSerializer.Serialize(writer, v, options);
                }
                writer.WriteEndObject();
            }
        }
    }
}
