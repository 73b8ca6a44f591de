// GGUF v3 writer: collects metadata (ordered key/value pairs) and tensors (name, type, shape, bytes), checks
// them against the same rules the reader enforces, and writes the layout of docs/gguf.md:
//   header (magic, version 3, tensor_count, metadata_kv_count), metadata KVs, tensor infos,
//   zero padding to ALIGNMENT, then each tensor's bytes followed by zero padding to ALIGNMENT
//   (as llama.cpp and gguf-py do, so the next tensor's offset is aligned).
// ALIGNMENT is general.alignment when given (uint32, power of two), else 32.
// Files are written atomically: PATH.tmp-<random>, flushed to disk, then moved over PATH.
using System.Buffers.Binary;
using System.Text;

using Duet.Tensors;

namespace Duet.Formats.Gguf;

public sealed class GgufWriter
{
    // Strict UTF-8: a lone surrogate in a .NET string is an error, not a silent U+FFFD.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly Dictionary<string, int> _keys = new(StringComparer.Ordinal);
    private readonly List<Tensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    public GgufWriter() { }

    /// <summary>Starts from existing metadata (e.g. another file's), in order.</summary>
    public GgufWriter(IEnumerable<KeyValuePair<string, GgufValue>> metadata) => AddMetadata(metadata);

    /// <summary>Metadata in the order it will be written.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata.AsReadOnly();

    /// <summary>Tensor names in the order they will be written.</summary>
    public IReadOnlyList<string> TensorNames => _tensors.ConvertAll(t => t.Name).AsReadOnly();

    /// <summary>general.alignment if set, else 32.</summary>
    public uint Alignment =>
        _keys.TryGetValue(GgufKeys.GeneralAlignment, out int i) ? (uint)_metadata[i].Value.Value : GgufFile.DefaultAlignment;

    /// <summary>Appends a key; throws <see cref="ArgumentException"/> for a duplicate or invalid key or value.</summary>
    public void Add(string key, GgufValue value)
    {
        ValidateEntry(key, value);
        if (_keys.ContainsKey(key))
            throw new ArgumentException($"GGUF metadata key '{key}' is already set; use Set to replace it.", nameof(key));
        _keys.Add(key, _metadata.Count);
        _metadata.Add(new(key, value));
    }

    /// <summary>Replaces the value of an existing key in place, or appends it.</summary>
    public void Set(string key, GgufValue value)
    {
        ValidateEntry(key, value);
        if (_keys.TryGetValue(key, out int i))
            _metadata[i] = new(key, value);
        else
            Add(key, value);
    }

    public void AddMetadata(IEnumerable<KeyValuePair<string, GgufValue>> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        foreach (var (key, value) in metadata)
            Add(key, value);
    }

    /// <summary>Removes a key if present; returns whether it was.</summary>
    public bool Remove(string key)
    {
        if (!_keys.Remove(key, out int i))
            return false;
        _metadata.RemoveAt(i);
        foreach (var k in _keys.Keys.ToList())
        {
            if (_keys[k] > i)
                _keys[k]--;
        }
        return true;
    }

    /// <summary>
    /// Adds a tensor. <paramref name="shape"/> is in GGUF order (ne0 first, at most 4 dimensions, each at least 1);
    /// <paramref name="data"/> must be exactly the byte size of that shape in <paramref name="type"/>.
    /// The data is not copied: keep it unchanged (and, for mapped memory, alive) until written.
    /// </summary>
    public void AddTensor(string name, GgmlType type, ReadOnlySpan<long> shape, ReadOnlyMemory<byte> data)
    {
        ArgumentNullException.ThrowIfNull(name);
        int nameBytes = Utf8Length(name, nameof(name));
        if (nameBytes > GgufFile.MaxTensorNameBytes)
            throw new ArgumentException($"GGUF tensor name '{name}' is {nameBytes} bytes; the limit is {GgufFile.MaxTensorNameBytes}.", nameof(name));
        if (_tensorNames.Contains(name))
            throw new ArgumentException($"GGUF tensor '{name}' is already added.", nameof(name));
        if (shape.Length > GgufFile.MaxDimensions)
            throw new ArgumentException($"GGUF tensor '{name}' has {shape.Length} dimensions; at most {GgufFile.MaxDimensions} are supported.", nameof(shape));
        string? error = GgmlTypeInfo.Validate(type, shape, out _, out long bytes);
        if (error is not null)
            throw new ArgumentException($"GGUF tensor '{name}': {error}.", nameof(shape));
        if (data.Length != bytes)
            throw new ArgumentException($"GGUF tensor '{name}' ({type}, shape [{string.Join(", ", shape.ToArray())}]) needs {bytes} bytes, got {data.Length}.", nameof(data));
        _tensorNames.Add(name);
        _tensors.Add(new Tensor(name, type, shape.ToArray(), data));
    }

