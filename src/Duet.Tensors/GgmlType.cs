// GGML tensor element types as stored in GGUF tensor infos (ggml.h `enum ggml_type`, docs/gguf.md), and the
// block layout of each: how many elements one block holds and how many bytes it takes
// (gguf-py `GGML_QUANT_SIZES`). This table is what turns a tensor's shape into its byte size, so the reader
// can check that data lies inside the file and the writer can check the bytes it is given.
// Dequantization and dot products of the blocks live in Quant/.
namespace Duet.Tensors;

/// <summary>ggml tensor type ids. Gaps are ids whose support was removed from ggml; the reader rejects them.</summary>
public enum GgmlType
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    // 4 (Q4_2) and 5 (Q4_3): support removed.
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    // 31..33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8): removed from GGUF files.
    TQ1_0 = 34,
    TQ2_0 = 35,
    // 36..38 (IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8): removed from GGUF files.
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
}

/// <summary>Block layout of each <see cref="GgmlType"/> and the byte-size arithmetic built on it.</summary>
public static class GgmlTypeInfo
{
    /// <summary>Elements per super-block of the K-quants and IQ types (ggml QK_K).</summary>
    public const int QK_K = 256;

    // (elements per block, bytes per block), indexed by type id; (0, 0) marks an unknown or removed id.
    // Each entry spells out the block struct of ggml-common.h: fp16 scales are 2 bytes, quants are packed.
    private static readonly (int BlockSize, int TypeSize)[] Layouts = BuildLayouts();

    private static (int, int)[] BuildLayouts()
    {
        var t = new (int, int)[42];
        t[(int)GgmlType.F32] = (1, 4);
        t[(int)GgmlType.F16] = (1, 2);
        t[(int)GgmlType.Q4_0] = (32, 2 + 16);                        // d, 32 x 4-bit
        t[(int)GgmlType.Q4_1] = (32, 2 + 2 + 16);                    // d, m, 32 x 4-bit
        t[(int)GgmlType.Q5_0] = (32, 2 + 4 + 16);                    // d, high bits, low nibbles
        t[(int)GgmlType.Q5_1] = (32, 2 + 2 + 4 + 16);
        t[(int)GgmlType.Q8_0] = (32, 2 + 32);                        // d, 32 x int8
        t[(int)GgmlType.Q8_1] = (32, 4 + 4 + 32);                    // d, s as fp32 pair, 32 x int8
        t[(int)GgmlType.Q2_K] = (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4);
        t[(int)GgmlType.Q3_K] = (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12);
        t[(int)GgmlType.Q4_K] = (QK_K, 2 + 2 + QK_K / 2 + 12);
        t[(int)GgmlType.Q5_K] = (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12);
        t[(int)GgmlType.Q6_K] = (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16);
        t[(int)GgmlType.Q8_K] = (QK_K, 4 + QK_K + QK_K / 8);
        t[(int)GgmlType.IQ2_XXS] = (QK_K, 2 + QK_K / 4);
        t[(int)GgmlType.IQ2_XS] = (QK_K, 2 + QK_K / 4 + QK_K / 32);
        t[(int)GgmlType.IQ3_XXS] = (QK_K, 2 + QK_K / 4 + QK_K / 8);
        t[(int)GgmlType.IQ1_S] = (QK_K, 2 + QK_K / 8 + QK_K / 16);
        t[(int)GgmlType.IQ4_NL] = (32, 2 + 16);
        t[(int)GgmlType.IQ3_S] = (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4);
        t[(int)GgmlType.IQ2_S] = (QK_K, 2 + QK_K / 4 + QK_K / 16);
        t[(int)GgmlType.IQ4_XS] = (QK_K, 2 + 2 + QK_K / 2 + QK_K / 64);
        t[(int)GgmlType.I8] = (1, 1);
        t[(int)GgmlType.I16] = (1, 2);
        t[(int)GgmlType.I32] = (1, 4);
        t[(int)GgmlType.I64] = (1, 8);
        t[(int)GgmlType.F64] = (1, 8);
        t[(int)GgmlType.IQ1_M] = (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32);
        t[(int)GgmlType.BF16] = (1, 2);
        t[(int)GgmlType.TQ1_0] = (QK_K, 2 + 4 * 13);
        t[(int)GgmlType.TQ2_0] = (QK_K, 2 + 64);
        t[(int)GgmlType.MXFP4] = (32, 1 + 16);                       // e8m0 scale, 32 x fp4
        t[(int)GgmlType.NVFP4] = (64, 4 + 32);                       // 4 x e4m3 scales, 64 x fp4
        t[(int)GgmlType.Q1_0] = (128, 2 + 16);
        return t;
    }

