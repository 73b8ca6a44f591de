// GGUF v2/v3 reader, transcribing ggml docs/gguf.md struct by struct:
//   gguf_header_t      magic "GGUF", uint32 version, uint64 tensor_count, uint64 metadata_kv_count,
//                      gguf_metadata_kv_t[metadata_kv_count]
//   gguf_tensor_info_t gguf_string_t name, uint32 n_dimensions, uint64 dimensions[n], uint32 type, uint64 offset
//   padding to ALIGNMENT, then tensor_data (each tensor at data start + offset, offset a multiple of ALIGNMENT).
// Version 1 (uint32 counts and lengths) is rejected; v2 and v3 share one layout (v3 only allows big-endian
// files, which cannot be told apart and are rejected when the version field shows it).
//
// The input is hostile until proven otherwise: every count and length is checked against the bytes left in
// the file, and charged against a fixed memory budget (MaxMetadataMemory), before anything is allocated, so a
// lying header costs an exception, never memory. Nesting depth, dimensions and name lengths are bounded.
// Every failure is a GgufFormatException naming the problem, the key or tensor, and the file offset.
//
// Tensor data is not copied: Open memory-maps the file and GetTensorBytes returns spans into the map.
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

using Duet.Tensors;

namespace Duet.Formats.Gguf;

/// <summary>One entry of the tensor info table, validated against the file.</summary>
public sealed class GgufTensorInfo
{
    internal GgufTensorInfo(int index, string name, GgmlType type, long[] shape, long offset, long fileOffset, long elementCount, long byteSize)
    {
        Index = index;
        Name = name;
        Type = type;
        Shape = shape;
        Offset = offset;
        FileOffset = fileOffset;
        ElementCount = elementCount;
        ByteSize = byteSize;
    }

    /// <summary>Position in the file's tensor info table.</summary>
    public int Index { get; }

    public string Name { get; }

    public GgmlType Type { get; }

    /// <summary>Dimensions in GGUF order: ne0 (the contiguous, fastest-varying one) first. Treat as read-only.</summary>
    public long[] Shape { get; }

    /// <summary>Offset of the data relative to the start of the tensor data section (as stored in the file).</summary>
    public long Offset { get; }

    /// <summary>Absolute offset of the data in the file.</summary>
    public long FileOffset { get; }

    public long ElementCount { get; }

    public long ByteSize { get; }

    internal object? Owner { get; set; }

    public override string ToString() => $"{Name} {Type} [{string.Join(", ", Shape)}] at {FileOffset} ({ByteSize} bytes)";
}

