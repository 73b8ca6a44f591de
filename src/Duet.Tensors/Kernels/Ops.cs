// Element-wise and row kernels of the LLaMA forward pass. Each states its formula and the PyTorch
// equivalent; spans in, spans out, no allocation.
using System.Numerics.Tensors;

namespace Duet.Tensors.Kernels;

public enum RopeStyle
{
    /// <summary>Rotates adjacent pairs (x[2i], x[2i+1]): GGUF "llama" (llama.cpp LLAMA_ROPE_TYPE_NORM).</summary>
    Normal,
    /// <summary>Rotates (x[i], x[i + d/2]): HF checkpoints (rotate_half), GPT-NeoX.</summary>
    NeoX,
}

public static class Ops
{
    /// <summary>
    /// out = x / sqrt(mean(x²) + eps) * w.   torch: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
    /// Rounded as ggml's rms_norm then mul: float squares summed in double, the mean rounded to float, then
    /// 1/sqrt(mean + eps) in float. A scale one ulp away moves every output by an ulp, and a quantized
    /// activation near a rounding boundary then takes the neighbouring code (greedy tokens drift from llama.cpp).
    /// </summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps, Span<float> output)
    {
        double ss = 0;
        for (int i = 0; i < x.Length; i++) ss += x[i] * x[i];   // float product, double sum
        float mean = (float)(ss / x.Length);
        float scale = 1f / MathF.Sqrt(mean + eps);
        TensorPrimitives.Multiply(x, scale, output);
        TensorPrimitives.Multiply(output, w, output);
    }

    /// <summary>Softmax in place, subtracting the max first (never trust exp of raw logits).</summary>
    public static void Softmax(Span<float> x)
    {
        if (x.IsEmpty) return;
        float max = TensorPrimitives.Max(x);
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float e = MathF.Exp(x[i] - max);
            x[i] = e;
            sum += e;
        }
        TensorPrimitives.Multiply(x, (float)(1.0 / sum), x);
    }

    /// <summary>gate = silu(gate) * up.   torch: F.silu(gate) * up</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    /// <summary>
    /// Rotates each head of <paramref name="x"/> ([heads, headDim]) by angle pos * invFreq[i] for pair i,
    /// with cos/sin given per pair (<paramref name="cos"/>, <paramref name="sin"/>: [headDim/2]).
    /// torch (NeoX): x * cos + rotate_half(x) * sin.
    /// </summary>
    public static void Rope(Span<float> x, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, RopeStyle style)
    {
        int half = headDim / 2;
        for (int h = 0; h + headDim <= x.Length; h += headDim)
        {
            var v = x.Slice(h, headDim);
            for (int i = 0; i < half; i++)
            {
                int a = style == RopeStyle.Normal ? 2 * i : i, b = style == RopeStyle.Normal ? 2 * i + 1 : i + half;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * cos[i] - x1 * sin[i];
                v[b] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }
}
