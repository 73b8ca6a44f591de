// The parts of a Hugging Face config.json (LlamaForCausalLM, MistralForCausalLM) that define the
// architecture, read strictly: a missing required field or a wrong type is an error naming the field.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Duet.Formats.SafeTensors;

public sealed record HfRopeScaling(string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

public sealed record HfConfig
{
    public string Architecture { get; init; } = "LlamaForCausalLM";
    public string ModelType { get; init; } = "llama";
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    public int NumKeyValueHeads { get; init; }
    public int? HeadDim { get; init; }
    public int VocabSize { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000;
    public HfRopeScaling? RopeScaling { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public int? BosTokenId { get; init; }
    public int[] EosTokenIds { get; init; } = [];
    public string TorchDtype { get; init; } = "float32";

    public static HfConfig Load(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new SafeTensorsFormatException($"{path}: not valid JSON: {e.Message}", e); }
        if (root is not JsonObject o) throw new SafeTensorsFormatException($"{path}: not a JSON object");
        try { return Parse(o); }
        catch (SafeTensorsFormatException e) { throw new SafeTensorsFormatException($"{path}: {e.Message}", e); }
    }

    public static HfConfig Parse(JsonObject o)
    {
        // JsonNode throws InvalidOperationException / FormatException for a value of the wrong kind.
        try { return ParseUnchecked(o); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException)
        {
            throw new SafeTensorsFormatException($"config.json has a value of the wrong type: {e.Message}", e);
        }
    }

    private static HfConfig ParseUnchecked(JsonObject o)
    {
        int Int(string k, int? def = null)
        {
            if (o[k] is JsonValue v && v.TryGetValue(out int i)) return i;
            if (o[k] is JsonValue v2 && v2.TryGetValue(out double d) && d == Math.Floor(d) && d is >= 0 and <= int.MaxValue) return (int)d;
            return def ?? throw new SafeTensorsFormatException($"'{k}' is missing or not an integer");
        }
        double Num(string k, double def) => o[k] is JsonValue v && v.TryGetValue(out double d) ? d : def;
        var arch = o["architectures"] is JsonArray a && a.Count > 0 ? a[0]?.GetValue<string>() ?? "" : "LlamaForCausalLM";
        if (arch is not ("LlamaForCausalLM" or "MistralForCausalLM"))
            throw new SafeTensorsFormatException($"architecture '{arch}' is not supported (LlamaForCausalLM, MistralForCausalLM)");
        int heads = Int("num_attention_heads");
        // rope_theta may sit at the top level or, in newer configs, inside rope_parameters.
        var ropeParams = o["rope_parameters"] as JsonObject;
        double theta = o["rope_theta"] is JsonValue tv && tv.TryGetValue(out double t) ? t
            : ropeParams?["rope_theta"] is JsonValue rv && rv.TryGetValue(out double rt) ? rt : 10000;
        var scalingNode = o["rope_scaling"] as JsonObject ?? ropeParams;
        HfRopeScaling? scaling = null;
        if (scalingNode is not null)
        {
            var type = (scalingNode["rope_type"] ?? scalingNode["type"])?.GetValue<string>() ?? "default";
            if (type is not ("default" or "linear" or "llama3"))
                throw new SafeTensorsFormatException($"rope scaling type '{type}' is not supported (linear, llama3)");
            if (type != "default")
                scaling = new HfRopeScaling(type, D(scalingNode, "factor", 1), D(scalingNode, "low_freq_factor", 1), D(scalingNode, "high_freq_factor", 4),
                    (int)D(scalingNode, "original_max_position_embeddings", 8192));
        }
        int[] eos = o["eos_token_id"] switch
        {
            JsonArray arr => arr.Select(x => x!.GetValue<int>()).ToArray(),
            JsonValue v when v.TryGetValue(out int i) => [i],
            _ => [],
        };
        return new HfConfig
        {
            Architecture = arch,
            ModelType = o["model_type"]?.GetValue<string>() ?? "llama",
            HiddenSize = Int("hidden_size"),
            IntermediateSize = Int("intermediate_size"),
            NumHiddenLayers = Int("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = Int("num_key_value_heads", heads),
            HeadDim = o["head_dim"] is JsonValue hv && hv.TryGetValue(out int hd) ? hd : null,
            VocabSize = Int("vocab_size"),
            MaxPositionEmbeddings = Int("max_position_embeddings", 2048),
            RmsNormEps = Num("rms_norm_eps", 1e-6),
            RopeTheta = theta,
            RopeScaling = scaling,
            TieWordEmbeddings = o["tie_word_embeddings"] is JsonValue tw && tw.TryGetValue(out bool tb) && tb,
            BosTokenId = o["bos_token_id"] is JsonValue bv && bv.TryGetValue(out int b) ? b : null,
            EosTokenIds = eos,
            TorchDtype = o["torch_dtype"]?.GetValue<string>() ?? o["dtype"]?.GetValue<string>() ?? "float32",
        };

        static double D(JsonObject s, string k, double def) => s[k] is JsonValue v && v.TryGetValue(out double d) ? d : def;
    }

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = ModelType,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["vocab_size"] = VocabSize,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["hidden_act"] = "silu",
            ["torch_dtype"] = TorchDtype,
        };
        if (HeadDim is int hd) o["head_dim"] = hd;
        if (BosTokenId is int b) o["bos_token_id"] = b;
        if (EosTokenIds.Length == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Length > 1) o["eos_token_id"] = new JsonArray(EosTokenIds.Select(x => (JsonNode)x).ToArray());
        if (RopeScaling is { } s)
            o["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = s.Type, ["factor"] = s.Factor, ["low_freq_factor"] = s.LowFreqFactor,
                ["high_freq_factor"] = s.HighFreqFactor, ["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings,
            };
        return o;
    }
}
