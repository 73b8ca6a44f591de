// Reading the trainer fixtures of tests/reference/train_step.py (safetensors F64/F32/I64, int32 .npy).
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Duet.Formats.SafeTensors;
using Duet.Tests;

namespace Duet.Training.Tests;

internal static partial class Fixtures
{
    public static string Train(params string[] parts) => Path.Combine([Repo.Root, "tests", "reference", "fixtures", "train", .. parts]);

    /// <summary>Every tensor of a safetensors file as double (floats) or long (ints, as double).</summary>
    public static Dictionary<string, (double[] Values, long[] Shape)> Read(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        var result = new Dictionary<string, (double[], long[])>();
        foreach (var t in f.Tensors)
        {
            var bytes = f.GetBytes(t);
            double[] v = t.DType switch
            {
                SafeTensorsDType.F64 => MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
                SafeTensorsDType.F32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray().Select(x => (double)x).ToArray(),
                SafeTensorsDType.I64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray().Select(x => (double)x).ToArray(),
                _ => throw new InvalidDataException($"{path}: {t.Name} is {t.DType}"),
            };
            result[t.Name] = (v, t.Shape);
        }
        return result;
    }

    public static float[] F(this (double[] Values, long[] Shape) t) => t.Values.Select(x => (float)x).ToArray();
    public static int[] I(this (double[] Values, long[] Shape) t) => t.Values.Select(x => (int)x).ToArray();

    /// <summary>An int32 .npy array, flattened, with its shape.</summary>
    public static (int[] Values, int[] Shape) ReadInt32Npy(string path)
    {
        var b = File.ReadAllBytes(path);
        if (b[0] != 0x93 || Encoding.ASCII.GetString(b, 1, 5) != "NUMPY") throw new InvalidDataException($"{path}: not .npy");
        int headerLen = b[6] == 1 ? BitConverter.ToUInt16(b, 8) : BitConverter.ToInt32(b, 8);
        int start = b[6] == 1 ? 10 : 12;
        var header = Encoding.ASCII.GetString(b, start, headerLen);
        if (!header.Contains("'<i4'")) throw new InvalidDataException($"{path}: not little-endian int32: {header}");
        var shape = ShapeRegex().Match(header).Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        var values = MemoryMarshal.Cast<byte, int>(b.AsSpan(start + headerLen)).ToArray();
        return (values, shape);
    }

    [GeneratedRegex(@"'shape': \(([^)]*)\)")]
    private static partial Regex ShapeRegex();

    /// <summary>max |a − b| / max |b|: the per-tensor relative error the reference README suggests.</summary>
    public static double RelErr(ReadOnlySpan<float> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths {a.Length} and {b.Length}");
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < a.Length; i++) { maxDiff = Math.Max(maxDiff, Math.Abs(a[i] - b[i])); maxRef = Math.Max(maxRef, Math.Abs(b[i])); }
        return maxRef == 0 ? maxDiff : maxDiff / maxRef;
    }
}
