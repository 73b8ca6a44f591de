// Writer -> reader round trips: every value type (scalars at their extremes, strings, arrays of every
// element type, empty arrays, nested arrays), metadata order, alignment, and tensor bytes, in memory and
// through files on disk (memory-mapped, written atomically).
using Duet.Formats.Gguf;

using Duet.Tensors;

namespace Duet.Formats.Tests.Gguf;

public sealed class GgufRoundTripTests
{
    private static readonly KeyValuePair<string, GgufValue>[] EveryValue =
    [
        new("u8", GgufValue.Of(byte.MaxValue)),
        new("i8", GgufValue.Of(sbyte.MinValue)),
        new("u16", GgufValue.Of(ushort.MaxValue)),
        new("i16", GgufValue.Of(short.MinValue)),
        new("u32", GgufValue.Of(uint.MaxValue)),
        new("i32", GgufValue.Of(int.MinValue)),
        new("f32", GgufValue.Of(-0.0f)),
        new("f32.nan", GgufValue.Of(float.NaN)),
        new("f32.eps", GgufValue.Of(1e-6f)),
        new("bool.true", GgufValue.Of(true)),
        new("bool.false", GgufValue.Of(false)),
        new("str", GgufValue.Of("héllo, 世界 🦙\n\t\"quoted\"")),
        new("str.empty", GgufValue.Of("")),
        new("str.nul", GgufValue.Of("a\0b")),
        new("u64", GgufValue.Of(ulong.MaxValue)),
        new("i64", GgufValue.Of(long.MinValue)),
        new("f64", GgufValue.Of(double.Epsilon)),
        new("arr.u8", GgufValue.Of(new byte[] { 0, 1, 255 })),
        new("arr.i8", GgufValue.Of(new sbyte[] { -128, 0, 127 })),
        new("arr.u16", GgufValue.Of(new ushort[] { 0, 65535 })),
        new("arr.i16", GgufValue.Of(new short[] { -32768, 32767 })),
        new("arr.u32", GgufValue.Of(new uint[] { 0, uint.MaxValue })),
        new("arr.i32", GgufValue.Of(new[] { int.MinValue, -1, int.MaxValue })),
        new("arr.f32", GgufValue.Of(new[] { 1.5f, float.NegativeInfinity, float.NaN })),
        new("arr.bool", GgufValue.Of(new[] { true, false, true })),
        new("arr.str", GgufValue.Of(new[] { "", "a", "ü", "<0x0A>", "▁the" })),
        new("arr.u64", GgufValue.Of(new[] { 0UL, ulong.MaxValue })),
        new("arr.i64", GgufValue.Of(new[] { long.MinValue, long.MaxValue })),
        new("arr.f64", GgufValue.Of(new[] { -0.0, Math.PI })),
        new("empty.u8", GgufValue.Of(Array.Empty<byte>())),
        new("empty.bool", GgufValue.Of(Array.Empty<bool>())),
        new("empty.str", GgufValue.Of(Array.Empty<string>())),
        new("empty.f64", GgufValue.Of(Array.Empty<double>())),
        new("empty.arr", GgufValue.Of(Array.Empty<GgufValue>())),
        new("nested", GgufValue.Of(
        [
            GgufValue.Of(new[] { 1, 2, 3 }),
            GgufValue.Of(new[] { "x", "y" }),
            GgufValue.Of(Array.Empty<float>()),
            GgufValue.Of([GgufValue.Of(new[] { true }), GgufValue.Of(Array.Empty<GgufValue>())]),
        ])),
        new("nested.max", Nest(GgufValue.Of(new byte[] { 7 }), GgufFile.MaxArrayDepth - 1)),
    ];

    private static GgufValue Nest(GgufValue inner, int levels)
    {
        for (int i = 0; i < levels; i++)
            inner = GgufValue.Of([inner]);
        return inner;
    }

