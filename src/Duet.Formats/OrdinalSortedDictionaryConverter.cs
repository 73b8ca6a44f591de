// System.Text.Json builds a SortedDictionary<string, T> with its default constructor, whose comparer is
// culture-aware ('_' sorts before '.' under ICU), so maps read back from JSON would be written in another order.
// This converter reads them with the ordinal comparer and writes them in ordinal order: a file that was written
// from ordinal maps (a corpus manifest) reads and writes back to the same bytes.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Duet.Formats;

/// <summary>Reads and writes <c>SortedDictionary&lt;string, T&gt;</c> in ordinal key order.</summary>
public sealed class OrdinalSortedDictionaryConverter : JsonConverterFactory
{
    /// <inheritdoc/>
    public override bool CanConvert(Type typeToConvert) =>
        typeToConvert.IsGenericType && typeToConvert.GetGenericTypeDefinition() == typeof(SortedDictionary<,>) && typeToConvert.GetGenericArguments()[0] == typeof(string);

    /// <inheritdoc/>
    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options)
        => (JsonConverter)Activator.CreateInstance(typeof(Converter<>).MakeGenericType(typeToConvert.GetGenericArguments()[1]))!;

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
