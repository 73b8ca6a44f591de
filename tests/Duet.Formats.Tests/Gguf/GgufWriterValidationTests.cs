// The writer refuses what the reader would reject, up front, with ArgumentException naming the problem.
using Duet.Formats.Gguf;

using Duet.Tensors;

namespace Duet.Formats.Tests.Gguf;

public sealed class GgufWriterValidationTests
{
    [Fact]
    public void AddTensor_WrongByteCount_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => new GgufWriter().AddTensor("t", GgmlType.Q8_0, [64], new byte[60]));
        Assert.Contains("needs 68 bytes, got 60", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddTensor_RowNotWholeBlocks_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => new GgufWriter().AddTensor("t", GgmlType.Q4_K, [128], new byte[72]));
        Assert.Contains("not a multiple of the Q4_K block size 256", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddTensor_BadShapes_Throw()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.F32, [0], Array.Empty<byte>()));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", (GgmlType)4, [1], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('x', 65), GgmlType.F32, [1], new byte[4]));
    }

    [Fact]
    public void AddTensor_DuplicateName_Throws()
    {
        var w = new GgufWriter();
        w.AddTensor("t", GgmlType.F32, [1], new byte[4]);
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.F32, [1], new byte[4]));
    }

    [Fact]
    public void Add_DuplicateKey_ThrowsButSetReplacesInPlace()
    {
        var w = new GgufWriter();
        w.Add("a", GgufValue.Of(1));
        w.Add("b", GgufValue.Of(2));
        Assert.Throws<ArgumentException>(() => w.Add("a", GgufValue.Of(3)));
        w.Set("a", GgufValue.Of(3));
        Assert.Equal(["a", "b"], w.Metadata.Select(e => e.Key));
        Assert.Equal(3, w.Metadata[0].Value.As<int>());
        Assert.True(w.Remove("a"));
        w.Set("a", GgufValue.Of(4));
        Assert.Equal(["b", "a"], w.Metadata.Select(e => e.Key));
    }

    [Fact]
    public void Add_BadAlignment_Throws()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentException>(() => w.Add(GgufKeys.GeneralAlignment, GgufValue.Of(48u)));
        Assert.Throws<ArgumentException>(() => w.Add(GgufKeys.GeneralAlignment, GgufValue.Of(32)));
        Assert.Throws<ArgumentException>(() => w.Add(GgufKeys.GeneralAlignment, GgufValue.Of(0u)));
    }

    [Fact]
    public void Add_InvalidStrings_Throw()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentException>(() => w.Add("", GgufValue.Of(1)));
        Assert.Throws<ArgumentException>(() => w.Add("k", GgufValue.Of("lone \ud800 surrogate")));
        Assert.Throws<ArgumentException>(() => w.Add("k", GgufValue.Of(new[] { "ok", "\udc00" })));
        Assert.Throws<ArgumentException>(() => w.Add("k\ud800", GgufValue.Of(1)));
    }

    [Fact]
    public void Add_ArraysNestedTooDeep_Throws()
    {
        var v = GgufValue.Of(new byte[] { 1 });
        for (int i = 0; i < GgufFile.MaxArrayDepth - 1; i++)
            v = GgufValue.Of([v]);
        var w = new GgufWriter();
        w.Add("ok", v);
        Assert.Throws<ArgumentException>(() => w.Add("deep", GgufValue.Of([v])));
    }

    [Fact]
    public void WriteFile_FailingWrite_LeavesOriginalAndNoTemporaryFile()
    {
        string dir = Directory.CreateTempSubdirectory("duet-gguf-").FullName;
        try
        {
            string path = Path.Combine(dir, "m.gguf");
            File.WriteAllText(path, "original");
            var w = new GgufWriter();
            var memory = new ThrowingMemory().Memory;
            w.AddTensor("t", GgmlType.I8, [4], memory);
            Assert.Throws<IOException>(() => w.WriteFile(path));
            Assert.Equal("original", File.ReadAllText(path));
            Assert.Equal([path], Directory.GetFiles(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Four bytes of memory whose span cannot be taken: makes WriteTo fail half way through.</summary>
    private sealed class ThrowingMemory : System.Buffers.MemoryManager<byte>
    {
        private int _calls;

        public override Span<byte> GetSpan() => _calls++ == 0 ? new byte[4] : throw new IOException("disk full (simulated)");

        public override System.Buffers.MemoryHandle Pin(int elementIndex = 0) => default;

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}
