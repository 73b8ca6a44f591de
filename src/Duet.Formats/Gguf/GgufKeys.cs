// Standard GGUF metadata key names, spelled once (docs/gguf.md "Standardized key-value pairs", gguf-py
// constants.py `Keys`, llama.cpp llama-arch.cpp), with builders for the `{arch}.`-prefixed model keys, and the
// llama.cpp token type ids stored in `tokenizer.ggml.token_type`.
// Not here: which keys a given architecture requires (that belongs to the model loader).
namespace Duet.Formats.Gguf;

public static class GgufKeys
{
    // general.*
    public const string GeneralArchitecture = "general.architecture";        // string, [a-z0-9]+
    public const string GeneralType = "general.type";                        // string: "model", "adapter", ...
    public const string GeneralName = "general.name";                        // string
    public const string GeneralAlignment = "general.alignment";              // uint32, power of two, default 32
    public const string GeneralFileType = "general.file_type";               // uint32 (llama_ftype)
    public const string GeneralQuantizationVersion = "general.quantization_version"; // uint32
    public const string GeneralDescription = "general.description";
    public const string GeneralLicense = "general.license";

    // {arch}.* suffixes; build full keys with the methods below (the arch comes from general.architecture).
    public const string ContextLengthSuffix = "context_length";
    public const string EmbeddingLengthSuffix = "embedding_length";
    public const string BlockCountSuffix = "block_count";
    public const string FeedForwardLengthSuffix = "feed_forward_length";
    public const string VocabSizeSuffix = "vocab_size";
    public const string AttentionHeadCountSuffix = "attention.head_count";
    public const string AttentionHeadCountKvSuffix = "attention.head_count_kv";
    public const string AttentionLayerNormEpsilonSuffix = "attention.layer_norm_epsilon";
    public const string AttentionLayerNormRmsEpsilonSuffix = "attention.layer_norm_rms_epsilon";
    public const string AttentionKeyLengthSuffix = "attention.key_length";
    public const string AttentionValueLengthSuffix = "attention.value_length";
    public const string RopeDimensionCountSuffix = "rope.dimension_count";
    public const string RopeFreqBaseSuffix = "rope.freq_base";
    public const string RopeScalingTypeSuffix = "rope.scaling.type";
    public const string RopeScalingFactorSuffix = "rope.scaling.factor";
    public const string RopeScalingOriginalContextLengthSuffix = "rope.scaling.original_context_length";

    /// <summary>"{arch}.{suffix}", e.g. ForArchitecture("llama", BlockCountSuffix) = "llama.block_count".</summary>
    public static string ForArchitecture(string architecture, string suffix)
    {
        ArgumentException.ThrowIfNullOrEmpty(architecture);
        ArgumentException.ThrowIfNullOrEmpty(suffix);
        return architecture + "." + suffix;
    }

    public static string ContextLength(string arch) => ForArchitecture(arch, ContextLengthSuffix);
    public static string EmbeddingLength(string arch) => ForArchitecture(arch, EmbeddingLengthSuffix);
    public static string BlockCount(string arch) => ForArchitecture(arch, BlockCountSuffix);
    public static string FeedForwardLength(string arch) => ForArchitecture(arch, FeedForwardLengthSuffix);
    public static string VocabSize(string arch) => ForArchitecture(arch, VocabSizeSuffix);
    public static string AttentionHeadCount(string arch) => ForArchitecture(arch, AttentionHeadCountSuffix);
    public static string AttentionHeadCountKv(string arch) => ForArchitecture(arch, AttentionHeadCountKvSuffix);
    public static string AttentionLayerNormEpsilon(string arch) => ForArchitecture(arch, AttentionLayerNormEpsilonSuffix);
    public static string AttentionLayerNormRmsEpsilon(string arch) => ForArchitecture(arch, AttentionLayerNormRmsEpsilonSuffix);
    public static string AttentionKeyLength(string arch) => ForArchitecture(arch, AttentionKeyLengthSuffix);
    public static string AttentionValueLength(string arch) => ForArchitecture(arch, AttentionValueLengthSuffix);
    public static string RopeDimensionCount(string arch) => ForArchitecture(arch, RopeDimensionCountSuffix);
    public static string RopeFreqBase(string arch) => ForArchitecture(arch, RopeFreqBaseSuffix);
    public static string RopeScalingType(string arch) => ForArchitecture(arch, RopeScalingTypeSuffix);
    public static string RopeScalingFactor(string arch) => ForArchitecture(arch, RopeScalingFactorSuffix);
    public static string RopeScalingOriginalContextLength(string arch) => ForArchitecture(arch, RopeScalingOriginalContextLengthSuffix);

    // tokenizer.*
    public const string TokenizerModel = "tokenizer.ggml.model";             // string: "llama" (SPM), "gpt2" (BPE), "bert", ...
    public const string TokenizerPre = "tokenizer.ggml.pre";                 // string: pre-tokenizer name ("llama-bpe", ...)
    public const string TokenizerTokens = "tokenizer.ggml.tokens";           // string[]
    public const string TokenizerScores = "tokenizer.ggml.scores";           // float32[]
    public const string TokenizerTokenType = "tokenizer.ggml.token_type";    // int32[] of GgufTokenType
    public const string TokenizerTokenTypeCount = "tokenizer.ggml.token_type_count"; // uint32, BERT segment types
    public const string TokenizerMerges = "tokenizer.ggml.merges";           // string[] "a b"
    public const string TokenizerBosTokenId = "tokenizer.ggml.bos_token_id"; // uint32
    public const string TokenizerEosTokenId = "tokenizer.ggml.eos_token_id";
    public const string TokenizerEotTokenId = "tokenizer.ggml.eot_token_id";
    public const string TokenizerEomTokenId = "tokenizer.ggml.eom_token_id";
    public const string TokenizerUnknownTokenId = "tokenizer.ggml.unknown_token_id";
    public const string TokenizerSeparatorTokenId = "tokenizer.ggml.seperator_token_id"; // sic: the misspelling is the key
    public const string TokenizerPaddingTokenId = "tokenizer.ggml.padding_token_id";
    public const string TokenizerMaskTokenId = "tokenizer.ggml.mask_token_id";
    public const string TokenizerAddBosToken = "tokenizer.ggml.add_bos_token"; // bool
    public const string TokenizerAddEosToken = "tokenizer.ggml.add_eos_token";
    public const string TokenizerAddSepToken = "tokenizer.ggml.add_sep_token";
    public const string TokenizerAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
    public const string TokenizerRemoveExtraWhitespaces = "tokenizer.ggml.remove_extra_whitespaces";
    public const string TokenizerPrecompiledCharsmap = "tokenizer.ggml.precompiled_charsmap"; // uint8[]
    public const string TokenizerHuggingFaceJson = "tokenizer.huggingface.json";
    public const string TokenizerChatTemplate = "tokenizer.chat_template";   // string (Jinja)

    /// <summary>"tokenizer.chat_template.{name}", a named extra chat template.</summary>
    public static string NamedChatTemplate(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return TokenizerChatTemplate + "." + name;
    }
}

/// <summary>Values of `tokenizer.ggml.token_type` (llama.cpp `llama_token_type`).</summary>
public enum GgufTokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}
