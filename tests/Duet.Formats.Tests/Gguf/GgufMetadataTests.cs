// Typed metadata accessors: integers of any width that fit, defaults for absent keys, arrays as fresh
// copies, and GgufFormatException naming key and offset for a present key with an unusable value.
using Duet.Formats.Gguf;

namespace Duet.Formats.Tests.Gguf;

public sealed class GgufMetadataTests
{
    private static GgufFile Parsed(params (string Key, GgufValue Value)[] entries)
    {
        var w = new GgufWriter();
        foreach (var (k, v) in entries)
            w.Add(k, v);
        return GgufFile.Parse(w.ToArray());
    }

    [Fact]
    public void GetUInt32_AnyIntegerTypeThatFits_Converts()
    {
        using var f = Parsed(("a", GgufValue.Of((byte)7)), ("b", GgufValue.Of(7)), ("c", GgufValue.Of(7UL)), ("d", GgufValue.Of((short)7)));
        Assert.All(["a", "b", "c", "d"], k => Assert.Equal(7u, f.Metadata.GetUInt32(k)));
        Assert.Equal(7, f.Metadata.GetInt32("c"));
        Assert.Equal(7L, f.Metadata.GetInt64("a"));
        Assert.Equal(7UL, f.Metadata.GetUInt64("d"));
    }

    [Fact]
    public void GetUInt32_Absent_ReturnsDefault()
    {
        using var f = Parsed(("a", GgufValue.Of(1)));
        Assert.Equal(32u, f.Metadata.GetUInt32("missing", 32));
        Assert.Equal(-1, f.Metadata.GetInt32("missing", -1));
        Assert.Equal(1e-5f, f.Metadata.GetFloat("missing", 1e-5f));
        Assert.True(f.Metadata.GetBool("missing", true));
        Assert.Null(f.Metadata.GetString("missing"));
        Assert.Equal("x", f.Metadata.GetString("missing", "x"));
        Assert.Null(f.Metadata.GetStringArray("missing"));
        Assert.Null(f.Metadata.GetFloatArray("missing"));
        Assert.Null(f.Metadata.GetInt32Array("missing"));
        Assert.False(f.Metadata.TryGet("missing", out _));
    }

