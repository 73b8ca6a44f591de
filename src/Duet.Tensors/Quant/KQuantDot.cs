// Dot products of K-quant weight rows (Q4_K, Q5_K, Q6_K) with an activation vector quantized to Q8_K, as
// ggml does (ggml_vec_dot_q4_K_q8_K, ..._q5_K_..., ..._q6_K_...): integer dots per sub-block, scaled once
// per super-block of 256.
//
// Q8_K activations (block_q8_K { float d; int8 qs[256]; int16 bsums[16]; }, quantize_row_q8_K_ref, which is
// also what ggml's x86 CPU backend calls): per block, max = the first element of largest |x| with its sign,
// iscale = -127 / max, q_i = min(127, round_half_even(iscale * x_i)), d = 1 / iscale, so x_i ≈ d * q_i;
// bsums[k] = Σ_{i<16} q_{16k+i}.
//
// Weights, per super-block (BlockFormats has the layouts):
//   Q4_K: w_i = d_w * sc_j * q_i - dmin_w * m_j for i in sub-block j of 32, q in 0..15, sc, m 6-bit;
//   Q5_K: the same with q in 0..31 (fifth bit from qh);
//   Q6_K: w_i = d_w * sc_s * (q_i - 32) for i in sub-block s of 16, q in 0..63, sc int8.
// So, with x_i = d_x * qx_i:
//   Σ w_i x_i = d_x d_w Σ_j sc_j Σ_{i∈j} q_i qx_i  -  d_x dmin_w Σ_j m_j Σ_{i∈j} qx_i           (Q4_K, Q5_K)
//   Σ w_i x_i = d_x d_w Σ_s sc_s Σ_{i∈s} (q_i - 32) qx_i                                         (Q6_K)
// where Σ_{i∈j} qx_i = bsums[2j] + bsums[2j+1]: the min term costs 8 products per super-block, not 256.
// torch: (dequantize(W_row) * (d_x * qx)).sum(), with the integer parts exact.
//
// The integer parts are exact in int32 (|q·qx| pairs stay below 2^15 for vpmaddubsw, per super-block sums
// below 2^26). The float parts follow ggml's x86 AVX2 kernels operation for operation, so the dots are
// bit-identical to llama.cpp's given the same codes: per super-block the integer sum is kept in 8 lanes (lane
// k holds the elements at positions 4k..4k+3 of every 32), converted to float and FMA-accumulated with
// d_x * d_w into 8 float lanes; the Q4_K min term in 4 lanes (lane k: sub-blocks 2k and 2k+1) FMA-accumulated
// with -d_x * dmin_w, the Q5_K one as a single float FMA-accumulated; at the end the 8 lanes are summed as
// ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)), and the min lanes as (m0+m2)+(m1+m3). The scalar paths compute the
// same lanes, so every path returns the same bits.
// Paths: AVX2 + FMA (vpmaddubsw, then vpdpwssd with AVX-VNNI or vpmaddwd without) and portable scalar.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Quant;

public static unsafe class KQuantDot
{
    public const int QK_K = 256;
    private const int Q4KBytes = 144, Q5KBytes = 176, Q6KBytes = 210;

    /// <summary>Whether <see cref="Dot"/> handles weights of this type.</summary>
    public static bool Supports(GgmlType t) => t is GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    private static bool Simd => Kernels.CpuProfile.Current.Avx2;

    // ---------------------------------------------------------------------------------------------
    // Q8_K activations

    /// <summary>
    /// Quantizes x (a multiple of 256 long, finite) to Q8_K: 256 codes, one scale and 16 code sums per block,
    /// the values llama.cpp's quantize_row_q8_K writes.
    /// </summary>
    public static void QuantizeActivationsQ8K(ReadOnlySpan<float> x, Span<sbyte> codes, Span<float> scales, Span<short> bsums)
        => Quantize(x, codes, scales, bsums, Simd);

