// Quantizers, transcribed from ggml's reference routines (quantize_row_*_ref, ggml-quants.c), including their
// rounding, so that Duet's files hold what llama.cpp's own quantizer would write. Every float operation is
// a plain float32 operation in the C code's order (no fused multiply-add), fp16 fields are written with
// round-to-nearest-even ((Half)float, as GGML_FP32_TO_FP16), and ggml's nearest_int magic-number rounding
// is reproduced bit for bit, so the bytes equal the reference's.
using System.Buffers.Binary;

namespace Duet.Tensors.Quant;

public static class Quantizer
{
    /// <summary>ggml's GROUP_MAX_EPS: a group whose largest magnitude is below this quantizes to zero.</summary>
    private const float GroupMaxEps = 1e-15f;

    private const int QK_K = GgmlTypeInfo.QK_K;

    private delegate void BlockQuantizer(ReadOnlySpan<float> x, Span<byte> y);

    public static bool CanQuantize(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q4_0
        or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

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
            case GgmlType.Q4_1: Blocks(src, dst, 32, 20, Q4_1); return;
            case GgmlType.Q5_0: Blocks(src, dst, 32, 22, Q5_0); return;
            case GgmlType.Q5_1: Blocks(src, dst, 32, 24, Q5_1); return;
            case GgmlType.Q4_K: Blocks(src, dst, QK_K, 144, Q4_K); return;
            case GgmlType.Q5_K: Blocks(src, dst, QK_K, 176, Q5_K); return;
            case GgmlType.Q6_K: Blocks(src, dst, QK_K, 210, Q6_K); return;
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

    private static void Blocks(ReadOnlySpan<float> src, Span<byte> dst, int blockElements, int blockBytes, BlockQuantizer quantize)
    {
        for (int b = 0; b < src.Length / blockElements; b++)
            quantize(src.Slice(b * blockElements, blockElements), dst.Slice(b * blockBytes, blockBytes));
    }

    private static void WriteHalf(Span<byte> dst, float v) => BinaryPrimitives.WriteUInt16LittleEndian(dst, BitConverter.HalfToUInt16Bits((Half)v));

    // GGML_FP16_TO_FP32 of a field just written (exact).
    private static float ReadHalf(ReadOnlySpan<byte> src) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(src));

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