/// <summary>
/// A parsed GGUF file: metadata, tensor infos, and zero-copy access to tensor data.
/// Spans and pointers handed out are valid only until <see cref="Dispose"/>; the object is safe for
/// concurrent reads, but not for reads concurrent with Dispose.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32 (bytes 0x47 0x47 0x55 0x46).</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Alignment when general.alignment is absent (spec: "assume it is 32").</summary>
    public const uint DefaultAlignment = 32;

    /// <summary>Deepest array nesting accepted (an array of arrays is depth 2).</summary>
    public const int MaxArrayDepth = 8;

    /// <summary>Most tensor dimensions (ggml GGML_MAX_DIMS; spec: "currently at most 4").</summary>
    public const int MaxDimensions = 4;

    /// <summary>Longest tensor name in bytes (spec: "at most 64 bytes long").</summary>
    public const int MaxTensorNameBytes = 64;

    /// <summary>Longest metadata key in bytes (spec: "at most 2^16-1").</summary>
    public const int MaxKeyBytes = 65535;

    /// <summary>Longest string value in bytes (128 MiB; the largest real ones, embedded tokenizer.json files, are tens of MiB).</summary>
    public const int MaxStringBytes = 128 << 20;

    /// <summary>
    /// Budget for the managed memory that parsed metadata and tensor infos may take (512 MiB; real files need
    /// a few MiB, a 256k-token vocabulary about 20). Checking counts against the bytes left in the file is not
    /// enough on its own: in a mapped 20 GB model, a lying array count backed by tensor bytes "fits".
    /// </summary>
    public const long MaxMetadataMemory = 512L << 20;

    private readonly IDisposable _owner;
    private readonly Dictionary<string, GgufTensorInfo> _byName;
    private byte* _base;

    private GgufFile(IDisposable owner, byte* basePointer, long length, string? path, uint version, uint alignment,
        long dataOffset, GgufMetadata metadata, List<GgufTensorInfo> tensors, Dictionary<string, GgufTensorInfo> byName)
    {
        _owner = owner;
        _base = basePointer;
        Length = length;
        Path = path;
        Version = version;
        Alignment = alignment;
        DataOffset = dataOffset;
        Metadata = metadata;
        Tensors = tensors.AsReadOnly();
        _byName = byName;
        foreach (var t in tensors)
            t.Owner = this;
    }

    /// <summary>The path given to <see cref="Open"/>, or null for <see cref="Parse"/>.</summary>
    public string? Path { get; }

    /// <summary>2 or 3.</summary>
    public uint Version { get; }

    /// <summary>general.alignment, or 32: a power of two.</summary>
    public uint Alignment { get; }

    /// <summary>Absolute file offset where the tensor data section starts (aligned).</summary>
    public long DataOffset { get; }

    /// <summary>File length in bytes.</summary>
    public long Length { get; }

    /// <summary>Metadata in file order.</summary>
    public GgufMetadata Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Start of the mapped (or pinned) file; valid until Dispose. For kernels that index by <see cref="GgufTensorInfo.FileOffset"/>.</summary>
    public byte* BasePointer => _base != null ? _base : throw new ObjectDisposedException(nameof(GgufFile));

    /// <summary>
    /// Memory-maps <paramref name="path"/> read-only and parses the header, metadata and tensor infos.
    /// Tensor data is not read until used. Throws <see cref="GgufFormatException"/> for an invalid file.
    /// </summary>
    public static GgufFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        EnsureLittleEndianHost();
        var map = MappedFile.Open(path, () => new GgufFormatException($"GGUF file is empty (0 bytes) in '{path}'", 0));
        try
        {
            return new Parser(map.Pointer, map.Length, path).Parse(map);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Parses a whole GGUF file held in memory (tests, fuzzing, small vocab-only files). The memory is pinned
    /// until Dispose and tensor spans point into it. Throws <see cref="GgufFormatException"/> for invalid data.
    /// </summary>
    public static GgufFile Parse(ReadOnlyMemory<byte> data)
    {
        EnsureLittleEndianHost();
        var pin = new PinnedMemory(data.Pin());
        try
        {
            return new Parser((byte*)pin.Handle.Pointer, data.Length, null).Parse(pin);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
    }

    public bool TryGetTensor(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out GgufTensorInfo? tensor) =>
        _byName.TryGetValue(name, out tensor);

    /// <summary>The tensor named <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> when absent.</summary>
    public GgufTensorInfo GetTensor(string name) =>
        _byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"GGUF file has no tensor '{name}'{Source(Path)}.");

    /// <summary>
    /// The tensor's data, without a copy. Valid only while this GgufFile is not disposed.
    /// Tensors over 2 GiB do not fit a span: use <see cref="GetTensorPointer"/>.
    /// </summary>
    public ReadOnlySpan<byte> GetTensorBytes(GgufTensorInfo tensor) => new(GetTensorPointer(tensor), SpanLength(tensor));

    public ReadOnlySpan<byte> GetTensorBytes(string name) => GetTensorBytes(GetTensor(name));

    /// <summary>The tensor's data as memory (e.g. to pass to <see cref="GgufWriter.AddTensor"/>); valid while not disposed.</summary>
    public ReadOnlyMemory<byte> GetTensorMemory(GgufTensorInfo tensor) =>
        new PointerMemoryManager(GetTensorPointer(tensor), SpanLength(tensor)).Memory;

    /// <summary>Pointer to the tensor's first byte (ByteSize bytes follow); valid while not disposed.</summary>
    public byte* GetTensorPointer(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!ReferenceEquals(tensor.Owner, this))
            throw new ArgumentException($"Tensor '{tensor.Name}' does not belong to this GGUF file.", nameof(tensor));
        return BasePointer + tensor.FileOffset;
    }

    public void Dispose()
    {
        if (_base == null)
            return;
        _base = null;
        _owner.Dispose();
    }

    private static int SpanLength(GgufTensorInfo tensor) => tensor.ByteSize <= int.MaxValue
        ? (int)tensor.ByteSize
        : throw new NotSupportedException($"Tensor '{tensor.Name}' has {tensor.ByteSize} bytes, more than a span can hold; use GetTensorPointer.");

    private static string Source(string? path) => path is null ? "" : $" in '{path}'";

    private static void EnsureLittleEndianHost()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("The GGUF reader supports little-endian hosts only.");
    }

    private sealed class PinnedMemory(MemoryHandle handle) : IDisposable
    {
        public MemoryHandle Handle = handle;

        public void Dispose() => Handle.Dispose();
    }

    /// <summary>One pass over the header, metadata and tensor infos; positions are absolute file offsets.</summary>
    private sealed class Parser(byte* basePointer, long length, string? path)
    {
        // Smallest encodings, used to bound counts before anything is allocated:
        // a KV is key length (8) + at least 1 key byte + value type (4) + at least 1 value byte;
        // a tensor info is name length (8) + n_dimensions (4) + type (4) + offset (8).
        private const long MinKvBytes = 8 + 1 + 4 + 1;
        private const long MinTensorInfoBytes = 8 + 4 + 4 + 8;

        // Rough managed sizes charged against MaxMetadataMemory before allocating (object header + fields).
        private const long ObjectBytes = 32;
        private const long KvBytes = 4 * ObjectBytes;      // boxed scalar, GgufValue, list and dictionary entries
        private const long TensorBytes = 8 * ObjectBytes;  // GgufTensorInfo, shape array, set and dictionary entries

        private readonly string _source = Source(path);
        private long _pos;
        private long _charged;
        private string _context = "GGUF header";

        private long Remaining => length - _pos;

        public GgufFile Parse(IDisposable owner)
        {
            // ---- gguf_header_t
            if (length < 4)
                throw Fail($"file is {length} bytes, too short for the 4-byte magic \"GGUF\"", 0);
            uint magic = ReadUInt32("magic");
            if (magic != Magic)
                throw Fail($"bad magic {Convert.ToHexString(new ReadOnlySpan<byte>(basePointer, 4))}, expected 47475546 (\"GGUF\"); this is not a GGUF file", 0);
            uint version = ReadUInt32("version");
            CheckVersion(version);
            ulong tensorCount = ReadUInt64("tensor count");
            ulong kvCount = ReadUInt64("metadata KV count");

            // The counts cannot exceed what the rest of the file could hold at their smallest encodings.
            long left = Remaining;
            if (kvCount > (ulong)(left / MinKvBytes))
                throw Fail($"metadata KV count {kvCount} cannot fit in the {left} bytes left (each KV takes at least {MinKvBytes} bytes)", _pos);
            if (tensorCount > (ulong)(left / MinTensorInfoBytes))
                throw Fail($"tensor count {tensorCount} cannot fit in the {left} bytes left (each tensor info takes at least {MinTensorInfoBytes} bytes)", _pos);
            if ((long)kvCount * MinKvBytes + (long)tensorCount * MinTensorInfoBytes > left)
                throw Fail($"metadata KV count {kvCount} and tensor count {tensorCount} together cannot fit in the {left} bytes left", _pos);

            // ---- gguf_metadata_kv_t[metadata_kv_count]
            // Capacities are capped: the counts are bounded by the file size, which may be gigabytes of tensors.
            int kvs = (int)kvCount;
            var entries = new List<KeyValuePair<string, GgufValue>>(Math.Min(kvs, 1024));
            var index = new Dictionary<string, int>(Math.Min(kvs, 1024), StringComparer.Ordinal);
            var offsets = new List<long>(Math.Min(kvs, 1024));
            for (int i = 0; i < kvs; i++)
            {
                _context = $"GGUF metadata KV #{i}";
                long keyOffset = _pos;
                Charge(KvBytes, "the metadata KVs", keyOffset);
                string key = ReadString("key", MaxKeyBytes);
                if (key.Length == 0)
                    throw Fail("key is empty", keyOffset);
                _context = $"GGUF metadata key '{Printable(key)}'";
                if (index.TryGetValue(key, out int first))
                    throw Fail($"duplicate key (first defined as KV #{first}, value at offset {offsets[first]})", keyOffset);
                var type = ReadValueType("value type");
                offsets.Add(_pos);
                var value = ReadValue(type, depth: 0);
                index.Add(key, i);
                entries.Add(new(key, value));
            }
            var metadata = new GgufMetadata(entries, index, [.. offsets], _source);

            // general.alignment: uint32, a power of two (ggml requires one; the spec asks for a multiple of 8).
            _context = $"GGUF metadata key '{GgufKeys.GeneralAlignment}'";
            uint alignment = DefaultAlignment;
            if (metadata.TryGet(GgufKeys.GeneralAlignment, out var alignValue))
            {
                long at = metadata.OffsetOf(GgufKeys.GeneralAlignment);
                if (alignValue.Value is not uint a)
                    throw Fail($"has type {GgufArray.TypeName(alignValue.Type)}, expected uint32", at);
                if (a == 0 || (a & (a - 1)) != 0)
                    throw Fail($"alignment {a} is not a power of two", at);
                alignment = a;
            }

            // ---- gguf_tensor_info_t[tensor_count]
            int tensors = (int)tensorCount;
            var names = new HashSet<string>(Math.Min(tensors, 4096), StringComparer.Ordinal);
            var parsed = new List<(string Name, GgmlType Type, long[] Shape, long Count, long Bytes, ulong Offset, long OffsetField)>(Math.Min(tensors, 4096));
            for (int i = 0; i < tensors; i++)
            {
                _context = $"GGUF tensor info #{i}";
                long nameOffset = _pos;
                Charge(TensorBytes, "the tensor infos", nameOffset);
                string name = ReadString("tensor name", MaxTensorNameBytes);
                _context = $"GGUF tensor '{Printable(name)}'";
                if (!names.Add(name))
                    throw Fail("duplicate tensor name", nameOffset);
                long dimsOffset = _pos;
                uint nDims = ReadUInt32("n_dimensions");
                if (nDims > MaxDimensions)
                    throw Fail($"{nDims} dimensions, at most {MaxDimensions} are supported", dimsOffset);
                var shape = new long[nDims];
                for (int d = 0; d < shape.Length; d++)
                {
                    long at = _pos;
                    ulong dim = ReadUInt64("dimension");
                    if (dim == 0 || dim > long.MaxValue)
                        throw Fail($"dimension {d} is {dim}; every dimension must be between 1 and 2^63-1", at);
                    shape[d] = (long)dim;
                }
                long typeOffset = _pos;
                uint rawType = ReadUInt32("type");
                var type = (GgmlType)(int)Math.Min(rawType, int.MaxValue);
                if (!GgmlTypeInfo.IsKnown(type))
                    throw Fail($"unknown or removed ggml tensor type {rawType}", typeOffset);
                string? shapeError = GgmlTypeInfo.Validate(type, shape, out long count, out long bytes);
                if (shapeError is not null)
                    throw Fail(shapeError, dimsOffset);
                long offsetField = _pos;
                ulong offset = ReadUInt64("data offset");
                // Spec: "Must be a multiple of ALIGNMENT. That is, align_offset(offset) == offset".
                if (offset % alignment != 0)
                    throw Fail($"data offset {offset} is not a multiple of the alignment {alignment}", offsetField);
                parsed.Add((name, type, shape, count, bytes, offset, offsetField));
            }

            // ---- padding to ALIGNMENT, then tensor_data
            long dataOffset = AlignUp(_pos, alignment);
            _context = "GGUF tensor data";
            if (tensors > 0 && dataOffset > length)
                throw Fail($"tensor data section would start at offset {dataOffset} (aligned to {alignment}), past the end of the {length}-byte file", _pos);
            long dataBytes = length - Math.Min(dataOffset, length);
            var infos = new List<GgufTensorInfo>(parsed.Count);
            var byName = new Dictionary<string, GgufTensorInfo>(parsed.Count, StringComparer.Ordinal);
            foreach (var (name, type, shape, count, bytes, offset, offsetField) in parsed)
            {
                _context = $"GGUF tensor '{Printable(name)}'";
                if (offset > (ulong)dataBytes || bytes > dataBytes - (long)offset)
                    throw Fail($"data of {bytes} bytes at data offset {offset} (file offset {(decimal)dataOffset + offset}) extends past the end of the {length}-byte file", offsetField);
                var info = new GgufTensorInfo(infos.Count, name, type, shape, (long)offset, dataOffset + (long)offset, count, bytes);
                infos.Add(info);
                byName.Add(name, info);
            }

            // Tensor data ranges must not overlap (llama.cpp writes them back to back, but any order is valid).
            var sorted = infos.OrderBy(t => t.Offset).ThenBy(t => t.Index).ToList();
            for (int i = 1; i < sorted.Count; i++)
            {
                var prev = sorted[i - 1];
                var cur = sorted[i];
                if (prev.Offset + prev.ByteSize > cur.Offset)
                {
                    _context = $"GGUF tensor '{Printable(cur.Name)}'";
                    throw Fail($"data [{cur.Offset}, {cur.Offset + cur.ByteSize}) overlaps tensor '{Printable(prev.Name)}' at [{prev.Offset}, {prev.Offset + prev.ByteSize}) (data offsets)", parsed[cur.Index].OffsetField);
                }
            }

            return new GgufFile(owner, basePointer, length, path, version, alignment, dataOffset, metadata, infos, byName);
        }

        private void CheckVersion(uint version)
        {
            if (version is 2 or 3)
                return;
            if (version == 1)
                throw Fail("version 1 is not supported (only GGUF versions 2 and 3 are); re-convert the model with a current llama.cpp", 4);
            uint swapped = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(version);
            if (swapped is 1 or 2 or 3)
                throw Fail($"the file is big-endian (version field reads {swapped} byte-swapped); only little-endian GGUF is supported, convert it with gguf-py's gguf_convert_endian.py", 4);
            throw Fail($"unsupported version {version} (only GGUF versions 2 and 3 are supported)", 4);
        }

        // ---- gguf_metadata_value_t

        private GgufValue ReadValue(GgufValueType type, int depth) => type switch
        {
            GgufValueType.UInt8 => GgufValue.Scalar(type, Read<byte>("uint8 value")),
            GgufValueType.Int8 => GgufValue.Scalar(type, Read<sbyte>("int8 value")),
            GgufValueType.UInt16 => GgufValue.Scalar(type, Read<ushort>("uint16 value")),
            GgufValueType.Int16 => GgufValue.Scalar(type, Read<short>("int16 value")),
            GgufValueType.UInt32 => GgufValue.Scalar(type, Read<uint>("uint32 value")),
            GgufValueType.Int32 => GgufValue.Scalar(type, Read<int>("int32 value")),
            GgufValueType.Float32 => GgufValue.Scalar(type, Read<float>("float32 value")),
            GgufValueType.UInt64 => GgufValue.Scalar(type, Read<ulong>("uint64 value")),
            GgufValueType.Int64 => GgufValue.Scalar(type, Read<long>("int64 value")),
            GgufValueType.Float64 => GgufValue.Scalar(type, Read<double>("float64 value")),
            GgufValueType.Bool => GgufValue.Scalar(type, ReadBool()),
            GgufValueType.String => GgufValue.Of(ReadString("string value", MaxStringBytes)),
            GgufValueType.Array => GgufValue.Wrap(ReadArray(depth + 1)),
            _ => throw new InvalidOperationException("unreachable: value types are checked when read"),
        };

        private bool ReadBool()
        {
            // Spec: "1-byte value where 0 is false and 1 is true. Anything else is invalid".
            long at = _pos;
            byte b = Read<byte>("bool value");
            return b <= 1 ? b == 1 : throw Fail($"bool value {b} is neither 0 nor 1", at);
        }

        // Array payload: uint32 element type, uint64 count, then count elements.
        private GgufArray ReadArray(int depth)
        {
            long start = _pos;
            if (depth > MaxArrayDepth)
                throw Fail($"arrays are nested more than {MaxArrayDepth} deep", start);
            var elementType = ReadValueType("array element type");
            ulong count = ReadUInt64("array count");
            long left = Remaining;
            long minSize = MinEncodedSize(elementType);
            if (count > (ulong)(left / minSize))
                throw Fail($"array of {count} {Plural(elementType)} cannot fit in the {left} bytes left", _pos);
            if (count > (ulong)Array.MaxLength)
                throw Fail($"array of {count} {Plural(elementType)} exceeds the largest supported array ({Array.MaxLength} elements)", _pos);
            int n = (int)count;
            // Element storage: the fixed-size types as themselves, strings and nested arrays as references.
            long elementBytes = elementType is GgufValueType.String or GgufValueType.Array ? 8 : minSize;
            Charge(2 * ObjectBytes + n * elementBytes, $"array of {count} {Plural(elementType)}", _pos);
            switch (elementType)
            {
                case GgufValueType.UInt8: return new(elementType, ReadBlock<byte>(n));
                case GgufValueType.Int8: return new(elementType, ReadBlock<sbyte>(n));
                case GgufValueType.UInt16: return new(elementType, ReadBlock<ushort>(n));
                case GgufValueType.Int16: return new(elementType, ReadBlock<short>(n));
                case GgufValueType.UInt32: return new(elementType, ReadBlock<uint>(n));
                case GgufValueType.Int32: return new(elementType, ReadBlock<int>(n));
                case GgufValueType.Float32: return new(elementType, ReadBlock<float>(n));
                case GgufValueType.UInt64: return new(elementType, ReadBlock<ulong>(n));
                case GgufValueType.Int64: return new(elementType, ReadBlock<long>(n));
                case GgufValueType.Float64: return new(elementType, ReadBlock<double>(n));
                case GgufValueType.Bool:
                {
                    var bools = new bool[n];
                    for (int i = 0; i < n; i++)
                        bools[i] = ReadBool();
                    return new(elementType, bools);
                }
                case GgufValueType.String:
                {
                    var strings = new string[n];
                    for (int i = 0; i < n; i++)
                        strings[i] = ReadString($"string element {i}", MaxStringBytes);
                    return new(elementType, strings);
                }
                default: // GgufValueType.Array: each element is itself an array payload
                {
                    var arrays = new GgufValue[n];
                    for (int i = 0; i < n; i++)
                        arrays[i] = GgufValue.Wrap(ReadArray(depth + 1));
                    return new(elementType, arrays);
                }
            }
        }

        private T[] ReadBlock<T>(int n) where T : unmanaged
        {
            // The caller checked n * sizeof(T) <= Remaining. Copy with a long byte count: it may exceed int.
            var result = new T[n];
            long bytes = (long)n * sizeof(T);
            fixed (T* dst = result)
                Buffer.MemoryCopy(basePointer + _pos, dst, bytes, bytes);
            _pos += bytes;
            return result;
        }

        private GgufValueType ReadValueType(string what)
        {
            long at = _pos;
            uint t = ReadUInt32(what);
            return t <= (uint)GgufValueType.Float64 ? (GgufValueType)t : throw Fail($"unknown {what} {t} (valid types are 0..12)", at);
        }

        // gguf_string_t: uint64 len, then len bytes of UTF-8, not null-terminated.
        private string ReadString(string what, int maxBytes)
        {
            long lengthAt = _pos;
            ulong len = ReadUInt64($"{what} length");
            long left = Remaining;
            if (len > (ulong)left)
                throw Fail($"{what} of {len} bytes cannot fit in the {left} bytes left", _pos);
            if (len > (ulong)maxBytes)
                throw Fail($"{what} of {len} bytes is longer than the {maxBytes}-byte limit", lengthAt);
            Charge(ObjectBytes + 2 * (long)len, $"{what} of {len} bytes", _pos); // UTF-16: at most 2 bytes per UTF-8 byte
            var bytes = new ReadOnlySpan<byte>(basePointer + _pos, (int)len);
            if (!Utf8.IsValid(bytes))
                throw Fail($"{what} is not valid UTF-8 (bad byte at offset {_pos + FirstInvalidUtf8(bytes)}, string starts at offset {_pos})", _pos + FirstInvalidUtf8(bytes));
            string s = Encoding.UTF8.GetString(bytes);
            _pos += (long)len;
            return s;
        }

        private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
        {
            int i = 0;
            while (i < bytes.Length && Rune.DecodeFromUtf8(bytes[i..], out _, out int consumed) == OperationStatus.Done)
                i += consumed;
            return i;
        }

        private uint ReadUInt32(string what) => Read<uint>(what);

        private ulong ReadUInt64(string what) => Read<ulong>(what);

        private T Read<T>(string what) where T : unmanaged
        {
            if (Remaining < sizeof(T))
                throw Fail($"file ends inside the {sizeof(T)}-byte {what} ({Remaining} bytes left)", _pos);
            T value = Unsafe.ReadUnaligned<T>(basePointer + _pos);
            _pos += sizeof(T);
            return value;
        }

        private void Charge(long bytes, string what, long offset)
        {
            if (bytes > MaxMetadataMemory - _charged)
                throw Fail($"{what} would take the parsed metadata past its {MaxMetadataMemory >> 20} MiB memory budget", offset);
            _charged += bytes;
        }

        private GgufFormatException Fail(string problem, long offset) =>
            new($"{_context}: {problem} at offset {offset}{_source}", offset);

        private static long MinEncodedSize(GgufValueType type) => type switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
            GgufValueType.String => 8,   // the length prefix of an empty string
            _ => 4 + 8,                  // an empty nested array: element type and count
        };

        private static string Plural(GgufValueType type) => type switch
        {
            GgufValueType.String => "strings",
            GgufValueType.Array => "arrays",
            _ => GgufArray.TypeName(type) + " values",
        };

        private static long AlignUp(long offset, uint alignment) => offset + ((alignment - (offset % alignment)) % alignment);

        // Keys and names go into messages; keep control characters from mangling a terminal.
        private static string Printable(string s)
        {
            if (!s.Any(char.IsControl) && s.Length <= 200)
                return s;
            return GgufValue.Quote(s, 200).Trim('"');
        }
    }
}
