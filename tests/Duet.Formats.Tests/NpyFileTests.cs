// The .npy writer against the format's description (numpy/lib/format.py, version 1.0), byte by byte.
using System.Buffers.Binary;
using System.Text;

namespace Duet.Formats.Tests;

public sealed class NpyFileTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(2, 32000)]
    public void WriteFloat32_Matrix_WritesVersion1HeaderPaddedTo64AndTheValuesInCOrder(int rows, int cols)
    {
        var data = new float[rows, cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) data[r, c] = r * 1000.5f - c * 0.25f;
        var path = Path.Combine(Path.GetTempPath(), $"duet-npy-{Guid.NewGuid():N}.npy");
        try
        {
            NpyFile.WriteFloat32(path, data);
            var b = File.ReadAllBytes(path);
            Assert.Equal([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0], b[..8]);
            int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8));
            var header = Encoding.ASCII.GetString(b, 10, headerLength);
            Assert.Equal(0, (10 + headerLength) % 64);
            Assert.Equal($"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}", header.TrimEnd(' ', '\n'));
            Assert.EndsWith(" \n", " " + header, StringComparison.Ordinal);
            Assert.Equal(10 + headerLength + 4L * rows * cols, b.Length);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    Assert.Equal(data[r, c], BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(10 + headerLength + 4 * (r * cols + c))));
        }
        finally { File.Delete(path); }
    }
}