    [Fact]
    public void WriteTo_EveryValueType_RoundTripsInOrder()
    {
        var w = new GgufWriter(EveryValue);
        using var f = GgufFile.Parse(w.ToArray());
        Assert.Equal(EveryValue.Select(e => e.Key), f.Metadata.Keys);
        for (int i = 0; i < EveryValue.Length; i++)
        {
            var (key, expected) = EveryValue[i];
            var actual = f.Metadata[i].Value;
            Assert.Equal(expected.Type, actual.Type);
            Assert.True(expected.Equals(actual), $"{key}: wrote {expected}, read {actual}");
        }
        Assert.Empty(f.Tensors);
    }

    [Fact]
    public void WriteTo_ScalarValues_ReadBackAsDotNetTypes()
    {
        using var f = GgufFile.Parse(new GgufWriter(EveryValue).ToArray());
        var m = f.Metadata;
        Assert.Equal(byte.MaxValue, m["u8"].As<byte>());
        Assert.Equal(sbyte.MinValue, m["i8"].As<sbyte>());
        Assert.Equal(ushort.MaxValue, m["u16"].As<ushort>());
        Assert.Equal(short.MinValue, m["i16"].As<short>());
        Assert.Equal(uint.MaxValue, m["u32"].As<uint>());
        Assert.Equal(int.MinValue, m["i32"].As<int>());
        Assert.True(float.IsNegative(m["f32"].As<float>()));
        Assert.True(float.IsNaN(m["f32.nan"].As<float>()));
        Assert.True(m["bool.true"].As<bool>());
        Assert.Equal("a\0b", m["str.nul"].AsString());
        Assert.Equal(ulong.MaxValue, m["u64"].As<ulong>());
        Assert.Equal(long.MinValue, m["i64"].As<long>());
        Assert.Equal(double.Epsilon, m["f64"].As<double>());
        Assert.Equal(GgufValueType.Array, m["empty.arr"].AsArray().ElementType);
        Assert.Equal(0, m["empty.arr"].AsArray().Count);
        Assert.Equal([7], Unnest(m["nested.max"]).ToArray<byte>());
    }

    private static GgufArray Unnest(GgufValue v)
    {
        var a = v.AsArray();
        while (a.ElementType == GgufValueType.Array)
            a = a.AsSpan<GgufValue>()[0].AsArray();
        return a;
    }

    [Fact]
    public void WriteTo_TensorsOfManyTypes_PreservesBytesShapesAndAlignment()
    {
        var random = new Random(7);
        (string Name, GgmlType Type, long[] Shape)[] specs =
        [
            ("f32", GgmlType.F32, [3, 5]),
            ("f16", GgmlType.F16, [7]),
            ("bf16", GgmlType.BF16, [1, 1, 1, 9]),
            ("q8_0", GgmlType.Q8_0, [64, 3]),
            ("q4_0", GgmlType.Q4_0, [32, 1, 2]),
            ("q4_k", GgmlType.Q4_K, [256, 2]),
            ("q6_k", GgmlType.Q6_K, [512]),
            ("i8", GgmlType.I8, [13]),
            ("scalar", GgmlType.F32, []),
        ];
        var w = new GgufWriter();
        w.Add(GgufKeys.GeneralArchitecture, GgufValue.Of("test"));
        var data = new Dictionary<string, byte[]>();
        foreach (var (name, type, shape) in specs)
        {
            var bytes = new byte[GgmlTypeInfo.ByteSize(type, shape)];
            random.NextBytes(bytes);
            data[name] = bytes;
            w.AddTensor(name, type, shape, bytes);
        }

        using var f = GgufFile.Parse(w.ToArray());
        Assert.Equal(specs.Select(s => s.Name), f.Tensors.Select(t => t.Name));
        Assert.Equal(0, f.DataOffset % 32);
        foreach (var (name, type, shape) in specs)
        {
            var t = f.GetTensor(name);
            Assert.Equal(type, t.Type);
            Assert.Equal(shape, t.Shape);
            Assert.Equal(shape.Aggregate(1L, (a, b) => a * b), t.ElementCount);
            Assert.Equal(0, t.Offset % 32);
            Assert.Equal(data[name], f.GetTensorBytes(t).ToArray());
        }
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(8u)]
    [InlineData(64u)]
    [InlineData(4096u)]
    public void WriteTo_GeneralAlignment_IsRespected(uint alignment)
    {
        var w = new GgufWriter();
        w.Add(GgufKeys.GeneralAlignment, GgufValue.Of(alignment));
        w.AddTensor("a", GgmlType.F32, [3], new byte[12]);
        w.AddTensor("b", GgmlType.I8, [5], new byte[] { 1, 2, 3, 4, 5 });
        w.AddTensor("c", GgmlType.F16, [1], new byte[] { 9, 9 });
        using var f = GgufFile.Parse(w.ToArray());
        Assert.Equal(alignment, f.Alignment);
        Assert.Equal(0, f.DataOffset % alignment);
        Assert.All(f.Tensors, t => Assert.Equal(0, t.FileOffset % alignment));
        Assert.Equal([1, 2, 3, 4, 5], f.GetTensorBytes("b").ToArray());
        Assert.Equal([9, 9], f.GetTensorBytes("c").ToArray());
        Assert.Equal(0, f.Length % alignment);
    }

