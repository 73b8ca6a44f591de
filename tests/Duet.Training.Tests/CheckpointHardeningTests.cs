// The edges of the checkpoint file that TrainingPartsTests does not reach: every truncation offset and every flipped
// byte of a small checkpoint, hostile content that carries a valid checksum (SHA-256 is not a MAC: anyone can
// recompute it), and what Save must refuse so that it never writes a file that Load rejects or List does not see.
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Duet.Training.Tests;

public sealed class CheckpointHardeningTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-ckpt-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static float[] Data(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    // A checkpoint file built by hand in the documented layout, with a correct SHA-256, so only the content is hostile.
    private static byte[] Build(string headerJson, params (string Name, long Count, float[] Data)[] arrays)
    {
        var ms = new MemoryStream();
        var n = new byte[8];
        ms.Write("DUETCKPT"u8);
        BinaryPrimitives.WriteUInt32LittleEndian(n, 1); ms.Write(n, 0, 4);
        var json = Encoding.UTF8.GetBytes(headerJson);
        BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)json.Length); ms.Write(n, 0, 4);
        ms.Write(json);
        BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)arrays.Length); ms.Write(n, 0, 4);
        foreach (var (name, count, data) in arrays)
        {
            var nb = Encoding.UTF8.GetBytes(name);
            BinaryPrimitives.WriteUInt16LittleEndian(n, (ushort)nb.Length); ms.Write(n, 0, 2);
            ms.Write(nb);
            BinaryPrimitives.WriteInt64LittleEndian(n, count); ms.Write(n, 0, 8);
            ms.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        }
        ms.Write(SHA256.HashData(ms.ToArray()));
        return ms.ToArray();
    }

    private string Put(int step, byte[] bytes)
    {
        var path = Path.Combine(_dir, Checkpoints.FileName(step));
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Build_SameLayoutAsSave_GivesTheSameBytes()
    {
        // Guards the hand-built files below: they are only meaningful if they follow Save's layout byte for byte.
        var data = Data(7, 1);
        var path = Checkpoints.Save(_dir, 1, new JsonObject { ["step"] = 1 }, [("params", data)], keep: 1);
        Assert.Equal(Build("{\"step\":1}", ("params", 7, data)), File.ReadAllBytes(path));
    }

    [Fact]
    public void Verify_EveryTruncationAndEveryFlippedByte_IsDetected()
    {
        var path = Checkpoints.Save(_dir, 1, new JsonObject { ["step"] = 1, ["rng"] = "abc" }, [("params", Data(16, 1)), ("adam.m", Data(3, 2))], keep: 1);
        var good = File.ReadAllBytes(path);
        Assert.Null(Checkpoints.Verify(path));
        for (int len = 0; len < good.Length; len++)
        {
            File.WriteAllBytes(path, good[..len]);
            Assert.NotNull(Checkpoints.Verify(path));
        }
        for (int i = 0; i < good.Length; i++)
        {
            var bad = (byte[])good.Clone();
            bad[i] ^= 0x40;
            File.WriteAllBytes(path, bad);
            Assert.NotNull(Checkpoints.Verify(path));
        }
        File.WriteAllBytes(path, [.. good, 0]); // a trailing byte
        Assert.NotNull(Checkpoints.Verify(path));
    }

    [Theory]
    [InlineData("{\"step\":\"seven\"}")]
    [InlineData("{\"step\":1.5}")]
    [InlineData("{\"step\":99999999999}")]
    [InlineData("{\"step\":null}")]
    [InlineData("{\"step\":{}}")]
    [InlineData("[1,2]")]
    [InlineData("{\"step\":1,\"step\":2}")]
    public void LoadLatest_HostileHeaderWithValidChecksum_WarnsAndUsesThePrevious(string header)
    {
        Checkpoints.Save(_dir, 1, new JsonObject { ["step"] = 1 }, [("params", Data(4, 1))], keep: 5);
        Put(2, Build(header, ("params", 4, Data(4, 2))));
        var warnings = new List<string>();
        Assert.Equal(1, Checkpoints.LoadLatest(_dir, warnings)!.Step);
        Assert.Contains(warnings, w => w.Contains("step-00000002.ckpt", StringComparison.Ordinal));
    }

    [Fact]
    public void LoadLatest_DuplicateArrayNamesWithValidChecksum_WarnsAndUsesThePrevious()
    {
        Checkpoints.Save(_dir, 1, new JsonObject { ["step"] = 1 }, [("params", Data(4, 1))], keep: 5);
        Put(2, Build("{\"step\":2}", ("params", 4, Data(4, 2)), ("params", 2, Data(2, 3))));
        var warnings = new List<string>();
        Assert.Equal(1, Checkpoints.LoadLatest(_dir, warnings)!.Step);
        Assert.Contains(warnings, w => w.Contains("step-00000002.ckpt", StringComparison.Ordinal));
    }

    [Fact]
    public void LoadLatest_HeaderStepDisagreesWithFileName_WarnsAndUsesThePrevious()
    {
        // A step-00000009.ckpt whose header says step 3 (a file copied or renamed by hand) would resume at the wrong place.
        Checkpoints.Save(_dir, 1, new JsonObject { ["step"] = 1 }, [("params", Data(4, 1))], keep: 5);
        Put(9, Build("{\"step\":3}", ("params", 4, Data(4, 2))));
        var warnings = new List<string>();
        Assert.Equal(1, Checkpoints.LoadLatest(_dir, warnings)!.Step);
        Assert.Contains(warnings, w => w.Contains("step-00000009.ckpt", StringComparison.Ordinal));
    }

    [Fact]
    public void Save_MoreArraysThanLoadAccepts_Throws()
    {
        var arrays = Enumerable.Range(0, 1025).Select(i => ($"a{i}", new float[1])).ToList();
        Assert.ThrowsAny<ArgumentException>(() => Checkpoints.Save(_dir, 1, new JsonObject { ["step"] = 1 }, arrays, keep: 1));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Save_DuplicateArrayNames_Throws()
    {
        Assert.ThrowsAny<ArgumentException>(() => Checkpoints.Save(_dir, 1, new JsonObject { ["step"] = 1 }, [("params", new float[1]), ("params", new float[2])], keep: 1));
    }

    [Fact]
    public void Save_NegativeStepOrStepMissingFromHeader_Throws()
    {
        Assert.ThrowsAny<ArgumentException>(() => Checkpoints.Save(_dir, -1, new JsonObject { ["step"] = -1 }, [("params", new float[1])], keep: 1));
        Assert.ThrowsAny<ArgumentException>(() => Checkpoints.Save(_dir, 4, new JsonObject { ["lr"] = 1 }, [("params", new float[1])], keep: 1));
        Assert.ThrowsAny<ArgumentException>(() => Checkpoints.Save(_dir, 4, new JsonObject { ["step"] = 5 }, [("params", new float[1])], keep: 1));
    }

    [Fact]
    public void Load_EmptyAndZeroLengthArrays_RoundTrip()
    {
        Checkpoints.Save(_dir, 2, new JsonObject { ["step"] = 2 }, [], keep: 1);
        Assert.Empty(Checkpoints.LoadLatest(_dir, [])!.Arrays);
        Checkpoints.Save(_dir, 3, new JsonObject { ["step"] = 3 }, [("empty", [])], keep: 1);
        Assert.Empty(Checkpoints.LoadLatest(_dir, [])!.Arrays["empty"]);
    }

    [Fact]
    public void Load_TenMillionFloats_RoundTripsBitExact()
    {
        var big = Data(10_000_000, 7);
        big[0] = -0f; big[1] = float.PositiveInfinity; big[2] = float.NegativeInfinity; big[3] = float.Epsilon;
        var path = Checkpoints.Save(_dir, 5, new JsonObject { ["step"] = 5 }, [("params", big)], keep: 1);
        Assert.Equal(40_000_000 + 8 + 4 + 4 + "{\"step\":5}".Length + 4 + 2 + 6 + 8 + 32, new FileInfo(path).Length);
        var back = Checkpoints.Load(path).Arrays["params"];
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.AsBytes(big.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(back.AsSpan())));
    }

    [Fact]
    public void LoadLatest_NoFolderOrOnlyGarbage_ReturnsNullWithAWarningPerFile()
    {
        Assert.Null(Checkpoints.LoadLatest(Path.Combine(_dir, "missing"), []));
        Put(1, []);
        Put(2, new byte[100]);
        var warnings = new List<string>();
        Assert.Null(Checkpoints.LoadLatest(_dir, warnings));
        Assert.Equal(2, warnings.Count);
    }
}
