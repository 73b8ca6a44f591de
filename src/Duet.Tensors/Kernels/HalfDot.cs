// Dot product of an fp16 weight row with an fp32 activation, converting in registers: .NET exposes no
// vcvtph2ps, so each half becomes a float by integer ops that are exact for every finite value
// (magnitude bits << 13 read as a float are the value times 2^-112; one multiply by 2^112 restores it,
// subnormals included), then the sign. Rows with infinite or NaN weights take the plain path.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Kernels;

public static unsafe class HalfDot
{
    /// <summary>Σ w[i]·x[i] with w in fp16.   torch: (w.float() * x).sum()</summary>
    public static float Dot(ushort* w, float* x, int n, Span<float> scratch)
    {
        if (Avx512F.IsSupported && n % 16 == 0)
        {
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            var mag = Vector512.Create(0x7FFFu);
            var sign = Vector512.Create(0x8000u);
            var scale = Vector512.Create(5.192296858534828e33f); // 2^112
            var top = Vector512<uint>.Zero; // the largest magnitude bits seen: >= 0x7C00 means an infinity or NaN
            int i = 0;
            for (; i + 32 <= n; i += 32)
            {
                var h0 = Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(w + i));
                var h1 = Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(w + i + 16));
                var m0 = h0 & mag;
                var m1 = h1 & mag;
                top = Vector512.Max(top, Vector512.Max(m0, m1));
                var f0 = (m0 << 13).AsSingle() * scale | ((h0 & sign) << 16).AsSingle();
                var f1 = (m1 << 13).AsSingle() * scale | ((h1 & sign) << 16).AsSingle();
                acc0 = Avx512F.FusedMultiplyAdd(f0, Avx512F.LoadVector512(x + i), acc0);
                acc1 = Avx512F.FusedMultiplyAdd(f1, Avx512F.LoadVector512(x + i + 16), acc1);
            }
            for (; i < n; i += 16)
            {
                var h = Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(w + i));
                var m = h & mag;
                top = Vector512.Max(top, m);
                acc0 = Avx512F.FusedMultiplyAdd((m << 13).AsSingle() * scale | ((h & sign) << 16).AsSingle(), Avx512F.LoadVector512(x + i), acc0);
            }
            if (Vector512.LessThanAll(top, Vector512.Create(0x7C00u))) return Vector512.Sum(acc0 + acc1);
        }
        var row = scratch[..n];
        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w, n), row);
        return TensorPrimitives.Dot(row, new ReadOnlySpan<float>(x, n));
    }
}
