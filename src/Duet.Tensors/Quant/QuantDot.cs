// Dot products of quantized weight rows with an activation vector quantized to Q8_0 blocks, as ggml does
// for Q8_0 and Q4_0 weights (ggml_vec_dot_q8_0_q8_0, ggml_vec_dot_q4_0_q8_0): per block of 32, an integer
// dot of the int8 codes, scaled by d_w * d_x. Quantizing the activations like ggml (scale stored as fp16,
// codes rounded to nearest even by its SIMD path) keeps Duet's greedy tokens equal to llama.cpp's.
// One loop serves both weight formats through a struct type parameter (IWeightBlocks: the block size and
// how to get a block's 32 int8 codes), so the JIT compiles a specialized copy of each.
// Paths (chosen by Kernels.CpuProfile): AVX-VNNI or AVX2 (four accumulators), AVX-512 without VNNI (two blocks per
// vector), portable scalar.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Quant;

public static unsafe class QuantDot
{
    // fp16 -> fp32 for every bit pattern (256 KB, stays in L2), as ggml's table_f32_f16: a load instead of a
    // software conversion per block. Loops read it through a local copy of the pointer.
    private static readonly float* s_half = BuildHalfTable();

    /// <summary>The fp16 -> fp32 table, shared with <see cref="KQuantDot"/>.</summary>
    internal static float* HalfTable => s_half;

