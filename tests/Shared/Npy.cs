// Reads the float32 .npy files the reference scripts write.
using System.Text;
using System.Text.RegularExpressions;

namespace Duet.Tests;

internal static partial class Npy
{
    public static float[,] ReadFloat32Matrix(string path)
    {
        var b = File.ReadAllBytes(path);
        if (b[0] != 0x93 || Encoding.ASCII.GetString(b, 1, 5) != "NUMPY") throw new InvalidDataException($"{path}: not .npy");
        int headerLen = b[6] == 1 ? BitConverter.ToUInt16(b, 8) : BitConverter.ToInt32(b, 8);
        int start = b[6] == 1 ? 10 : 12;
        var header = Encoding.ASCII.GetString(b, start, headerLen);
        if (!header.Contains("'<f4'")) throw new InvalidDataException($"{path}: not little-endian float32: {header}");
        var m = Shape().Match(header);
        if (!m.Success) throw new InvalidDataException($"{path}: not a 2-D array: {header}");
        int rows = int.Parse(m.Groups[1].Value), cols = int.Parse(m.Groups[2].Value);
        var result = new float[rows, cols];
        Buffer.BlockCopy(b, start + headerLen, result, 0, rows * cols * 4);
        return result;
    }

    [GeneratedRegex(@"'shape': \((\d+), (\d+)\)")]
    private static partial Regex Shape();
}
