// NumPy's .npy format, version 1.0, written for float32 matrices (numpy/lib/format.py): `duet logits` writes its
// logits in it so that numpy and the PyTorch reference scripts read them directly. Writing only: Duet reads no .npy.
//   magic "\x93NUMPY", version 1 0, uint16 little-endian header length, the header (a Python dict literal, padded
//   with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes), then the data in C order.
namespace Duet.Formats;

/// <summary>NumPy .npy version 1.0 writer for float32 matrices.</summary>
public static class NpyFile
{
    /// <summary>Writes <paramref name="data"/> as a little-endian float32 array of shape [rows, cols], atomically.</summary>
    public static void WriteFloat32(string path, float[,] data)
    {
        if (!BitConverter.IsLittleEndian) throw new NotSupportedException("the .npy writer copies float32 values as they lie in memory ('<f4' is little-endian)");
        int rows = data.GetLength(0), cols = data.GetLength(1);
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        AtomicFile.Write(path, s =>
        {
            s.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y']);
            s.WriteByte(1); s.WriteByte(0);
            s.Write(BitConverter.GetBytes((ushort)header.Length));
            s.Write(System.Text.Encoding.ASCII.GetBytes(header));
            var bytes = new byte[(long)rows * cols * 4];
            Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
            s.Write(bytes);
        });
    }
}
