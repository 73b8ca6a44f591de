// Prompt processing with Q8_0 and Q4_0 weights: the same integer arithmetic as ggml's vec_dot (int8 codes
// of the weight times the Q8_0 codes of the activation, summed per block of 32, scaled by d_w·d_x), arranged
// so that a matrix of tokens pays the per-block cost (convert, scale, FMA) once per eight blocks.
//
// Blocks are taken in groups of eight and each group is transposed: in step s (0..7) a 256-bit vector holds,
// in int32 lane j, the codes 4s..4s+3 of block j. Eight vpdpbusd then leave in lane j the whole integer dot
// of block j, and one convert and one FMA with the eight scales d_w[j]·d_x[j] finish the group. vpdpbusd
// multiplies unsigned by signed bytes, so weight codes are made unsigned (Q4_0: the nibble itself, 0..15;
// Q8_0: code + 128) and the offset is taken back exactly in integers: Σ (w + c)·x - c·Σx, with -c·Σx per
// block of each token precomputed as the accumulator's starting value.
//
// Weights are packed per row once per call (a matrix product of up to 32 tokens), activations once per call;
// two weight rows then meet four tokens at a time (Row2x4: each activation load serves both rows).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Quant;

public static unsafe class QuantGemm
{
    /// <summary>True where the grouped kernel runs (AVX-VNNI: vpdpbusd on 256 bits).</summary>
    public static bool Supported => AvxVnni.IsSupported;

    /// <summary>The unsigned offset of the weight codes: 8 for Q4_0, 128 for Q8_0.</summary>
    public static int Offset(GgmlType t) => t == GgmlType.Q4_0 ? 8 : 128;

