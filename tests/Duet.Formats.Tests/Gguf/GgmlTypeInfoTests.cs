// The block layout table against the block structs of ggml-common.h, and byte-size arithmetic.
using Duet.Formats.Gguf;

using Duet.Tensors;

namespace Duet.Formats.Tests.Gguf;

public sealed class GgmlTypeInfoTests
{
    [Theory]
    [InlineData(GgmlType.F32, 1, 4)]
    [InlineData(GgmlType.F16, 1, 2)]
    [InlineData(GgmlType.BF16, 1, 2)]
    [InlineData(GgmlType.F64, 1, 8)]
    [InlineData(GgmlType.I8, 1, 1)]
    [InlineData(GgmlType.I64, 1, 8)]
    [InlineData(GgmlType.Q4_0, 32, 18)]
    [InlineData(GgmlType.Q4_1, 32, 20)]
    [InlineData(GgmlType.Q5_0, 32, 22)]
    [InlineData(GgmlType.Q5_1, 32, 24)]
    [InlineData(GgmlType.Q8_0, 32, 34)]
    [InlineData(GgmlType.Q8_1, 32, 40)]
    [InlineData(GgmlType.Q2_K, 256, 84)]
    [InlineData(GgmlType.Q3_K, 256, 110)]
    [InlineData(GgmlType.Q4_K, 256, 144)]
    [InlineData(GgmlType.Q5_K, 256, 176)]
    [InlineData(GgmlType.Q6_K, 256, 210)]
    [InlineData(GgmlType.Q8_K, 256, 292)]
    [InlineData(GgmlType.IQ4_NL, 32, 18)]
    [InlineData(GgmlType.IQ4_XS, 256, 136)]
    [InlineData(GgmlType.IQ2_XXS, 256, 66)]
    [InlineData(GgmlType.IQ1_M, 256, 56)]
    [InlineData(GgmlType.TQ2_0, 256, 66)]
    [InlineData(GgmlType.MXFP4, 32, 17)]
    public void Layout_KnownTypes_MatchGgml(GgmlType type, int blockSize, int typeSize)
    {
        Assert.True(GgmlTypeInfo.IsKnown(type));
        Assert.Equal(blockSize, GgmlTypeInfo.BlockSize(type));
        Assert.Equal(typeSize, GgmlTypeInfo.TypeSize(type));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(31)]
    [InlineData(36)]
    [InlineData(38)]
    [InlineData(42)]
    [InlineData(-1)]
    public void IsKnown_RemovedOrUnknownIds_False(int id)
    {
        Assert.False(GgmlTypeInfo.IsKnown((GgmlType)id));
        Assert.Throws<ArgumentOutOfRangeException>(() => GgmlTypeInfo.BlockSize((GgmlType)id));
    }

    [Fact]
    public void ByteSize_QuantizedMatrix_IsRowsTimesRowSize()
    {
        Assert.Equal(4096L / 256 * 144 * 11008, GgmlTypeInfo.ByteSize(GgmlType.Q4_K, [4096, 11008]));
        Assert.Equal(4096L / 256 * 144, GgmlTypeInfo.RowSize(GgmlType.Q4_K, 4096));
        Assert.Equal(4L * 2 * 3, GgmlTypeInfo.ByteSize(GgmlType.F32, [2, 3]));
        Assert.Equal(4, GgmlTypeInfo.ByteSize(GgmlType.F32, []));
        Assert.Throws<ArgumentException>(() => GgmlTypeInfo.ByteSize(GgmlType.Q8_0, [33]));
        Assert.Throws<ArgumentException>(() => GgmlTypeInfo.ByteSize(GgmlType.F32, [long.MaxValue, 2]));
    }
}
