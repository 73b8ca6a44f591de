// Dot products of quantized weight rows with an activation vector quantized to Q8_0 blocks, as ggml does
// for Q8_0 and Q4_0 weights (ggml_vec_dot_q8_0_q8_0, ggml_vec_dot_q4_0_q8_0): per block of 32, an integer
// dot of the int8 codes, scaled by d_w * d_x. Quantizing the activations like ggml (scale stored as fp16,
// codes rounded to nearest even by its SIMD path) keeps Duet's greedy tokens equal to llama.cpp's.
// One loop serves both weight formats through a struct type parameter (IWeightBlocks: the block size and
// how to get a block's 32 int8 codes), so the JIT compiles a specialized copy of each.
// Paths: AVX-VNNI or AVX2 (four accumulators), AVX-512 without VNNI (two blocks per vector), portable scalar.
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

    private static float* BuildHalfTable()
    {
        var t = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(65536 * 4, 64); // lives as long as the process
        for (int i = 0; i < 65536; i++) t[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return t;
    }

    /// <summary>
    /// Eight int32 sums of four w·x products each. With AVX-VNNI one vpdpbusd (|w| unsigned times x with w's
    /// sign, no 16-bit saturation); otherwise vpmaddubsw then vpmaddwd, as ggml does without VNNI.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotI8(Vector256<sbyte> w, Vector256<sbyte> x) => AvxVnni.IsSupported
        ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(w), Avx2.Sign(x, w))
        : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(x, w)), Vector256.Create((short)1));

    /// <summary>Quantizes x (a multiple of 32 long) to Q8_0: codes and per-block scales (already rounded through fp16).</summary>
    public static void QuantizeActivations(ReadOnlySpan<float> x, Span<sbyte> codes, Span<float> scales)
    {
        int blocks = x.Length / 32;
        if (Avx.IsSupported && codes.Length >= blocks * 32)
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

    private static float Dot<T>(byte* row, sbyte* xq, float* xd, int blocks) where T : struct, IWeightBlocks
    {
        int bs = T.BlockBytes;
        float* half = s_half; // through a local: reading the static field in the loop measured 1.4x slower
        if (Avx512BW.IsSupported && !AvxVnni.IsSupported && blocks >= 2)
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
            if (b < blocks) total += ScalarBlocks<T>(row + b * bs, xq + b * 32, xd + b, 1);
            return total;
        }
        if (Avx2.IsSupported)
        {
            // Four blocks per iteration into four accumulators: the FMA chain (4 cycles) no longer bounds the loop.
            var a0 = Vector256<float>.Zero; var a1 = Vector256<float>.Zero; var a2 = Vector256<float>.Zero; var a3 = Vector256<float>.Zero;
            int b = 0;
            for (; b + 3 < blocks; b += 4)
            {
                byte* blk = row + b * bs;
                Sse.Prefetch0(blk + 640); // about 20 to 35 blocks ahead: rows stream from DRAM in decode
                a0 = Block(T.Codes(blk), xq + b * 32, half[*(ushort*)blk] * xd[b], a0);
                a1 = Block(T.Codes(blk + bs), xq + b * 32 + 32, half[*(ushort*)(blk + bs)] * xd[b + 1], a1);
                a2 = Block(T.Codes(blk + 2 * bs), xq + b * 32 + 64, half[*(ushort*)(blk + 2 * bs)] * xd[b + 2], a2);
                a3 = Block(T.Codes(blk + 3 * bs), xq + b * 32 + 96, half[*(ushort*)(blk + 3 * bs)] * xd[b + 3], a3);
            }
            for (; b < blocks; b++) a0 = Block(T.Codes(row + b * bs), xq + b * 32, half[*(ushort*)(row + b * bs)] * xd[b], a0);
            return Vector256.Sum(Avx.Add(Avx.Add(a0, a1), Avx.Add(a2, a3)));
        }
        return ScalarBlocks<T>(row, xq, xd, blocks);
    }

    private static float ScalarBlocks<T>(byte* row, sbyte* xq, float* xd, int blocks) where T : struct, IWeightBlocks
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
    private static Vector256<float> Block(Vector256<sbyte> w, sbyte* xq, float scale, Vector256<float> acc)
    {
        var sumi = DotI8(w, Avx.LoadVector256(xq));
        var d = Vector256.Create(scale);
        return Fma.IsSupported ? Fma.MultiplyAdd(d, Avx.ConvertToVector256Single(sumi), acc) : Avx.Add(acc, Avx.Multiply(d, Avx.ConvertToVector256Single(sumi)));
    }

    /// <summary>
    /// Four activation rows against one Q8_0 or Q4_0 weight row: the weight codes of each pair of blocks are
    /// loaded (and for Q4_0 unpacked) once and used four times. xq/xd point at row 0; rows are
    /// <paramref name="stride"/> codes (and stride/32 scales) apart. AVX-512 only; callers fall back otherwise.
    /// </summary>
    public static void Dot4(bool q4, byte* row, sbyte* xq, float* xd, int stride, int blocks, Span<float> result)
    {
        if (q4) Dot4<Q4Blocks>(row, xq, xd, stride, blocks, result);
        else Dot4<Q8Blocks>(row, xq, xd, stride, blocks, result);
    }

    private static void Dot4<T>(byte* row, sbyte* xq, float* xd, int stride, int blocks, Span<float> result) where T : struct, IWeightBlocks
    {
        var a0 = Vector512<float>.Zero; var a1 = Vector512<float>.Zero; var a2 = Vector512<float>.Zero; var a3 = Vector512<float>.Zero;
        int bs = T.BlockBytes, sb = stride / 32;
        float* half = s_half;
        int b = 0;
        for (; b + 1 < blocks; b += 2)
        {
            byte* blk = row + b * bs;
            var w = Vector512.Create(T.Codes(blk), T.Codes(blk + bs));
            var aw = Avx512BW.Abs(w);
            var neg = Vector512.LessThan(w, Vector512<sbyte>.Zero);
            float dA = half[*(ushort*)blk], dB = half[*(ushort*)(blk + bs)];
            a0 = Pair512(aw, neg, xq + b * 32, dA * xd[b], dB * xd[b + 1], a0);
            a1 = Pair512(aw, neg, xq + stride + b * 32, dA * xd[sb + b], dB * xd[sb + b + 1], a1);
            a2 = Pair512(aw, neg, xq + 2 * stride + b * 32, dA * xd[2 * sb + b], dB * xd[2 * sb + b + 1], a2);
            a3 = Pair512(aw, neg, xq + 3 * stride + b * 32, dA * xd[3 * sb + b], dB * xd[3 * sb + b + 1], a3);
        }
        result[0] = Vector512.Sum(a0); result[1] = Vector512.Sum(a1); result[2] = Vector512.Sum(a2); result[3] = Vector512.Sum(a3);
        if (b < blocks)
            for (int k = 0; k < 4; k++) result[k] += Dot<T>(row + b * bs, xq + k * stride + b * 32, xd + k * sb + b, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pair512(Vector512<byte> absW, Vector512<sbyte> negW, sbyte* x, float dA, float dB, Vector512<float> acc)
    {
        var xv = Avx512BW.LoadVector512(x);
        var sx = Vector512.ConditionalSelect(negW, -xv, xv);
        var sumi = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(absW, sx), Vector512.Create((short)1));
        return Avx512F.FusedMultiplyAdd(Vector512.Create(Vector256.Create(dA), Vector256.Create(dB)), Avx512F.ConvertToVector512Single(sumi), acc);
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
