// RmsNorm rounds as ggml does (ggml-cpu.c ggml_compute_forward_rms_norm_f32, then ggml_mul by the weight):
//   ggml_float sum += (ggml_float)(x*x);  float mean = sum/n;  float scale = 1.0f/sqrtf(mean + eps);
//   y = x*scale;  y = y*w.
// With activations quantized to int8 after the norm, a one-ulp difference in the scale is enough to change
// codes and, in a small random model, greedy tokens (docs/interop.md).
using Duet.Tensors.Kernels;

namespace Duet.Tensors.Tests;

public class RmsNormGgmlTests
{
    [Fact]
    public void RmsNorm_RandomRows_BitIdenticalToGgmlFloatSteps()
    {
        var rng = new Random(12);
        foreach (int n in new[] { 1, 7, 64, 255, 256, 2048, 4096 })
            for (int trial = 0; trial < 50; trial++)
            {
                float s = (float)Math.Pow(10, rng.NextDouble() * 6 - 3);
                var x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * s).ToArray();
                var w = Enumerable.Range(0, n).Select(_ => 1 + (float)(rng.NextDouble() - 0.5)).ToArray();
                var y = new float[n];
                Ops.RmsNorm(x, w, 1e-5f, y);
                double sum = 0;
                foreach (float v in x) sum += (double)(float)(v * v);
                float mean = (float)(sum / n);
                float scale = 1.0f / (float)Math.Sqrt(mean + 1e-5f);   // sqrtf: the correctly rounded float root
                for (int i = 0; i < n; i++)
                {
                    float expected = x[i] * scale * w[i];
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(y[i]), $"n {n} element {i}: {y[i]:R} vs ggml's {expected:R}");
                }
            }
    }
}