    /// <summary>Writes the file to <paramref name="stream"/> from its current position; the stream need not be seekable.</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        uint alignment = Alignment;
        var w = new Output(stream);

        // gguf_header_t
        w.UInt32(GgufFile.Magic);
        w.UInt32(3);
        w.UInt64((ulong)_tensors.Count);
        w.UInt64((ulong)_metadata.Count);

        // gguf_metadata_kv_t: key, value type, value
        foreach (var (key, value) in _metadata)
        {
            w.String(key);
            w.UInt32((uint)value.Type);
            WriteValue(w, value);
        }

        // gguf_tensor_info_t: offsets relative to the data section, each padded up to ALIGNMENT.
        long offset = 0;
        foreach (var t in _tensors)
        {
            w.String(t.Name);
            w.UInt32((uint)t.Shape.Length);
            foreach (long d in t.Shape)
                w.UInt64((ulong)d);
            w.UInt32((uint)t.Type);
            w.UInt64((ulong)offset);
            offset = AlignUp(offset + t.Data.Length, alignment);
        }

        // padding, then tensor_data with each tensor padded to ALIGNMENT
        w.PadTo(alignment);
        foreach (var t in _tensors)
        {
            w.Bytes(t.Data.Span);
            w.PadTo(alignment);
        }
        w.Flush();
    }

    /// <summary>Writes to <paramref name="path"/> atomically: a temporary file beside it, flushed to disk, then renamed over it.</summary>
    public void WriteFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        AtomicFile.Write(path, WriteTo);
    }

    /// <summary>Writes the file to a new byte array (small files, tests).</summary>
    public byte[] ToArray()
    {
        using var ms = new MemoryStream();
        WriteTo(ms);
        return ms.ToArray();
    }

    private static void WriteValue(Output w, GgufValue value)
    {
        switch (value.Value)
        {
            case byte v: w.Byte(v); break;
            case sbyte v: w.Byte((byte)v); break;
            case ushort v: w.UInt16(v); break;
            case short v: w.UInt16((ushort)v); break;
            case uint v: w.UInt32(v); break;
            case int v: w.UInt32((uint)v); break;
            case float v: w.UInt32(BitConverter.SingleToUInt32Bits(v)); break;
            case bool v: w.Byte(v ? (byte)1 : (byte)0); break;
            case string v: w.String(v); break;
            case ulong v: w.UInt64(v); break;
            case long v: w.UInt64((ulong)v); break;
            case double v: w.UInt64(BitConverter.DoubleToUInt64Bits(v)); break;
            case GgufArray a: WriteArray(w, a); break;
            default: throw new InvalidOperationException($"Unexpected GGUF value {value.Value.GetType()}.");
        }
    }

    // Array payload: element type, count, elements (an element of type Array is itself a payload).
    private static void WriteArray(Output w, GgufArray array)
    {
        w.UInt32((uint)array.ElementType);
        w.UInt64((ulong)array.Count);
        switch (array.Items)
        {
            case string[] strings:
                foreach (var s in strings)
                    w.String(s);
                break;
            case GgufValue[] arrays:
                foreach (var a in arrays)
                    WriteArray(w, a.AsArray());
                break;
            case bool[] bools:
                foreach (bool b in bools)
                    w.Byte(b ? (byte)1 : (byte)0);
                break;
            default:
                // Little-endian host (checked in Output): the element bytes are the file bytes.
                w.Bytes(GgufArray.Bytes(array.Items));
                break;
        }
    }

    private static void ValidateEntry(string key, GgufValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        int keyBytes = Utf8Length(key, nameof(key));
        if (keyBytes == 0 || keyBytes > GgufFile.MaxKeyBytes)
            throw new ArgumentException($"GGUF metadata key must be 1 to {GgufFile.MaxKeyBytes} bytes, got {keyBytes}.", nameof(key));
        if (key == GgufKeys.GeneralAlignment)
        {
            if (value.Value is not uint a)
                throw new ArgumentException($"{GgufKeys.GeneralAlignment} must be a uint32, got {value.Type}.", nameof(value));
            if (a == 0 || (a & (a - 1)) != 0)
                throw new ArgumentException($"{GgufKeys.GeneralAlignment} must be a power of two, got {a}.", nameof(value));
        }
        ValidateValue(key, value, 0);
    }

    // The reader's limits, checked up front so WriteTo never fails half way through.
    private static void ValidateValue(string key, GgufValue value, int depth)
    {
        switch (value.Value)
        {
            case string s:
                CheckString(key, s);
                break;
            case GgufArray a:
                if (depth + 1 > GgufFile.MaxArrayDepth)
                    throw new ArgumentException($"GGUF metadata key '{key}': arrays nested more than {GgufFile.MaxArrayDepth} deep.", nameof(value));
                if (a.Items is string[] strings)
                {
                    foreach (var s in strings)
                        CheckString(key, s);
                }
                else if (a.Items is GgufValue[] arrays)
                {
                    foreach (var inner in arrays)
                        ValidateValue(key, inner, depth + 1);
                }
                break;
        }
    }

    private static void CheckString(string key, string s)
    {
        int n = Utf8Length(s, nameof(s));
        if (n > GgufFile.MaxStringBytes)
            throw new ArgumentException($"GGUF metadata key '{key}': a string of {n} bytes exceeds the {GgufFile.MaxStringBytes}-byte limit.", nameof(s));
    }

    private static int Utf8Length(string s, string paramName)
    {
        try
        {
            return StrictUtf8.GetByteCount(s);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"String is not valid Unicode (lone surrogate at index {e.Index}); GGUF strings are UTF-8.", paramName, e);
        }
    }

    private static long AlignUp(long offset, uint alignment) => offset + ((alignment - (offset % alignment)) % alignment);

    private sealed record Tensor(string Name, GgmlType Type, long[] Shape, ReadOnlyMemory<byte> Data);

    /// <summary>Buffered little-endian output that counts its position (the stream may not be seekable).</summary>
    private sealed class Output
    {
        private readonly Stream _stream;
        private readonly byte[] _buffer = new byte[1 << 16];
        private int _used;

        public Output(Stream stream)
        {
            if (!BitConverter.IsLittleEndian)
                throw new PlatformNotSupportedException("The GGUF writer supports little-endian hosts only.");
            _stream = stream;
        }

        public long Position { get; private set; }

        public void Byte(byte v) => Reserve(1)[0] = v;

        public void UInt16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Reserve(2), v);

        public void UInt32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Reserve(4), v);

        public void UInt64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Reserve(8), v);

        // gguf_string_t: uint64 byte length, then the UTF-8 bytes without a terminator.
        public void String(string s)
        {
            int n = StrictUtf8.GetByteCount(s);
            UInt64((ulong)n);
            if (n <= _buffer.Length)
            {
                StrictUtf8.GetBytes(s, Reserve(n));
            }
            else
            {
                Bytes(StrictUtf8.GetBytes(s));
            }
        }

        public void Bytes(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length <= _buffer.Length - _used)
            {
                bytes.CopyTo(_buffer.AsSpan(_used));
                _used += bytes.Length;
                Position += bytes.Length;
                return;
            }
            Flush();
            _stream.Write(bytes);
            Position += bytes.Length;
        }

        public void PadTo(uint alignment)
        {
            long pad = AlignUp(Position, alignment) - Position;
            while (pad > 0)
            {
                int n = (int)Math.Min(pad, _buffer.Length);
                Reserve(n).Clear();
                pad -= n;
            }
        }

        public void Flush()
        {
            if (_used > 0)
                _stream.Write(_buffer, 0, _used);
            _used = 0;
        }

        private Span<byte> Reserve(int n)
        {
            if (_buffer.Length - _used < n)
                Flush();
            var span = _buffer.AsSpan(_used, n);
            _used += n;
            Position += n;
            return span;
        }
    }
}

/// <summary>Edits of existing GGUF files.</summary>
public static class GgufEdit
{
    /// <summary>
    /// Rewrites <paramref name="path"/> with its metadata edited by <paramref name="edit"/> and every tensor copied byte
    /// for byte (quantized ones stay as they are), atomically: a temporary file beside it, then renamed over it.
    /// </summary>
    public static unsafe void EditMetadata(string path, Action<GgufWriter> edit)
    {
        using var file = GgufFile.Open(path);
        var w = new GgufWriter(file.Metadata);
        edit(w);
        foreach (var t in file.Tensors)
            w.AddTensor(t.Name, t.Type, t.Shape, new PointerMemoryManager(file.BasePointer + t.FileOffset, checked((int)t.ByteSize)).Memory);
        w.WriteFile(path);
    }
}