    /// <summary>The portable path of <see cref="QuantizeActivationsQ8K"/> (same results), for tests.</summary>
    internal static void QuantizeActivationsQ8KPortable(ReadOnlySpan<float> x, Span<sbyte> codes, Span<float> scales, Span<short> bsums)
        => Quantize(x, codes, scales, bsums, false);

    private static void Quantize(ReadOnlySpan<float> x, Span<sbyte> codes, Span<float> scales, Span<short> bsums, bool simd)
    {
        int blocks = x.Length / QK_K;
        if (x.Length % QK_K != 0 || codes.Length < x.Length || scales.Length < blocks || bsums.Length < blocks * 16)
            throw new ArgumentException($"Q8_K: x has {x.Length} values (a multiple of {QK_K} needed), codes {codes.Length}, scales {scales.Length}, bsums {bsums.Length}");
        fixed (float* px = x)
        fixed (sbyte* pq = codes)
        fixed (short* pb = bsums)
            for (int b = 0; b < blocks; b++)
            {
                float* xb = px + b * QK_K;
                sbyte* qb = pq + b * QK_K;
                scales[b] = simd ? QuantizeBlockAvx(xb, qb) : QuantizeBlockPortable(xb, qb);
                for (int k = 0; k < 16; k++)
                {
                    int s = 0;
                    for (int i = 0; i < 16; i++) s += qb[16 * k + i];
                    pb[b * 16 + k] = (short)s;
                }
            }
    }

    private static float QuantizeBlockPortable(float* x, sbyte* q)
    {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++)
        {
            float ax = MathF.Abs(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0) { new Span<sbyte>(q, QK_K).Clear(); return 0; }
        float iscale = -127f / max;
        for (int j = 0; j < QK_K; j++) q[j] = (sbyte)Math.Min(127, NearestInt(iscale * x[j]));
        return 1 / iscale;
    }

    /// <summary>
    /// ggml nearest_int: adding 1.5·2^23 leaves round_half_even(f) in the low mantissa bits (|f| &lt; 2^22). Kept
    /// literally so that an overflowing iscale (a block of subnormals: ±inf products) gives ggml's code 0 too.
    /// </summary>
    private static int NearestInt(float f) => (BitConverter.SingleToInt32Bits(f + 12582912f) & 0x7FFFFF) - 0x400000;

