// A byte-level GGUF builder for tests: writes exactly the fields it is told to, little-endian, with no
// validation, so tests can spell out valid files from the spec and hostile files that lie about lengths.
// It records where every count and length field went, for the fuzz test's targeted overwrites.
using System.Buffers.Binary;
using System.Text;

namespace Duet.Formats.Tests.Gguf;

internal sealed class RawGguf
{
    private readonly List<byte> _bytes = [];

    /// <summary>Offsets of the uint64 count/length fields written so far (string lengths, array counts, header counts, dims).</summary>
    public List<int> LengthFields { get; } = [];

    public int Length => _bytes.Count;

    public RawGguf Bytes(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public RawGguf Ascii(string s) => Bytes(Encoding.ASCII.GetBytes(s));

    public RawGguf U8(byte v) => Bytes(v);

    public RawGguf U16(ushort v)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        return Bytes(b);
    }

    public RawGguf U32(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return Bytes(b);
    }

    public RawGguf U64(ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        return Bytes(b);
    }

    public RawGguf F32(float v) => U32(BitConverter.SingleToUInt32Bits(v));

    public RawGguf F64(double v) => U64(BitConverter.DoubleToUInt64Bits(v));

    /// <summary>A uint64 that is a count or length (recorded for the fuzzer).</summary>
    public RawGguf Len(ulong v)
    {
        LengthFields.Add(_bytes.Count);
        return U64(v);
    }

    /// <summary>gguf_string_t with its true length.</summary>
    public RawGguf Str(string s) => Str(Encoding.UTF8.GetBytes(s));

    public RawGguf Str(byte[] utf8) => Len((ulong)utf8.Length).Bytes(utf8);

    /// <summary>magic, version, tensor_count, metadata_kv_count.</summary>
    public RawGguf Header(ulong tensorCount, ulong kvCount, uint version = 3) =>
        Ascii("GGUF").U32(version).Len(tensorCount).Len(kvCount);

    /// <summary>Key and value type; the caller writes the value.</summary>
    public RawGguf Key(string key, uint valueType) => Str(key).U32(valueType);

    public RawGguf KvString(string key, string value) => Key(key, 8).Str(value);

    public RawGguf KvUInt32(string key, uint value) => Key(key, 4).U32(value);

    /// <summary>Tensor info: name, n_dims, dims, type, offset.</summary>
    public RawGguf TensorInfo(string name, ulong[] dims, uint type, ulong offset)
    {
        Str(name).U32((uint)dims.Length);
        foreach (var d in dims)
            Len(d);
        return U32(type).U64(offset);
    }

    public RawGguf PadTo(int alignment)
    {
        while (_bytes.Count % alignment != 0)
            _bytes.Add(0);
        return this;
    }

    public byte[] ToArray() => [.. _bytes];
}
