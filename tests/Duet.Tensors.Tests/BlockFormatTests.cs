// Acceptance 2 of the engine issue: every block type dequantizes bit-identically to the reference
// definition (tests/reference/ggml_quants.py, itself checked bit-identical against libggml), and Duet's
// quantizers write the reference's bytes exactly, so their error is the reference's error.
using System.Text.Json;
using Duet.Tensors.Quant;
using Duet.Tests;

namespace Duet.Tensors.Tests;

public class BlockFormatTests
{
    private static readonly string Dir = Path.Combine(Repo.Root, "tests", "reference", "fixtures", "engine", "quants");

    public static TheoryData<string> Types => new() { "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K" };

    private static (float[,] Input, int RowLength) Input()
    {
        var input = Npy.ReadFloat32Matrix(Path.Combine(Dir, "input.npy"));
        return (input, input.GetLength(1));
    }

    private static void AssertDequantizes(GgmlType type, string binFile, string npyFile)
    {
        var expected = Npy.ReadFloat32Matrix(Path.Combine(Dir, npyFile));
        var bytes = File.ReadAllBytes(Path.Combine(Dir, binFile));
        int rows = expected.GetLength(0), cols = expected.GetLength(1);
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        Assert.Equal(rows * rowBytes, bytes.Length);
        var row = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            BlockFormats.DequantizeRow(type, bytes.AsSpan((int)(r * rowBytes), (int)rowBytes), row);
            for (int c = 0; c < cols; c++)
                Assert.True(BitConverter.SingleToInt32Bits(row[c]) == BitConverter.SingleToInt32Bits(expected[r, c]),
                    $"{type} {binFile} row {r} element {c}: {row[c]:R} vs reference {expected[r, c]:R}");
        }
    }

    [Theory, MemberData(nameof(Types))]
    public void DequantizeRow_ReferenceQuantizedData_IsBitIdentical(string type) =>
        AssertDequantizes(Enum.Parse<GgmlType>(type), $"{type}.bin", $"{type}.deq.npy");

    [Theory, MemberData(nameof(Types))]
    public void DequantizeRow_RandomBlockBytes_IsBitIdentical(string type) =>
        AssertDequantizes(Enum.Parse<GgmlType>(type), $"{type}.rand.bin", $"{type}.rand.deq.npy");

    [Theory]
    [InlineData("F16")]
    [InlineData("BF16")]
    [InlineData("Q8_0")]
    [InlineData("Q4_0")]
    public void QuantizeRow_WritesTheReferenceBytes(string name)
    {
        var type = Enum.Parse<GgmlType>(name);
        var (input, cols) = Input();
        var expected = File.ReadAllBytes(Path.Combine(Dir, $"{name}.bin"));
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var row = new float[cols];
        var got = new byte[rowBytes];
        for (int r = 0; r < input.GetLength(0); r++)
        {
            for (int c = 0; c < cols; c++) row[c] = input[r, c];
            Quantizer.QuantizeRow(type, row, got);
            Assert.True(got.AsSpan().SequenceEqual(expected.AsSpan((int)(r * rowBytes), (int)rowBytes)), $"{name} row {r} differs from the reference quantizer");
        }
    }

    [Fact]
    public void Index_ListsEveryTypeTested()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "index.json")));
        var listed = doc.RootElement.GetProperty("types").EnumerateObject().Select(p => p.Name).ToHashSet();
        foreach (var t in Types) Assert.Contains(t, listed);
    }
}
