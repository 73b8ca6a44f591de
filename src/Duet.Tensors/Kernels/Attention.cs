// One query head's causal attention over a KV cache:
//   s_t = (q · k_t) · scale  for t < n;   p = softmax(s);   o = Σ_t p_t v_t
// Keys and values are rows of the cache (stride floats apart), the head's slice at offset.
//   torch: F.scaled_dot_product_attention(q, K, V) for one head and one query
// The vector paths (head dims that are a multiple of 16 on AVX-512, of 8 on AVX2) work in registers: scores four
// keys at a time, the exponentials vectorized (TensorPrimitives.Exp), and the output one vector of head dimensions
// at a time over all positions, with four accumulators, divided by the sum once at the end. At duet-tiny's head dim
// of 32 the portable path, a TensorPrimitives call per key for the dot and again for the sum, spent most of its
// time in call overhead: attention took a quarter of prompt processing (bench/README.md#kernel-choices).
// Every path is used for one token and for batches alike (a row's result does not depend on its batch).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Duet.Tensors.Kernels;

public static unsafe class Attention
{
    /// <summary>
    /// Attention of query <paramref name="q"/> (head dim = its length) over the first <paramref name="n"/> positions:
    /// keys and values at <c>t · stride + offset</c>. <paramref name="scores"/> (at least n floats) is scratch;
    /// <paramref name="output"/> (head dim floats) gets the result.
    /// </summary>
    public static void Head(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride, int offset, int n, float scale,
        Span<float> scores, Span<float> output)
    {
        int hd = q.Length;
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), "attention needs at least one position");
        if (output.Length < hd || scores.Length < n || offset + hd > stride
            || keys.Length < (long)(n - 1) * stride + offset + hd || values.Length < (long)(n - 1) * stride + offset + hd)
            throw new ArgumentException("Attention.Head: a buffer is too small for n positions");
        var p = CpuProfile.Current;
        if (p.Avx512 && hd % 16 == 0) HeadVector<Vector512<float>>(q, keys, values, stride, offset, n, scale, scores, output);
        else if (p.Avx2 && hd % 8 == 0) HeadVector<Vector256<float>>(q, keys, values, stride, offset, n, scale, scores, output);
        else HeadPortable(q, keys, values, stride, offset, n, scale, scores, output);
    }

    /// <summary>The plain form: a TensorPrimitives dot per key, Ops.Softmax, a multiply-add per value row.</summary>
    internal static void HeadPortable(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride, int offset, int n, float scale,
        Span<float> scores, Span<float> output)
    {
        int hd = q.Length;
        var att = scores[..n];
        for (int t = 0; t < n; t++) att[t] = TensorPrimitives.Dot(q, keys.Slice(t * stride + offset, hd)) * scale;
        Ops.Softmax(att);
        var o = output[..hd];
        o.Clear();
        for (int t = 0; t < n; t++) TensorPrimitives.MultiplyAdd(values.Slice(t * stride + offset, hd), att[t], o, o);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void HeadVector<TV>(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride, int offset, int n, float scale,
        Span<float> scores, Span<float> output)
    {
        int hd = q.Length, w = Width<TV>();
        fixed (float* pq = q)
        fixed (float* pk = keys)
        fixed (float* pv = values)
        fixed (float* ps = scores)
        fixed (float* po = output)
        {
            float* k = pk + offset, v = pv + offset;
            // Scores, four keys at a time: each query vector load serves four keys.
            int t = 0;
            for (; t + 4 <= n; t += 4)
            {
                float* k0 = k + (long)t * stride, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride;
                TV a0 = Zero<TV>(), a1 = Zero<TV>(), a2 = Zero<TV>(), a3 = Zero<TV>();
                for (int c = 0; c < hd; c += w)
                {
                    TV qv = Load<TV>(pq + c);
                    a0 = Fma(qv, Load<TV>(k0 + c), a0);
                    a1 = Fma(qv, Load<TV>(k1 + c), a1);
                    a2 = Fma(qv, Load<TV>(k2 + c), a2);
                    a3 = Fma(qv, Load<TV>(k3 + c), a3);
                }
                ps[t] = Sum(a0) * scale; ps[t + 1] = Sum(a1) * scale; ps[t + 2] = Sum(a2) * scale; ps[t + 3] = Sum(a3) * scale;
            }
            for (; t < n; t++)
            {
                float* k0 = k + (long)t * stride;
                TV a0 = Zero<TV>();
                for (int c = 0; c < hd; c += w) a0 = Fma(Load<TV>(pq + c), Load<TV>(k0 + c), a0);
                ps[t] = Sum(a0) * scale;
            }
            // exp(s - max), vectorized; the sum divides the output once at the end.
            var att = scores[..n];
            float max = TensorPrimitives.Max(att);
            TensorPrimitives.Subtract(att, max, att);
            TensorPrimitives.Exp(att, att);
            float inv = 1f / TensorPrimitives.Sum(att);
            // The output one vector of head dims at a time over all positions: four accumulators hide the FMA latency.
            for (int c = 0; c < hd; c += w)
            {
                TV o0 = Zero<TV>(), o1 = Zero<TV>(), o2 = Zero<TV>(), o3 = Zero<TV>();
                float* vc = v + c;
                int u = 0;
                for (; u + 4 <= n; u += 4)
                {
                    float* r = vc + (long)u * stride;
                    o0 = Fma(Broadcast<TV>(ps[u]), Load<TV>(r), o0);
                    o1 = Fma(Broadcast<TV>(ps[u + 1]), Load<TV>(r + stride), o1);
                    o2 = Fma(Broadcast<TV>(ps[u + 2]), Load<TV>(r + 2 * stride), o2);
                    o3 = Fma(Broadcast<TV>(ps[u + 3]), Load<TV>(r + 3 * stride), o3);
                }
                for (; u < n; u++) o0 = Fma(Broadcast<TV>(ps[u]), Load<TV>(vc + (long)u * stride), o0);
                Store(Mul(Add(Add(o0, o1), Add(o2, o3)), Broadcast<TV>(inv)), po + c);
            }
        }
    }

    // Vector512 / Vector256 through one generic body; the JIT specializes each and drops the other branch.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Width<TV>() => typeof(TV) == typeof(Vector512<float>) ? 16 : 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Zero<TV>() => typeof(TV) == typeof(Vector512<float>) ? (TV)(object)Vector512<float>.Zero : (TV)(object)Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Load<TV>(float* p) => typeof(TV) == typeof(Vector512<float>) ? (TV)(object)Vector512.Load(p) : (TV)(object)Vector256.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Broadcast<TV>(float x) => typeof(TV) == typeof(Vector512<float>) ? (TV)(object)Vector512.Create(x) : (TV)(object)Vector256.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TV>(TV x, float* p)
    {
        if (typeof(TV) == typeof(Vector512<float>)) ((Vector512<float>)(object)x!).Store(p);
        else ((Vector256<float>)(object)x!).Store(p);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Fma<TV>(TV a, TV b, TV c) => typeof(TV) == typeof(Vector512<float>)
        ? (TV)(object)Vector512.FusedMultiplyAdd((Vector512<float>)(object)a!, (Vector512<float>)(object)b!, (Vector512<float>)(object)c!)
        : (TV)(object)Vector256.FusedMultiplyAdd((Vector256<float>)(object)a!, (Vector256<float>)(object)b!, (Vector256<float>)(object)c!);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Add<TV>(TV a, TV b) => typeof(TV) == typeof(Vector512<float>)
        ? (TV)(object)((Vector512<float>)(object)a! + (Vector512<float>)(object)b!)
        : (TV)(object)((Vector256<float>)(object)a! + (Vector256<float>)(object)b!);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Mul<TV>(TV a, TV b) => typeof(TV) == typeof(Vector512<float>)
        ? (TV)(object)((Vector512<float>)(object)a! * (Vector512<float>)(object)b!)
        : (TV)(object)((Vector256<float>)(object)a! * (Vector256<float>)(object)b!);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum<TV>(TV a) => typeof(TV) == typeof(Vector512<float>) ? Vector512.Sum((Vector512<float>)(object)a!) : Vector256.Sum((Vector256<float>)(object)a!);
}