    // The same block in registers: |x| max by vmaxps (a NaN never wins, as in the loop above), the first element
    // reaching it by compare and bit scan, products rounded to nearest even by vcvtps2dq (the default MXCSR mode;
    // ±inf and NaN give int.MinValue, whose low byte is nearest_int's 0 for them too).
    private static float QuantizeBlockAvx(float* x, sbyte* q)
    {
        var m = Vector256<float>.Zero;
        for (int j = 0; j < QK_K; j += 8) m = Avx.Max(Vector256.Abs(Avx.LoadVector256(x + j)), m);
        var m128 = Sse.Max(m.GetLower(), m.GetUpper());
        m128 = Sse.Max(m128, Sse.Shuffle(m128, m128, 0b01_00_11_10));
        m128 = Sse.Max(m128, Sse.Shuffle(m128, m128, 0b10_11_00_01));
        float amax = m128.ToScalar();
        if (amax == 0) { new Span<sbyte>(q, QK_K).Clear(); return 0; }
        var va = Vector256.Create(amax);
        int first = 0;
        for (; first < QK_K; first += 8)
        {
            uint hit = Vector256.Equals(Vector256.Abs(Avx.LoadVector256(x + first)), va).ExtractMostSignificantBits();
            if (hit != 0) { first += System.Numerics.BitOperations.TrailingZeroCount(hit); break; }
        }
        float iscale = -127f / x[first];
        var vs = Vector256.Create(iscale);
        var top = Vector256.Create(127);
        for (int j = 0; j < QK_K; j += 32)
        {
            var i0 = Avx2.Min(Avx.ConvertToVector256Int32(Avx.LoadVector256(x + j) * vs), top);
            var i1 = Avx2.Min(Avx.ConvertToVector256Int32(Avx.LoadVector256(x + j + 8) * vs), top);
            var i2 = Avx2.Min(Avx.ConvertToVector256Int32(Avx.LoadVector256(x + j + 16) * vs), top);
            var i3 = Avx2.Min(Avx.ConvertToVector256Int32(Avx.LoadVector256(x + j + 24) * vs), top);
            Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q + j);
        }
        return 1 / iscale;
    }

    // ---------------------------------------------------------------------------------------------
    // Row dots. xq/xd/bsums are the Q8_K activation: 256 codes, 1 scale and 16 sums per super-block.

    /// <summary>The dot of a Q4_K, Q5_K or Q6_K row of <paramref name="superBlocks"/> super-blocks with Q8_K activations.</summary>
    public static float Dot(GgmlType type, byte* row, sbyte* xq, float* xd, short* bsums, int superBlocks) => type switch
    {
        GgmlType.Q4_K => DotQ4_K(row, xq, xd, bsums, superBlocks),
        GgmlType.Q5_K => DotQ5_K(row, xq, xd, bsums, superBlocks),
        GgmlType.Q6_K => DotQ6_K(row, xq, xd, bsums, superBlocks),
        _ => throw new NotSupportedException($"no Q8_K dot for {type}"),
    };

    /// <summary>Σ over super-blocks of d_x·(d_w·Σ_j sc_j Σ q·qx − dmin_w·Σ_j m_j (bsums[2j] + bsums[2j+1])), Q4_K row.</summary>
    public static float DotQ4_K(byte* row, sbyte* xq, float* xd, short* bsums, int superBlocks) => Kernels.CpuProfile.Current switch
    {
        { AvxVnni: true } => DotQ4_KAvx2<VnniMulAdd>(row, xq, xd, bsums, superBlocks),
        { Avx2: true } => DotQ4_KAvx2<MaddMulAdd>(row, xq, xd, bsums, superBlocks),
        _ => DotQ4_KPortable(row, xq, xd, bsums, superBlocks),
    };

    /// <summary>As <see cref="DotQ4_K"/> for a Q5_K row (5-bit codes).</summary>
    public static float DotQ5_K(byte* row, sbyte* xq, float* xd, short* bsums, int superBlocks) => Kernels.CpuProfile.Current switch
    {
        { AvxVnni: true } => DotQ5_KAvx2<VnniMulAdd>(row, xq, xd, bsums, superBlocks),
        { Avx2: true } => DotQ5_KAvx2<MaddMulAdd>(row, xq, xd, bsums, superBlocks),
        _ => DotQ5_KPortable(row, xq, xd, bsums, superBlocks),
    };

    /// <summary>Σ over super-blocks of d_x·d_w·Σ_s sc_s Σ (q − 32)·qx, Q6_K row (bsums unused).</summary>
    public static float DotQ6_K(byte* row, sbyte* xq, float* xd, short* bsums, int superBlocks) => Kernels.CpuProfile.Current switch
    {
        { AvxVnni: true } => DotQ6_KAvx2<VnniMulAdd>(row, xq, xd, superBlocks),
        { Avx2: true } => DotQ6_KAvx2<MaddMulAdd>(row, xq, xd, superBlocks),
        _ => DotQ6_KPortable(row, xq, xd, superBlocks),
    };

    // ---------------------------------------------------------------------------------------------
    // AVX2 paths

    // Weight rows stream from memory in decode: every line of the super-block 4 KB ahead is asked for (three lines per
    // Q4_K/Q5_K block of 144/176 bytes, four per Q6_K block of 210; consecutive blocks' ranges overlap, so no line is
    // skipped). TinyLlama Q4_K_M decode on the Intel Xeon (model 207): one line 576 bytes ahead 11.2-11.4 tokens/s on one
    // thread and 19.8-20.2 on two; all lines 576 bytes ahead 12.5-12.8 / 22-24; one line 4 KB ahead 15.1-15.7 / 24.7-27.5;
    // all lines 3, 4, 6 or 8 KB ahead 16.3-16.9 / 27.7-30.2 (bench/README.md#kernel-choices).
    private const int PrefetchAhead = 4096;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLines(byte* p, int lines)
    {
        for (int l = 0; l < lines; l++) Sse.Prefetch0(p + PrefetchAhead + 64 * l);
    }

    /// <summary>acc + Σ pairs a·b in int32: vpdpwssd with AVX-VNNI (<see cref="VnniMulAdd"/>), else vpmaddwd + vpaddd; the same exact sums.</summary>
    private interface IMulAdd16
    {
        static abstract Vector256<int> MulAdd16(Vector256<int> acc, Vector256<short> a, Vector256<short> b);
    }

    private struct VnniMulAdd : IMulAdd16
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> MulAdd16(Vector256<int> acc, Vector256<short> a, Vector256<short> b) => AvxVnni.MultiplyWideningAndAdd(acc, a, b);
    }

    private struct MaddMulAdd : IMulAdd16
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> MulAdd16(Vector256<int> acc, Vector256<short> a, Vector256<short> b) => Avx2.Add(acc, Avx2.MultiplyAddAdjacent(a, b));
    }

    /// <summary>
    /// The 8 scales and 8 mins of a Q4_K/Q5_K super-block as int16 [sc0..sc7 | m0..m7]. The 12 bytes as words
    /// a, b, c (little-endian): sc0..3 = a &amp; 63 and m0..3 = b &amp; 63 bytewise; sc4..7 = (c &amp; 15) | (a &gt;&gt; 6) &lt;&lt; 4 and
    /// m4..7 = (c &gt;&gt; 4) | (b &gt;&gt; 6) &lt;&lt; 4 (ggml get_scale_min_k4, four at a time).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> ScalesAndMins(byte* s)
    {
        var v = Sse2.LoadVector128(s).AsUInt32();   // [a, b, c, -] (the 4 bytes after the 12 are quants, unused)
        var acbc = Sse2.Shuffle(v, 0b10_01_10_00);  // [a, c, b, c]
        var aabb = Sse2.Shuffle(v, 0b01_01_00_00);  // [a, a, b, b]
        var low = Sse2.And(Avx2.ShiftRightLogicalVariable(acbc, Vector128.Create(0u, 0, 0, 4)), Vector128.Create(0x3F3F3F3Fu, 0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F));
        var high = Sse2.And(Sse2.ShiftRightLogical(aabb, 2), Vector128.Create(0u, 0x30303030, 0, 0x30303030));
        return Avx2.ConvertToVector256Int16(Sse2.Or(low, high).AsByte());
    }

    /// <summary>Lane k: m_2k (bsums[4k] + bsums[4k+1]) + m_2k+1 (bsums[4k+2] + bsums[4k+3]), the min term's 4 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> MinLanes(Vector128<short> mins, short* bs)
    {
        var pairs = Ssse3.HorizontalAdd(Sse2.LoadVector128(bs), Sse2.LoadVector128(bs + 8)); // bsums of the 8 sub-blocks of 32
        return Sse2.MultiplyAddAdjacent(mins, pairs);
    }

    /// <summary>((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)): ggml's hsum_float_8 order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum8(Vector256<float> a)
    {
        var r = Sse.Add(a.GetUpper(), a.GetLower());
        return (r.GetElement(0) + r.GetElement(2)) + (r.GetElement(1) + r.GetElement(3));
    }

    /// <summary>vpshufb control that broadcasts int16 j of each 128-bit lane (a constant once inlined).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Pick(int j) => Vector256.Create((ushort)(0x0100 + 0x0202 * j)).AsByte();

    /// <summary>
    /// 64 elements of Q4_K/Q5_K: codes lo (elements 0..31, scale sc_a) and hi (32..63, scale sc_b) against x;
    /// s0 += sc_a·(pairs of lo·x), s1 += sc_b·(pairs of hi·x), pairs in int16 (below 2^13), sums in int32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q45Pair<TMul>(Vector256<byte> lo, Vector256<byte> hi, sbyte* x, Vector256<byte> sc, Vector256<byte> pickA, Vector256<byte> pickB, ref Vector256<int> s0, ref Vector256<int> s1) where TMul : struct, IMulAdd16
    {
        s0 = TMul.MulAdd16(s0, Avx2.MultiplyAddAdjacent(lo, Avx.LoadVector256(x)), Avx2.Shuffle(sc, pickA).AsInt16());
        s1 = TMul.MulAdd16(s1, Avx2.MultiplyAddAdjacent(hi, Avx.LoadVector256(x + 32)), Avx2.Shuffle(sc, pickB).AsInt16());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q4Pair<TMul>(Vector256<byte> q, Vector256<byte> low4, sbyte* x, Vector256<byte> sc, Vector256<byte> pickA, Vector256<byte> pickB, ref Vector256<int> s0, ref Vector256<int> s1) where TMul : struct, IMulAdd16
        => Q45Pair<TMul>(Avx2.And(q, low4), Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), low4), x, sc, pickA, pickB, ref s0, ref s1);

    /// <summary>As <see cref="Q4Pair"/> with the fifth bits: bit 0 of qh's bytes for lo, bit 1 for hi.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q5Pair<TMul>(Vector256<byte> q, Vector256<ushort> qh, Vector256<byte> low4, Vector256<byte> bit4, sbyte* x, Vector256<byte> sc, Vector256<byte> pickA, Vector256<byte> pickB, ref Vector256<int> s0, ref Vector256<int> s1) where TMul : struct, IMulAdd16
    {
        // 16-bit shifts move bit 0 (bit 1) of every byte to bit 4; the mask drops what crossed bytes.
        var lo = Avx2.Or(Avx2.And(q, low4), Avx2.And(Avx2.ShiftLeftLogical(qh, 4).AsByte(), bit4));
        var hi = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), low4), Avx2.And(Avx2.ShiftLeftLogical(qh, 3).AsByte(), bit4));
        Q45Pair<TMul>(lo, hi, x, sc, pickA, pickB, ref s0, ref s1);
    }

    private static float DotQ4_KAvx2<TMul>(byte* row, sbyte* xq, float* xd, short* bsums, int nb) where TMul : struct, IMulAdd16
    {
        float* half = QuantDot.HalfTable;
        var acc = Vector256<float>.Zero;
        var accM = Vector128<float>.Zero;
        var low4 = Vector256.Create((byte)0x0F);
        for (int i = 0; i < nb; i++)
        {
            byte* blk = row + i * Q4KBytes;
            sbyte* x = xq + i * QK_K;
            PrefetchLines(blk, 3);
            float d = xd[i] * half[*(ushort*)blk];
            float dmin = -xd[i] * half[*(ushort*)(blk + 2)];
            var sm = ScalesAndMins(blk + 4);
            accM = Fma.MultiplyAdd(Vector128.Create(dmin), Sse2.ConvertToVector128Single(MinLanes(sm.GetUpper(), bsums + i * 16)), accM);
            var sc = Avx2.Permute4x64(sm.AsInt64(), 0b01_00_01_00).AsByte(); // [sc0..sc7 | sc0..sc7]
            byte* qs = blk + 16;
            var s0 = Vector256<int>.Zero;
            var s1 = Vector256<int>.Zero;
            // 32 bytes of qs per 64 elements: low nibbles are sub-block 2j, high nibbles sub-block 2j+1.
            Q4Pair<TMul>(Avx.LoadVector256(qs), low4, x, sc, Pick(0), Pick(1), ref s0, ref s1);
            Q4Pair<TMul>(Avx.LoadVector256(qs + 32), low4, x + 64, sc, Pick(2), Pick(3), ref s0, ref s1);
            Q4Pair<TMul>(Avx.LoadVector256(qs + 64), low4, x + 128, sc, Pick(4), Pick(5), ref s0, ref s1);
            Q4Pair<TMul>(Avx.LoadVector256(qs + 96), low4, x + 192, sc, Pick(6), Pick(7), ref s0, ref s1);
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(Avx2.Add(s0, s1)), acc);
        }
        return Sum8(acc) + ((accM.GetElement(0) + accM.GetElement(2)) + (accM.GetElement(1) + accM.GetElement(3)));
    }

    private static float DotQ5_KAvx2<TMul>(byte* row, sbyte* xq, float* xd, short* bsums, int nb) where TMul : struct, IMulAdd16
    {
        float* half = QuantDot.HalfTable;
        var acc = Vector256<float>.Zero;
        float accM = 0;
        var low4 = Vector256.Create((byte)0x0F);
        var bit4 = Vector256.Create((byte)0x10);
        for (int i = 0; i < nb; i++)
        {
            byte* blk = row + i * Q5KBytes;
            sbyte* x = xq + i * QK_K;
            PrefetchLines(blk, 3);
            float d = xd[i] * half[*(ushort*)blk];
            float dmin = -xd[i] * half[*(ushort*)(blk + 2)];
            var sm = ScalesAndMins(blk + 4);
            var ml = MinLanes(sm.GetUpper(), bsums + i * 16);
            int mins = ml.GetElement(0) + ml.GetElement(1) + ml.GetElement(2) + ml.GetElement(3);
            accM = MathF.FusedMultiplyAdd(dmin, mins, accM);
            var sc = Avx2.Permute4x64(sm.AsInt64(), 0b01_00_01_00).AsByte();
            // qh: bit 2j of byte l is the fifth bit of element 64j + l, bit 2j+1 that of element 64j + 32 + l.
            var qh = Avx.LoadVector256(blk + 16).AsUInt16();
            byte* qs = blk + 48;
            var s0 = Vector256<int>.Zero;
            var s1 = Vector256<int>.Zero;
            Q5Pair<TMul>(Avx.LoadVector256(qs), qh, low4, bit4, x, sc, Pick(0), Pick(1), ref s0, ref s1);
            Q5Pair<TMul>(Avx.LoadVector256(qs + 32), Avx2.ShiftRightLogical(qh, 2), low4, bit4, x + 64, sc, Pick(2), Pick(3), ref s0, ref s1);
            Q5Pair<TMul>(Avx.LoadVector256(qs + 64), Avx2.ShiftRightLogical(qh, 4), low4, bit4, x + 128, sc, Pick(4), Pick(5), ref s0, ref s1);
            Q5Pair<TMul>(Avx.LoadVector256(qs + 96), Avx2.ShiftRightLogical(qh, 6), low4, bit4, x + 192, sc, Pick(6), Pick(7), ref s0, ref s1);
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(Avx2.Add(s0, s1)), acc);
        }
        return Sum8(acc) + accM;
    }

    private static float DotQ6_KAvx2<TMul>(byte* row, sbyte* xq, float* xd, int nb) where TMul : struct, IMulAdd16
    {
        float* half = QuantDot.HalfTable;
        var acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            byte* blk = row + i * Q6KBytes;
            sbyte* x = xq + i * QK_K;
            PrefetchLines(blk, 4);
            float d = xd[i] * half[*(ushort*)(blk + 208)];
            var scales = Sse2.LoadVector128(blk + 192);
            var s0 = Vector256<int>.Zero;
            var s1 = Vector256<int>.Zero;
            Q6Half<TMul>(blk, blk + 128, x, scales, 0, ref s0, ref s1);
            Q6Half<TMul>(blk + 64, blk + 160, x + 128, scales, 8, ref s0, ref s1);
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(Avx2.Add(s0, s1)), acc);
        }
        return Sum8(acc);
    }

    /// <summary>
    /// Half a Q6_K super-block (128 elements, scales s..s+7): ql bytes l and l+32 hold elements l, l+32 (low
    /// nibbles) and l+64, l+96 (high nibbles); qh byte l holds their two high bits at bits 0-1, 2-3, 4-5, 6-7.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q6Half<TMul>(byte* ql, byte* qh, sbyte* x, Vector128<byte> scales, int s, ref Vector256<int> s0, ref Vector256<int> s1) where TMul : struct, IMulAdd16
    {
        var low4 = Vector256.Create((byte)0x0F);
        var bits45 = Vector256.Create((byte)0x30);
        var l1 = Avx.LoadVector256(ql);
        var l2 = Avx.LoadVector256(ql + 32);
        var h = Avx.LoadVector256(qh).AsUInt16();
        var q0 = Avx2.Or(Avx2.And(l1, low4), Avx2.And(Avx2.ShiftLeftLogical(h, 4).AsByte(), bits45));
        var q1 = Avx2.Or(Avx2.And(l2, low4), Avx2.And(Avx2.ShiftLeftLogical(h, 2).AsByte(), bits45));
        var q2 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(l1.AsUInt16(), 4).AsByte(), low4), Avx2.And(h.AsByte(), bits45));
        var q3 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(l2.AsUInt16(), 4).AsByte(), low4), Avx2.And(Avx2.ShiftRightLogical(h, 2).AsByte(), bits45));
        s0 = Q6Chunk<TMul>(s0, q0, x, scales, s);
        s1 = Q6Chunk<TMul>(s1, q1, x + 32, scales, s + 2);
        s0 = Q6Chunk<TMul>(s0, q2, x + 64, scales, s + 4);
        s1 = Q6Chunk<TMul>(s1, q3, x + 96, scales, s + 6);
    }

    /// <summary>
    /// 32 elements of Q6_K: int16 pairs Σ (q − 32)·qx as q·qx − 32·qx (both below 2^15 in magnitude), times
    /// scale a for elements 0..15 (low lane) and a + 1 for 16..31 (high lane), added to s.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6Chunk<TMul>(Vector256<int> s, Vector256<byte> q, sbyte* x, Vector128<byte> scales, int a) where TMul : struct, IMulAdd16
    {
        var xv = Avx.LoadVector256(x);
        var p = Avx2.Subtract(Avx2.MultiplyAddAdjacent(q, xv), Avx2.MultiplyAddAdjacent(Vector256.Create((byte)32), xv));
        var pick = Vector128.Create(0x0101010101010101ul * (ulong)a, 0x0101010101010101ul * (ulong)(a + 1)).AsByte();
        var sc = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(scales, pick).AsSByte());
        return TMul.MulAdd16(s, p, sc);
    }

    // ---------------------------------------------------------------------------------------------
    // Scalar paths: the same int32 lanes (element i of a super-block goes to lane (i % 32) / 4) and the same
    // float operations in the same order as the AVX2 paths.

    private static float Half(byte* p) => (float)BitConverter.UInt16BitsToHalf(*(ushort*)p);

    private static float Sum8(float* a) => ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));

    /// <summary>sc_j and m_j of a Q4_K/Q5_K super-block, j = 0..7 (ggml get_scale_min_k4).</summary>
    private static void ScalesAndMins(byte* s, int* sc, int* m)
    {
        for (int j = 0; j < 8; j++)
        {
            if (j < 4) { sc[j] = s[j] & 63; m[j] = s[j + 4] & 63; }
            else { sc[j] = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4); m[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
        }
    }

    /// <summary>Code i (0..255) of a Q4_K (qh null) or Q5_K super-block: quants qs, fifth bits qh.</summary>
    private static int Q45Code(byte* qs, byte* qh, int i)
    {
        int c = i / 64, l = i % 32;
        bool high = (i & 32) != 0;
        int q = high ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xF;
        if (qh != null) q |= ((qh[l] >> (2 * c + (high ? 1 : 0))) & 1) << 4;
        return q;
    }

    internal static float DotQ4_KPortable(byte* row, sbyte* xq, float* xd, short* bsums, int nb) => DotQ45Portable(row, xq, xd, bsums, nb, false);

    internal static float DotQ5_KPortable(byte* row, sbyte* xq, float* xd, short* bsums, int nb) => DotQ45Portable(row, xq, xd, bsums, nb, true);

    private static float DotQ45Portable(byte* row, sbyte* xq, float* xd, short* bsums, int nb, bool q5)
    {
        float* acc = stackalloc float[8];
        float* accM = stackalloc float[4];
        int* lanes = stackalloc int[8];
        int* sc = stackalloc int[8];
        int* m = stackalloc int[8];
        for (int k = 0; k < 8; k++) acc[k] = 0;
        for (int k = 0; k < 4; k++) accM[k] = 0;
        float accM5 = 0;
        int bytes = q5 ? Q5KBytes : Q4KBytes;
        for (int i = 0; i < nb; i++)
        {
            byte* blk = row + i * bytes;
            sbyte* x = xq + i * QK_K;
            short* bs = bsums + i * 16;
            float d = xd[i] * Half(blk);
            float dmin = -xd[i] * Half(blk + 2);
            ScalesAndMins(blk + 4, sc, m);
            byte* qh = q5 ? blk + 16 : null;
            byte* qs = q5 ? blk + 48 : blk + 16;
            for (int k = 0; k < 8; k++) lanes[k] = 0;
            for (int e = 0; e < QK_K; e++) lanes[(e % 32) / 4] += sc[e / 32] * Q45Code(qs, qh, e) * x[e];
            for (int k = 0; k < 8; k++) acc[k] = MathF.FusedMultiplyAdd(d, lanes[k], acc[k]);
            int mins = 0;
            for (int k = 0; k < 4; k++)
            {
                int lane = m[2 * k] * (bs[4 * k] + bs[4 * k + 1]) + m[2 * k + 1] * (bs[4 * k + 2] + bs[4 * k + 3]);
                accM[k] = MathF.FusedMultiplyAdd(dmin, lane, accM[k]);
                mins += lane;
            }
            accM5 = MathF.FusedMultiplyAdd(dmin, mins, accM5);
        }
        return Sum8(acc) + (q5 ? accM5 : (accM[0] + accM[2]) + (accM[1] + accM[3]));
    }

    internal static float DotQ6_KPortable(byte* row, sbyte* xq, float* xd, int nb)
    {
        float* acc = stackalloc float[8];
        int* lanes = stackalloc int[8];
        for (int k = 0; k < 8; k++) acc[k] = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* blk = row + i * Q6KBytes;
            sbyte* x = xq + i * QK_K;
            float d = xd[i] * Half(blk + 208);
            for (int k = 0; k < 8; k++) lanes[k] = 0;
            for (int e = 0; e < QK_K; e++)
            {
                // element e = 128h + 32k + l: ql byte 64h + l (k even) or 64h + 32 + l (k odd), low nibble for
                // k < 2; qh byte 32h + l, bits 2k..2k+1; scale 8h + 2k + l / 16.
                int h = e / 128, k = (e / 32) % 4, l = e % 32;
                int ql = blk[64 * h + (k & 1) * 32 + l];
                int q = (k < 2 ? ql & 0xF : ql >> 4) | (((blk[128 + 32 * h + l] >> (2 * k)) & 3) << 4);
                lanes[l / 4] += (sbyte)blk[192 + 8 * h + 2 * k + l / 16] * (q - 32) * x[e];
            }
            for (int k = 0; k < 8; k++) acc[k] = MathF.FusedMultiplyAdd(d, lanes[k], acc[k]);
        }
        return Sum8(acc);
    }
}
