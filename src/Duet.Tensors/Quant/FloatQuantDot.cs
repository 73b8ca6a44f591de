// Q8_0 and Q4_0 rows against a float activation, for QuantizedMath.Float: codes widened to float in registers
// and multiplied with the unrounded activation (no 8-bit rounding of x, unlike QuantDot). Per block of 32 the
// products are summed, then scaled by the block's d: Σ_b d_b Σ_j q_bj x_bj, the quantized row's exact dot up to
// float rounding. Generation stays bound by reading the weights; the widening costs a few instructions a block.
// Also a fast expansion of whole rows (prompt processing expands each row once per batch): bit-identical to
// BlockFormats.DequantizeRow (the same single float multiply q * d per element).
// Paths: AVX-512 (16 lanes), AVX2 + FMA (8 lanes), portable scalar.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Quant;

public static unsafe class FloatQuantDot
{
    /// <summary>Whether <see cref="Dot"/> has a kernel for the type.</summary>
    public static bool Supports(GgmlType t) => t is GgmlType.Q8_0 or GgmlType.Q4_0;

    /// <summary>Whether <see cref="Expand"/> has a vector path for the type.</summary>
    public static bool CanExpand(GgmlType t) => t is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>Σ_c W[c] x[c] for one Q8_0 or Q4_0 row of <paramref name="blocks"/> blocks.</summary>
    public static float Dot(GgmlType type, byte* w, float* x, int blocks)
    {
        var cpu = Kernels.CpuProfile.Current;
        if (type == GgmlType.Q8_0)
        {
            if (cpu.Avx512) return DotQ8_0Avx512(w, x, blocks);
            if (cpu.Avx2) return DotQ8_0Avx2(w, x, blocks);
        }
        else if (type == GgmlType.Q4_0)
        {
            if (cpu.Avx512) return DotQ4_0Avx512(w, x, blocks);
            if (cpu.Avx2) return DotQ4_0Avx2(w, x, blocks);
        }
        else throw new NotSupportedException($"FloatQuantDot: {type}");
        return DotPortable(type, w, x, blocks);
    }

    /// <summary>
    /// A row of <paramref name="blocks"/> blocks (32 elements for Q8_0/Q4_0, 256 for K-quants) expanded to floats,
    /// as <see cref="BlockFormats.DequantizeRow"/> computes them (same operations in the same order: same bits).
    /// </summary>
    public static void Expand(GgmlType type, byte* w, float* y, int blocks)
    {
        float* half = QuantDot.HalfTable;
        bool v512 = Kernels.CpuProfile.Current.Avx512;
        if (type is GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K)
        {
            if (!v512)
            {
                int ts = (int)GgmlTypeInfo.TypeSize(type);
                BlockFormats.DequantizeRow(type, new ReadOnlySpan<byte>(w, blocks * ts), new Span<float>(y, blocks * QK_K));
                return;
            }
            int size = type switch { GgmlType.Q4_K => 144, GgmlType.Q5_K => 176, _ => 210 };
            for (int b = 0; b < blocks; b++, w += size, y += QK_K)
                if (type == GgmlType.Q6_K) ExpandQ6_K(w, y, half); else ExpandQ45_K(w, y, half, type == GgmlType.Q5_K);
            return;
        }
        if (type == GgmlType.Q8_0)
        {
            for (int b = 0; b < blocks; b++, w += 34, y += 32)
            {
                float d = half[*(ushort*)w];
                if (v512)
                {
                    var vd = Vector512.Create(d);
                    (Widen16(w + 2) * vd).Store(y);
                    (Widen16(w + 18) * vd).Store(y + 16);
                }
                else for (int j = 0; j < 32; j++) y[j] = (sbyte)w[2 + j] * d;
            }
        }
        else if (type == GgmlType.Q4_0)
        {
            for (int b = 0; b < blocks; b++, w += 18, y += 32)
            {
                float d = half[*(ushort*)w];
                if (v512)
                {
                    var (lo, hi) = Nibbles16(w + 2);
                    var vd = Vector512.Create(d);
                    (lo * vd).Store(y);
                    (hi * vd).Store(y + 16);
                }
                else
                    for (int j = 0; j < 16; j++)
                    {
                        y[j] = ((w[2 + j] & 0x0F) - 8) * d;
                        y[j + 16] = ((w[2 + j] >> 4) - 8) * d;
                    }
            }
        }
        else throw new NotSupportedException($"FloatQuantDot: {type}");
    }

    private const int QK_K = GgmlTypeInfo.QK_K;

