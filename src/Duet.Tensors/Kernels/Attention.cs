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

    /// <summary>
    /// <see cref="Head"/> for four query heads that read the same keys and values (heads of one grouped-query group at
    /// one position): queries q[j·hd ..], scores at j·<paramref name="scoreStride"/>, outputs at j·hd, for j in 0..3.
    /// Each key and value vector is loaded once for the four heads (a quarter of the loads of four Head calls in the
    /// scores, 5/8 in the output), and each head gets exactly the bits Head gives it: the same chains, in the same order.
    /// </summary>
    public static void Head4(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride, int offset, int n, float scale,
        Span<float> scores, int scoreStride, Span<float> output)
    {
        int hd = q.Length / 4;
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), "attention needs at least one position");
        if (q.Length != 4 * hd || output.Length < 4 * hd || scoreStride < n || scores.Length < 3L * scoreStride + n || offset + hd > stride
            || keys.Length < (long)(n - 1) * stride + offset + hd || values.Length < (long)(n - 1) * stride + offset + hd)
            throw new ArgumentException("Attention.Head4: a buffer is too small for four heads and n positions");
        var p = CpuProfile.Current;
        if (p.Avx512 && hd % 16 == 0) HeadVector4<Vector512<float>>(q, keys, values, stride, offset, n, scale, scores, scoreStride, output);
        else if (p.Avx2 && hd % 8 == 0) HeadVector4<Vector256<float>>(q, keys, values, stride, offset, n, scale, scores, scoreStride, output);
        else
            for (int j = 0; j < 4; j++)
                HeadPortable(q.Slice(j * hd, hd), keys, values, stride, offset, n, scale, scores.Slice(j * scoreStride, n), output.Slice(j * hd, hd));
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
            float inv = ExpInPlace(scores[..n]);
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void HeadVector4<TV>(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride, int offset, int n, float scale,
        Span<float> scores, int ss, Span<float> output)
    {
        int hd = q.Length / 4, w = Width<TV>();
        fixed (float* pq = q)
        fixed (float* pk = keys)
        fixed (float* pv = values)
        fixed (float* ps = scores)
        fixed (float* po = output)
        {
            float* k = pk + offset, v = pv + offset;
            float* q0 = pq, q1 = pq + hd, q2 = pq + 2 * hd, q3 = pq + 3 * hd;
            float* s0 = ps, s1 = ps + ss, s2 = ps + 2 * ss, s3 = ps + 3 * ss;
            // Scores, four keys by four heads: one accumulator per (head, key), as HeadVector's per key.
            int t = 0;
            for (; t + 4 <= n; t += 4)
            {
                float* k0 = k + (long)t * stride, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride;
                TV a00 = Zero<TV>(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
                TV a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
                for (int c = 0; c < hd; c += w)
                {
                    TV b0 = Load<TV>(k0 + c), b1 = Load<TV>(k1 + c), b2 = Load<TV>(k2 + c), b3 = Load<TV>(k3 + c);
                    TV x = Load<TV>(q0 + c);
                    a00 = Fma(x, b0, a00); a01 = Fma(x, b1, a01); a02 = Fma(x, b2, a02); a03 = Fma(x, b3, a03);
                    x = Load<TV>(q1 + c);
                    a10 = Fma(x, b0, a10); a11 = Fma(x, b1, a11); a12 = Fma(x, b2, a12); a13 = Fma(x, b3, a13);
                    x = Load<TV>(q2 + c);
                    a20 = Fma(x, b0, a20); a21 = Fma(x, b1, a21); a22 = Fma(x, b2, a22); a23 = Fma(x, b3, a23);
                    x = Load<TV>(q3 + c);
                    a30 = Fma(x, b0, a30); a31 = Fma(x, b1, a31); a32 = Fma(x, b2, a32); a33 = Fma(x, b3, a33);
                }
                s0[t] = Sum(a00) * scale; s0[t + 1] = Sum(a01) * scale; s0[t + 2] = Sum(a02) * scale; s0[t + 3] = Sum(a03) * scale;
                s1[t] = Sum(a10) * scale; s1[t + 1] = Sum(a11) * scale; s1[t + 2] = Sum(a12) * scale; s1[t + 3] = Sum(a13) * scale;
                s2[t] = Sum(a20) * scale; s2[t + 1] = Sum(a21) * scale; s2[t + 2] = Sum(a22) * scale; s2[t + 3] = Sum(a23) * scale;
                s3[t] = Sum(a30) * scale; s3[t + 1] = Sum(a31) * scale; s3[t + 2] = Sum(a32) * scale; s3[t + 3] = Sum(a33) * scale;
            }
            for (; t < n; t++)
            {
                float* k0 = k + (long)t * stride;
                TV a0 = Zero<TV>(), a1 = a0, a2 = a0, a3 = a0;
                for (int c = 0; c < hd; c += w)
                {
                    TV b0 = Load<TV>(k0 + c);
                    a0 = Fma(Load<TV>(q0 + c), b0, a0); a1 = Fma(Load<TV>(q1 + c), b0, a1);
                    a2 = Fma(Load<TV>(q2 + c), b0, a2); a3 = Fma(Load<TV>(q3 + c), b0, a3);
                }
                s0[t] = Sum(a0) * scale; s1[t] = Sum(a1) * scale; s2[t] = Sum(a2) * scale; s3[t] = Sum(a3) * scale;
            }
            // Each head's softmax as HeadVector's.
            float* inv = stackalloc float[4];
            for (int j = 0; j < 4; j++) inv[j] = ExpInPlace(scores.Slice(j * ss, n));
            // The output: each value vector serves the four heads, four accumulators per head as HeadVector's.
            for (int c = 0; c < hd; c += w)
            {
                TV o00 = Zero<TV>(), o01 = o00, o02 = o00, o03 = o00, o10 = o00, o11 = o00, o12 = o00, o13 = o00;
                TV o20 = o00, o21 = o00, o22 = o00, o23 = o00, o30 = o00, o31 = o00, o32 = o00, o33 = o00;
                float* vc = v + c;
                int u = 0;
                for (; u + 4 <= n; u += 4)
                {
                    float* r = vc + (long)u * stride;
                    TV v0 = Load<TV>(r), v1 = Load<TV>(r + stride), v2 = Load<TV>(r + 2 * stride), v3 = Load<TV>(r + 3 * stride);
                    o00 = Fma(Broadcast<TV>(s0[u]), v0, o00); o01 = Fma(Broadcast<TV>(s0[u + 1]), v1, o01);
                    o02 = Fma(Broadcast<TV>(s0[u + 2]), v2, o02); o03 = Fma(Broadcast<TV>(s0[u + 3]), v3, o03);
                    o10 = Fma(Broadcast<TV>(s1[u]), v0, o10); o11 = Fma(Broadcast<TV>(s1[u + 1]), v1, o11);
                    o12 = Fma(Broadcast<TV>(s1[u + 2]), v2, o12); o13 = Fma(Broadcast<TV>(s1[u + 3]), v3, o13);
                    o20 = Fma(Broadcast<TV>(s2[u]), v0, o20); o21 = Fma(Broadcast<TV>(s2[u + 1]), v1, o21);
                    o22 = Fma(Broadcast<TV>(s2[u + 2]), v2, o22); o23 = Fma(Broadcast<TV>(s2[u + 3]), v3, o23);
                    o30 = Fma(Broadcast<TV>(s3[u]), v0, o30); o31 = Fma(Broadcast<TV>(s3[u + 1]), v1, o31);
                    o32 = Fma(Broadcast<TV>(s3[u + 2]), v2, o32); o33 = Fma(Broadcast<TV>(s3[u + 3]), v3, o33);
                }
                for (; u < n; u++)
                {
                    TV v0 = Load<TV>(vc + (long)u * stride);
                    o00 = Fma(Broadcast<TV>(s0[u]), v0, o00); o10 = Fma(Broadcast<TV>(s1[u]), v0, o10);
                    o20 = Fma(Broadcast<TV>(s2[u]), v0, o20); o30 = Fma(Broadcast<TV>(s3[u]), v0, o30);
                }
                Store(Mul(Add(Add(o00, o01), Add(o02, o03)), Broadcast<TV>(inv[0])), po + c);
                Store(Mul(Add(Add(o10, o11), Add(o12, o13)), Broadcast<TV>(inv[1])), po + hd + c);
                Store(Mul(Add(Add(o20, o21), Add(o22, o23)), Broadcast<TV>(inv[2])), po + 2 * hd + c);
                Store(Mul(Add(Add(o30, o31), Add(o32, o33)), Broadcast<TV>(inv[3])), po + 3 * hd + c);
            }
        }
    }

    /// <summary>att[t] = exp(att[t] - max), vectorized; returns 1 / Σ exp, which divides the output once at the end.</summary>
    private static float ExpInPlace(Span<float> att)
    {
        float max = TensorPrimitives.Max(att);
        TensorPrimitives.Subtract(att, max, att);
        TensorPrimitives.Exp(att, att);
        return 1f / TensorPrimitives.Sum(att);
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