    private static float* BuildHalfTable()
    {
        var t = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(65536 * 4, 64); // lives as long as the process
        for (int i = 0; i < 65536; i++) t[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return t;
    }

    /// <summary>Eight int32 sums of four w·x products each: how a 256-bit kernel multiplies int8 codes.</summary>
    private interface IDotI8
    {
        static abstract Vector256<int> Dot(Vector256<sbyte> w, Vector256<sbyte> x);
    }

    /// <summary>One vpdpbusd (|w| unsigned times x with w's sign, no 16-bit saturation): CpuProfile.AvxVnni.</summary>
    private struct VnniDotI8 : IDotI8
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<sbyte> w, Vector256<sbyte> x) => AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(w), Avx2.Sign(x, w));
    }

    /// <summary>vpmaddubsw then vpmaddwd, as ggml does without VNNI.</summary>
    private struct MaddDotI8 : IDotI8
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<sbyte> w, Vector256<sbyte> x) =>
            Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(x, w)), Vector256.Create((short)1));
    }

    /// <summary>Quantizes x (a multiple of 32 long) to Q8_0: codes and per-block scales (already rounded through fp16).</summary>
    public static void QuantizeActivations(ReadOnlySpan<float> x, Span<sbyte> codes, Span<float> scales)
    {
        int blocks = x.Length / 32;
        if (Kernels.CpuProfile.Current.Avx2 && codes.Length >= blocks * 32)
        {
            fixed (float* px = x)
            fixed (sbyte* pq = codes)
                for (int b = 0; b < blocks; b++) scales[b] = QuantizeBlockAvx(px + b * 32, pq + b * 32);
            return;
        }
        for (int b = 0; b < blocks; b++)
        {
            var v = x.Slice(b * 32, 32);
            float amax = 0;
            foreach (float f in v) amax = MathF.Max(amax, MathF.Abs(f));
            float d = amax / 127f, id = amax != 0 ? 127f / amax : 0f;
            scales[b] = (float)(Half)d;
            for (int j = 0; j < 32; j++) codes[b * 32 + j] = (sbyte)MathF.Round(v[j] * id, MidpointRounding.ToEven);
        }
    }

    // One block of 32 in registers: |x| max, x * 127/amax rounded to nearest even by cvtps2dq (the default
    // MXCSR mode, as ggml's _mm256_round_ps(_MM_ROUND_NEAREST)), narrowed to int8. Same codes as the scalar path.
    private static float QuantizeBlockAvx(float* x, sbyte* q)
    {
        var v0 = Avx.LoadVector256(x); var v1 = Avx.LoadVector256(x + 8); var v2 = Avx.LoadVector256(x + 16); var v3 = Avx.LoadVector256(x + 24);
        var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
        var m128 = Vector128.Max(m.GetLower(), m.GetUpper());
        m128 = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(2, 3, 0, 1)));
        m128 = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(1, 0, 3, 2)));
        float amax = m128.ToScalar();
        float d = amax / 127f, id = amax != 0 ? 127f / amax : 0f;
        var vid = Vector256.Create(id);
        var i0 = Avx.ConvertToVector256Int32(v0 * vid); var i1 = Avx.ConvertToVector256Int32(v1 * vid);
        var i2 = Avx.ConvertToVector256Int32(v2 * vid); var i3 = Avx.ConvertToVector256Int32(v3 * vid);
        Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q);
        return (float)(Half)d;
    }

    /// <summary>A weight block format that dots with Q8_0 activations: block size and the block's 32 int8 codes.</summary>
    private interface IWeightBlocks
    {
        static abstract int BlockBytes { get; }
        static abstract Vector256<sbyte> Codes(byte* blk);
        static abstract int ScalarDot(byte* blk, sbyte* x);
    }

    // block_q8_0 { ggml_half d; int8_t qs[32]; }
    private struct Q8Blocks : IWeightBlocks
    {
        public static int BlockBytes => 34;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Codes(byte* blk) => Avx.LoadVector256((sbyte*)(blk + 2));
        public static int ScalarDot(byte* blk, sbyte* x)
        {
            int s = 0;
            for (int j = 0; j < 32; j++) s += (sbyte)blk[2 + j] * x[j];
            return s;
        }
    }

    // block_q4_0 { ggml_half d; uint8_t qs[16]; }: code j is the low nibble of byte j, code j + 16 the high one, minus 8.
    private struct Q4Blocks : IWeightBlocks
    {
        public static int BlockBytes => 18;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Codes(byte* blk) => Avx2.Subtract(Nibbles(blk + 2), Vector256.Create((sbyte)8));
        public static int ScalarDot(byte* blk, sbyte* x)
        {
            int s = 0;
            for (int j = 0; j < 16; j++) s += ((blk[2 + j] & 0x0F) - 8) * x[j] + ((blk[2 + j] >> 4) - 8) * x[j + 16];
            return s;
        }
    }

    /// <summary>Σ over blocks of d_w·d_x·Σ w_q·x_q for a Q8_0 row (34-byte blocks).</summary>
    public static float DotQ8_0(byte* row, sbyte* xq, float* xd, int blocks) => Dot<Q8Blocks>(row, xq, xd, blocks);

    /// <summary>Σ over blocks of d_w·d_x·Σ (w_q - 8)·x_q for a Q4_0 row (18-byte blocks).</summary>
    public static float DotQ4_0(byte* row, sbyte* xq, float* xd, int blocks) => Dot<Q4Blocks>(row, xq, xd, blocks);

    // Paths by CpuProfile: AVX-512 without AVX-VNNI (two blocks per vector), AVX2 (with vpdpbusd where AVX-VNNI is
    // on, which beats the 512-bit pairs there), portable.
    private static float Dot<T>(byte* row, sbyte* xq, float* xd, int blocks) where T : struct, IWeightBlocks
    {
        var cpu = Kernels.CpuProfile.Current;
        if (cpu.Avx512 && !cpu.AvxVnni && blocks >= 2) return DotAvx512<T>(row, xq, xd, blocks);
        if (cpu.AvxVnni) return DotAvx2<T, VnniDotI8>(row, xq, xd, blocks);
        if (cpu.Avx2) return DotAvx2<T, MaddDotI8>(row, xq, xd, blocks);
        return DotPortable<T>(row, xq, xd, blocks);
    }

    private static float DotAvx512<T>(byte* row, sbyte* xq, float* xd, int blocks) where T : struct, IWeightBlocks
    {
        int bs = T.BlockBytes;
        float* half = s_half; // through a local: the JIT reloads a static field in the loop (slower, see bench/README.md#kernel-choices)
        {
            var acc = Vector512<float>.Zero;
            int b = 0;
            for (; b + 1 < blocks; b += 2)
            {
                byte* blk = row + b * bs;
                var w = Vector512.Create(T.Codes(blk), T.Codes(blk + bs));
                acc = Pair512(w, Avx512BW.LoadVector512(xq + b * 32), half[*(ushort*)blk] * xd[b], half[*(ushort*)(blk + bs)] * xd[b + 1], acc);
            }
            float total = Vector512.Sum(acc);
            if (b < blocks) total += DotPortable<T>(row + b * bs, xq + b * 32, xd + b, 1);
            return total;
        }
    }

    private static float DotAvx2<T, TDot>(byte* row, sbyte* xq, float* xd, int blocks) where T : struct, IWeightBlocks where TDot : struct, IDotI8
    {
        int bs = T.BlockBytes;
        float* half = s_half;
        {
            // Four blocks per iteration into four accumulators: the FMA chain (4 cycles) no longer bounds the loop.
            var a0 = Vector256<float>.Zero; var a1 = Vector256<float>.Zero; var a2 = Vector256<float>.Zero; var a3 = Vector256<float>.Zero;
            int b = 0;
            for (; b + 3 < blocks; b += 4)
            {
                byte* blk = row + b * bs;
                Sse.Prefetch0(blk + 640); // about 20 to 35 blocks ahead: rows stream from DRAM in decode
                a0 = Block<TDot>(T.Codes(blk), xq + b * 32, half[*(ushort*)blk] * xd[b], a0);
                a1 = Block<TDot>(T.Codes(blk + bs), xq + b * 32 + 32, half[*(ushort*)(blk + bs)] * xd[b + 1], a1);
                a2 = Block<TDot>(T.Codes(blk + 2 * bs), xq + b * 32 + 64, half[*(ushort*)(blk + 2 * bs)] * xd[b + 2], a2);
                a3 = Block<TDot>(T.Codes(blk + 3 * bs), xq + b * 32 + 96, half[*(ushort*)(blk + 3 * bs)] * xd[b + 3], a3);
            }
            for (; b < blocks; b++) a0 = Block<TDot>(T.Codes(row + b * bs), xq + b * 32, half[*(ushort*)(row + b * bs)] * xd[b], a0);
            return Vector256.Sum(Avx.Add(Avx.Add(a0, a1), Avx.Add(a2, a3)));
        }
    }

    /// <summary>True when the 512-bit decode kernels (<see cref="DotQ8_0Pairs"/>, <see cref="DotQ4_0Quads"/>) run here.</summary>
    public static bool HasPairKernels => Kernels.CpuProfile.Current.Avx512;

    /// <summary>
    /// A Q8_0 row against the pair layout of <see cref="Q8Activations"/>: two blocks per 512-bit vector,
    /// |w| times x with w's sign (vpmaddubsw, vpmaddwd), one convert and one FMA per pair with the scales
    /// [dA x8, dB x8]. An odd last block takes the 256-bit path.
    /// </summary>
    public static float DotQ8_0Pairs(byte* row, sbyte* xq, float* xd, float* pairScales, int blocks)
    {
        int even = blocks & ~1;
        float total = Vector512.Sum(Q8Pairs(row, xq, pairScales, even));
        if (even < blocks) total += Dot<Q8Blocks>(row + even * 34, xq + even * 32, xd + even, 1);
        return total;
    }

    // Decode streams every weight row from DRAM once per token: a software prefetch of both lines 4 KB ahead
    // keeps more loads in flight than the out-of-order window does alone (the distances tried and the bandwidth
    // each reached: bench/README.md#kernel-choices).
    private const int PD = 4096;

    // The loop alone, with no call inside, so the JIT keeps the accumulators in registers.
    private static Vector512<float> Q8Pairs(byte* row, sbyte* xq, float* pairScales, int blocks)
    {
        float* half = s_half;
        var ones = Vector512.Create((short)1);
        var acc0 = Vector512<float>.Zero; var acc1 = Vector512<float>.Zero;
        int b = 0;
        for (; b + 3 < blocks; b += 4)
        {
            Sse.Prefetch0(row + b * 34 + PD);
            Sse.Prefetch0(row + b * 34 + PD + 64);
            acc0 = Q8Pair(row + b * 34, xq + b * 32, pairScales + b * 8, half, ones, acc0);
            acc1 = Q8Pair(row + (b + 2) * 34, xq + (b + 2) * 32, pairScales + (b + 2) * 8, half, ones, acc1);
        }
        if (b < blocks) acc0 = Q8Pair(row + b * 34, xq + b * 32, pairScales + b * 8, half, ones, acc0);
        return acc0 + acc1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q8Pair(byte* blk, sbyte* x, float* ps, float* half, Vector512<short> ones, Vector512<float> acc)
    {
        var w = Avx512F.InsertVector256(Avx.LoadVector256((sbyte*)(blk + 2)).ToVector512Unsafe(), Avx.LoadVector256((sbyte*)(blk + 36)), 1);
        var xv = Avx512BW.LoadVector512(x);
        var sx = Vector512.ConditionalSelect(Vector512.LessThan(w, Vector512<sbyte>.Zero), -xv, xv);
        var sumi = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(w), sx), ones);
        var d = Avx512F.InsertVector256(Vector256.Create(half[*(ushort*)blk]).ToVector512Unsafe(), Vector256.Create(half[*(ushort*)(blk + 34)]), 1);
        return Avx512F.FusedMultiplyAdd(d * Avx512F.LoadVector512(ps), Avx512F.ConvertToVector512Single(sumi), acc);
    }

    /// <summary>
    /// <see cref="DotQ8_0Pairs"/> for four rows <paramref name="row"/> + k·<paramref name="stride"/> bytes, read
    /// side by side: four streams for the hardware prefetchers instead of one, the next four rows' same place
    /// prefetched, and each activation load serving four rows. Each row's sums are Dot's, in Dot's order, so
    /// y[k] has the bits <see cref="DotQ8_0Pairs"/> gives that row.
    /// </summary>
    public static void DotQ8_0Pairs4(byte* row, long stride, sbyte* xq, float* xd, float* pairScales, int blocks, float* y)
    {
        int even = blocks & ~1;
        Q8Pairs4(row, stride, xq, pairScales, even, y);
        if (even < blocks)
            for (int k = 0; k < 4; k++) y[k] += Dot<Q8Blocks>(row + k * stride + even * 34, xq + even * 32, xd + even, 1);
    }

    private static void Q8Pairs4(byte* row, long stride, sbyte* xq, float* pairScales, int blocks, float* y)
    {
        float* half = s_half;
        var ones = Vector512.Create((short)1);
        byte* r0 = row, r1 = row + stride, r2 = row + 2 * stride, r3 = row + 3 * stride;
        long ahead = 4 * stride;
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        int b = 0;
        for (; b + 3 < blocks; b += 4)
        {
            long o = b * 34;
            Sse.Prefetch0(r0 + o + ahead); Sse.Prefetch0(r0 + o + ahead + 64);
            Sse.Prefetch0(r1 + o + ahead); Sse.Prefetch0(r1 + o + ahead + 64);
            Sse.Prefetch0(r2 + o + ahead); Sse.Prefetch0(r2 + o + ahead + 64);
            Sse.Prefetch0(r3 + o + ahead); Sse.Prefetch0(r3 + o + ahead + 64);
            var x0 = Avx512BW.LoadVector512(xq + b * 32);
            var s0 = Avx512F.LoadVector512(pairScales + b * 8);
            a0 = Q8PairX(r0 + o, x0, s0, half, ones, a0);
            a1 = Q8PairX(r1 + o, x0, s0, half, ones, a1);
            a2 = Q8PairX(r2 + o, x0, s0, half, ones, a2);
            a3 = Q8PairX(r3 + o, x0, s0, half, ones, a3);
            var x1 = Avx512BW.LoadVector512(xq + b * 32 + 64);
            var s1 = Avx512F.LoadVector512(pairScales + b * 8 + 16);
            b0 = Q8PairX(r0 + o + 68, x1, s1, half, ones, b0);
            b1 = Q8PairX(r1 + o + 68, x1, s1, half, ones, b1);
            b2 = Q8PairX(r2 + o + 68, x1, s1, half, ones, b2);
            b3 = Q8PairX(r3 + o + 68, x1, s1, half, ones, b3);
        }
        if (b < blocks)
        {
            long o = b * 34;
            var x0 = Avx512BW.LoadVector512(xq + b * 32);
            var s0 = Avx512F.LoadVector512(pairScales + b * 8);
            a0 = Q8PairX(r0 + o, x0, s0, half, ones, a0);
            a1 = Q8PairX(r1 + o, x0, s0, half, ones, a1);
            a2 = Q8PairX(r2 + o, x0, s0, half, ones, a2);
            a3 = Q8PairX(r3 + o, x0, s0, half, ones, a3);
        }
        y[0] = Vector512.Sum(a0 + b0);
        y[1] = Vector512.Sum(a1 + b1);
        y[2] = Vector512.Sum(a2 + b2);
        y[3] = Vector512.Sum(a3 + b3);
    }

    /// <summary>
    /// One Q8_0 row against four activation rows (token k's codes at <paramref name="xq"/> + k·<paramref name="xStride"/>,
    /// its Q8_0 scales and pair scales likewise): the batched decode of a server, where each weight pair is loaded,
    /// its signs and scales taken once, for four tokens. Each token's sums are <see cref="DotQ8_0Pairs"/>'s, in its
    /// order (the integer sums are exact whichever way they are formed; the float steps are the same), so y[k] has
    /// the bits <see cref="DotQ8_0Pairs"/> gives token k alone: batches stay invariant.
    /// </summary>
    public static void DotQ8_0Pairs4Tokens(byte* row, sbyte* xq, int xStride, float* xd, int dStride, float* pairScales, int sStride, int blocks, float* y)
    {
        int even = blocks & ~1;
        Q8PairsTokens4(row, xq, xStride, pairScales, sStride, even, y);
        if (even < blocks)
            for (int k = 0; k < 4; k++) y[k] += Dot<Q8Blocks>(row + even * 34, xq + k * xStride + even * 32, xd + k * dStride + even, 1);
    }

    private static void Q8PairsTokens4(byte* row, sbyte* xq, int xs, float* ps, int ss, int blocks, float* y)
    {
        float* half = s_half;
        var ones = Vector512.Create((short)1);
        sbyte* x0 = xq, x1 = xq + xs, x2 = xq + 2 * xs, x3 = xq + 3 * xs;
        float* s0 = ps, s1 = ps + ss, s2 = ps + 2 * ss, s3 = ps + 3 * ss;
        // a: the pair at b (Q8Pairs' acc0), c: the pair at b + 2 (its acc1), per token.
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var c0 = a0; var c1 = a0; var c2 = a0; var c3 = a0;
        int b = 0;
        for (; b + 3 < blocks; b += 4)
        {
            byte* blk = row + b * 34;
            Sse.Prefetch0(blk + PD);
            Sse.Prefetch0(blk + PD + 64);
            W8Pair(blk, half, out var aw, out var neg, out var d);
            a0 = Q8PairToken(aw, neg, d, x0 + b * 32, s0 + b * 8, ones, a0);
            a1 = Q8PairToken(aw, neg, d, x1 + b * 32, s1 + b * 8, ones, a1);
            a2 = Q8PairToken(aw, neg, d, x2 + b * 32, s2 + b * 8, ones, a2);
            a3 = Q8PairToken(aw, neg, d, x3 + b * 32, s3 + b * 8, ones, a3);
            W8Pair(blk + 68, half, out aw, out neg, out d);
            c0 = Q8PairToken(aw, neg, d, x0 + b * 32 + 64, s0 + b * 8 + 16, ones, c0);
            c1 = Q8PairToken(aw, neg, d, x1 + b * 32 + 64, s1 + b * 8 + 16, ones, c1);
            c2 = Q8PairToken(aw, neg, d, x2 + b * 32 + 64, s2 + b * 8 + 16, ones, c2);
            c3 = Q8PairToken(aw, neg, d, x3 + b * 32 + 64, s3 + b * 8 + 16, ones, c3);
        }
        if (b < blocks)
        {
            W8Pair(row + b * 34, half, out var aw, out var neg, out var d);
            a0 = Q8PairToken(aw, neg, d, x0 + b * 32, s0 + b * 8, ones, a0);
            a1 = Q8PairToken(aw, neg, d, x1 + b * 32, s1 + b * 8, ones, a1);
            a2 = Q8PairToken(aw, neg, d, x2 + b * 32, s2 + b * 8, ones, a2);
            a3 = Q8PairToken(aw, neg, d, x3 + b * 32, s3 + b * 8, ones, a3);
        }
        y[0] = Vector512.Sum(a0 + c0);
        y[1] = Vector512.Sum(a1 + c1);
        y[2] = Vector512.Sum(a2 + c2);
        y[3] = Vector512.Sum(a3 + c3);
    }

    /// <summary>A pair of Q8_0 blocks taken apart once for several tokens: |w|, the lanes where w &lt; 0, and [dA x8, dB x8].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void W8Pair(byte* blk, float* half, out Vector512<sbyte> absW, out Vector512<sbyte> negative, out Vector512<float> d)
    {
        var w = Avx512F.InsertVector256(Avx.LoadVector256((sbyte*)(blk + 2)).ToVector512Unsafe(), Avx.LoadVector256((sbyte*)(blk + 36)), 1);
        absW = Avx512BW.Abs(w).AsSByte();
        negative = Vector512.LessThan(w, Vector512<sbyte>.Zero);
        d = Avx512F.InsertVector256(Vector256.Create(half[*(ushort*)blk]).ToVector512Unsafe(), Vector256.Create(half[*(ushort*)(blk + 34)]), 1);
    }

    /// <summary>Q8Pair's float steps for one token against a pair taken apart by <see cref="W8Pair"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q8PairToken(Vector512<sbyte> absW, Vector512<sbyte> negative, Vector512<float> d, sbyte* x, float* ps, Vector512<short> ones, Vector512<float> acc)
    {
        var xv = Avx512BW.LoadVector512(x);
        var sx = Vector512.ConditionalSelect(negative, -xv, xv);
        var sumi = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(absW.AsByte(), sx), ones);
        return Avx512F.FusedMultiplyAdd(d * Avx512F.LoadVector512(ps), Avx512F.ConvertToVector512Single(sumi), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q8PairX(byte* blk, Vector512<sbyte> xv, Vector512<float> ps, float* half, Vector512<short> ones, Vector512<float> acc)
    {
        var w = Avx512F.InsertVector256(Avx.LoadVector256((sbyte*)(blk + 2)).ToVector512Unsafe(), Avx.LoadVector256((sbyte*)(blk + 36)), 1);
        var sx = Vector512.ConditionalSelect(Vector512.LessThan(w, Vector512<sbyte>.Zero), -xv, xv);
        var sumi = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(w), sx), ones);
        var d = Avx512F.InsertVector256(Vector256.Create(half[*(ushort*)blk]).ToVector512Unsafe(), Vector256.Create(half[*(ushort*)(blk + 34)]), 1);
        return Avx512F.FusedMultiplyAdd(d * ps, Avx512F.ConvertToVector512Single(sumi), acc);
    }

    /// <summary>
    /// A Q4_0 row against the quad layout of <see cref="Q8Activations"/>: four blocks per 512-bit vector, one
    /// block's 16 packed bytes per 128-bit lane, so its low nibbles (codes 0-15) and high nibbles (codes 16-31)
    /// each fill a vector against the matching activation codes. The nibbles are taken unsigned (0..15): their
    /// products need no sign fix-up (vpmaddubsw), both halves add in 16 bits (at most 4·15·127), and the -8
    /// offset comes back as the precomputed correction -8·Σx per lane, exactly. One convert and one FMA per
    /// four blocks with the scales [dA x4, dB x4, dC x4, dD x4]. Blocks past a multiple of four take the
    /// 256-bit path.
    /// </summary>
    public static float DotQ4_0Quads(byte* row, sbyte* quadCodes, int* correction, float* quadScales, sbyte* xq, float* xd, int blocks)
    {
        int full = blocks & ~3;
        float total = Vector512.Sum(Q4Quads(row, quadCodes, correction, quadScales, full));
        if (full < blocks) total += Dot<Q4Blocks>(row + full * 18, xq + full * 32, xd + full, blocks - full);
        return total;
    }

    // The loop alone, with no call inside, so the JIT keeps the accumulators in registers.
    private static Vector512<float> Q4Quads(byte* row, sbyte* quadCodes, int* correction, float* quadScales, int blocks)
    {
        float* half = s_half;
        var ones = Vector512.Create((short)1);
        var mask = Vector512.Create((byte)0x0F);
        var acc0 = Vector512<float>.Zero; var acc1 = Vector512<float>.Zero;
        int b = 0;
        for (; b + 7 < blocks; b += 8)
        {
            Sse.Prefetch0(row + b * 18 + PD);
            Sse.Prefetch0(row + b * 18 + PD + 64);
            acc0 = Q4Quad(row + b * 18, quadCodes + b * 32, correction + b * 4, quadScales + b * 4, half, mask, ones, acc0);
            acc1 = Q4Quad(row + (b + 4) * 18, quadCodes + (b + 4) * 32, correction + (b + 4) * 4, quadScales + (b + 4) * 4, half, mask, ones, acc1);
        }
        if (b < blocks) acc0 = Q4Quad(row + b * 18, quadCodes + b * 32, correction + b * 4, quadScales + b * 4, half, mask, ones, acc0);
        return acc0 + acc1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4Quad(byte* blk, sbyte* x, int* corr, float* qs, float* half, Vector512<byte> mask, Vector512<short> ones, Vector512<float> acc)
    {
        var ab = Avx2.InsertVector128(Sse2.LoadVector128(blk + 2).ToVector256Unsafe(), Sse2.LoadVector128(blk + 20), 1);
        var cd = Avx2.InsertVector128(Sse2.LoadVector128(blk + 38).ToVector256Unsafe(), Sse2.LoadVector128(blk + 56), 1);
        var v = Avx512F.InsertVector256(ab.ToVector512Unsafe(), cd, 1);
        var lo = v & mask;
        var hi = (v.AsUInt16() >> 4).AsByte() & mask;
        var s16 = Avx512BW.MultiplyAddAdjacent(lo, Avx512BW.LoadVector512(x)) + Avx512BW.MultiplyAddAdjacent(hi, Avx512BW.LoadVector512(x + 64));
        var sumi = Avx512BW.MultiplyAddAdjacent(s16, ones) + Avx512F.LoadVector512(corr);
        var dab = Avx.InsertVector128(Vector128.Create(half[*(ushort*)blk]).ToVector256Unsafe(), Vector128.Create(half[*(ushort*)(blk + 18)]), 1);
        var dcd = Avx.InsertVector128(Vector128.Create(half[*(ushort*)(blk + 36)]).ToVector256Unsafe(), Vector128.Create(half[*(ushort*)(blk + 54)]), 1);
        var d = Avx512F.InsertVector256(dab.ToVector512Unsafe(), dcd, 1);
        return Avx512F.FusedMultiplyAdd(d * Avx512F.LoadVector512(qs), Avx512F.ConvertToVector512Single(sumi), acc);
    }

    /// <summary>
    /// One Q4_0 row against four activation rows in the quad layout (token k's quad codes at <paramref name="quadCodes"/>
    /// + k·<paramref name="codeStride"/>, its corrections and quad scales at + k·<paramref name="laneStride"/>, its Q8_0
    /// codes and scales at + k·<paramref name="codeStride"/> and + k·<paramref name="blockStride"/>): each quad of weight
    /// blocks is unpacked once for four tokens; y[k] has the bits <see cref="DotQ4_0Quads"/> gives token k alone.
    /// </summary>
    public static void DotQ4_0Quads4Tokens(byte* row, sbyte* quadCodes, int* correction, float* quadScales, sbyte* xq, float* xd,
        int codeStride, int laneStride, int blockStride, int blocks, float* y)
    {
        int full = blocks & ~3;
        Q4QuadsTokens4(row, quadCodes, correction, quadScales, codeStride, laneStride, full, y);
        if (full < blocks)
            for (int k = 0; k < 4; k++) y[k] += Dot<Q4Blocks>(row + full * 18, xq + k * codeStride + full * 32, xd + k * blockStride + full, blocks - full);
    }

    private static void Q4QuadsTokens4(byte* row, sbyte* qc, int* corr, float* qs, int cs, int ls, int blocks, float* y)
    {
        float* half = s_half;
        var ones = Vector512.Create((short)1);
        var mask = Vector512.Create((byte)0x0F);
        // a: the quad at b (Q4Quads' acc0), c: the quad at b + 4 (its acc1), per token.
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var c0 = a0; var c1 = a0; var c2 = a0; var c3 = a0;
        int b = 0;
        for (; b + 7 < blocks; b += 8)
        {
            byte* blk = row + b * 18;
            Sse.Prefetch0(blk + PD);
            Sse.Prefetch0(blk + PD + 64);
            W4Quad(blk, half, mask, out var lo, out var hi, out var d);
            a0 = Q4QuadToken(lo, hi, d, qc + b * 32, corr + b * 4, qs + b * 4, ones, a0);
            a1 = Q4QuadToken(lo, hi, d, qc + cs + b * 32, corr + ls + b * 4, qs + ls + b * 4, ones, a1);
            a2 = Q4QuadToken(lo, hi, d, qc + 2 * cs + b * 32, corr + 2 * ls + b * 4, qs + 2 * ls + b * 4, ones, a2);
            a3 = Q4QuadToken(lo, hi, d, qc + 3 * cs + b * 32, corr + 3 * ls + b * 4, qs + 3 * ls + b * 4, ones, a3);
            W4Quad(blk + 72, half, mask, out lo, out hi, out d);
            int e = b + 4;
            c0 = Q4QuadToken(lo, hi, d, qc + e * 32, corr + e * 4, qs + e * 4, ones, c0);
            c1 = Q4QuadToken(lo, hi, d, qc + cs + e * 32, corr + ls + e * 4, qs + ls + e * 4, ones, c1);
            c2 = Q4QuadToken(lo, hi, d, qc + 2 * cs + e * 32, corr + 2 * ls + e * 4, qs + 2 * ls + e * 4, ones, c2);
            c3 = Q4QuadToken(lo, hi, d, qc + 3 * cs + e * 32, corr + 3 * ls + e * 4, qs + 3 * ls + e * 4, ones, c3);
        }
        if (b < blocks)
        {
            W4Quad(row + b * 18, half, mask, out var lo, out var hi, out var d);
            a0 = Q4QuadToken(lo, hi, d, qc + b * 32, corr + b * 4, qs + b * 4, ones, a0);
            a1 = Q4QuadToken(lo, hi, d, qc + cs + b * 32, corr + ls + b * 4, qs + ls + b * 4, ones, a1);
            a2 = Q4QuadToken(lo, hi, d, qc + 2 * cs + b * 32, corr + 2 * ls + b * 4, qs + 2 * ls + b * 4, ones, a2);
            a3 = Q4QuadToken(lo, hi, d, qc + 3 * cs + b * 32, corr + 3 * ls + b * 4, qs + 3 * ls + b * 4, ones, a3);
        }
        y[0] = Vector512.Sum(a0 + c0);
        y[1] = Vector512.Sum(a1 + c1);
        y[2] = Vector512.Sum(a2 + c2);
        y[3] = Vector512.Sum(a3 + c3);
    }

    /// <summary>Four Q4_0 blocks taken apart once for several tokens: low and high nibbles (as Q4Quad lays them) and the scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void W4Quad(byte* blk, float* half, Vector512<byte> mask, out Vector512<byte> lo, out Vector512<byte> hi, out Vector512<float> d)
    {
        var ab = Avx2.InsertVector128(Sse2.LoadVector128(blk + 2).ToVector256Unsafe(), Sse2.LoadVector128(blk + 20), 1);
        var cd = Avx2.InsertVector128(Sse2.LoadVector128(blk + 38).ToVector256Unsafe(), Sse2.LoadVector128(blk + 56), 1);
        var v = Avx512F.InsertVector256(ab.ToVector512Unsafe(), cd, 1);
        lo = v & mask;
        hi = (v.AsUInt16() >> 4).AsByte() & mask;
        var dab = Avx.InsertVector128(Vector128.Create(half[*(ushort*)blk]).ToVector256Unsafe(), Vector128.Create(half[*(ushort*)(blk + 18)]), 1);
        var dcd = Avx.InsertVector128(Vector128.Create(half[*(ushort*)(blk + 36)]).ToVector256Unsafe(), Vector128.Create(half[*(ushort*)(blk + 54)]), 1);
        d = Avx512F.InsertVector256(dab.ToVector512Unsafe(), dcd, 1);
    }

    /// <summary>Q4Quad's steps for one token against a quad taken apart by <see cref="W4Quad"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4QuadToken(Vector512<byte> lo, Vector512<byte> hi, Vector512<float> d, sbyte* x, int* corr, float* qs, Vector512<short> ones, Vector512<float> acc)
    {
        var s16 = Avx512BW.MultiplyAddAdjacent(lo, Avx512BW.LoadVector512(x)) + Avx512BW.MultiplyAddAdjacent(hi, Avx512BW.LoadVector512(x + 64));
        var sumi = Avx512BW.MultiplyAddAdjacent(s16, ones) + Avx512F.LoadVector512(corr);
        return Avx512F.FusedMultiplyAdd(d * Avx512F.LoadVector512(qs), Avx512F.ConvertToVector512Single(sumi), acc);
    }

    /// <summary>
    /// <see cref="DotQ4_0Quads"/> for four rows <paramref name="row"/> + k·<paramref name="stride"/> bytes, read
    /// side by side (see <see cref="DotQ8_0Pairs4"/>); y[k] has the bits <see cref="DotQ4_0Quads"/> gives that row.
    /// </summary>
    public static void DotQ4_0Quads4(byte* row, long stride, sbyte* quadCodes, int* correction, float* quadScales, sbyte* xq, float* xd, int blocks, float* y)
    {
        int full = blocks & ~3;
        Q4Quads4(row, stride, quadCodes, correction, quadScales, full, y);
        if (full < blocks)
            for (int k = 0; k < 4; k++) y[k] += Dot<Q4Blocks>(row + k * stride + full * 18, xq + full * 32, xd + full, blocks - full);
    }

    private static void Q4Quads4(byte* row, long stride, sbyte* quadCodes, int* correction, float* quadScales, int blocks, float* y)
    {
        float* half = s_half;
        var ones = Vector512.Create((short)1);
        var mask = Vector512.Create((byte)0x0F);
        byte* r0 = row, r1 = row + stride, r2 = row + 2 * stride, r3 = row + 3 * stride;
        long ahead = 4 * stride;
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        int b = 0;
        for (; b + 7 < blocks; b += 8)
        {
            long o = b * 18;
            Sse.Prefetch0(r0 + o + ahead); Sse.Prefetch0(r0 + o + ahead + 64);
            Sse.Prefetch0(r1 + o + ahead); Sse.Prefetch0(r1 + o + ahead + 64);
            Sse.Prefetch0(r2 + o + ahead); Sse.Prefetch0(r2 + o + ahead + 64);
            Sse.Prefetch0(r3 + o + ahead); Sse.Prefetch0(r3 + o + ahead + 64);
            var xl = Avx512BW.LoadVector512(quadCodes + b * 32);
            var xh = Avx512BW.LoadVector512(quadCodes + b * 32 + 64);
            var c = Avx512F.LoadVector512(correction + b * 4);
            var q = Avx512F.LoadVector512(quadScales + b * 4);
            a0 = Q4QuadX(r0 + o, xl, xh, c, q, half, mask, ones, a0);
            a1 = Q4QuadX(r1 + o, xl, xh, c, q, half, mask, ones, a1);
            a2 = Q4QuadX(r2 + o, xl, xh, c, q, half, mask, ones, a2);
            a3 = Q4QuadX(r3 + o, xl, xh, c, q, half, mask, ones, a3);
            xl = Avx512BW.LoadVector512(quadCodes + b * 32 + 128);
            xh = Avx512BW.LoadVector512(quadCodes + b * 32 + 192);
            c = Avx512F.LoadVector512(correction + b * 4 + 16);
            q = Avx512F.LoadVector512(quadScales + b * 4 + 16);
            b0 = Q4QuadX(r0 + o + 72, xl, xh, c, q, half, mask, ones, b0);
            b1 = Q4QuadX(r1 + o + 72, xl, xh, c, q, half, mask, ones, b1);
            b2 = Q4QuadX(r2 + o + 72, xl, xh, c, q, half, mask, ones, b2);
            b3 = Q4QuadX(r3 + o + 72, xl, xh, c, q, half, mask, ones, b3);
        }
        if (b < blocks)
        {
            long o = b * 18;
            var xl = Avx512BW.LoadVector512(quadCodes + b * 32);
            var xh = Avx512BW.LoadVector512(quadCodes + b * 32 + 64);
            var c = Avx512F.LoadVector512(correction + b * 4);
            var q = Avx512F.LoadVector512(quadScales + b * 4);
            a0 = Q4QuadX(r0 + o, xl, xh, c, q, half, mask, ones, a0);
            a1 = Q4QuadX(r1 + o, xl, xh, c, q, half, mask, ones, a1);
            a2 = Q4QuadX(r2 + o, xl, xh, c, q, half, mask, ones, a2);
            a3 = Q4QuadX(r3 + o, xl, xh, c, q, half, mask, ones, a3);
        }
        y[0] = Vector512.Sum(a0 + b0);
        y[1] = Vector512.Sum(a1 + b1);
        y[2] = Vector512.Sum(a2 + b2);
        y[3] = Vector512.Sum(a3 + b3);
    }

    /// <summary>True where <see cref="DotQ4_0QuadsPermuted"/> can run (AVX-512 VBMI in the profile).</summary>
    public static bool CanPermuteQuads => Kernels.CpuProfile.Current is { Avx512: true, Vbmi: true };

    /// <summary>
    /// True where decode takes <see cref="DotQ4_0QuadsPermuted"/>: AVX-512 VBMI, rows read one after another (it is
    /// a one-row kernel), and denormal operands free (its weight scales are taken as moved bits, see HalfDot's scaled form).
    /// </summary>
    public static bool UsesPermutedQuads => Kernels.CpuProfile.Current is { Avx512: true, Vbmi: true, RowAfterRow: true, FreeDenormals: true };

    // Block k's packed bytes are bytes 18k+2..18k+17 of a quad: from the first load (bytes 0-63) for k < 3, from
    // the second (bytes 8-71, index 64 + byte - 8) for k = 3. Its fp16 scale is bytes 18k, 18k+1, placed in the
    // high half of each of the lane's four 32-bit words.
    private static readonly Vector512<byte> s_quadCodesIndex = QuadIndex(codes: true);
    private static readonly Vector512<byte> s_quadScaleIndex = QuadIndex(codes: false);

    private static Vector512<byte> QuadIndex(bool codes)
    {
        var idx = new byte[64];
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 16; j++)
            {
                int src = 18 * k + 2 + j;
                idx[16 * k + j] = codes ? (byte)(k < 3 ? src : 64 + src - 8) : (byte)(j % 4 < 2 ? 0 : 18 * k + j % 4 - 2);
            }
        return Vector512.Create(idx);
    }

    /// <summary>
    /// <see cref="DotQ4_0Quads"/> with fewer operations per four blocks: the four blocks' 72 bytes come in as two
    /// 64-byte loads; one vpermt2b puts each block's 16 packed bytes in its 128-bit lane, one vpermb puts each
    /// block's fp16 scale in the high half of its lane's words, and the scale becomes a float times 2^-112 by two
    /// integer operations (its bits moved, as in HalfDot's scaled form) against quad scales prepared times 2^112
    /// (<see cref="Q8Activations.QuadScalesScaled"/>): d_w·d_x is the same float, so every row has the bits
    /// <see cref="DotQ4_0Quads"/> gives it.
    /// </summary>
    public static float DotQ4_0QuadsPermuted(byte* row, sbyte* quadCodes, int* correction, float* quadScalesScaled, sbyte* xq, float* xd, int blocks)
    {
        int full = blocks & ~3;
        float total = Vector512.Sum(Q4QuadsPermuted(row, quadCodes, correction, quadScalesScaled, full));
        if (full < blocks) total += Dot<Q4Blocks>(row + full * 18, xq + full * 32, xd + full, blocks - full);
        return total;
    }

    private static Vector512<float> Q4QuadsPermuted(byte* row, sbyte* quadCodes, int* correction, float* quadScales, int blocks)
    {
        var ones = Vector512.Create((short)1);
        var mask = Vector512.Create((byte)0x0F);
        var bits = Vector512.Create(unchecked((int)0x8FFFE000));
        var qsIdx = s_quadCodesIndex;
        var dIdx = s_quadScaleIndex;
        var acc0 = Vector512<float>.Zero; var acc1 = Vector512<float>.Zero;
        int b = 0;
        for (; b + 7 < blocks; b += 8)
        {
            Sse.Prefetch0(row + b * 18 + PD);
            Sse.Prefetch0(row + b * 18 + PD + 64);
            acc0 = Q4QuadPermuted(row + b * 18, quadCodes + b * 32, correction + b * 4, quadScales + b * 4, qsIdx, dIdx, bits, mask, ones, acc0);
            acc1 = Q4QuadPermuted(row + (b + 4) * 18, quadCodes + (b + 4) * 32, correction + (b + 4) * 4, quadScales + (b + 4) * 4, qsIdx, dIdx, bits, mask, ones, acc1);
        }
        if (b < blocks) acc0 = Q4QuadPermuted(row + b * 18, quadCodes + b * 32, correction + b * 4, quadScales + b * 4, qsIdx, dIdx, bits, mask, ones, acc0);
        return acc0 + acc1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4QuadPermuted(byte* blk, sbyte* x, int* corr, float* qs, Vector512<byte> qsIdx, Vector512<byte> dIdx,
        Vector512<int> bits, Vector512<byte> mask, Vector512<short> ones, Vector512<float> acc)
    {
        var z1 = Avx512BW.LoadVector512(blk);
        var z2 = Avx512BW.LoadVector512(blk + 8);
        var v = Avx512Vbmi.PermuteVar64x8x2(z1, qsIdx, z2);
        var dv = Avx512Vbmi.PermuteVar64x8(z1, dIdx).AsInt32();
        var lo = v & mask;
        var hi = (v.AsUInt16() >> 4).AsByte() & mask;
        var s16 = Avx512BW.MultiplyAddAdjacent(lo, Avx512BW.LoadVector512(x)) + Avx512BW.MultiplyAddAdjacent(hi, Avx512BW.LoadVector512(x + 64));
        var sumi = Avx512BW.MultiplyAddAdjacent(s16, ones) + Avx512F.LoadVector512(corr);
        var d = Kernels.HalfDot.Scaled(dv, bits);
        return Avx512F.FusedMultiplyAdd(d * Avx512F.LoadVector512(qs), Avx512F.ConvertToVector512Single(sumi), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4QuadX(byte* blk, Vector512<sbyte> xl, Vector512<sbyte> xh, Vector512<int> corr, Vector512<float> qs, float* half,
        Vector512<byte> mask, Vector512<short> ones, Vector512<float> acc)
    {
        var ab = Avx2.InsertVector128(Sse2.LoadVector128(blk + 2).ToVector256Unsafe(), Sse2.LoadVector128(blk + 20), 1);
        var cd = Avx2.InsertVector128(Sse2.LoadVector128(blk + 38).ToVector256Unsafe(), Sse2.LoadVector128(blk + 56), 1);
        var v = Avx512F.InsertVector256(ab.ToVector512Unsafe(), cd, 1);
        var lo = v & mask;
        var hi = (v.AsUInt16() >> 4).AsByte() & mask;
        var s16 = Avx512BW.MultiplyAddAdjacent(lo, xl) + Avx512BW.MultiplyAddAdjacent(hi, xh);
        var sumi = Avx512BW.MultiplyAddAdjacent(s16, ones) + corr;
        var dab = Avx.InsertVector128(Vector128.Create(half[*(ushort*)blk]).ToVector256Unsafe(), Vector128.Create(half[*(ushort*)(blk + 18)]), 1);
        var dcd = Avx.InsertVector128(Vector128.Create(half[*(ushort*)(blk + 36)]).ToVector256Unsafe(), Vector128.Create(half[*(ushort*)(blk + 54)]), 1);
        var d = Avx512F.InsertVector256(dab.ToVector512Unsafe(), dcd, 1);
        return Avx512F.FusedMultiplyAdd(d * qs, Avx512F.ConvertToVector512Single(sumi), acc);
    }

    private static float DotPortable<T>(byte* row, sbyte* xq, float* xd, int blocks) where T : struct, IWeightBlocks
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = row + b * T.BlockBytes;
            sum += T.ScalarDot(blk, xq + b * 32) * ((float)BitConverter.UInt16BitsToHalf(*(ushort*)blk) * xd[b]);
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Block<TDot>(Vector256<sbyte> w, sbyte* xq, float scale, Vector256<float> acc) where TDot : struct, IDotI8
    {
        var sumi = TDot.Dot(w, Avx.LoadVector256(xq));
        return Fma.MultiplyAdd(Vector256.Create(scale), Avx.ConvertToVector256Single(sumi), acc);
    }

    /// <summary>
    /// Two blocks at once in 512 bits: acc += [dA x8, dB x8] * (pairwise sums of w*x). AVX-512 has no
    /// vpsignb, so x takes w's sign by a masked negate, and |w| (unsigned) times that with vpmaddubsw.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pair512(Vector512<sbyte> w, Vector512<sbyte> x, float dA, float dB, Vector512<float> acc)
    {
        var sx = Vector512.ConditionalSelect(Vector512.LessThan(w, Vector512<sbyte>.Zero), -x, x);
        var prod = Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(w), sx);
        var sumi = Avx512BW.MultiplyAddAdjacent(prod, Vector512.Create((short)1));
        var d = Vector512.Create(Vector256.Create(dA), Vector256.Create(dB));
        return Avx512F.FusedMultiplyAdd(d, Avx512F.ConvertToVector512Single(sumi), acc);
    }

    /// <summary>The 32 codes of a Q4_0 block (16 packed bytes) as bytes 0..15, low nibbles first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Nibbles(byte* qs)
    {
        var packed = Sse2.LoadVector128(qs);
        var mask = Vector128.Create((byte)0x0F);
        return Vector256.Create(Sse2.And(packed, mask), Sse2.And(Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte(), mask)).AsSByte();
    }
}