    // Q4_K / Q5_K: 8 sub-blocks of 32, y = d·sc·q − dmin·m (BlockFormats.Q4_K/Q5_K: product then difference, no FMA).
    // Sub-blocks 2i and 2i+1 take the low and high nibbles of the same 32 bytes; Q5_K adds bit 2i / 2i+1 of qh as 16.
    private static void ExpandQ45_K(byte* x, float* y, float* half, bool five)
    {
        float d = half[*(ushort*)x], min = half[*(ushort*)(x + 2)];
        var scales = new ReadOnlySpan<byte>(x + 4, 12);
        byte* qh = x + 16;
        byte* q = five ? x + 48 : x + 16;
        var nib = Vector512.Create(0x0F);
        var one = Vector512.Create(1);
        for (int pair = 0; pair < 4; pair++, q += 32, y += 64)
        {
            BlockFormats.ScaleMinK4(2 * pair, scales, out int sc1, out int m1i);
            BlockFormats.ScaleMinK4(2 * pair + 1, scales, out int sc2, out int m2i);
            var d1 = Vector512.Create(d * sc1); var m1 = Vector512.Create(min * m1i);
            var d2 = Vector512.Create(d * sc2); var m2 = Vector512.Create(min * m2i);
            for (int l = 0; l < 32; l += 16)
            {
                var v = Avx512F.ConvertToVector512Int32(Vector128.Load(q + l));
                var lo = v & nib;
                var hi = Vector512.ShiftRightLogical(v, 4);
                if (five)
                {
                    var h = Avx512F.ConvertToVector512Int32(Vector128.Load(qh + l));
                    lo += Vector512.ShiftLeft(Vector512.ShiftRightLogical(h, 2 * pair) & one, 4);
                    hi += Vector512.ShiftLeft(Vector512.ShiftRightLogical(h, 2 * pair + 1) & one, 4);
                }
                (d1 * Avx512F.ConvertToVector512Single(lo) - m1).Store(y + l);
                (d2 * Avx512F.ConvertToVector512Single(hi) - m2).Store(y + 32 + l);
            }
        }
    }

