// Dot product of an fp16 weight row with an fp32 activation, converting in registers: .NET exposes no
// vcvtph2ps, so halves become floats by integer operations that are exact for every finite value.
//
// One 512-bit load holds 32 halves, two per 32-bit lane: the odd element in the high 16 bits, the even one
// in the low 16. The activation is permuted once per matrix product (HalfDot.Prepare) so that each 32-block
// holds its 16 even elements, then its 16 odd ones; then both halves of a lane convert without unpacking:
//   t = lane (odd) or lane << 16 (even):   sign in bit 31, exponent in bits 30-26, mantissa in 25-16
//   m = ((t >> 3) & 0x0FFFE000) + (112 << 23)   the magnitude as a float32 with the exponent re-biased
//   exponent 0 (zero, subnormal): m came out as 2^-15·(1 + f/1024); the value is 2^-14·f/1024 = 2m - 2^-14
//   w = m | (t & 0x80000000)
// No denormal float is ever formed (an earlier version multiplied m << 13 by 2^112, which made denormal
// operands of every fp16 subnormal weight and cost microcode assists on Intel; bench/README.md#kernel-choices).
// Infinite or NaN weights (exponent 31) would come out finite, so the largest magnitude is tracked and such a
// row takes the plain path, as does any CPU without AVX-512 or a length that is not a multiple of 32.
//
// Scaled form (where CpuProfile.FreeDenormals: a denormal operand costs an FMA nothing): a half's bits moved to a float's place
// with no re-biasing, (lane >>arith 3) & 0x8FFFE000, are the half's value times 2^-112 exactly, subnormals
// included (as floats they are denormal). With the activation prepared as x·2^112 (exact while |x| < 2^16)
// every product w·x is the same real number, so each FMA, and the dot, has the same bits as the form above,
// at two or three integer operations per 16 weights instead of about eight. Infinities and NaNs are caught by
// the largest 16-bit magnitude (vpmaxuw). On the Intel machine measured earlier the same denormal operands
// cost microcode assists, so Intel keeps the re-biasing form (bench/README.md#kernel-choices).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Kernels;

public static unsafe class HalfDot
{
    private const int PrefetchAhead = 4096; // halves: 8 KB

    /// <summary>True when <see cref="Dot"/> reads the permuted activation of <see cref="Prepare"/>.</summary>
    public static bool UsesPermutedActivation(int n) => CpuProfile.Current.Avx512 && n % 32 == 0;

    /// <summary>True where <see cref="Prepare"/> takes the scaled form (AVX-512 where denormal operands are free; see the file header).</summary>
    public static bool UsesScaledForm => CpuProfile.Current is { Avx512: true, FreeDenormals: true };

    /// <summary>2^112: the scaled form's activation factor (and QuantDot's for its scaled Q4_0 quad scales).</summary>
    internal const float TwoTo112 = 5.192296858534828e33f;

    /// <summary>
    /// The activation as <see cref="Dot"/> reads it: per block of 32, the even-indexed elements then the odd ones;
    /// in the scaled form each times 2^112. <paramref name="xp"/> is as long as <paramref name="x"/>. Returns whether
    /// the scaled form was taken: where <see cref="UsesScaledForm"/>, the length is a multiple of 32 and every finite
    /// |x| is below 2^16 (so x·2^112 stays finite). Pass the result to <see cref="Dot"/> and <see cref="Dot4"/>.
    /// </summary>
    public static bool Prepare(ReadOnlySpan<float> x, Span<float> xp)
    {
        if (xp.Length < x.Length) throw new ArgumentException("HalfDot.Prepare: xp is shorter than x");
        bool scaled = UsesScaledForm && UsesPermutedActivation(x.Length);
        if (scaled)
            foreach (float v in x)
                if (Math.Abs(v) >= 65536f && float.IsFinite(v)) { scaled = false; break; }
        float f = scaled ? TwoTo112 : 1f;
        int n = x.Length - x.Length % 32;
        for (int b = 0; b < n; b += 32)
            for (int j = 0; j < 16; j++)
            {
                xp[b + j] = x[b + 2 * j] * f;
                xp[b + 16 + j] = x[b + 2 * j + 1] * f;
            }
        x[n..].CopyTo(xp[n..]);
        return scaled;
    }

