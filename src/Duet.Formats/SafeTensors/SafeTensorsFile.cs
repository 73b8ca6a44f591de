// Reads Hugging Face safetensors files: an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {..}}), then the data, which
// the offsets index relative to its start. The file is memory-mapped; tensor bytes are never copied.
// Every length, shape and offset is checked against the file before use; violations throw
// SafeTensorsFormatException with the tensor's name.
using System.Text.Json;

namespace Duet.Formats.SafeTensors;

public sealed class SafeTensorsFormatException(string message, Exception? inner = null) : IOException(message, inner);

public enum SafeTensorsDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool, F8_E4M3, F8_E5M2 }

public sealed record SafeTensorInfo(string Name, SafeTensorsDType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long ByteSize => End - Begin;
}

public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>The format's own bound on the header (safetensors rejects larger ones too).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MappedFile _map;
    private readonly Dictionary<string, SafeTensorInfo> _byName;

    public string Path { get; }
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long DataOffset { get; }

    private SafeTensorsFile(string path, MappedFile map, List<SafeTensorInfo> tensors, Dictionary<string, string> metadata, long dataOffset)
    {
        Path = path;
        _map = map;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Metadata = metadata;
        DataOffset = dataOffset;
    }

    public static int ElementSize(SafeTensorsDType t) => t switch
    {
        SafeTensorsDType.F64 or SafeTensorsDType.I64 => 8,
        SafeTensorsDType.F32 or SafeTensorsDType.I32 => 4,
        SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.I16 => 2,
        _ => 1,
    };

    public static SafeTensorsFile Open(string path)
    {
        var map = MappedFile.Open(path, () => new SafeTensorsFormatException($"{path}: the file is empty"));
        try
        {
            var (tensors, metadata, dataOffset) = ParseHeader(new ReadOnlySpan<byte>(map.Pointer, (int)Math.Min(map.Length, MaxHeaderBytes + 8)), map.Length, path);
            return new SafeTensorsFile(path, map, tensors, metadata, dataOffset);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>Parses and checks the header of a file of <paramref name="fileLength"/> bytes whose start is <paramref name="start"/>.</summary>
    public static (List<SafeTensorInfo> Tensors, Dictionary<string, string> Metadata, long DataOffset) ParseHeader(ReadOnlySpan<byte> start, long fileLength, string where)
    {
        if (fileLength < 8) throw new SafeTensorsFormatException($"{where}: {fileLength} bytes is too short for a safetensors file (8-byte header length)");
        ulong n = BitConverter.ToUInt64(start[..8]);
        if (n > MaxHeaderBytes) throw new SafeTensorsFormatException($"{where}: header length {n} exceeds the {MaxHeaderBytes}-byte limit");
        if ((long)n > fileLength - 8) throw new SafeTensorsFormatException($"{where}: header length {n} runs past the end of the {fileLength}-byte file");
        var json = start.Slice(8, (int)n);
        long dataOffset = 8 + (long)n, dataLength = fileLength - dataOffset;
        if (!System.Text.Unicode.Utf8.IsValid(json)) throw new SafeTensorsFormatException($"{where}: the header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw new SafeTensorsFormatException($"{where}: the header is not valid JSON: {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException($"{where}: the header is not a JSON object");
            var tensors = new List<SafeTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException($"{where}: __metadata__ is not an object");
                    foreach (var m in p.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw new SafeTensorsFormatException($"{where}: __metadata__['{m.Name}'] is not a string");
                    continue;
                }
                tensors.Add(ParseTensor(p, dataLength, where));
            }
            // Offsets must not overlap (the format also forbids holes; we accept them, as readers commonly do).
            var sorted = tensors.Where(t => t.ByteSize > 0).OrderBy(t => t.Begin).ToList();
            for (int i = 1; i < sorted.Count; i++)
                if (sorted[i].Begin < sorted[i - 1].End)
                    throw new SafeTensorsFormatException($"{where}: tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap");
            return (tensors, metadata, dataOffset);
        }
    }

    private static SafeTensorInfo ParseTensor(JsonProperty p, long dataLength, string where)
    {
        var e = p.Value;
        string Bad(string what) => $"{where}: tensor '{p.Name}': {what}";
        if (e.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException(Bad("entry is not an object"));
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String || !Enum.TryParse<SafeTensorsDType>(dt.GetString()!.Replace("BOOL", "Bool"), false, out var dtype)
            || !Enum.IsDefined(dtype))
            throw new SafeTensorsFormatException(Bad($"unknown dtype {(e.TryGetProperty("dtype", out var d2) ? d2.ToString() : "(missing)")}"));
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array || sh.GetArrayLength() > 8)
            throw new SafeTensorsFormatException(Bad("shape is missing or has more than 8 dimensions"));
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (!sh[i].TryGetInt64(out shape[i]) || shape[i] < 0) throw new SafeTensorsFormatException(Bad($"dimension {i} is not a non-negative integer"));
            if (shape[i] != 0 && count > long.MaxValue / 8 / shape[i]) throw new SafeTensorsFormatException(Bad("shape overflows"));
            count *= shape[i];
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2
            || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end))
            throw new SafeTensorsFormatException(Bad("data_offsets is not [begin, end]"));
        if (begin < 0 || end < begin || end > dataLength)
            throw new SafeTensorsFormatException(Bad($"data_offsets [{begin}, {end}] lie outside the {dataLength} bytes of data"));
        if (end - begin != count * ElementSize(dtype))
            throw new SafeTensorsFormatException(Bad($"{end - begin} bytes of data for shape [{string.Join(", ", shape)}] of {dtype} ({count * ElementSize(dtype)} bytes expected)"));
        return new SafeTensorInfo(p.Name, dtype, shape, begin, end);
    }

    public bool TryGetTensor(string name, out SafeTensorInfo info) => _byName.TryGetValue(name, out info!);

    public SafeTensorInfo GetTensor(string name) => _byName.TryGetValue(name, out var t) ? t
        : throw new SafeTensorsFormatException($"{Path}: no tensor '{name}'");

    /// <summary>Pointer to the tensor's bytes in the mapping; valid until Dispose.</summary>
    public byte* GetPointer(SafeTensorInfo t) => _map.Pointer + DataOffset + t.Begin;

    public ReadOnlySpan<byte> GetBytes(SafeTensorInfo t) => t.ByteSize > int.MaxValue
        ? throw new NotSupportedException($"tensor '{t.Name}' is over 2 GiB: use GetPointer")
        : new ReadOnlySpan<byte>(GetPointer(t), (int)t.ByteSize);

    public void Dispose() => _map.Dispose();
}
