// An independent check of the writer against the spec (ggml docs/gguf.md): the expected bytes of a tiny file
// with one KV and one tensor are written out here by hand, field by field, and the writer must produce
// exactly them; the reader must read them back. No gguf-py is available offline, so the spec is the oracle.
// Also checks the writer against the byte-level sample used by the hostile-input tests.
using Duet.Formats.Gguf;

using Duet.Tensors;

namespace Duet.Formats.Tests.Gguf;

public sealed class GgufFixtureTests
{
    // general.architecture = "test"; tensor "w": F32, shape [2], data { 1.0f, -2.0f }; alignment 32 (default).
    private static readonly byte[] TinyV3 =
    [
        // gguf_header_t
        0x47, 0x47, 0x55, 0x46,                         // 0   magic "GGUF"
        0x03, 0x00, 0x00, 0x00,                         // 4   version 3 (uint32)
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8   tensor_count 1 (uint64)
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 16  metadata_kv_count 1 (uint64)
        // gguf_metadata_kv_t
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 24  key length 20 (uint64)
        (byte)'g', (byte)'e', (byte)'n', (byte)'e', (byte)'r', (byte)'a', (byte)'l', (byte)'.',
        (byte)'a', (byte)'r', (byte)'c', (byte)'h', (byte)'i', (byte)'t', (byte)'e', (byte)'c',
        (byte)'t', (byte)'u', (byte)'r', (byte)'e',    // 32  "general.architecture", no terminator
        0x08, 0x00, 0x00, 0x00,                         // 52  value type STRING (8)
        0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 56  string length 4
        (byte)'t', (byte)'e', (byte)'s', (byte)'t',     // 64  "test"
        // gguf_tensor_info_t
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 68  name length 1
        (byte)'w',                                      // 76  "w"
        0x01, 0x00, 0x00, 0x00,                         // 77  n_dimensions 1 (uint32)
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 81  dimensions[0] = 2 (uint64)
        0x00, 0x00, 0x00, 0x00,                         // 89  type GGML_TYPE_F32 (0)
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 93  offset 0 (relative to tensor_data)
        // _padding: 101 -> 128, the next multiple of ALIGNMENT = 32
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        // tensor_data
        0x00, 0x00, 0x80, 0x3F,                         // 128 1.0f
        0x00, 0x00, 0x00, 0xC0,                         // 132 -2.0f
        // padding after the tensor to ALIGNMENT (as llama.cpp and gguf-py write it): 136 -> 160
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    private static GgufWriter TinyWriter()
    {
        var w = new GgufWriter();
        w.Add(GgufKeys.GeneralArchitecture, GgufValue.Of("test"));
        w.AddTensor("w", GgmlType.F32, [2], new byte[] { 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0 });
        return w;
    }

    [Fact]
    public void WriteTo_TinyFile_MatchesHandWrittenSpecBytes()
    {
        Assert.Equal(160, TinyV3.Length);
        Assert.Equal(TinyV3, TinyWriter().ToArray());
    }

    [Fact]
    public void Parse_HandWrittenSpecBytes_ReadsKvAndTensor()
    {
        using var f = GgufFile.Parse(TinyV3);
        Assert.Equal(3u, f.Version);
        Assert.Equal(32u, f.Alignment);
        Assert.Equal(128, f.DataOffset);
        var kv = Assert.Single(f.Metadata);
        Assert.Equal("general.architecture", kv.Key);
        Assert.Equal("test", f.Metadata.Architecture);
        var t = Assert.Single(f.Tensors);
        Assert.Equal("w", t.Name);
        Assert.Equal(GgmlType.F32, t.Type);
        Assert.Equal([2L], t.Shape);
        Assert.Equal(0, t.Offset);
        Assert.Equal(128, t.FileOffset);
        Assert.Equal(2, t.ElementCount);
        Assert.Equal(8, t.ByteSize);
        var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(f.GetTensorBytes(t));
        Assert.Equal([1.0f, -2.0f], floats.ToArray());
    }

    [Fact]
    public void Parse_Version2Bytes_ReadsTheSameLayout()
    {
        var v2 = (byte[])TinyV3.Clone();
        v2[4] = 2;
        using var f = GgufFile.Parse(v2);
        Assert.Equal(2u, f.Version);
        Assert.Equal("test", f.Metadata.Architecture);
        Assert.Equal(8, f.GetTensorBytes("w").Length);
    }

    [Fact]
    public void Parse_WithoutTrailingPadding_Succeeds()
    {
        // Only the tensor's own bytes must be in the file; the final padding is optional.
        using var f = GgufFile.Parse(TinyV3.AsMemory(0, 136));
        Assert.Equal(8, f.GetTensorBytes("w").Length);
    }

    [Fact]
    public void WriteTo_Sample_MatchesByteLevelSample()
    {
        Assert.Equal(SampleGguf.Bytes, SampleGguf.Writer().ToArray());
    }

    [Fact]
    public void Parse_ByteLevelSample_ReadsEverything()
    {
        using var f = GgufFile.Parse(SampleGguf.Bytes);
        var m = f.Metadata;
        Assert.Equal(8, m.Count);
        Assert.Equal("llama", m.Architecture);
        Assert.Equal(2u, m.GetUInt32("llama.block_count"));
        Assert.Equal(SampleGguf.Tokens, m.GetStringArray(GgufKeys.TokenizerTokens));
        Assert.Equal(SampleGguf.Scores, m.GetFloatArray(GgufKeys.TokenizerScores));
        Assert.Equal(SampleGguf.TokenTypes, m.GetInt32Array(GgufKeys.TokenizerTokenType));
        Assert.True(m.GetBool(GgufKeys.TokenizerAddBosToken));
        Assert.Equal(0.5, m["test.f64"].As<double>());
        var nested = m["test.nested"].AsArray().AsSpan<GgufValue>();
        Assert.Equal(3, nested.Length);
        Assert.Equal([(ushort)1, (ushort)2], nested[0].AsArray().ToArray<ushort>());
        Assert.Equal(["x"], nested[1].AsArray().ToArray<string>());
        Assert.Equal(0, nested[2].AsArray().Count);
        Assert.Equal(GgufValueType.UInt8, nested[2].AsArray().ElementType);
        Assert.Equal(["a", "b", "c"], f.Tensors.Select(t => t.Name));
        Assert.Equal(SampleGguf.TensorA, f.GetTensorBytes("a").ToArray());
        Assert.Equal(SampleGguf.TensorB, f.GetTensorBytes("b").ToArray());
        Assert.Equal(SampleGguf.TensorC, f.GetTensorBytes("c").ToArray());
        Assert.Equal(f.Length, f.Tensors[2].FileOffset + f.Tensors[2].ByteSize);
    }
}