    /// <summary>
    /// Σ w[i]·x[i] with w in fp16. <paramref name="xp"/> is x permuted by <see cref="Prepare"/>, read when
    /// <see cref="UsesPermutedActivation"/>; <paramref name="x"/> is the plain activation for the fallback.
    /// torch: (w.float() * x).sum()
    /// </summary>
    public static float Dot(ushort* w, float* xp, float* x, int n, Span<float> scratch, bool scaled = false)
    {
        if (scaled && UsesPermutedActivation(n))
        {
            var accE = Vector512<float>.Zero;
            var accO = Vector512<float>.Zero;
            var top = Vector512<ushort>.Zero;
            var bits = Vector512.Create(unchecked((int)0x8FFFE000));
            var abs = Vector512.Create((ushort)0x7FFF);
            // No software prefetch: on the AMD CPU this form is for, the hardware prefetchers alone read a row
            // faster. GGUF aligns tensors to 32 bytes, so a row often starts 32 bytes into a cache line and every
            // 64-byte load would straddle two lines: such a row is read as two 32-byte halves (one more shuffle, no
            // split load). Both measured: bench/README.md#kernel-choices.
            bool whole = ((nint)w & 63) == 0;
            for (int i = 0; i < n; i += 32)
            {
                var lane = whole ? Avx512F.LoadVector512((int*)(w + i))
                    : Avx512F.InsertVector256(Avx.LoadVector256((int*)(w + i)).ToVector512Unsafe(), Avx.LoadVector256((int*)(w + i + 16)), 1);
                top = Avx512BW.Max(top, lane.AsUInt16() & abs);
                accE = Avx512F.FusedMultiplyAdd(Scaled(lane << 16, bits), Avx512F.LoadVector512(xp + i), accE);
                accO = Avx512F.FusedMultiplyAdd(Scaled(lane, bits), Avx512F.LoadVector512(xp + i + 16), accO);
            }
            if (Vector512.LessThanAll(top, Vector512.Create((ushort)0x7C00))) return Vector512.Sum(accE + accO);
        }
        else if (UsesPermutedActivation(n) && !scaled)
        {
            var accE = Vector512<float>.Zero;
            var accO = Vector512<float>.Zero;
            var top = Vector512<uint>.Zero; // the largest magnitude bits seen: >= 65536f only from an infinity or NaN
            // Constants in locals: the JIT does not hoist Vector512.Create out of the loop.
            var mag = Vector512.Create(0x0FFFE000u);
            var bias = Vector512.Create(112u << 23);
            var exp = Vector512.Create(0x7C000000u);
            var two = Vector512.Create(2f);
            var tiny = Vector512.Create(6.103515625e-05f); // 2^-14
            var sign = Vector512.Create(0x80000000u);
            // Per row the same sums in the same order as Dot4 (one even and one odd accumulator, 32 weights a
            // step), so a row gives the same bits whichever of the two computes it; a software prefetch 8 KB ahead.
            for (int i = 0; i < n; i += 32)
            {
                Sse.Prefetch0(w + i + PrefetchAhead);
                var lane = Avx512F.LoadVector512((uint*)(w + i));
                accE = Avx512F.FusedMultiplyAdd(Convert(lane << 16, mag, bias, exp, two, tiny, sign, ref top), Avx512F.LoadVector512(xp + i), accE);
                accO = Avx512F.FusedMultiplyAdd(Convert(lane, mag, bias, exp, two, tiny, sign, ref top), Avx512F.LoadVector512(xp + i + 16), accO);
            }
            if (Vector512.LessThanAll(top, Vector512.Create(0x47800000u))) return Vector512.Sum(accE + accO); // 0x47800000 = 65536f
        }
        var row = scratch[..n];
        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w, n), row);
        return TensorPrimitives.Dot(row, new ReadOnlySpan<float>(x, n));
    }

    /// <summary>
    /// y[k] = Σ w_k[i]·x[i] for four fp16 rows w_k = w + k·<paramref name="stride"/> (halves), read side by side.
    /// On the Intel machine one core streams memory faster from four rows at once than from one after another
    /// (CpuProfile.RowAfterRow off): each row is a separate stream for the hardware prefetchers, and each step also
    /// prefetches the same place of the next four rows (the bandwidth of both, and eight rows at once:
    /// bench/README.md#kernel-choices). The activation loads serve all four rows. Same arguments and fallback as <see cref="Dot"/>, and the same sums in the same order
    /// (one accumulator pair per row, as Dot's), so each row gets the bits <see cref="Dot"/> gives it.
    /// torch: w[0:4].float() @ x
    /// </summary>
    public static void Dot4(ushort* w, long stride, float* xp, float* x, int n, float* y, Span<float> scratch, bool scaled = false)
    {
        // The scaled form (AMD) reads rows one after another, which streams faster there (see MatVec): no
        // four-row loop of its own, each row through Dot.
        if (UsesPermutedActivation(n) && !scaled)
        {
            ushort* w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
            long ahead = 4 * stride;
            var e0 = Vector512<float>.Zero; var e1 = e0; var e2 = e0; var e3 = e0;
            var o0 = e0; var o1 = e0; var o2 = e0; var o3 = e0;
            var top = Vector512<uint>.Zero;
            var mag = Vector512.Create(0x0FFFE000u);
            var bias = Vector512.Create(112u << 23);
            var exp = Vector512.Create(0x7C000000u);
            var two = Vector512.Create(2f);
            var tiny = Vector512.Create(6.103515625e-05f);
            var sign = Vector512.Create(0x80000000u);
            for (int i = 0; i < n; i += 32)
            {
                Sse.Prefetch0(w0 + i + ahead);
                Sse.Prefetch0(w1 + i + ahead);
                Sse.Prefetch0(w2 + i + ahead);
                Sse.Prefetch0(w3 + i + ahead);
                var xe = Avx512F.LoadVector512(xp + i);
                var xo = Avx512F.LoadVector512(xp + i + 16);
                var l0 = Avx512F.LoadVector512((uint*)(w0 + i));
                var l1 = Avx512F.LoadVector512((uint*)(w1 + i));
                var l2 = Avx512F.LoadVector512((uint*)(w2 + i));
                var l3 = Avx512F.LoadVector512((uint*)(w3 + i));
                e0 = Avx512F.FusedMultiplyAdd(Convert(l0 << 16, mag, bias, exp, two, tiny, sign, ref top), xe, e0);
                o0 = Avx512F.FusedMultiplyAdd(Convert(l0, mag, bias, exp, two, tiny, sign, ref top), xo, o0);
                e1 = Avx512F.FusedMultiplyAdd(Convert(l1 << 16, mag, bias, exp, two, tiny, sign, ref top), xe, e1);
                o1 = Avx512F.FusedMultiplyAdd(Convert(l1, mag, bias, exp, two, tiny, sign, ref top), xo, o1);
                e2 = Avx512F.FusedMultiplyAdd(Convert(l2 << 16, mag, bias, exp, two, tiny, sign, ref top), xe, e2);
                o2 = Avx512F.FusedMultiplyAdd(Convert(l2, mag, bias, exp, two, tiny, sign, ref top), xo, o2);
                e3 = Avx512F.FusedMultiplyAdd(Convert(l3 << 16, mag, bias, exp, two, tiny, sign, ref top), xe, e3);
                o3 = Avx512F.FusedMultiplyAdd(Convert(l3, mag, bias, exp, two, tiny, sign, ref top), xo, o3);
            }
            if (Vector512.LessThanAll(top, Vector512.Create(0x47800000u))) // 65536f: no infinity or NaN in the four rows
            {
                y[0] = Vector512.Sum(e0 + o0);
                y[1] = Vector512.Sum(e1 + o1);
                y[2] = Vector512.Sum(e2 + o2);
                y[3] = Vector512.Sum(e3 + o3);
                return;
            }
        }
        for (int k = 0; k < 4; k++) y[k] = Dot(w + k * stride, xp, x, n, scratch, scaled);
    }

    /// <summary>
    /// The half in the high 16 bits of each lane as a float times 2^-112 (exact; see the file header), with
    /// <paramref name="bits"/> = 0x8FFFE000 in every lane (a local, so the JIT keeps it in a register).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Scaled(Vector512<int> lane, Vector512<int> bits) => ((lane >> 3) & bits).AsSingle();

    /// <summary>
    /// dst[i] = (float)src[i] for every fp16 value, infinities and NaNs included (the same integer conversion,
    /// 16 at a time); for filling the float panels of prompt processing. torch: src.float()
    /// </summary>
    public static void ToSingle(ushort* src, float* dst, int n)
    {
        int i = 0;
        if (CpuProfile.Current.Avx512)
        {
            var mag = Vector512.Create(0x0FFFE000u);
            var bias = Vector512.Create(112u << 23);
            var exp = Vector512.Create(0x7C000000u);
            var two = Vector512.Create(2f);
            var tiny = Vector512.Create(6.103515625e-05f);
            var sign = Vector512.Create(0x80000000u);
            var inf = Vector512.Create(0x7F800000u);
            var top = Vector512<uint>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                var t = Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(src + i)) << 16;
                var f = Convert(t, mag, bias, exp, two, tiny, sign, ref top).AsUInt32();
                // exponent 31: an infinity (mantissa 0) or a NaN (payload kept) in float's exponent 255
                f = Vector512.ConditionalSelect(Vector512.Equals(t & exp, exp), f | inf, f);
                Avx512F.Store(dst + i, f.AsSingle());
            }
        }
        for (; i < n; i++) dst[i] = (float)BitConverter.UInt16BitsToHalf(src[i]);
    }

    /// <summary>The halves in the high 16 bits of each lane as floats (see the file header).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Convert(Vector512<uint> t, Vector512<uint> mag, Vector512<uint> bias, Vector512<uint> exp,
        Vector512<float> two, Vector512<float> tiny, Vector512<uint> sign, ref Vector512<uint> top)
    {
        var m = (((t >> 3) & mag) + bias).AsSingle();
        var small = Vector512.Equals(t & exp, Vector512<uint>.Zero).AsSingle();
        m = Vector512.ConditionalSelect(small, Avx512F.FusedMultiplySubtract(m, two, tiny), m);
        top = Avx512F.Max(top, m.AsUInt32()); // positive floats order as their bits
        return Avx512F.TernaryLogic(m.AsUInt32(), t, sign, 0xD8).AsSingle(); // (t & sign) | (m & ~sign)
    }
}