    // Q6_K: 16 sub-blocks of 16 with int8 scales, y = (d·sc)·(q − 32), q = 4 low bits from ql and 2 high from qh
    // (BlockFormats.Q6_K's order of operations).
    private static void ExpandQ6_K(byte* x, float* y, float* half)
    {
        float d = half[*(ushort*)(x + 208)];
        byte* ql = x, qh = x + 128;
        sbyte* sc = (sbyte*)(x + 192);
        var nib = Vector512.Create(0x0F);
        var three = Vector512.Create(3);
        var k32 = Vector512.Create(32);
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, y += 128)
            for (int l = 0; l < 32; l += 16)
            {
                int s = l / 16;
                var a = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + l));
                var b = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + l + 32));
                var h = Avx512F.ConvertToVector512Int32(Vector128.Load(qh + l));
                var q1 = ((a & nib) | Vector512.ShiftLeft(h & three, 4)) - k32;
                var q2 = ((b & nib) | Vector512.ShiftLeft(Vector512.ShiftRightLogical(h, 2) & three, 4)) - k32;
                var q3 = (Vector512.ShiftRightLogical(a, 4) | Vector512.ShiftLeft(Vector512.ShiftRightLogical(h, 4) & three, 4)) - k32;
                var q4 = (Vector512.ShiftRightLogical(b, 4) | Vector512.ShiftLeft(Vector512.ShiftRightLogical(h, 6) & three, 4)) - k32;
                (Vector512.Create(d * sc[s]) * Avx512F.ConvertToVector512Single(q1)).Store(y + l);
                (Vector512.Create(d * sc[s + 2]) * Avx512F.ConvertToVector512Single(q2)).Store(y + l + 32);
                (Vector512.Create(d * sc[s + 4]) * Avx512F.ConvertToVector512Single(q3)).Store(y + l + 64);
                (Vector512.Create(d * sc[s + 6]) * Avx512F.ConvertToVector512Single(q4)).Store(y + l + 96);
            }
    }

    // 16 int8 codes as floats (vpmovsxbd + vcvtdq2ps).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen16(byte* p) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)p)));

    // The 32 Q4_0 values of 16 bytes as floats minus 8: low nibbles are elements 0..15, high nibbles 16..31
    // (one widening of the 16 bytes to int32 lanes, then each nibble masked out of its lane).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Lo, Vector512<float> Hi) Nibbles16(byte* p)
    {
        var q = Avx512F.ConvertToVector512Int32(Vector128.Load(p));
        var mask = Vector512.Create(0x0F);
        var eight = Vector512.Create(8);
        return (Avx512F.ConvertToVector512Single((q & mask) - eight), Avx512F.ConvertToVector512Single(Vector512.ShiftRightLogical(q, 4) - eight));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotQ8_0Avx512(byte* w, float* x, int blocks)
    {
        float* half = QuantDot.HalfTable;
        Vector512<float> acc0 = default, acc1 = default;
        int b = 0;
        for (; b + 2 <= blocks; b += 2, w += 68, x += 64)
        {
            Sse.Prefetch0(w + 4096); // weights stream from memory: keep loads in flight (as QuantDot; may point past the row, never faults)
            Sse.Prefetch0(w + 4096 + 64);
            var s0 = Avx512F.FusedMultiplyAdd(Widen16(w + 18), Vector512.Load(x + 16), Widen16(w + 2) * Vector512.Load(x));
            var s1 = Avx512F.FusedMultiplyAdd(Widen16(w + 52), Vector512.Load(x + 48), Widen16(w + 36) * Vector512.Load(x + 32));
            acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(half[*(ushort*)w]), s0, acc0);
            acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(half[*(ushort*)(w + 34)]), s1, acc1);
        }
        if (b < blocks)
        {
            var s0 = Avx512F.FusedMultiplyAdd(Widen16(w + 18), Vector512.Load(x + 16), Widen16(w + 2) * Vector512.Load(x));
            acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(half[*(ushort*)w]), s0, acc0);
        }
        return Vector512.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotQ4_0Avx512(byte* w, float* x, int blocks)
    {
        float* half = QuantDot.HalfTable;
        Vector512<float> acc0 = default, acc1 = default;
        int b = 0;
        for (; b + 2 <= blocks; b += 2, w += 36, x += 64)
        {
            Sse.Prefetch0(w + 4096);
            var (l0, h0) = Nibbles16(w + 2);
            var (l1, h1) = Nibbles16(w + 20);
            var s0 = Avx512F.FusedMultiplyAdd(h0, Vector512.Load(x + 16), l0 * Vector512.Load(x));
            var s1 = Avx512F.FusedMultiplyAdd(h1, Vector512.Load(x + 48), l1 * Vector512.Load(x + 32));
            acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(half[*(ushort*)w]), s0, acc0);
            acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(half[*(ushort*)(w + 18)]), s1, acc1);
        }
        if (b < blocks)
        {
            var (l0, h0) = Nibbles16(w + 2);
            var s0 = Avx512F.FusedMultiplyAdd(h0, Vector512.Load(x + 16), l0 * Vector512.Load(x));
            acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(half[*(ushort*)w]), s0, acc0);
        }
        return Vector512.Sum(acc0 + acc1);
    }

    // 8 int8 codes as floats (vpmovsxbd ymm + vcvtdq2ps).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen8(byte* p) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)p));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotQ8_0Avx2(byte* w, float* x, int blocks)
    {
        float* half = QuantDot.HalfTable;
        Vector256<float> acc = default;
        for (int b = 0; b < blocks; b++, w += 34, x += 32)
        {
            var s = Widen8(w + 2) * Vector256.Load(x);
            s = Fma.MultiplyAdd(Widen8(w + 10), Vector256.Load(x + 8), s);
            s = Fma.MultiplyAdd(Widen8(w + 18), Vector256.Load(x + 16), s);
            s = Fma.MultiplyAdd(Widen8(w + 26), Vector256.Load(x + 24), s);
            acc = Fma.MultiplyAdd(Vector256.Create(half[*(ushort*)w]), s, acc);
        }
        return Vector256.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotQ4_0Avx2(byte* w, float* x, int blocks)
    {
        float* half = QuantDot.HalfTable;
        Vector256<float> acc = default;
        var mask = Vector128.Create((byte)0x0F);
        var eight = Vector256.Create(8);
        for (int b = 0; b < blocks; b++, w += 18, x += 32)
        {
            var q = Vector128.Load(w + 2);
            var lo = q & mask;
            var hi = Vector128.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & mask;
            var s = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(lo) - eight) * Vector256.Load(x);
            s = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.Shuffle(lo, Vector128.Create((byte)8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7))) - eight), Vector256.Load(x + 8), s);
            s = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(hi) - eight), Vector256.Load(x + 16), s);
            s = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.Shuffle(hi, Vector128.Create((byte)8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7))) - eight), Vector256.Load(x + 24), s);
            acc = Fma.MultiplyAdd(Vector256.Create(half[*(ushort*)w]), s, acc);
        }
        return Vector256.Sum(acc);
    }

    private static float DotPortable(GgmlType type, byte* w, float* x, int blocks)
    {
        float* half = QuantDot.HalfTable;
        float sum = 0;
        for (int b = 0; b < blocks; b++, x += 32)
        {
            float s = 0;
            if (type == GgmlType.Q8_0)
            {
                for (int j = 0; j < 32; j++) s += (sbyte)w[2 + j] * x[j];
                sum += half[*(ushort*)w] * s;
                w += 34;
            }
            else
            {
                for (int j = 0; j < 16; j++) s += ((w[2 + j] & 0x0F) - 8) * x[j] + ((w[2 + j] >> 4) - 8) * x[j + 16];
                sum += half[*(ushort*)w] * s;
                w += 18;
            }
        }
        return sum;
    }
}
