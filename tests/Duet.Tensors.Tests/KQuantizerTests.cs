// Quantizers for Q4_1, Q5_0, Q5_1 and the K-quants Q4_K, Q5_K, Q6_K against the reference fixtures
// (tests/reference/ggml_quants.py, checked bit-identical against libggml's quantize_row_*_ref): the bytes
// must be the reference's exactly, and so the round-trip error must be the reference's.
using System.Text.Json;
using Duet.Tensors.Quant;
using Duet.Tests;

namespace Duet.Tensors.Tests;

public class KQuantizerTests
{
    private static readonly string Dir = Path.Combine(Repo.Root, "tests", "reference", "fixtures", "engine", "quants");

    public static TheoryData<string> Types => new() { "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K" };

    private static float[] Row(float[,] m, int r)
    {
        var row = new float[m.GetLength(1)];
        for (int c = 0; c < row.Length; c++) row[c] = m[r, c];
        return row;
    }

    private static byte[] Quantize(GgmlType type, float[] row)
    {
        var q = new byte[GgmlTypeInfo.RowSize(type, row.Length)];
        Quantizer.QuantizeRow(type, row, q);
        return q;
    }

    [Theory, MemberData(nameof(Types))]
    public void CanQuantize_NewType_IsTrue(string name) => Assert.True(Quantizer.CanQuantize(Enum.Parse<GgmlType>(name)));

    [Theory, MemberData(nameof(Types))]
    public void QuantizeRow_FixtureRows_EqualReferenceBytes(string name)
    {
        var type = Enum.Parse<GgmlType>(name);
        var input = Npy.ReadFloat32Matrix(Path.Combine(Dir, "input.npy"));
        var expected = File.ReadAllBytes(Path.Combine(Dir, $"{name}.bin"));
        int rowBytes = (int)GgmlTypeInfo.RowSize(type, input.GetLength(1));
        Assert.Equal(input.GetLength(0) * rowBytes, expected.Length);
        int blockBytes = GgmlTypeInfo.TypeSize(type);
        for (int r = 0; r < input.GetLength(0); r++)
        {
            var got = Quantize(type, Row(input, r));
            var want = expected.AsSpan(r * rowBytes, rowBytes);
            int at = got.AsSpan().CommonPrefixLength(want);
            Assert.True(at == rowBytes, $"{name} row {r}: first difference at byte {at} (block {at / blockBytes}, offset {at % blockBytes})");
        }
    }

    [Theory, MemberData(nameof(Types))]
    public void QuantizeRow_RoundTrip_ErrorNoLargerThanReference(string name)
    {
        var type = Enum.Parse<GgmlType>(name);
        var input = Npy.ReadFloat32Matrix(Path.Combine(Dir, "input.npy"));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "index.json")));
        var reference = doc.RootElement.GetProperty("types").GetProperty(name).GetProperty("rms_error_per_row")
            .EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(input.GetLength(0), reference.Length);
        for (int r = 0; r < reference.Length; r++)
        {
            var x = Row(input, r);
            var y = new float[x.Length];
            BlockFormats.DequantizeRow(type, Quantize(type, x), y);
            double sum = 0;
            for (int c = 0; c < x.Length; c++) sum += ((double)y[c] - x[c]) * ((double)y[c] - x[c]);
            double rms = Math.Sqrt(sum / x.Length);
            // numpy sums pairwise, this loop in order: allow only double rounding noise.
            Assert.True(rms <= reference[r] * (1 + 1e-9), $"{name} row {r}: rms error {rms:R} above the reference's {reference[r]:R}");
        }
    }

    [Theory]
    [InlineData("Q4_K")]
    [InlineData("Q5_K")]
    [InlineData("Q6_K")]
    public void QuantizeRow_AllZeroBlock_WritesZeroScales(string name)
    {
        var type = Enum.Parse<GgmlType>(name);
        var q = Quantize(type, new float[GgmlTypeInfo.QK_K]);
        var y = new float[GgmlTypeInfo.QK_K];
        BlockFormats.DequantizeRow(type, q, y);
        Assert.All(y, v => Assert.Equal(0f, v));
        if (type == GgmlType.Q6_K) Assert.All(q, b => Assert.Equal(0, b));
    }

    [Fact]
    public void QuantizeRow_PartialBlock_Throws() =>
        Assert.ThrowsAny<ArgumentException>(() => Quantizer.QuantizeRow(GgmlType.Q4_K, new float[128], new byte[72]));
}
