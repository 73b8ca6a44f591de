// Hand-crafted hostile and broken GGUF files: each must end in a GgufFormatException (never an
// OutOfMemoryException, IndexOutOfRange, overflow or another type) whose message names the problem,
// the key or tensor, and the offset.
using Duet.Formats.Gguf;

namespace Duet.Formats.Tests.Gguf;

public sealed class GgufHostileInputTests
{
    private static GgufFormatException Rejects(byte[] bytes, params string[] messageParts)
    {
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Parse(bytes).Dispose());
        foreach (var part in messageParts)
            Assert.Contains(part, e.Message, StringComparison.Ordinal);
        Assert.Contains(" at offset ", e.Message, StringComparison.Ordinal);
        Assert.InRange(e.Offset, 0, bytes.Length);
        return e;
    }

    /// <summary>A header with one KV whose value the caller writes, and no tensors.</summary>
    private static RawGguf OneKv(string key, uint type) => new RawGguf().Header(0, 1).Key(key, type);

    [Fact]
    public void Parse_Empty_Throws() => Rejects([], "too short");

    [Fact]
    public void Parse_BadMagic_Throws() =>
        Rejects(new RawGguf().Ascii("GGML").U32(3).U64(0).U64(0).ToArray(), "GGUF header", "bad magic 47474D4C");

    [Fact]
    public void Parse_Version1_ThrowsNamingVersion() =>
        Rejects(new RawGguf().Header(0, 0, version: 1).ToArray(), "version 1 is not supported");

    [Theory]
    [InlineData(0u)]
    [InlineData(4u)]
    [InlineData(0xFFFFFFFFu)]
    public void Parse_UnknownVersion_Throws(uint version) =>
        Rejects(new RawGguf().Header(0, 0, version).ToArray(), $"unsupported version {version}");

    [Fact]
    public void Parse_BigEndianVersion_ThrowsSayingBigEndian() =>
        Rejects(new RawGguf().Header(0, 0, version: 0x03000000).ToArray(), "big-endian");

    [Fact]
    public void Parse_TruncatedHeader_Throws() =>
        Rejects(new RawGguf().Ascii("GGUF").U32(3).U32(0).ToArray(), "tensor count");

    [Theory]
    [InlineData(ulong.MaxValue)]
    [InlineData(1UL << 40)]
    [InlineData(2UL)]
    public void Parse_HugeTensorCount_Throws(ulong count) =>
        Rejects(new RawGguf().Header(count, 0).ToArray(), $"tensor count {count} cannot fit in the 0 bytes left");

    [Fact]
    public void Parse_HugeKvCount_Throws() =>
        Rejects(new RawGguf().Header(0, 1UL << 62).U64(0).ToArray(), $"metadata KV count {1UL << 62} cannot fit in the 8 bytes left");

    [Fact]
    public void Parse_KvAndTensorCountsTogetherTooLarge_Throws()
    {
        // 30 bytes left: one KV (14) or one tensor (24) would fit, not both.
        var bytes = new RawGguf().Header(1, 1).Bytes(new byte[30]).ToArray();
        Rejects(bytes, "together cannot fit");
    }

    [Fact]
    public void Parse_LyingKeyLength_Throws()
    {
        var bytes = new RawGguf().Header(0, 1).U64(1UL << 60).Ascii("abcdefghijklmnop").ToArray();
        Rejects(bytes, "GGUF metadata KV #0", $"key of {1UL << 60} bytes cannot fit in the 16 bytes left at offset 32");
    }

    [Fact]
    public void Parse_LyingStringValueLength_Throws()
    {
        var bytes = OneKv("general.name", 8).U64(1UL << 60).Ascii("x").ToArray();
        Rejects(bytes, "GGUF metadata key 'general.name'", $"string value of {1UL << 60} bytes cannot fit in the 1 bytes left");
    }

    [Fact]
    public void Parse_LyingStringArrayCount_ThrowsTheDocumentedMessage()
    {
        var g = OneKv("tokenizer.ggml.tokens", 9).U32(8).U64(5_000_000_000);
        int at = g.Length;
        var bytes = g.Str("a").Str("b").ToArray();
        int left = bytes.Length - at;
        Rejects(bytes, $"GGUF metadata key 'tokenizer.ggml.tokens': array of 5000000000 strings cannot fit in the {left} bytes left at offset {at}");
    }

    [Theory]
    [InlineData(0u, 1UL << 40)]  // uint8
    [InlineData(12u, 1UL << 40)] // float64
    [InlineData(9u, 1UL << 40)]  // arrays
    [InlineData(0u, ulong.MaxValue)]
    public void Parse_LyingArrayCount_Throws(uint elementType, ulong count)
    {
        var bytes = OneKv("k", 9).U32(elementType).U64(count).Bytes(new byte[64]).ToArray();
        Rejects(bytes, "GGUF metadata key 'k'", $"array of {count} ", "cannot fit in the 64 bytes left");
    }

    [Fact]
    public void Parse_LyingLengthInsideStringArray_Throws()
    {
        var bytes = OneKv("k", 9).U32(8).U64(2).Str("ok").U64(1UL << 50).Ascii("zz").ToArray();
        Rejects(bytes, "string element 1 of");
    }

    [Fact]
    public void Parse_ArraysNestedNineDeep_Throws()
    {
        var g = OneKv("deep", 9);
        for (int i = 0; i < 8; i++)
            g.U32(9).U64(1); // eight arrays each holding one array
        g.U32(0).U64(0);     // the ninth: an empty uint8 array
        Rejects(g.ToArray(), "GGUF metadata key 'deep'", "nested more than 8 deep");
    }

    [Fact]
    public void Parse_ArraysNestedEightDeep_Succeeds()
    {
        var g = OneKv("deep", 9);
        for (int i = 0; i < 7; i++)
            g.U32(9).U64(1);
        g.U32(0).U64(0);
        using var f = GgufFile.Parse(g.ToArray());
        var v = f.Metadata["deep"];
        for (int i = 0; i < 7; i++)
            v = v.AsArray().AsSpan<GgufValue>()[0];
        Assert.Equal(GgufValueType.UInt8, v.AsArray().ElementType);
    }

    [Fact]
    public void Parse_HundredThousandNestedArrayLevels_ThrowsWithoutStackOverflow()
    {
        var g = OneKv("deep", 9);
        for (int i = 0; i < 100_000; i++)
            g.U32(9).U64(1);
        Rejects(g.ToArray(), "nested more than 8 deep");
    }

    [Theory]
    [InlineData(13u)]
    [InlineData(0xFFFFFFFFu)]
    public void Parse_UnknownValueType_Throws(uint type) =>
        Rejects(OneKv("k", type).U64(0).ToArray(), "GGUF metadata key 'k'", $"unknown value type {type}");

    [Fact]
    public void Parse_UnknownArrayElementType_Throws() =>
        Rejects(OneKv("k", 9).U32(77).U64(0).ToArray(), $"unknown array element type 77");

    [Fact]
    public void Parse_InvalidUtf8InKey_ThrowsNamingOffset()
    {
        var bytes = new RawGguf().Header(0, 1).Str([(byte)'a', 0xC3, 0x28]).U32(4).U32(1).ToArray();
        // key length at 24, key bytes at 32, the bad sequence starts at 33.
        var e = Rejects(bytes, "GGUF metadata KV #0", "key is not valid UTF-8", "bad byte at offset 33");
        Assert.Equal(33, e.Offset);
    }

    [Fact]
    public void Parse_InvalidUtf8InStringValue_Throws() =>
        Rejects(OneKv("k", 8).Str([0xFF]).ToArray(), "GGUF metadata key 'k'", "string value is not valid UTF-8");

    [Fact]
    public void Parse_BoolValueTwo_Throws() =>
        Rejects(OneKv("flag", 7).U8(2).ToArray(), "GGUF metadata key 'flag'", "bool value 2 is neither 0 nor 1");

    [Fact]
    public void Parse_EmptyKey_Throws() =>
        Rejects(new RawGguf().Header(0, 1).Str("").U32(0).U8(0).Bytes(new byte[8]).ToArray(), "key is empty");

    [Fact]
    public void Parse_DuplicateKey_Throws()
    {
        var bytes = new RawGguf().Header(0, 2).KvUInt32("a.b", 1).KvUInt32("a.b", 2).ToArray();
        Rejects(bytes, "GGUF metadata key 'a.b'", "duplicate key");
    }

    [Theory]
    [InlineData(48u)]
    [InlineData(0u)]
    public void Parse_AlignmentNotPowerOfTwo_Throws(uint alignment) =>
        Rejects(new RawGguf().Header(0, 1).KvUInt32("general.alignment", alignment).ToArray(),
            "general.alignment", $"alignment {alignment} is not a power of two");

    [Fact]
    public void Parse_AlignmentWrongType_Throws() =>
        Rejects(OneKv("general.alignment", 10).U64(32).ToArray(), "general.alignment", "has type uint64, expected uint32");

    /// <summary>Header with one tensor info written by the caller, then padding and 64 data bytes.</summary>
    private static byte[] OneTensor(Action<RawGguf> info, int dataBytes = 64)
    {
        var g = new RawGguf().Header(1, 0);
        info(g);
        return g.PadTo(32).Bytes(new byte[dataBytes]).ToArray();
    }

    [Fact]
    public void Parse_ValidTensor_Succeeds()
    {
        using var f = GgufFile.Parse(OneTensor(g => g.TensorInfo("t", [16], 0, 0)));
        Assert.Equal(64, f.Tensors[0].ByteSize);
    }

    [Fact]
    public void Parse_FiveDimensions_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("t", [1, 1, 1, 1, 1], 0, 0)), "GGUF tensor 't'", "5 dimensions, at most 4");

    [Fact]
    public void Parse_ZeroDimension_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("t", [4, 0], 0, 0)), "GGUF tensor 't'", "dimension 1 is 0");

    [Fact]
    public void Parse_DimensionAboveInt64_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("t", [ulong.MaxValue], 0, 0)), "GGUF tensor 't'", $"dimension 0 is {ulong.MaxValue}");

    [Fact]
    public void Parse_ElementCountOverflow_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("t", [1UL << 32, 1UL << 32], 24, 0)), "GGUF tensor 't'", "overflows");

    [Fact]
    public void Parse_ByteSizeOverflow_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("t", [1UL << 31, 1UL << 31], 0, 0)), "GGUF tensor 't'", "byte size", "overflows");

    [Fact]
    public void Parse_RowNotMultipleOfBlockSize_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("q", [16, 2], 2, 0)), "GGUF tensor 'q'", "ne0 = 16 is not a multiple of the Q4_0 block size 32");

    [Theory]
    [InlineData(4u)]    // Q4_2, removed
    [InlineData(31u)]   // Q4_0_4_4, removed from GGUF
    [InlineData(42u)]
    [InlineData(0xFFFFFFFFu)]
    public void Parse_UnknownTensorType_Throws(uint type) =>
        Rejects(OneTensor(g => g.TensorInfo("t", [1], type, 0)), "GGUF tensor 't'", $"unknown or removed ggml tensor type {type}");

    [Fact]
    public void Parse_MisalignedTensorOffset_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("t", [2], 0, 8)), "GGUF tensor 't'", "data offset 8 is not a multiple of the alignment 32");

    [Fact]
    public void Parse_TensorDataPastEndOfFile_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("t", [32], 0, 0)), "GGUF tensor 't'", "data of 128 bytes at data offset 0", "extends past the end");

    [Fact]
    public void Parse_HugeTensorOffset_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo("t", [1], 0, ulong.MaxValue - 31)), "GGUF tensor 't'", "extends past the end");

    [Fact]
    public void Parse_TensorNameTooLong_Throws() =>
        Rejects(OneTensor(g => g.TensorInfo(new string('n', 65), [1], 0, 0)), "tensor name of 65 bytes is longer than the 64-byte limit");

    [Fact]
    public void Parse_DuplicateTensorName_Throws()
    {
        var g = new RawGguf().Header(2, 0).TensorInfo("t", [8], 0, 0).TensorInfo("t", [8], 0, 32);
        Rejects(g.PadTo(32).Bytes(new byte[64]).ToArray(), "GGUF tensor 't'", "duplicate tensor name");
    }

    [Fact]
    public void Parse_OverlappingTensors_Throws()
    {
        // "a" covers data [0, 64), "b" starts at 32.
        var g = new RawGguf().Header(2, 0).TensorInfo("a", [16], 0, 0).TensorInfo("b", [8], 0, 32);
        Rejects(g.PadTo(32).Bytes(new byte[64]).ToArray(), "GGUF tensor 'b'", "overlaps tensor 'a'");
    }

    [Fact]
    public void Parse_TensorsOutOfOrderWithGaps_Succeeds()
    {
        var g = new RawGguf().Header(2, 0).TensorInfo("late", [8], 0, 64).TensorInfo("early", [8], 0, 0);
        using var f = GgufFile.Parse(g.PadTo(32).Bytes(new byte[96]).ToArray());
        Assert.Equal(64, f.GetTensor("late").Offset);
    }

    [Fact]
    public void Parse_TruncatedAtEveryOffset_ThrowsFormatException()
    {
        var bytes = SampleGguf.Bytes;
        for (int n = 0; n < bytes.Length; n++)
        {
            try
            {
                GgufFile.Parse(bytes.AsMemory(0, n)).Dispose();
                Assert.Fail($"truncated to {n} of {bytes.Length} bytes, the file parsed");
            }
            catch (GgufFormatException)
            {
            }
        }
    }

    [Theory]
    [InlineData(12u, 1UL << 30)] // float64: 8 GiB of "elements" that the sparse file does hold
    [InlineData(8u, 1UL << 29)]  // strings: 4 GiB of references before the first string is read
    public void Open_LyingArrayCountBackedByHugeSparseFile_ThrowsMemoryBudgetError(uint elementType, ulong count)
    {
        // A 20 GB model whose tensor bytes "hold" the lying array: the bytes-left check passes, the memory
        // budget must stop it before anything is allocated. The file is sparse, so it costs no disk.
        string dir = Directory.CreateTempSubdirectory("duet-gguf-").FullName;
        try
        {
            string path = Path.Combine(dir, "huge.gguf");
            using (var fs = new FileStream(path, FileMode.CreateNew))
            {
                fs.Write(OneKv("k", 9).U32(elementType).U64(count).ToArray());
                fs.SetLength(20_000_000_000);
            }
            var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path).Dispose());
            Assert.Contains($"GGUF metadata key 'k': array of {count} ", e.Message, StringComparison.Ordinal);
            Assert.Contains("memory budget", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Open_TruncatedFileOnDisk_ThrowsNamingThePath()
    {
        string dir = Directory.CreateTempSubdirectory("duet-gguf-").FullName;
        try
        {
            string path = Path.Combine(dir, "cut.gguf");
            File.WriteAllBytes(path, SampleGguf.Bytes.AsSpan(0, 100).ToArray());
            var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path).Dispose());
            Assert.Contains(path, e.Message, StringComparison.Ordinal);

            File.WriteAllBytes(path, []);
            e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path).Dispose());
            Assert.Contains("empty", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
