// The small valid GGUF the hostile-input, truncation and fuzz tests start from: a few KVs of different
// types (strings, a string array, float and int arrays, a bool, a nested array, a float64) and three tensors
// whose data ends exactly on an alignment boundary, so that every truncation removes needed bytes.
// Built twice, byte by byte (RawGguf) and through GgufWriter, and the tests check both agree.
using Duet.Formats.Gguf;

using Duet.Tensors;

namespace Duet.Formats.Tests.Gguf;

internal static class SampleGguf
{
    public static readonly string[] Tokens = ["<s>", "</s>", "a", "é"];
    public static readonly float[] Scores = [0f, 0f, -1.5f, -2f];
    public static readonly int[] TokenTypes = [3, 3, 1, 1];

    /// <summary>Tensor data: a = F32 [4, 2] (32 bytes), b = Q8_0 [32] (34 bytes), c = F16 [16] (32 bytes).</summary>
    public static byte[] TensorA => Pattern(32, 1);
    public static byte[] TensorB => Pattern(34, 2);
    public static byte[] TensorC => Pattern(32, 3);

    public static byte[] Bytes => Build().ToArray();

    public static RawGguf Build()
    {
        var g = new RawGguf().Header(tensorCount: 3, kvCount: 8);
        g.KvString("general.architecture", "llama");
        g.KvUInt32("llama.block_count", 2);
        g.Key("tokenizer.ggml.tokens", 9).U32(8).Len((ulong)Tokens.Length);
        foreach (var t in Tokens)
            g.Str(t);
        g.Key("tokenizer.ggml.scores", 9).U32(6).Len((ulong)Scores.Length);
        foreach (var s in Scores)
            g.F32(s);
        g.Key("tokenizer.ggml.token_type", 9).U32(5).Len((ulong)TokenTypes.Length);
        foreach (var t in TokenTypes)
            g.U32((uint)t);
        g.Key("tokenizer.ggml.add_bos_token", 7).U8(1);
        // [[uint16 1, 2], ["x"], []]: an array of three arrays with different element types.
        g.Key("test.nested", 9).U32(9).Len(3)
            .U32(2).Len(2).U16(1).U16(2)
            .U32(8).Len(1).Str("x")
            .U32(0).Len(0);
        g.Key("test.f64", 12).F64(0.5);
        // Tensor infos: data offsets 0, 32 (34 bytes, padded to 96), 96.
        g.TensorInfo("a", [4, 2], 0, 0);
        g.TensorInfo("b", [32], 8, 32);
        g.TensorInfo("c", [16], 1, 96);
        g.PadTo(32);
        g.Bytes(TensorA).PadTo(32).Bytes(TensorB).PadTo(32).Bytes(TensorC);
        return g;
    }

    /// <summary>The same file through the writer.</summary>
    public static GgufWriter Writer()
    {
        var w = new GgufWriter();
        w.Add("general.architecture", GgufValue.Of("llama"));
        w.Add("llama.block_count", GgufValue.Of(2u));
        w.Add("tokenizer.ggml.tokens", GgufValue.Of(Tokens));
        w.Add("tokenizer.ggml.scores", GgufValue.Of(Scores));
        w.Add("tokenizer.ggml.token_type", GgufValue.Of(TokenTypes));
        w.Add("tokenizer.ggml.add_bos_token", GgufValue.Of(true));
        w.Add("test.nested", GgufValue.Of([GgufValue.Of(new ushort[] { 1, 2 }), GgufValue.Of(new[] { "x" }), GgufValue.Of(Array.Empty<byte>())]));
        w.Add("test.f64", GgufValue.Of(0.5));
        w.AddTensor("a", GgmlType.F32, [4, 2], TensorA);
        w.AddTensor("b", GgmlType.Q8_0, [32], TensorB);
        w.AddTensor("c", GgmlType.F16, [16], TensorC);
        return w;
    }

    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        for (int i = 0; i < b.Length; i++)
            b[i] = (byte)((i * 31) + (seed * 17) + 1);
        return b;
    }
}
