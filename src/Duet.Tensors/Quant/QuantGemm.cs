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
// Without AVX-VNNI (AMD Zen 4 has AVX-512 VNNI, which .NET 10 does not expose, and no AVX-VNNI; older AVX2 CPUs
// have neither) the same layout runs on vpmaddubsw/vpmaddwd, exact in integers as ggml's AVX2 path is:
//  - Q4_0: nibbles 0..15 times int8 codes are at most 2·15·128 = 3840 per 16-bit pair, so a whole group's eight
//    steps add up in 16 bits (at most 30720) and one vpmaddwd per group widens them;
//  - Q8_0: codes stay signed (no +128), |w| times x with w's sign (at most 2·128·127 = 32512 per pair), one
//    vpmaddwd per step; the offset is 0.
// Weights are packed per row once per call (a matrix product of up to 32 tokens), activations once per call;
// two weight rows then meet four tokens at a time (Row2x4: each activation load serves both rows).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Quant;

public static unsafe class QuantGemm
{
    /// <summary>The instructions the grouped kernels run on, by <see cref="Kernels.CpuProfile.Current"/>: AVX-VNNI, else AVX2 (vpmaddubsw, vpmaddwd), else none.</summary>
    public static QuantGemmKind Kind => Kernels.CpuProfile.Current switch
    {
        { AvxVnni: true } => QuantGemmKind.Vnni,
        { Avx2: true } => QuantGemmKind.Avx2,
        _ => QuantGemmKind.None,
    };

    /// <summary>True where the grouped kernels run.</summary>
    public static bool Supported => Kind != QuantGemmKind.None;

    /// <summary>The unsigned offset of the weight codes: 8 for Q4_0; 128 for Q8_0 with VNNI, 0 (signed codes) without.</summary>
    public static int Offset(GgmlType t) => Offset(t, Kind);

    private static int Offset(GgmlType t, QuantGemmKind kind) => t == GgmlType.Q4_0 ? 8 : kind == QuantGemmKind.Vnni ? 128 : 0;

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

    /// <summary>Packs one weight row's whole groups (codes plus <see cref="Offset(GgmlType)"/>) and their scales as floats.</summary>
    public static void PackRow(GgmlType type, byte* row, int blocks, byte* packed, float* scales)
    {
        if (Kernels.CpuProfile.Current.Avx512) PackRowAvx512(type, Kind, row, blocks, packed, scales);
        else PackRowPortable(type, row, blocks, packed, scales);
    }