    /// <summary>
    /// Packs the activation codes of <paramref name="rows"/> rows (<paramref name="blocks"/> blocks each) into
    /// the grouped layout: per row, per group, 8 steps of 32 bytes; and per row and group the 8 starting sums
    /// -offset·Σx. Only whole groups are packed (blocks past them take the plain kernels).
    /// </summary>
    public static void PackActivations(sbyte* codes, int rows, int blocks, int offset, sbyte* packed, int* start)
    {
        int groups = blocks / 8;
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < groups; g++)
            {
                int* dst = (int*)(packed + ((long)r * groups + g) * 256);
                int* st = start + ((long)r * groups + g) * 8;
                for (int j = 0; j < 8; j++)
                {
                    sbyte* blk = codes + (long)r * blocks * 32 + (g * 8 + j) * 32;
                    int sum = 0;
                    for (int i = 0; i < 32; i++) sum += blk[i];
                    st[j] = -offset * sum;
                    for (int s = 0; s < 8; s++) dst[s * 8 + j] = *(int*)(blk + 4 * s);
                }
            }
    }

    /// <summary>Packs one weight row's whole groups (codes made unsigned) and their scales as floats.</summary>
    public static void PackRow(GgmlType type, byte* row, int blocks, byte* packed, float* scales)
    {
        if (Avx512F.IsSupported) PackRowAvx512(type, row, blocks, packed, scales);
        else PackRowScalar(type, row, blocks, packed, scales);
    }

    /// <summary>The same packing with one 32-bit word at a time (the definition; for CPUs without AVX-512).</summary>
    public static void PackRowScalar(GgmlType type, byte* row, int blocks, byte* packed, float* scales)
    {
        int groups = blocks / 8;
        float* half = QuantDot.HalfTable;
        for (int g = 0; g < groups; g++)
        {
            uint* dst = (uint*)(packed + g * 256);
            for (int j = 0; j < 8; j++)
            {
                int b = g * 8 + j;
                if (type == GgmlType.Q4_0)
                {
                    byte* blk = row + b * 18;
                    scales[b] = half[*(ushort*)blk];
                    for (int m = 0; m < 4; m++)
                    {
                        uint v = *(uint*)(blk + 2 + 4 * m); // bytes 4m..4m+3: codes 4m.. (low nibbles) and 16+4m.. (high)
                        dst[m * 8 + j] = v & 0x0F0F0F0Fu;
                        dst[(m + 4) * 8 + j] = (v >> 4) & 0x0F0F0F0Fu;
                    }
                }
                else
                {
                    byte* blk = row + b * 34;
                    scales[b] = half[*(ushort*)blk];
                    for (int s = 0; s < 8; s++) dst[s * 8 + j] = *(uint*)(blk + 2 + 4 * s) ^ 0x80808080u; // code + 128
                }
            }
        }
    }

    // The packing is an 8x8 transpose of 32-bit words per group (word s of block j to step s, lane j), done in
    // registers: blocks two per 512-bit vector, then two rounds of vpermt2d. It ran one word at a time before,
    // a quarter of prompt time with 32-token batches (each weight row is packed once per batch).
    private static void PackRowAvx512(GgmlType type, byte* row, int blocks, byte* packed, float* scales)
    {
        int groups = blocks / 8;
        float* half = QuantDot.HalfTable;
        bool q4 = type == GgmlType.Q4_0;
        int bs = q4 ? 18 : 34;
        // Q8_0, round 1: from [blk0|blk1] and [blk2|blk3] (words 0-7 of each), steps 0-3 (A0) or 4-7 (A1) of blocks 0-3
        // at lane 4s+j; round 2: from (A, B) = blocks 0-3 and 4-7, two steps of all eight blocks at lane 8t+j.
        var q8Lo = Vector512.Create(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
        var q8Hi = Vector512.Create(4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);
        var even = Vector512.Create(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
        var odd = Vector512.Create(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
        // Q4_0: [blk0..blk3] (16 bytes, words 0-3 each) has step s of block j at lane 4j+s (low nibbles; steps 4-7
        // are the high nibbles of the same words); two steps of all eight blocks at lane 8t+j.
        var q4Even = Vector512.Create(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
        var q4Odd = Vector512.Create(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
        var nibble = Vector512.Create(0x0F0F0F0F);
        var flip = Vector512.Create(unchecked((int)0x80808080u));
        for (int g = 0; g < groups; g++)
        {
            byte* blk = row + g * 8 * bs;
            int* dst = (int*)(packed + g * 256);
            for (int j = 0; j < 8; j++) scales[g * 8 + j] = half[*(ushort*)(blk + j * bs)];
            if (q4)
            {
                var lo = Load4x16(blk + 2, bs);
                var hi = Load4x16(blk + 2 + 4 * bs, bs);
                var la = lo & nibble; var lb = hi & nibble;
                var ha = (lo >>> 4) & nibble; var hb = (hi >>> 4) & nibble;
                Avx512F.Store(dst, Avx512F.PermuteVar16x32x2(la, q4Even, lb));
                Avx512F.Store(dst + 16, Avx512F.PermuteVar16x32x2(la, q4Odd, lb));
                Avx512F.Store(dst + 32, Avx512F.PermuteVar16x32x2(ha, q4Even, hb));
                Avx512F.Store(dst + 48, Avx512F.PermuteVar16x32x2(ha, q4Odd, hb));
            }
            else
            {
                var z0 = Load2x32(blk + 2, bs); var z1 = Load2x32(blk + 2 + 2 * bs, bs);
                var z2 = Load2x32(blk + 2 + 4 * bs, bs); var z3 = Load2x32(blk + 2 + 6 * bs, bs);
                var a0 = Avx512F.PermuteVar16x32x2(z0, q8Lo, z1); var a1 = Avx512F.PermuteVar16x32x2(z0, q8Hi, z1);
                var b0 = Avx512F.PermuteVar16x32x2(z2, q8Lo, z3); var b1 = Avx512F.PermuteVar16x32x2(z2, q8Hi, z3);
                Avx512F.Store(dst, Avx512F.PermuteVar16x32x2(a0, even, b0) ^ flip);
                Avx512F.Store(dst + 16, Avx512F.PermuteVar16x32x2(a0, odd, b0) ^ flip);
                Avx512F.Store(dst + 32, Avx512F.PermuteVar16x32x2(a1, even, b1) ^ flip);
                Avx512F.Store(dst + 48, Avx512F.PermuteVar16x32x2(a1, odd, b1) ^ flip);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Load2x32(byte* p, int stride)
        => Avx512F.InsertVector256(Avx.LoadVector256((int*)p).ToVector512Unsafe(), Avx.LoadVector256((int*)(p + stride)), 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Load4x16(byte* p, int stride)
    {
        var ab = Avx2.InsertVector128(Sse2.LoadVector128((int*)p).ToVector256Unsafe(), Sse2.LoadVector128((int*)(p + stride)), 1);
        var cd = Avx2.InsertVector128(Sse2.LoadVector128((int*)(p + 2 * stride)).ToVector256Unsafe(), Sse2.LoadVector128((int*)(p + 3 * stride)), 1);
        return Avx512F.InsertVector256(ab.ToVector512Unsafe(), cd, 1);
    }

    /// <summary>
    /// One packed weight row against four packed activation rows (row k at packedX + k·xStride bytes,
    /// start + k·sStride, xScales + k·dStride): result[k] = Σ over whole groups of d_w·d_x·Σ w·x.
    /// </summary>
    public static void Row4(byte* packedW, float* wScales, sbyte* packedX, int* start, float* xScales, int xStride, int sStride, int dStride, int groups, float* result)
    {
        var f0 = Vector256<float>.Zero; var f1 = Vector256<float>.Zero; var f2 = Vector256<float>.Zero; var f3 = Vector256<float>.Zero;
        sbyte* x0 = packedX, x1 = packedX + xStride, x2 = packedX + 2 * xStride, x3 = packedX + 3 * xStride;
        for (int g = 0; g < groups; g++)
        {
            // Two accumulators per token (even and odd steps): eight dependent vpdpbusd would wait on latency.
            var a0 = Avx.LoadVector256(start + g * 8); var a1 = Avx.LoadVector256(start + sStride + g * 8);
            var a2 = Avx.LoadVector256(start + 2 * sStride + g * 8); var a3 = Avx.LoadVector256(start + 3 * sStride + g * 8);
            var b0 = Vector256<int>.Zero; var b1 = Vector256<int>.Zero; var b2 = Vector256<int>.Zero; var b3 = Vector256<int>.Zero;
            byte* w = packedW + g * 256;
            int o = g * 256;
            for (int s = 0; s < 256; s += 64)
            {
                var we = Avx.LoadVector256(w + s);
                var wo = Avx.LoadVector256(w + s + 32);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, we, Avx.LoadVector256(x0 + o + s));
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, we, Avx.LoadVector256(x1 + o + s));
                a2 = AvxVnni.MultiplyWideningAndAdd(a2, we, Avx.LoadVector256(x2 + o + s));
                a3 = AvxVnni.MultiplyWideningAndAdd(a3, we, Avx.LoadVector256(x3 + o + s));
                b0 = AvxVnni.MultiplyWideningAndAdd(b0, wo, Avx.LoadVector256(x0 + o + s + 32));
                b1 = AvxVnni.MultiplyWideningAndAdd(b1, wo, Avx.LoadVector256(x1 + o + s + 32));
                b2 = AvxVnni.MultiplyWideningAndAdd(b2, wo, Avx.LoadVector256(x2 + o + s + 32));
                b3 = AvxVnni.MultiplyWideningAndAdd(b3, wo, Avx.LoadVector256(x3 + o + s + 32));
            }
            var dw = Avx.LoadVector256(wScales + g * 8);
            f0 = Finish(a0 + b0, dw, xScales + g * 8, f0);
            f1 = Finish(a1 + b1, dw, xScales + dStride + g * 8, f1);
            f2 = Finish(a2 + b2, dw, xScales + 2 * dStride + g * 8, f2);
            f3 = Finish(a3 + b3, dw, xScales + 3 * dStride + g * 8, f3);
        }
        result[0] = Vector256.Sum(f0); result[1] = Vector256.Sum(f1); result[2] = Vector256.Sum(f2); result[3] = Vector256.Sum(f3);
    }

    /// <summary>
    /// Two packed weight rows (the second at packedW + wStride bytes, its scales at wScales + sOff) against four
    /// packed activation rows, as <see cref="Row4"/> twice but each activation load serving both rows.
    /// result[4i + k] is row i, token k.
    /// </summary>
    public static void Row2x4(byte* packedW, int wStride, float* wScales, int sOff, sbyte* packedX, int* start, float* xScales, int xStride, int sStride, int dStride, int groups, float* result)
    {
        var f0 = Vector256<float>.Zero; var f1 = Vector256<float>.Zero; var f2 = Vector256<float>.Zero; var f3 = Vector256<float>.Zero;
        var h0 = Vector256<float>.Zero; var h1 = Vector256<float>.Zero; var h2 = Vector256<float>.Zero; var h3 = Vector256<float>.Zero;
        sbyte* x0 = packedX, x1 = packedX + xStride, x2 = packedX + 2 * xStride, x3 = packedX + 3 * xStride;
        for (int g = 0; g < groups; g++)
        {
            var a0 = Avx.LoadVector256(start + g * 8); var a1 = Avx.LoadVector256(start + sStride + g * 8);
            var a2 = Avx.LoadVector256(start + 2 * sStride + g * 8); var a3 = Avx.LoadVector256(start + 3 * sStride + g * 8);
            var c0 = a0; var c1 = a1; var c2 = a2; var c3 = a3;
            byte* w = packedW + g * 256;
            int o = g * 256;
            for (int s = 0; s < 256; s += 32)
            {
                var wa = Avx.LoadVector256(w + s);
                var wb = Avx.LoadVector256(w + wStride + s);
                var v0 = Avx.LoadVector256(x0 + o + s);
                var v1 = Avx.LoadVector256(x1 + o + s);
                var v2 = Avx.LoadVector256(x2 + o + s);
                var v3 = Avx.LoadVector256(x3 + o + s);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, wa, v0);
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, wa, v1);
                a2 = AvxVnni.MultiplyWideningAndAdd(a2, wa, v2);
                a3 = AvxVnni.MultiplyWideningAndAdd(a3, wa, v3);
                c0 = AvxVnni.MultiplyWideningAndAdd(c0, wb, v0);
                c1 = AvxVnni.MultiplyWideningAndAdd(c1, wb, v1);
                c2 = AvxVnni.MultiplyWideningAndAdd(c2, wb, v2);
                c3 = AvxVnni.MultiplyWideningAndAdd(c3, wb, v3);
            }
            var dw = Avx.LoadVector256(wScales + g * 8);
            var dv = Avx.LoadVector256(wScales + sOff + g * 8);
            var d0 = Avx.LoadVector256(xScales + g * 8); var d1 = Avx.LoadVector256(xScales + dStride + g * 8);
            var d2 = Avx.LoadVector256(xScales + 2 * dStride + g * 8); var d3 = Avx.LoadVector256(xScales + 3 * dStride + g * 8);
            f0 = Fma.MultiplyAdd(dw * d0, Avx.ConvertToVector256Single(a0), f0);
            f1 = Fma.MultiplyAdd(dw * d1, Avx.ConvertToVector256Single(a1), f1);
            f2 = Fma.MultiplyAdd(dw * d2, Avx.ConvertToVector256Single(a2), f2);
            f3 = Fma.MultiplyAdd(dw * d3, Avx.ConvertToVector256Single(a3), f3);
            h0 = Fma.MultiplyAdd(dv * d0, Avx.ConvertToVector256Single(c0), h0);
            h1 = Fma.MultiplyAdd(dv * d1, Avx.ConvertToVector256Single(c1), h1);
            h2 = Fma.MultiplyAdd(dv * d2, Avx.ConvertToVector256Single(c2), h2);
            h3 = Fma.MultiplyAdd(dv * d3, Avx.ConvertToVector256Single(c3), h3);
        }
        result[0] = Vector256.Sum(f0); result[1] = Vector256.Sum(f1); result[2] = Vector256.Sum(f2); result[3] = Vector256.Sum(f3);
        result[4] = Vector256.Sum(h0); result[5] = Vector256.Sum(h1); result[6] = Vector256.Sum(h2); result[7] = Vector256.Sum(h3);
    }

    /// <summary>One packed weight row against one packed activation row.</summary>
    public static float Row1(byte* packedW, float* wScales, sbyte* packedX, int* start, float* xScales, int groups)
    {
        var f = Vector256<float>.Zero;
        for (int g = 0; g < groups; g++)
        {
            var a = Avx.LoadVector256(start + g * 8);
            var b = Vector256<int>.Zero;
            byte* w = packedW + g * 256;
            sbyte* x = packedX + g * 256;
            for (int s = 0; s < 256; s += 64)
            {
                a = AvxVnni.MultiplyWideningAndAdd(a, Avx.LoadVector256(w + s), Avx.LoadVector256(x + s));
                b = AvxVnni.MultiplyWideningAndAdd(b, Avx.LoadVector256(w + s + 32), Avx.LoadVector256(x + s + 32));
            }
            f = Finish(a + b, Avx.LoadVector256(wScales + g * 8), xScales + g * 8, f);
        }
        return Vector256.Sum(f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Finish(Vector256<int> sums, Vector256<float> dw, float* dx, Vector256<float> acc)
        => Fma.MultiplyAdd(dw * Avx.LoadVector256(dx), Avx.ConvertToVector256Single(sums), acc);
}
