// Dequantization of every GGUF block format Duet reads, transcribed from ggml's block structs
// (ggml-common.h) and reference routines (ggml-quants.c dequantize_row_*). Arithmetic is done in the
// same order as the reference, without fused multiply-adds, so results are bit-identical to it.
// Reference (Dequantize*Reference-style plain loops) and the only implementation: dequantizing is not on
// the hot path; the fast paths are the fused dot products in QuantDot.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Duet.Tensors.Quant;

public static class BlockFormats
{
    public const int QK = 32;
    public const int QK_K = GgmlTypeInfo.QK_K;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ReadOnlySpan<byte> b, int at) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(b[at..]));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Whether <see cref="DequantizeRow"/> handles the type.</summary>
    public static bool CanDequantize(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q4_0
        or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>Dequantizes <c>dst.Length</c> elements (a whole number of blocks) from <paramref name="src"/>.</summary>
    public static void DequantizeRow(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        int bs = GgmlTypeInfo.BlockSize(type), ts = GgmlTypeInfo.TypeSize(type);
        if (n % bs != 0) throw new ArgumentException($"{n} elements is not a whole number of {type} blocks of {bs}");
        if (src.Length < n / bs * ts) throw new ArgumentException($"{src.Length} bytes hold fewer than {n} {type} elements");
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < n; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                return;
            case GgmlType.F16:
                for (int i = 0; i < n; i++) dst[i] = Half(src, 2 * i);
                return;
            case GgmlType.BF16:
                for (int i = 0; i < n; i++) dst[i] = BFloat16(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]));
                return;
        }
        for (int b = 0; b < n / bs; b++)
        {
            var x = src.Slice(b * ts, ts);
            var y = dst.Slice(b * bs, bs);
            switch (type)
            {
                case GgmlType.Q8_0: Q8_0(x, y); break;
                case GgmlType.Q4_0: Q4_0(x, y); break;
                case GgmlType.Q4_1: Q4_1(x, y); break;
                case GgmlType.Q5_0: Q5_0(x, y); break;
                case GgmlType.Q5_1: Q5_1(x, y); break;
                case GgmlType.Q4_K: Q4_K(x, y); break;
                case GgmlType.Q5_K: Q5_K(x, y); break;
                case GgmlType.Q6_K: Q6_K(x, y); break;
                default: throw new NotSupportedException($"dequantizing {type} is not supported");
            }
        }
    }

    // block_q8_0 { ggml_half d; int8_t qs[32]; }          y = d * q
    private static void Q8_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0);
        for (int j = 0; j < QK; j++) y[j] = (sbyte)x[2 + j] * d;
    }

    // block_q4_0 { ggml_half d; uint8_t qs[16]; }         low nibbles are elements 0..15, high 16..31; y = (q - 8) * d
    private static void Q4_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0);
        for (int j = 0; j < QK / 2; j++)
        {
            int q = x[2 + j];
            y[j] = ((q & 0x0F) - 8) * d;
            y[j + QK / 2] = ((q >> 4) - 8) * d;
        }
    }

    // block_q4_1 { ggml_half d; ggml_half m; uint8_t qs[16]; }   y = q * d + m
    private static void Q4_1(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0), m = Half(x, 2);
        for (int j = 0; j < QK / 2; j++)
        {
            int q = x[4 + j];
            y[j] = (q & 0x0F) * d + m;
            y[j + QK / 2] = (q >> 4) * d + m;
        }
    }

    // block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; }   5th bit of element j is bit j of qh; y = (q - 16) * d
    private static void Q5_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0);
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x[2..]);
        for (int j = 0; j < QK / 2; j++)
        {
            int xh0 = (int)(((qh >> j) << 4) & 0x10), xh1 = (int)((qh >> (j + 12)) & 0x10);
            int q = x[6 + j];
            y[j] = (((q & 0x0F) | xh0) - 16) * d;
            y[j + QK / 2] = (((q >> 4) | xh1) - 16) * d;
        }
    }

    // block_q5_1 { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; }   y = q * d + m
    private static void Q5_1(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0), m = Half(x, 2);
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x[4..]);
        for (int j = 0; j < QK / 2; j++)
        {
            int xh0 = (int)(((qh >> j) << 4) & 0x10), xh1 = (int)((qh >> (j + 12)) & 0x10);
            int q = x[8 + j];
            y[j] = ((q & 0x0F) | xh0) * d + m;
            y[j + QK / 2] = ((q >> 4) | xh1) * d + m;
        }
    }

    /// <summary>ggml get_scale_min_k4: the j-th 6-bit scale and min of the 12 packed bytes of Q4_K/Q5_K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScaleMinK4(int j, ReadOnlySpan<byte> q, out int d, out int m)
    {
        if (j < 4) { d = q[j] & 63; m = q[j + 4] & 63; }
        else { d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
    }

    // block_q4_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128]; }
    // 8 sub-blocks of 32: y = d * sc * q - dmin * m
    private static void Q4_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0), min = Half(x, 2);
        var scales = x.Slice(4, 12);
        var q = x.Slice(16, 128);
        int iy = 0, iq = 0, sub = 0;
        for (int j = 0; j < QK_K; j += 64)
        {
            ScaleMinK4(sub, scales, out int sc, out int m);
            float d1 = d * sc, m1 = min * m;
            ScaleMinK4(sub + 1, scales, out sc, out m);
            float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) y[iy++] = d1 * (q[iq + l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) y[iy++] = d2 * (q[iq + l] >> 4) - m2;
            iq += 32; sub += 2;
        }
    }

    // block_q5_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }
    private static void Q5_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0), min = Half(x, 2);
        var scales = x.Slice(4, 12);
        var qh = x.Slice(16, 32);
        var ql = x.Slice(48, 128);
        int iy = 0, iq = 0, sub = 0, u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64)
        {
            ScaleMinK4(sub, scales, out int sc, out int m);
            float d1 = d * sc, m1 = min * m;
            ScaleMinK4(sub + 1, scales, out sc, out m);
            float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) y[iy++] = d1 * ((ql[iq + l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) y[iy++] = d2 * ((ql[iq + l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
            iq += 32; sub += 2; u1 <<= 2; u2 <<= 2;
        }
    }

    // block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }
    // 16 sub-blocks of 16 with int8 scales: y = d * sc * (q - 32), q = 4 low bits from ql, 2 high from qh.
    private static void Q6_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var ql = x[..128];
        var qh = x.Slice(128, 64);
        var sc = x.Slice(192, 16);
        float d = Half(x, 208);
        int iy = 0, il = 0, ih = 0, isc = 0;
        for (int n = 0; n < QK_K; n += 128)
        {
            for (int l = 0; l < 32; l++)
            {
                int s = l / 16;
                int q1 = ((ql[il + l] & 0xF) | (((qh[ih + l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[il + l + 32] & 0xF) | (((qh[ih + l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[il + l] >> 4) | (((qh[ih + l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[il + l + 32] >> 4) | (((qh[ih + l] >> 6) & 3) << 4)) - 32;
                y[iy + l] = d * (sbyte)sc[isc + s] * q1;
                y[iy + l + 32] = d * (sbyte)sc[isc + s + 2] * q2;
                y[iy + l + 64] = d * (sbyte)sc[isc + s + 4] * q3;
                y[iy + l + 96] = d * (sbyte)sc[isc + s + 6] * q4;
            }
            iy += 128; il += 64; ih += 32; isc += 8;
        }
    }
}