    /// <summary>The same packing with one 32-bit word at a time (the definition; for CPUs without AVX-512).</summary>
    public static void PackRowPortable(GgmlType type, byte* row, int blocks, byte* packed, float* scales)
    {
        uint flip = Offset(type) == 128 ? 0x80808080u : 0u;
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
                    for (int s = 0; s < 8; s++) dst[s * 8 + j] = *(uint*)(blk + 2 + 4 * s) ^ flip; // code + 128 (VNNI) or the code
                }
            }
        }
    }

    // The packing is an 8x8 transpose of 32-bit words per group (word s of block j to step s, lane j), done in
    // registers: blocks two per 512-bit vector, then two rounds of vpermt2d. It ran one word at a time before,
    // a quarter of prompt time with 32-token batches (each weight row is packed once per batch).
    private static void PackRowAvx512(GgmlType type, QuantGemmKind kind, byte* row, int blocks, byte* packed, float* scales)
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
        var flip = Vector512.Create(Offset(type, kind) == 128 ? unchecked((int)0x80808080u) : 0);
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

    // How one step (32 bytes of packed weight codes against 32 of one token's codes) enters a token's int32
    // lane sums. Acc is the running state of one token in one group: Init from the starting sums, Step per
    // step, Sum at the end of the group (the eight int32 block dots, starting sums included). Prep is done once
    // per weight vector and shared by the tokens. Each kind is a struct, so the JIT compiles a copy per kind.
    private interface IGroupDot
    {
        static abstract Vector256<int> Init(Vector256<int> start);
        static abstract Vector256<sbyte> Prep(Vector256<sbyte> w);
        static abstract Vector256<int> Step(Vector256<int> acc, Vector256<sbyte> w, Vector256<sbyte> prepared, Vector256<sbyte> x);
        static abstract Vector256<int> Sum(Vector256<int> acc, Vector256<int> start);
    }

    // vpdpbusd: unsigned weight codes (offset 8 or 128) times signed codes into int32, the start already in.
    private struct VnniDot : IGroupDot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<int> Init(Vector256<int> start) => start;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<sbyte> Prep(Vector256<sbyte> w) => w;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Step(Vector256<int> acc, Vector256<sbyte> w, Vector256<sbyte> prepared, Vector256<sbyte> x)
            => AvxVnni.MultiplyWideningAndAdd(acc, w.AsByte(), x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<int> Sum(Vector256<int> acc, Vector256<int> start) => acc;
    }

    // Q8_0 without VNNI: signed weight codes; |w| (prepared once) times x with w's sign, widened per step.
    private struct SignDot : IGroupDot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<int> Init(Vector256<int> start) => start;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<sbyte> Prep(Vector256<sbyte> w) => Avx2.Abs(w).AsSByte();
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Step(Vector256<int> acc, Vector256<sbyte> w, Vector256<sbyte> prepared, Vector256<sbyte> x)
            => Avx2.Add(acc, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(prepared.AsByte(), Avx2.Sign(x, w)), Vector256.Create((short)1)));
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<int> Sum(Vector256<int> acc, Vector256<int> start) => acc;
    }

    // Q4_0 without VNNI: nibbles (0..15) times x summed in 16 bits over the group, widened once at its end.
    private struct NibbleDot : IGroupDot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<int> Init(Vector256<int> start) => Vector256<int>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<sbyte> Prep(Vector256<sbyte> w) => w;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Step(Vector256<int> acc, Vector256<sbyte> w, Vector256<sbyte> prepared, Vector256<sbyte> x)
            => Avx2.Add(acc.AsInt16(), Avx2.MultiplyAddAdjacent(w.AsByte(), x)).AsInt32();
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Sum(Vector256<int> acc, Vector256<int> start)
            => Avx2.Add(start, Avx2.MultiplyAddAdjacent(acc.AsInt16(), Vector256.Create((short)1)));
    }

    /// <summary>
    /// One packed weight row against four packed activation rows (row k at packedX + k·xStride bytes,
    /// start + k·sStride, xScales + k·dStride): result[k] = Σ over whole groups of d_w·d_x·Σ w·x.
    /// </summary>
    public static void Row4(GgmlType type, byte* packedW, float* wScales, sbyte* packedX, int* start, float* xScales, int xStride, int sStride, int dStride, int groups, float* result)
    {
        if (Kind == QuantGemmKind.Vnni) Row4<VnniDot>(packedW, wScales, packedX, start, xScales, xStride, sStride, dStride, groups, result);
        else if (type == GgmlType.Q4_0) Row4<NibbleDot>(packedW, wScales, packedX, start, xScales, xStride, sStride, dStride, groups, result);
        else Row4<SignDot>(packedW, wScales, packedX, start, xScales, xStride, sStride, dStride, groups, result);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row4<T>(byte* packedW, float* wScales, sbyte* packedX, int* start, float* xScales, int xStride, int sStride, int dStride, int groups, float* result)
        where T : struct, IGroupDot
    {
        var f0 = Vector256<float>.Zero; var f1 = Vector256<float>.Zero; var f2 = Vector256<float>.Zero; var f3 = Vector256<float>.Zero;
        sbyte* x0 = packedX, x1 = packedX + xStride, x2 = packedX + 2 * xStride, x3 = packedX + 3 * xStride;
        for (int g = 0; g < groups; g++)
        {
            // Two accumulators per token (even and odd steps): eight dependent steps would wait on latency.
            var s0 = Avx.LoadVector256(start + g * 8); var s1 = Avx.LoadVector256(start + sStride + g * 8);
            var s2 = Avx.LoadVector256(start + 2 * sStride + g * 8); var s3 = Avx.LoadVector256(start + 3 * sStride + g * 8);
            var a0 = T.Init(s0); var a1 = T.Init(s1); var a2 = T.Init(s2); var a3 = T.Init(s3);
            var b0 = Vector256<int>.Zero; var b1 = Vector256<int>.Zero; var b2 = Vector256<int>.Zero; var b3 = Vector256<int>.Zero;
            sbyte* w = (sbyte*)packedW + g * 256;
            int o = g * 256;
            for (int s = 0; s < 256; s += 64)
            {
                var we = Avx.LoadVector256(w + s); var pe = T.Prep(we);
                var wo = Avx.LoadVector256(w + s + 32); var po = T.Prep(wo);
                a0 = T.Step(a0, we, pe, Avx.LoadVector256(x0 + o + s));
                a1 = T.Step(a1, we, pe, Avx.LoadVector256(x1 + o + s));
                a2 = T.Step(a2, we, pe, Avx.LoadVector256(x2 + o + s));
                a3 = T.Step(a3, we, pe, Avx.LoadVector256(x3 + o + s));
                b0 = T.Step(b0, wo, po, Avx.LoadVector256(x0 + o + s + 32));
                b1 = T.Step(b1, wo, po, Avx.LoadVector256(x1 + o + s + 32));
                b2 = T.Step(b2, wo, po, Avx.LoadVector256(x2 + o + s + 32));
                b3 = T.Step(b3, wo, po, Avx.LoadVector256(x3 + o + s + 32));
            }
            var dw = Avx.LoadVector256(wScales + g * 8);
            f0 = Finish(T.Sum(a0, s0) + T.Sum(b0, Vector256<int>.Zero), dw, xScales + g * 8, f0);
            f1 = Finish(T.Sum(a1, s1) + T.Sum(b1, Vector256<int>.Zero), dw, xScales + dStride + g * 8, f1);
            f2 = Finish(T.Sum(a2, s2) + T.Sum(b2, Vector256<int>.Zero), dw, xScales + 2 * dStride + g * 8, f2);
            f3 = Finish(T.Sum(a3, s3) + T.Sum(b3, Vector256<int>.Zero), dw, xScales + 3 * dStride + g * 8, f3);
        }
        result[0] = Vector256.Sum(f0); result[1] = Vector256.Sum(f1); result[2] = Vector256.Sum(f2); result[3] = Vector256.Sum(f3);
    }

    /// <summary>
    /// Two packed weight rows (the second at packedW + wStride bytes, its scales at wScales + sOff) against four
    /// packed activation rows, as <see cref="Row4(GgmlType, byte*, float*, sbyte*, int*, float*, int, int, int, int, float*)"/>
    /// twice but each activation load serving both rows. result[4i + k] is row i, token k.
    /// </summary>
    public static void Row2x4(GgmlType type, byte* packedW, int wStride, float* wScales, int sOff, sbyte* packedX, int* start, float* xScales, int xStride, int sStride, int dStride, int groups, float* result)
    {
        if (Kind == QuantGemmKind.Vnni) Row2x4<VnniDot>(packedW, wStride, wScales, sOff, packedX, start, xScales, xStride, sStride, dStride, groups, result);
        else if (type == GgmlType.Q4_0) Row2x4<NibbleDot>(packedW, wStride, wScales, sOff, packedX, start, xScales, xStride, sStride, dStride, groups, result);
        else Row2x4<SignDot>(packedW, wStride, wScales, sOff, packedX, start, xScales, xStride, sStride, dStride, groups, result);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row2x4<T>(byte* packedW, int wStride, float* wScales, int sOff, sbyte* packedX, int* start, float* xScales, int xStride, int sStride, int dStride, int groups, float* result)
        where T : struct, IGroupDot
    {
        var f0 = Vector256<float>.Zero; var f1 = Vector256<float>.Zero; var f2 = Vector256<float>.Zero; var f3 = Vector256<float>.Zero;
        var h0 = Vector256<float>.Zero; var h1 = Vector256<float>.Zero; var h2 = Vector256<float>.Zero; var h3 = Vector256<float>.Zero;
        sbyte* x0 = packedX, x1 = packedX + xStride, x2 = packedX + 2 * xStride, x3 = packedX + 3 * xStride;
        for (int g = 0; g < groups; g++)
        {
            var s0 = Avx.LoadVector256(start + g * 8); var s1 = Avx.LoadVector256(start + sStride + g * 8);
            var s2 = Avx.LoadVector256(start + 2 * sStride + g * 8); var s3 = Avx.LoadVector256(start + 3 * sStride + g * 8);
            var a0 = T.Init(s0); var a1 = T.Init(s1); var a2 = T.Init(s2); var a3 = T.Init(s3);
            var c0 = a0; var c1 = a1; var c2 = a2; var c3 = a3;
            sbyte* w = (sbyte*)packedW + g * 256;
            int o = g * 256;
            for (int s = 0; s < 256; s += 32)
            {
                var wa = Avx.LoadVector256(w + s); var pa = T.Prep(wa);
                var wb = Avx.LoadVector256(w + wStride + s); var pb = T.Prep(wb);
                var v0 = Avx.LoadVector256(x0 + o + s);
                var v1 = Avx.LoadVector256(x1 + o + s);
                var v2 = Avx.LoadVector256(x2 + o + s);
                var v3 = Avx.LoadVector256(x3 + o + s);
                a0 = T.Step(a0, wa, pa, v0);
                a1 = T.Step(a1, wa, pa, v1);
                a2 = T.Step(a2, wa, pa, v2);
                a3 = T.Step(a3, wa, pa, v3);
                c0 = T.Step(c0, wb, pb, v0);
                c1 = T.Step(c1, wb, pb, v1);
                c2 = T.Step(c2, wb, pb, v2);
                c3 = T.Step(c3, wb, pb, v3);
            }
            var dw = Avx.LoadVector256(wScales + g * 8);
            var dv = Avx.LoadVector256(wScales + sOff + g * 8);
            var d0 = Avx.LoadVector256(xScales + g * 8); var d1 = Avx.LoadVector256(xScales + dStride + g * 8);
            var d2 = Avx.LoadVector256(xScales + 2 * dStride + g * 8); var d3 = Avx.LoadVector256(xScales + 3 * dStride + g * 8);
            f0 = Fma.MultiplyAdd(dw * d0, Avx.ConvertToVector256Single(T.Sum(a0, s0)), f0);
            f1 = Fma.MultiplyAdd(dw * d1, Avx.ConvertToVector256Single(T.Sum(a1, s1)), f1);
            f2 = Fma.MultiplyAdd(dw * d2, Avx.ConvertToVector256Single(T.Sum(a2, s2)), f2);
            f3 = Fma.MultiplyAdd(dw * d3, Avx.ConvertToVector256Single(T.Sum(a3, s3)), f3);
            h0 = Fma.MultiplyAdd(dv * d0, Avx.ConvertToVector256Single(T.Sum(c0, s0)), h0);
            h1 = Fma.MultiplyAdd(dv * d1, Avx.ConvertToVector256Single(T.Sum(c1, s1)), h1);
            h2 = Fma.MultiplyAdd(dv * d2, Avx.ConvertToVector256Single(T.Sum(c2, s2)), h2);
            h3 = Fma.MultiplyAdd(dv * d3, Avx.ConvertToVector256Single(T.Sum(c3, s3)), h3);
        }
        result[0] = Vector256.Sum(f0); result[1] = Vector256.Sum(f1); result[2] = Vector256.Sum(f2); result[3] = Vector256.Sum(f3);
        result[4] = Vector256.Sum(h0); result[5] = Vector256.Sum(h1); result[6] = Vector256.Sum(h2); result[7] = Vector256.Sum(h3);
    }

    /// <summary>One packed weight row against one packed activation row.</summary>
    public static float Row1(GgmlType type, byte* packedW, float* wScales, sbyte* packedX, int* start, float* xScales, int groups)
        => Kind == QuantGemmKind.Vnni ? Row1<VnniDot>(packedW, wScales, packedX, start, xScales, groups)
        : type == GgmlType.Q4_0 ? Row1<NibbleDot>(packedW, wScales, packedX, start, xScales, groups)
        : Row1<SignDot>(packedW, wScales, packedX, start, xScales, groups);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Row1<T>(byte* packedW, float* wScales, sbyte* packedX, int* start, float* xScales, int groups) where T : struct, IGroupDot
    {
        var f = Vector256<float>.Zero;
        for (int g = 0; g < groups; g++)
        {
            var st = Avx.LoadVector256(start + g * 8);
            var a = T.Init(st);
            var b = Vector256<int>.Zero;
            sbyte* w = (sbyte*)packedW + g * 256;
            sbyte* x = packedX + g * 256;
            for (int s = 0; s < 256; s += 64)
            {
                var we = Avx.LoadVector256(w + s);
                var wo = Avx.LoadVector256(w + s + 32);
                a = T.Step(a, we, T.Prep(we), Avx.LoadVector256(x + s));
                b = T.Step(b, wo, T.Prep(wo), Avx.LoadVector256(x + s + 32));
            }
            f = Finish(T.Sum(a, st) + T.Sum(b, Vector256<int>.Zero), Avx.LoadVector256(wScales + g * 8), xScales + g * 8, f);
        }
        return Vector256.Sum(f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Finish(Vector256<int> sums, Vector256<float> dw, float* dx, Vector256<float> acc)
        => Fma.MultiplyAdd(dw * Avx.LoadVector256(dx), Avx.ConvertToVector256Single(sums), acc);
}

/// <summary>The instructions <see cref="QuantGemm"/>'s grouped kernels run on.</summary>
public enum QuantGemmKind
{
    /// <summary>No grouped kernels (no AVX2): prompts take the per-token kernels.</summary>
    None,
    /// <summary>AVX-VNNI vpdpbusd on 256 bits.</summary>
    Vnni,
    /// <summary>AVX2 vpmaddubsw and vpmaddwd, exact in integers (see the file's comment).</summary>
    Avx2,
}