    /// <summary>True when <paramref name="type"/> is a type id this table knows (removed ids are not known).</summary>
    public static bool IsKnown(GgmlType type) =>
        (uint)type < (uint)Layouts.Length && Layouts[(int)type].BlockSize != 0;

    /// <summary>Elements per block (1 for plain types such as F32, 32 for Q8_0, 256 for the K-quants).</summary>
    public static int BlockSize(GgmlType type) => Layout(type).BlockSize;

    /// <summary>Bytes per block (ggml `type_size`).</summary>
    public static int TypeSize(GgmlType type) => Layout(type).TypeSize;

    /// <summary>True for block-quantized types (block size above one element).</summary>
    public static bool IsQuantized(GgmlType type) => Layout(type).BlockSize > 1;

    /// <summary>Bytes in one row of <paramref name="ne0"/> elements (ggml `ggml_row_size`); ne0 must be a multiple of the block size.</summary>
    public static long RowSize(GgmlType type, long ne0)
    {
        var (block, size) = Layout(type);
        if (ne0 < 0 || ne0 % block != 0)
            throw new ArgumentException($"A {type} row of {ne0} elements is not a whole number of {block}-element blocks.", nameof(ne0));
        return checked(ne0 / block * size);
    }

    /// <summary>
    /// Byte size of a tensor of <paramref name="type"/> with <paramref name="shape"/> in GGUF order (ne0 first).
    /// Throws <see cref="ArgumentException"/> when a dimension is not positive, the element count overflows,
    /// or ne0 is not a multiple of the block size.
    /// </summary>
    public static long ByteSize(GgmlType type, ReadOnlySpan<long> shape)
    {
        string? error = Validate(type, shape, out _, out var bytes);
        return error is null ? bytes : throw new ArgumentException(error, nameof(shape));
    }

    /// <summary>
    /// Checks a type and shape and computes element count and byte size without overflow.
    /// Returns null when valid, else a sentence naming the problem (the caller adds key, tensor and offset).
    /// An empty shape is a scalar: one element, ne0 taken as 1.
    /// </summary>
    /// <summary>Null when the shape is valid for the type (else why not), with its element count and byte size.</summary>
    public static string? Validate(GgmlType type, ReadOnlySpan<long> shape, out long elementCount, out long byteSize)
    {
        elementCount = 0;
        byteSize = 0;
        if (!IsKnown(type))
            return $"unknown tensor type {(int)type}";
        long count = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            long d = shape[i];
            if (d <= 0)
                return $"dimension {i} is {d}; every dimension must be at least 1";
            if (count > long.MaxValue / d)
                return $"element count of shape [{string.Join(", ", shape.ToArray())}] overflows a 64-bit integer";
            count *= d;
        }
        var (block, size) = Layouts[(int)type];
        long ne0 = shape.Length > 0 ? shape[0] : 1;
        // A row (ne0 elements) must be a whole number of blocks: ggml quantizes rows independently.
        if (ne0 % block != 0)
            return $"row length ne0 = {ne0} is not a multiple of the {type} block size {block}";
        long blocks = count / block;
        if (blocks > long.MaxValue / size)
            return $"byte size of shape [{string.Join(", ", shape.ToArray())}] as {type} overflows a 64-bit integer";
        elementCount = count;
        byteSize = blocks * size;
        return null;
    }

    private static (int BlockSize, int TypeSize) Layout(GgmlType type) =>
        IsKnown(type) ? Layouts[(int)type] : throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown or removed ggml type id.");
}
