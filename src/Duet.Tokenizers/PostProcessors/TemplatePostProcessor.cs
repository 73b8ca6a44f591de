// The post-processor for single sequences: fixed special tokens before and after the ids
// (tokenizer.json "TemplateProcessing", or add_bos/add_eos in tokenizer_config.json and GGUF).
// "ByteLevel" post-processing only adjusts offsets, which Duet does not track, so it is this with no tokens.
using System.Text.Json;

namespace Duet.Tokenizers.PostProcessors;

public sealed class TemplatePostProcessor(IReadOnlyList<int> prefix, IReadOnlyList<int> suffix)
{
    public static readonly TemplatePostProcessor None = new([], []);
    public IReadOnlyList<int> Prefix { get; } = prefix;
    public IReadOnlyList<int> Suffix { get; } = suffix;

    public void Apply(List<int> ids, int start)
    {
        ids.InsertRange(start, Prefix);
        ids.AddRange(Suffix);
    }

    public void WriteJson(Utf8JsonWriter w, Func<int, string> tokenOf)
    {
        w.WriteStartObject();
        w.WriteString("type", "TemplateProcessing");
        foreach (var (name, seqs) in new[] { ("single", 1), ("pair", 2) })
        {
            w.WriteStartArray(name);
            for (int s = 0; s < seqs; s++)
            {
                foreach (int id in Prefix) Special(w, tokenOf(id), s);
                w.WriteStartObject(); w.WriteStartObject("Sequence"); w.WriteString("id", s == 0 ? "A" : "B"); w.WriteNumber("type_id", s);
                w.WriteEndObject(); w.WriteEndObject();
                foreach (int id in Suffix) Special(w, tokenOf(id), s);
            }
            w.WriteEndArray();
        }
        w.WriteStartObject("special_tokens");
        foreach (int id in Prefix.Concat(Suffix).Distinct())
        {
            w.WriteStartObject(tokenOf(id));
            w.WriteString("id", tokenOf(id));
            w.WriteStartArray("ids"); w.WriteNumberValue(id); w.WriteEndArray();
            w.WriteStartArray("tokens"); w.WriteStringValue(tokenOf(id)); w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();

        static void Special(Utf8JsonWriter w, string token, int typeId)
        {
            w.WriteStartObject(); w.WriteStartObject("SpecialToken"); w.WriteString("id", token); w.WriteNumber("type_id", typeId);
            w.WriteEndObject(); w.WriteEndObject();
        }
    }
}