    [Fact]
    public void GetUInt32_Required_Absent_ThrowsNamingKey()
    {
        using var f = Parsed(("a", GgufValue.Of(1)));
        var e = Assert.Throws<GgufFormatException>(() => f.Metadata.GetUInt32("llama.block_count"));
        Assert.Contains("no required key 'llama.block_count'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetUInt32_NegativeOrTooLarge_ThrowsNamingKeyAndOffset()
    {
        using var f = Parsed(("neg", GgufValue.Of(-1)), ("big", GgufValue.Of(1UL << 33)), ("str", GgufValue.Of("7")));
        var e = Assert.Throws<GgufFormatException>(() => f.Metadata.GetUInt32("neg"));
        Assert.Contains("GGUF metadata key 'neg': value -1 does not fit in uint32", e.Message, StringComparison.Ordinal);
        Assert.Equal(f.Metadata.OffsetOf("neg"), e.Offset);
        Assert.True(e.Offset > 0);
        Assert.Throws<GgufFormatException>(() => f.Metadata.GetInt32("big"));
        e = Assert.Throws<GgufFormatException>(() => f.Metadata.GetUInt32("str", 3));
        Assert.Contains("has type string, expected an integer that fits in uint32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetFloat_Float64_Narrows()
    {
        using var f = Parsed(("f", GgufValue.Of(1e-6)), ("g", GgufValue.Of(0.5f)));
        Assert.Equal(1e-6f, f.Metadata.GetFloat("f"));
        Assert.Equal(0.5f, f.Metadata.GetFloat("g", 0));
    }

    [Fact]
    public void GetBool_WrongType_Throws()
    {
        using var f = Parsed(("b", GgufValue.Of(1)));
        var e = Assert.Throws<GgufFormatException>(() => f.Metadata.GetBool("b", false));
        Assert.Contains("has type int32, expected a bool", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetStringArray_ReturnsCopy()
    {
        using var f = Parsed(("t", GgufValue.Of(new[] { "a", "b" })));
        var first = f.Metadata.GetStringArray("t")!;
        first[0] = "changed";
        Assert.Equal(["a", "b"], f.Metadata.GetStringArray("t")!);
    }

    [Fact]
    public void GetStringArray_WrongElementType_Throws()
    {
        using var f = Parsed(("t", GgufValue.Of(new[] { 1, 2 })));
        var e = Assert.Throws<GgufFormatException>(() => f.Metadata.GetStringArray("t"));
        Assert.Contains("has type an array of int32, expected an array of string", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetInt32Array_OtherIntegerElementTypes_Convert()
    {
        using var f = Parsed(("u8", GgufValue.Of(new byte[] { 1, 6 })), ("i64", GgufValue.Of(new[] { -3L, 4L })),
            ("big", GgufValue.Of(new[] { 1u, uint.MaxValue })));
        Assert.Equal([1, 6], f.Metadata.GetInt32Array("u8")!);
        Assert.Equal([-3, 4], f.Metadata.GetInt32Array("i64")!);
        var e = Assert.Throws<GgufFormatException>(() => f.Metadata.GetInt32Array("big"));
        Assert.Contains("element 1 = 4294967295 does not fit in int32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetFloatArray_Float64Elements_Narrow()
    {
        using var f = Parsed(("d", GgufValue.Of(new[] { 0.5, -2.0 })));
        Assert.Equal([0.5f, -2f], f.Metadata.GetFloatArray("d")!);
    }

    [Fact]
    public void Constructor_DuplicateKey_Throws()
    {
        Assert.Throws<ArgumentException>(() => new GgufMetadata([new("a", GgufValue.Of(1)), new("a", GgufValue.Of(2))]));
        var m = new GgufMetadata([new("a", GgufValue.Of(1)), new("b", GgufValue.Of("x"))]);
        Assert.Equal(1, m.GetInt32("a"));
        Assert.Equal(-1, m.OffsetOf("a"));
    }

    [Fact]
    public void ArchitectureKeys_AreBuiltFromTheArchitecture()
    {
        Assert.Equal("llama.context_length", GgufKeys.ContextLength("llama"));
        Assert.Equal("llama.attention.head_count_kv", GgufKeys.AttentionHeadCountKv("llama"));
        Assert.Equal("qwen2.attention.layer_norm_rms_epsilon", GgufKeys.AttentionLayerNormRmsEpsilon("qwen2"));
        Assert.Equal("llama.rope.scaling.factor", GgufKeys.RopeScalingFactor("llama"));
        Assert.Equal("gpt2.vocab_size", GgufKeys.VocabSize("gpt2"));
        Assert.Equal("tokenizer.chat_template.tool_use", GgufKeys.NamedChatTemplate("tool_use"));
    }

    [Fact]
    public void GgufValue_ArrayFactory_CopiesInput()
    {
        var source = new[] { 1f, 2f };
        var v = GgufValue.Of(source);
        source[0] = 99f;
        Assert.Equal([1f, 2f], v.AsArray().ToArray<float>());
        Assert.Throws<InvalidCastException>(() => v.AsArray().AsSpan<int>().Length);
        Assert.Throws<ArgumentException>(() => GgufValue.Of([GgufValue.Of(1)]));
    }

    [Fact]
    public void GgufValue_ToString_IsShortAndInvariant()
    {
        Assert.Equal("\"a\\nb\"", GgufValue.Of("a\nb").ToString());
        Assert.Equal("0.5", GgufValue.Of(0.5f).ToString());
        Assert.Equal("int32[10] [0, 1, 2, 3, 4, 5, 6, 7, ...]", GgufValue.Of(Enumerable.Range(0, 10).ToArray()).ToString());
    }
}
