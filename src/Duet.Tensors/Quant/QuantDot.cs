// Dot products of quantized weight rows with an activation vector quantized to Q8_0 blocks, as ggml does
// for Q8_0 and Q4_0 weights (ggml_vec_dot_q8_0_q8_0, ggml_vec_dot_q4_0_q8_0): per block of 32, an integer
// dot of the int8 codes, scaled by d_w * d_x. Quantizing the activations like ggml (scale stored as fp16,
// codes rounded to nearest even by its SIMD path) keeps Duet's greedy tokens equal to llama.cpp's.
// AVX2 path: |w| (unsigned) x sign(x, w) with vpmaddubsw, pairs summed with vpmaddwd; portable scalar fallback.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Quant;

public static unsafe class QuantDot
{
    /// <summary>Quantizes x (a multiple of 32 long) to Q8_0: codes and per-block scales (already rounded through fp16).</summary>
    public static void QuantizeActivations(ReadOnlySpan<float> x, Span<sbyte> codes, Span<float> scales)
    {
        for (int b = 0; b < x.Length / 32; b++)
        {
            var v = x.Slice(b * 32, 32);
            float amax = 0;
            foreach (float f in v) amax = MathF.Max(amax, MathF.Abs(f));
            float d = amax / 127f, id = amax != 0 ? 127f / amax : 0f;
            scales[b] = (float)(Half)d;
            for (int j = 0; j < 32; j++) codes[b * 32 + j] = (sbyte)MathF.Round(v[j] * id, MidpointRounding.ToEven);
        }
    }

    /// <summary>Σ over blocks of d_w·d_x·Σ w_q·x_q for a Q8_0 row (34-byte blocks).</summary>
    public static float DotQ8_0(byte* row, sbyte* xq, float* xd, int blocks)
    {
        if (Avx2.IsSupported)
        {
            var acc = Vector256<float>.Zero;
            var ones = Vector256.Create((short)1);
            for (int b = 0; b < blocks; b++)
            {
                byte* blk = row + b * 34;
                var w = Avx.LoadVector256((sbyte*)(blk + 2));
                var x = Avx.LoadVector256(xq + b * 32);
                var sumi = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(x, w)), ones);
                float d = (float)BitConverter.UInt16BitsToHalf(*(ushort*)blk) * xd[b];
                acc = Fma.IsSupported ? Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc)
                    : Avx.Add(acc, Avx.Multiply(Vector256.Create(d), Avx.ConvertToVector256Single(sumi)));
            }
            return Vector256.Sum(acc);
        }
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = row + b * 34;
            int s = 0;
            for (int j = 0; j < 32; j++) s += (sbyte)blk[2 + j] * xq[b * 32 + j];
            sum += s * ((float)BitConverter.UInt16BitsToHalf(*(ushort*)blk) * xd[b]);
        }
        return sum;
    }

    /// <summary>Σ over blocks of d_w·d_x·Σ (w_q - 8)·x_q for a Q4_0 row (18-byte blocks: low nibbles are elements 0..15).</summary>
    public static float DotQ4_0(byte* row, sbyte* xq, float* xd, int blocks)
    {
        if (Avx2.IsSupported)
        {
            var acc = Vector256<float>.Zero;
            var ones = Vector256.Create((short)1);
            var mask = Vector128.Create((byte)0x0F);
            var eight = Vector256.Create((sbyte)8);
            for (int b = 0; b < blocks; b++)
            {
                byte* blk = row + b * 18;
                var packed = Sse2.LoadVector128(blk + 2);
                var lo = Sse2.And(packed, mask);
                var hi = Sse2.And(Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte(), mask);
                var w = Avx2.Subtract(Vector256.Create(lo, hi).AsSByte(), eight);
                var x = Avx.LoadVector256(xq + b * 32);
                var sumi = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(x, w)), ones);
                float d = (float)BitConverter.UInt16BitsToHalf(*(ushort*)blk) * xd[b];
                acc = Fma.IsSupported ? Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc)
                    : Avx.Add(acc, Avx.Multiply(Vector256.Create(d), Avx.ConvertToVector256Single(sumi)));
            }
            return Vector256.Sum(acc);
        }
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = row + b * 18;
            int s = 0;
            for (int j = 0; j < 16; j++)
            {
                s += ((blk[2 + j] & 0x0F) - 8) * xq[b * 32 + j];
                s += ((blk[2 + j] >> 4) - 8) * xq[b * 32 + j + 16];
            }
            sum += s * ((float)BitConverter.UInt16BitsToHalf(*(ushort*)blk) * xd[b]);
        }
        return sum;
    }
}