    // quantize_row_q4_1_ref, block_q4_1 { half d; half m; u8 qs[16]; }: min/max scan from FLT_MAX / -FLT_MAX,
    // d = (max - min) / 15, q = min(15, (int8)((x - min) * id + 0.5f)); element j low nibble, j + 16 high.
    private static void Q4_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        var (min, max) = MinMax(x);
        float d = (max - min) / 15, id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, d);
        WriteHalf(y[2..], min);
        for (int j = 0; j < 16; j++)
        {
            float x0 = (x[j] - min) * id, x1 = (x[j + 16] - min) * id;
            byte xi0 = (byte)Math.Min(15, (int)(sbyte)(x0 + 0.5f));
            byte xi1 = (byte)Math.Min(15, (int)(sbyte)(x1 + 0.5f));
            y[4 + j] = (byte)(xi0 | (xi1 << 4));
        }
    }

    // quantize_row_q5_0_ref, block_q5_0 { half d; u8 qh[4]; u8 qs[16]; }: d = max / -16 (max = the value of
    // largest magnitude, sign kept), q = min(31, (int8)(x * id + 16.5f)); the 5th bit of element j is bit j of qh.
    private static void Q5_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
            if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
        float d = max / -16f, id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, d);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            byte xi0 = (byte)Math.Min(31, (int)(sbyte)(x[j] * id + 16.5f));
            byte xi1 = (byte)Math.Min(31, (int)(sbyte)(x[j + 16] * id + 16.5f));
            qh |= Pack5(xi0, xi1, j, y.Slice(6, 16));
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y[2..], qh);
    }

    // quantize_row_q5_1_ref, block_q5_1 { half d; half m; u8 qh[4]; u8 qs[16]; }: as Q4_1 with d = (max - min) / 31
    // and q = (uint8)((x - min) * id + 0.5f) (no clamp); 5th bits in qh as Q5_0.
    private static void Q5_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        var (min, max) = MinMax(x);
        float d = (max - min) / 31, id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, d);
        WriteHalf(y[2..], min);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            float x0 = (x[j] - min) * id, x1 = (x[j + 16] - min) * id;
            qh |= Pack5((byte)(int)(x0 + 0.5f), (byte)(int)(x1 + 0.5f), j, y.Slice(8, 16));
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y[4..], qh);
    }

    // The min / max scan of quantize_row_q4_1_ref and quantize_row_q5_1_ref.
    private static (float Min, float Max) MinMax(ReadOnlySpan<float> x)
    {
        float min = float.MaxValue, max = -float.MaxValue;
        foreach (float v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        return (min, max);
    }

    // Q5_0 / Q5_1 packing: low nibbles of elements j and j + 16 into qs[j]; returns their 5th bits at bits j, j + 16 of qh.
    private static uint Pack5(byte xi0, byte xi1, int j, Span<byte> qs)
    {
        qs[j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        return (((xi0 & 0x10u) >> 4) << j) | (((xi1 & 0x10u) >> 4) << (j + 16));
    }

    // nearest_int (ggml-quants.c): adding 1.5 * 2^23 leaves round-half-even(fval) in the low mantissa bits
    // (for |fval| < 2^22); the bits are taken as they are whatever fval is, as in C.
    private static int NearestInt(float fval)
    {
        float val = fval + 12582912f;
        int i = BitConverter.SingleToInt32Bits(val);
        return (i & 0x007fffff) - 0x00400000;
    }

    // quantize_row_q4_K_ref, block_q4_K { half d; half dmin; u8 scales[12]; u8 qs[128]; }: 8 sub-blocks of 32,
    // 4-bit quants q with x ~ d*sc*q - dmin*m; chunk c of 64 elements: qs[32c + l] = q[64c + l] | q[64c + 32 + l] << 4.
    private static void Q4_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[QK_K];
        QuantizeK4(x, y, L, 15, -1f, 0.1f, 20);
        var qs = y.Slice(16, 128);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) qs[32 * c + l] = (byte)(L[64 * c + l] | (L[64 * c + l + 32] << 4));
    }

    // quantize_row_q5_K_ref, block_q5_K { half d; half dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }: as Q4_K with
    // 5-bit quants; the 5th bit of element 64c + l goes to bit 2c of qh[l], that of 64c + 32 + l to bit 2c + 1.
    private static void Q5_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[QK_K];
        QuantizeK4(x, y, L, 31, -0.5f, 0.1f, 15);
        var qh = y.Slice(16, 32);
        var ql = y.Slice(48, 128);
        qh.Clear();
        for (int c = 0; c < 4; c++)
        {
            for (int j = 0; j < 32; j++)
            {
                int l1 = L[64 * c + j], l2 = L[64 * c + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= (byte)(1 << (2 * c)); }
                if (l2 > 15) { l2 -= 16; qh[j] |= (byte)(2 << (2 * c)); }
                ql[32 * c + j] = (byte)(l1 | (l2 << 4));
            }
        }
    }

    // The shared part of quantize_row_q4_K_ref / quantize_row_q5_K_ref: per sub-block of 32, weights
    // av_x + |x| (av_x = sqrtf(sum x^2 / 32)) and make_qkx2_quants; then the 6-bit scales and mins are
    // quantized against their maxima, packed into y[4..16], d and dmin written to y[0..4], and the quants
    // recomputed with the stored scales into L (0..nmax) (sub-blocks whose scale is zero keep the first ones).
    private static void QuantizeK4(ReadOnlySpan<float> x, Span<byte> y, Span<byte> L, int nmax, float rmin, float rdelta, int nstep)
    {
        Span<float> scales = stackalloc float[8], mins = stackalloc float[8], weights = stackalloc float[32];
        Span<byte> laux = stackalloc byte[32];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            var xs = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(nmax, xs, weights, L.Slice(32 * j, 32), laux, out mins[j], rmin, rdelta, nstep);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        PackScalesMinsK4(scales, mins, maxScale, maxMin, y.Slice(4, 12));
        WriteHalf(y, maxScale / 63f);
        WriteHalf(y[2..], maxMin / 63f);
        RequantizeK4(x, y, L, nmax);
    }

    // quantize_row_q4_K_ref's scale packing (the inverse of get_scale_min_k4): ls = min(63, (u8)nearest_int(63/max_scale
    // * scale)), lm likewise; sub-blocks 0..3 take scales[j] and scales[j + 4] whole, sub-blocks 4..7 their low
    // nibbles in scales[j + 4] and their top two bits in bits 6..7 of scales[j - 4] (ls) and scales[j] (lm).
    private static void PackScalesMinsK4(ReadOnlySpan<float> scales, ReadOnlySpan<float> mins, float maxScale, float maxMin, Span<byte> packed)
    {
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < 8; j++)
        {
            byte ls = Math.Min((byte)63, (byte)NearestInt(invScale * scales[j]));
            byte lm = Math.Min((byte)63, (byte)NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                packed[j] = ls;
                packed[j + 4] = lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }
    }

    // get_scale_min_k4 (ggml-quants.c): the 6-bit scale and min of sub-block j from the 12 packed bytes.
    private static (int Scale, int Min) GetScaleMinK4(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    // The last pass of quantize_row_q4_K_ref / q5_K_ref: with d = fp16(d) * sc and dm = fp16(dmin) * m,
    // q = clamp(nearest_int((x + dm) / d), 0, nmax); a sub-block with d == 0 is skipped.
    private static void RequantizeK4(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, Span<byte> L, int nmax)
    {
        float dAll = ReadHalf(y), dminAll = ReadHalf(y[2..]);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = GetScaleMinK4(j, y.Slice(4, 12));
            float d = dAll * sc;
            if (d == 0) continue;
            float dm = dminAll * m;
            for (int ii = 0; ii < 32; ii++)
            {
                int l = NearestInt((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }

    // make_qkx2_quants (ggml-quants.c), with use_mad = false (as in every caller here): affine quants
    // L in 0..nmax with x ~ scale * L + min, min <= 0; starts from the min/max grid, then tries nstep + 1
    // grids (rmin + rdelta * is + nmax) / (max - min), keeping the weighted least-squares fit with the
    // smallest weighted squared error. Returns scale; theMin = -min.
    private static float MakeQkx2Quants(int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<byte> L, Span<byte> laux,
        out float theMin, float rmin, float rdelta, int nstep)
    {
        float min = x[0], max = x[0], sumW = w[0], sumX = sumW * x[0];
        for (int i = 1; i < x.Length; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            sumW += w[i];
            sumX += w[i] * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L.Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        AffineLevels(x, iscale, min, nmax, L);
        float bestMad = WeightedSquaredError(x, w, L, scale, min);
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            AffineLevels(x, iscale, min, nmax, laux);
            if (!LeastSquaresFit(x, w, laux, sumW, sumX, out float thisScale, out float thisMin)) continue;
            float mad = WeightedSquaredError(x, w, laux, thisScale, thisMin);
            if (mad < bestMad)
            {
                laux.CopyTo(L);
                bestMad = mad;
                scale = thisScale;
                min = thisMin;
            }
        }
        theMin = -min;
        return scale;
    }

    // make_qkx2_quants: L[i] = clamp(nearest_int(iscale * (x[i] - min)), 0, nmax).
    private static void AffineLevels(ReadOnlySpan<float> x, float iscale, float min, int nmax, Span<byte> L)
    {
        for (int i = 0; i < x.Length; i++) L[i] = (byte)Math.Max(0, Math.Min(nmax, NearestInt(iscale * (x[i] - min))));
    }

    // make_qkx2_quants: sum of w * (scale * L + min - x)^2, accumulated in order.
    private static float WeightedSquaredError(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<byte> L, float scale, float min)
    {
        float err = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float diff = scale * L[i] + min - x[i];
            diff = diff * diff;
            err += w[i] * diff;
        }
        return err;
    }

    // make_qkx2_quants: the weighted least-squares scale and min for fixed levels (false when D <= 0);
    // a positive min is replaced by 0 with scale = sum_xl / sum_l2.
    private static bool LeastSquaresFit(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<byte> L, float sumW, float sumX,
        out float scale, out float min)
    {
        float sumL = 0, sumL2 = 0, sumXL = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = L[i];
            sumL += w[i] * l;
            sumL2 += w[i] * l * l;
            sumXL += w[i] * l * x[i];
        }
        float D = sumW * sumL2 - sumL * sumL;
        scale = min = 0;
        if (!(D > 0)) return false;
        scale = (sumW * sumXL - sumX * sumL) / D;
        min = (sumL2 * sumX - sumL * sumXL) / D;
        if (min > 0)
        {
            min = 0;
            scale = sumXL / sumL2;
        }
        return true;
    }

    // quantize_row_q6_K_ref, block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; half d; }: 16 sub-blocks of 16
    // through make_qx_quants(nmax 32, rmse_type 1); the sub-block scales become int8 against the one of largest
    // magnitude (iscale = -128 / max_scale, d = 1 / iscale), and the quants are recomputed with them.
    // A block whose scales are all below GROUP_MAX_EPS is all zero bytes.
    private static void Q6_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[QK_K];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++)
        {
            float scale = MakeQxQuants(32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16));
            scales[ib] = scale;
            float absScale = MathF.Abs(scale);
            if (absScale > maxAbsScale) { maxAbsScale = absScale; maxScale = scale; }
        }
        if (maxAbsScale < GroupMaxEps)
        {
            y.Clear();                                            // memset 0, then d = fp16(0.f) = 0
            return;
        }
        float iscale = -128f / maxScale;
        WriteHalf(y[208..], 1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[192 + ib] = (byte)Math.Min(127, NearestInt(iscale * scales[ib]));   // int8 store wraps
        RequantizeQ6_K(x, y, L);
        PackQ6_K(L, y);
    }

    // quantize_row_q6_K_ref: with d = fp16(d) * scales[j], q = clamp(nearest_int(x / d), -32, 31) + 32; d == 0 skips.
    private static void RequantizeQ6_K(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, Span<byte> L)
    {
        float dAll = ReadHalf(y[208..]);
        for (int j = 0; j < 16; j++)
        {
            float d = dAll * (sbyte)y[192 + j];
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ii++)
            {
                int l = NearestInt(x[16 * j + ii] / d);
                L[16 * j + ii] = (byte)(Math.Max(-32, Math.Min(31, l)) + 32);
            }
        }
    }

    // quantize_row_q6_K_ref packing: per half of 128, ql[l] = q[l] | q[l + 64] << 4, ql[l + 32] = q[l + 32] | q[l + 96] << 4
    // (low nibbles), qh[l] holds the top two bits of q[l], q[l + 32], q[l + 64], q[l + 96] at bits 0, 2, 4, 6.
    private static void PackQ6_K(ReadOnlySpan<byte> L, Span<byte> y)
    {
        for (int h = 0; h < 2; h++)
        {
            var q = L.Slice(128 * h, 128);
            var ql = y.Slice(64 * h, 64);
            var qh = y.Slice(128 + 32 * h, 32);
            for (int l = 0; l < 32; l++)
            {
                ql[l] = (byte)((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
                ql[l + 32] = (byte)((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
                qh[l] = (byte)((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
            }
        }
    }

    // make_qx_quants (ggml-quants.c) with rmse_type = 1 and no importance weights (w = x * x): symmetric
    // quants L in 0..2*nmax-1 (stored l + nmax), iscale = -nmax / max (max = the value of largest magnitude),
    // then 18 more grids -(nmax + 0.1f * is) / max, keeping the one that maximizes sumlx^2 / suml2.
    // Returns the scale (0 for a group below GROUP_MAX_EPS, whose L are all 0).
    private static float MakeQxQuants(int nmax, ReadOnlySpan<float> x, Span<byte> L)
    {
        float max = 0, amax = 0;
        foreach (float v in x)
        {
            float ax = MathF.Abs(v);
            if (ax > amax) { amax = ax; max = v; }
        }
        if (amax < GroupMaxEps)
        {
            L.Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        var (sumlx, suml2) = SymmetricSums(x, iscale, nmax, L);
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            (sumlx, suml2) = SymmetricSums(x, iscale, nmax, []);
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                SymmetricSums(x, iscale, nmax, L);
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    // make_qx_quants: l = clamp(nearest_int(iscale * x), -nmax, nmax - 1); sumlx += w*x*l, suml2 += w*l*l with
    // w = x * x; stores l + nmax into L unless L is empty.
    private static (float SumLx, float SumL2) SymmetricSums(ReadOnlySpan<float> x, float iscale, int nmax, Span<byte> L)
    {
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i])));
            if (!L.IsEmpty) L[i] = (byte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        return (sumlx, suml2);
    }
}
