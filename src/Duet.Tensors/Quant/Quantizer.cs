// Quantizers, transcribed from ggml's reference routines (quantize_row_*_ref), including their rounding,
// so that Duet's files hold what llama.cpp's own quantizer would write.
using System.Buffers.Binary;

namespace Duet.Tensors.Quant;

public static class Quantizer
{
    public static bool CanQuantize(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q4_0;

    /// <summary>Quantizes a row (a whole number of blocks) into <paramref name="dst"/> (its exact byte size).</summary>
    public static void QuantizeRow(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        long need = GgmlTypeInfo.RowSize(type, src.Length);
        if (dst.Length != need) throw new ArgumentException($"{type} row of {src.Length} elements takes {need} bytes, not {dst.Length}");
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], src[i]);
                return;
            case GgmlType.F16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], BitConverter.HalfToUInt16Bits((Half)src[i]));
                return;
            case GgmlType.BF16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], ToBFloat16(src[i]));
                return;
            case GgmlType.Q8_0:
                for (int b = 0; b < src.Length / 32; b++) Q8_0(src.Slice(b * 32, 32), dst.Slice(b * 34, 34));
                return;
            case GgmlType.Q4_0:
                for (int b = 0; b < src.Length / 32; b++) Q4_0(src.Slice(b * 32, 32), dst.Slice(b * 18, 18));
                return;
            default:
                throw new NotSupportedException($"quantizing to {type} is not supported yet");
        }
    }

    /// <summary>ggml_compute_fp32_to_bf16: round to nearest even; NaN stays a quiet NaN.</summary>
    public static ushort ToBFloat16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    private static void WriteHalf(Span<byte> dst, float v) => BinaryPrimitives.WriteUInt16LittleEndian(dst, BitConverter.HalfToUInt16Bits((Half)v));

    // quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d)
    private static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    // quantize_row_q4_0_ref: d = max / -8 where max is the value of largest magnitude (sign kept),
    // q = min(15, (int8)(x / d + 8.5f)), two per byte: element j low nibble, j + 16 high nibble.
    private static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
            if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
        float d = max / -8f, id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, d);
        for (int j = 0; j < 16; j++)
        {
            int x0 = Math.Min(15, (int)(sbyte)(x[j] * id + 8.5f));
            int x1 = Math.Min(15, (int)(sbyte)(x[j + 16] * id + 8.5f));
            y[2 + j] = (byte)(x0 | (x1 << 4));
        }
    }
}
