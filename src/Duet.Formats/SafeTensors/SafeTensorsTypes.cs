// The safetensors dtypes that hold weights Duet computes with, each beside the ggml type that reads its bytes and
// the name config.json's torch_dtype gives it. The one table for writing an HF folder (ggml type -> dtype and
// torch_dtype) and for binding one (dtype -> ggml type): F32, F16 and BF16 have the same bytes in both formats
// (little-endian IEEE binary32 and binary16, and bfloat16), so a tensor moves between them without conversion.
using Duet.Tensors;

namespace Duet.Formats.SafeTensors;

/// <summary>The float dtypes of model weights in safetensors, their ggml types and their torch_dtype names.</summary>
public static class SafeTensorsTypes
{
    private static readonly (SafeTensorsDType DType, GgmlType Ggml, string Torch)[] s_weights =
    [
        (SafeTensorsDType.F32, GgmlType.F32, "float32"),
        (SafeTensorsDType.F16, GgmlType.F16, "float16"),
        (SafeTensorsDType.BF16, GgmlType.BF16, "bfloat16"),
    ];

    /// <summary>The weight dtypes for messages: "F32, F16 or BF16".</summary>
    public static string Names { get; } = string.Join(", ", s_weights[..^1].Select(w => w.DType)) + " or " + s_weights[^1].DType;

    /// <summary>The dtype that holds <paramref name="type"/>; throws <see cref="ArgumentException"/> for a type safetensors does not hold (quantized ones).</summary>
    public static SafeTensorsDType FromGgml(GgmlType type)
    {
        foreach (var w in s_weights)
            if (w.Ggml == type) return w.DType;
        throw new ArgumentException($"safetensors holds {Names}, not {type}");
    }

    /// <summary>The ggml type whose rows have the bytes of <paramref name="dtype"/>, if it is a weight dtype.</summary>
    public static bool TryToGgml(SafeTensorsDType dtype, out GgmlType type)
    {
        foreach (var w in s_weights)
            if (w.DType == dtype) { type = w.Ggml; return true; }
        type = default;
        return false;
    }

    /// <summary>config.json's torch_dtype for weights stored as <paramref name="dtype"/> ("float32", "float16", "bfloat16").</summary>
    public static string TorchDtype(SafeTensorsDType dtype)
    {
        foreach (var w in s_weights)
            if (w.DType == dtype) return w.Torch;
        throw new ArgumentException($"safetensors weights are {Names}, not {dtype}");
    }
}
