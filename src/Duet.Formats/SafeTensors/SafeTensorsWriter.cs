// Writes a safetensors file: header JSON (tensors sorted by name, as the reference writer does, plus
// __metadata__), padded with spaces to a multiple of 8, then the tensors back to back. Atomic: a temp
// file in the same folder, flushed, then renamed.
using System.Text;
using System.Text.Json;

namespace Duet.Formats.SafeTensors;

public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, SafeTensorsDType DType, long[] Shape, ReadOnlyMemory<byte> Data)> _tensors = [];
    private readonly Dictionary<string, string> _metadata = new() { ["format"] = "pt" };

    public void AddMetadata(string key, string value) => _metadata[key] = value;

    public void Add(string name, SafeTensorsDType dtype, long[] shape, ReadOnlyMemory<byte> data)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (count * SafeTensorsFile.ElementSize(dtype) != data.Length)
            throw new ArgumentException($"tensor '{name}': {data.Length} bytes for shape [{string.Join(", ", shape)}] of {dtype}");
        if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"tensor '{name}' added twice");
        _tensors.Add((name, dtype, shape, data));
    }

    public void WriteFile(string path) => AtomicFile.Write(path, WriteTo);

    public void WriteTo(Stream stream)
    {
        var sorted = _tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (k, v) in _metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
            w.WriteEndObject();
            long offset = 0;
            foreach (var t in sorted)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType == SafeTensorsDType.Bool ? "BOOL" : t.DType.ToString());
                w.WriteStartArray("shape"); foreach (var d in t.Shape) w.WriteNumberValue(d); w.WriteEndArray();
                w.WriteStartArray("data_offsets"); w.WriteNumberValue(offset); w.WriteNumberValue(offset + t.Data.Length); w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Data.Length;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < pad; i++) header.WriteByte((byte)' ');
        stream.Write(BitConverter.GetBytes((ulong)header.Length));
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var t in sorted) stream.Write(t.Data.Span);
    }
}