    [Fact]
    public void WriteFile_ThenOpen_MapsTheSameBytesAndLeavesNoTemporaryFile()
    {
        string dir = Directory.CreateTempSubdirectory("duet-gguf-").FullName;
        try
        {
            string path = Path.Combine(dir, "sample.gguf");
            File.WriteAllText(path, "old contents to be replaced");
            SampleGguf.Writer().WriteFile(path);
            Assert.Equal([path], Directory.GetFiles(dir));
            Assert.Equal(SampleGguf.Bytes, File.ReadAllBytes(path));

            using var f = GgufFile.Open(path);
            Assert.Equal(path, f.Path);
            Assert.Equal(SampleGguf.Tokens, f.Metadata.GetStringArray(GgufKeys.TokenizerTokens));
            Assert.Equal(SampleGguf.TensorB, f.GetTensorBytes("b").ToArray());
            unsafe
            {
                var t = f.GetTensor("c");
                Assert.True(f.GetTensorPointer(t) == f.BasePointer + t.FileOffset);
                Assert.Equal(SampleGguf.TensorC[5], f.BasePointer[t.FileOffset + 5]);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void WriteFile_CopyOfOpenedFile_IsByteIdentical()
    {
        string dir = Directory.CreateTempSubdirectory("duet-gguf-").FullName;
        try
        {
            string src = Path.Combine(dir, "a.gguf");
            string dst = Path.Combine(dir, "b.gguf");
            SampleGguf.Writer().WriteFile(src);
            using (var f = GgufFile.Open(src))
            {
                var w = new GgufWriter(f.Metadata);
                foreach (var t in f.Tensors)
                    w.AddTensor(t.Name, t.Type, t.Shape, f.GetTensorMemory(t));
                w.WriteFile(dst);
            }
            Assert.Equal(File.ReadAllBytes(src), File.ReadAllBytes(dst));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void GetTensorBytes_AfterDispose_Throws()
    {
        var f = GgufFile.Parse(SampleGguf.Bytes);
        var t = f.Tensors[0];
        f.Dispose();
        Assert.Throws<ObjectDisposedException>(() => f.GetTensorBytes(t).Length);
        f.Dispose(); // idempotent
    }

    [Fact]
    public void GetTensorBytes_TensorOfAnotherFile_Throws()
    {
        using var a = GgufFile.Parse(SampleGguf.Bytes);
        using var b = GgufFile.Parse(SampleGguf.Bytes);
        Assert.Throws<ArgumentException>(() => a.GetTensorBytes(b.Tensors[0]).Length);
    }

    [Fact]
    public void WriteTo_NonSeekableStream_Works()
    {
        using var inner = new MemoryStream();
        using (var forwardOnly = new ForwardOnlyStream(inner))
            SampleGguf.Writer().WriteTo(forwardOnly);
        Assert.Equal(SampleGguf.Bytes, inner.ToArray());
    }

    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    }
}
