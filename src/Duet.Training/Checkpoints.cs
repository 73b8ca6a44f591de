// Training checkpoints: one file per checkpoint, step-NNNNNNNN.ckpt in the run's checkpoints/ folder, holding a JSON
// header (config, step, optimizer step count, loader position, model shape, tokenizer) and named float32 arrays
// (parameters, AdamW moments), closed by a SHA-256 of everything before it. Layout (little-endian):
//   "DUETCKPT" | uint32 version (1) | uint32 header bytes | header (UTF-8 JSON) | uint32 array count |
//   per array: uint16 name bytes | name (UTF-8) | int64 float count | floats | ... | SHA-256 (32 bytes)
// The header is a JSON object with an integer "step" equal to the file name's; array names are distinct. Save
// refuses what Load would reject, so a run never writes a checkpoint it cannot resume from.
// Saving is atomic: written to NAME.tmp, flushed to disk (fsync), renamed, and the folder fsynced, so a crash leaves
// either the old set of checkpoints or the new one, never a half-written file under a final name; then the oldest
// beyond the newest `keep` are deleted. Loading checks every length against the bytes left before allocating and
// the checksum at the end; the newest checkpoint that verifies is used, and each newer one that does not is reported
// (truncated, corrupted) so the caller can warn.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Duet.Training;

/// <summary>A loaded checkpoint: its file, header and arrays by name.</summary>
public sealed record Checkpoint(string Path, int Step, JsonObject Header, Dictionary<string, float[]> Arrays);

public static partial class Checkpoints
{
    private static readonly byte[] s_magic = "DUETCKPT"u8.ToArray();
    private const int Version = 1, MaxHeaderBytes = 16 << 20, MaxNameBytes = 256, MaxArrays = 1024;

    /// <summary>The largest step whose file name has the eight digits <see cref="List"/> reads.</summary>
    public const int MaxStep = 99_999_999;

    // Duplicate keys are refused rather than resolved: which "step" would win is not something to guess on resume.
    private static readonly System.Text.Json.JsonDocumentOptions s_headerOptions = new() { AllowDuplicateProperties = false };

    public static string FileName(int step) => $"step-{step:D8}.ckpt";

    /// <summary>The checkpoints of a folder, oldest first (files named step-NNNNNNNN.ckpt).</summary>
    public static List<(int Step, string Path)> List(string folder)
    {
        if (!Directory.Exists(folder)) return [];
        var list = new List<(int, string)>();
        foreach (var f in Directory.EnumerateFiles(folder, "step-*.ckpt"))
        {
            var name = System.IO.Path.GetFileName(f);
            if (name.Length == 18 && int.TryParse(name.AsSpan(5, 8), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int step))
                list.Add((step, f));
        }
        return list.OrderBy(x => x.Item1).ToList();
    }

    /// <summary>Writes a checkpoint atomically and keeps the newest <paramref name="keep"/>; returns its path.</summary>
    public static string Save(string folder, int step, JsonObject header, IReadOnlyList<(string Name, float[] Data)> arrays, int keep)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(step, MaxStep);
        // Everything Load checks is checked here first, before a byte is written.
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        if (json.Length > MaxHeaderBytes) throw new ArgumentException($"checkpoint header of {json.Length} bytes, at most {MaxHeaderBytes}", nameof(header));
        int headerStep;
        try { (_, headerStep) = ParseHeader(json); }
        catch (InvalidDataException e) { throw new ArgumentException(e.Message, nameof(header), e); }
        if (headerStep != step) throw new ArgumentException($"the header's \"step\" is {headerStep}, the checkpoint's {step}", nameof(header));
        if (arrays.Count > MaxArrays) throw new ArgumentException($"{arrays.Count} arrays, at most {MaxArrays}", nameof(arrays));
        var names = new List<byte[]>(arrays.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in arrays)
        {
            var nb = Encoding.UTF8.GetBytes(name);
            if (nb.Length > MaxNameBytes) throw new ArgumentException($"array name '{name}' is longer than {MaxNameBytes} bytes", nameof(arrays));
            if (!seen.Add(name)) throw new ArgumentException($"array name '{name}' appears twice", nameof(arrays));
            names.Add(nb);
        }

        Directory.CreateDirectory(folder);
        foreach (var stale in Directory.EnumerateFiles(folder, "*.tmp")) File.Delete(stale); // from a killed run
        var path = System.IO.Path.Combine(folder, FileName(step));
        var tmp = path + ".tmp";
        try
        {
            using var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            void Put(ReadOnlySpan<byte> b) { fs.Write(b); sha.AppendData(b); }
            Span<byte> n = stackalloc byte[8];
            Put(s_magic);
            BinaryPrimitives.WriteUInt32LittleEndian(n, Version); Put(n[..4]);
            BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)json.Length); Put(n[..4]);
            Put(json);
            BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)arrays.Count); Put(n[..4]);
            for (int a = 0; a < arrays.Count; a++)
            {
                var data = arrays[a].Data;
                BinaryPrimitives.WriteUInt16LittleEndian(n, (ushort)names[a].Length); Put(n[..2]);
                Put(names[a]);
                BinaryPrimitives.WriteInt64LittleEndian(n, data.LongLength); Put(n);
                var bytes = MemoryMarshal.AsBytes(data.AsSpan());
                for (int i = 0; i < bytes.Length; i += 1 << 20) Put(bytes.Slice(i, Math.Min(1 << 20, bytes.Length - i)));
            }
            fs.Write(sha.GetHashAndReset());
            fs.Flush(flushToDisk: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } // a full disk, say: no half file left behind
            throw;
        }
        File.Move(tmp, path, overwrite: true);
        SyncDirectory(folder);
        var all = List(folder);
        for (int i = 0; i < all.Count - keep; i++) File.Delete(all[i].Path);
        return path;
    }

    /// <summary>Reads and verifies one checkpoint; InvalidDataException says what is wrong.</summary>
    public static Checkpoint Load(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        long length = fs.Length;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long pos = 0;
        void Get(Span<byte> b)
        {
            if (length - 32 - pos < b.Length) throw new InvalidDataException($"{path}: truncated (needs {pos + b.Length + 32} bytes, has {length})");
            fs.ReadExactly(b);
            sha.AppendData(b);
            pos += b.Length;
        }
        Span<byte> n = stackalloc byte[8];
        Get(n);
        if (!n.SequenceEqual(s_magic)) throw new InvalidDataException($"{path}: not a Duet checkpoint (magic)");
        Get(n[..4]);
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(n);
        if (version != Version) throw new InvalidDataException($"{path}: checkpoint format version {version}, this Duet reads {Version}");
        Get(n[..4]);
        uint headerBytes = BinaryPrimitives.ReadUInt32LittleEndian(n);
        if (headerBytes > MaxHeaderBytes || headerBytes > length - pos) throw new InvalidDataException($"{path}: header length {headerBytes} is impossible (truncated or corrupt)");
        var json = new byte[headerBytes];
        Get(json);
        Get(n[..4]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(n);
        if (count > MaxArrays) throw new InvalidDataException($"{path}: {count} arrays is impossible (corrupt)");
        var arrays = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            Get(n[..2]);
            int nameBytes = BinaryPrimitives.ReadUInt16LittleEndian(n);
            if (nameBytes > MaxNameBytes) throw new InvalidDataException($"{path}: array name of {nameBytes} bytes (corrupt)");
            var nb = new byte[nameBytes];
            Get(nb);
            var name = Encoding.UTF8.GetString(nb);
            if (arrays.ContainsKey(name)) throw new InvalidDataException($"{path}: array {name} appears twice (corrupt)");
            Get(n);
            long floats = BinaryPrimitives.ReadInt64LittleEndian(n);
            if (floats < 0 || floats > (length - 32 - pos) / 4 || floats > Array.MaxLength)
                throw new InvalidDataException($"{path}: array {name} claims {floats} floats, more than the file holds (truncated or corrupt)");
            var data = new float[floats];
            var bytes = MemoryMarshal.AsBytes(data.AsSpan());
            for (int off = 0; off < bytes.Length; off += 1 << 20) Get(bytes.Slice(off, Math.Min(1 << 20, bytes.Length - off)));
            arrays[name] = data;
        }
        if (length - pos != 32) throw new InvalidDataException($"{path}: {length - pos - 32} unexpected bytes before the checksum");
        Span<byte> stored = stackalloc byte[32];
        fs.ReadExactly(stored);
        if (!stored.SequenceEqual(sha.GetHashAndReset())) throw new InvalidDataException($"{path}: checksum mismatch (the file is corrupt)");
        JsonObject header;
        int step;
        try { (header, step) = ParseHeader(json); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        return new Checkpoint(path, step, header, arrays);
    }

    // The header and its step, or InvalidDataException: not JSON, not an object, a duplicate key, no integer step >= 0.
    private static (JsonObject Header, int Step) ParseHeader(byte[] json)
    {
        JsonObject header;
        try { header = JsonNode.Parse(json, documentOptions: s_headerOptions) as JsonObject ?? throw new InvalidDataException("the header is not a JSON object"); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"header: {e.Message}", e); }
        if (!header.TryGetPropertyValue("step", out var node)) throw new InvalidDataException("the header has no \"step\"");
        if (node is not JsonValue v || !v.TryGetValue(out int step) || step < 0)
            throw new InvalidDataException($"the header's \"step\" is {node?.ToJsonString() ?? "null"}, not an integer 0..{int.MaxValue}");
        return (header, step);
    }

    /// <summary>Null when the file verifies, else what is wrong with it.</summary>
    public static string? Verify(string path)
    {
        try { Load(path); return null; }
        catch (Exception e) when (e is InvalidDataException or IOException) { return e.Message; }
    }

    /// <summary>The newest checkpoint that verifies, adding one warning per newer one that does not; null if none.</summary>
    public static Checkpoint? LoadLatest(string folder, List<string> warnings)
    {
        var all = List(folder);
        for (int i = all.Count - 1; i >= 0; i--)
        {
            try
            {
                var c = Load(all[i].Path);
                if (c.Step != all[i].Step) throw new InvalidDataException($"{all[i].Path}: the header says step {c.Step} (renamed or copied by hand?)");
                if (i < all.Count - 1) warnings.Add($"using {System.IO.Path.GetFileName(c.Path)} (step {c.Step}) instead");
                return c;
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                warnings.Add($"{System.IO.Path.GetFileName(all[i].Path)} is damaged and skipped: {e.Message}");
            }
        }
        return null;
    }

    // Makes the rename durable: fsync on the folder (Linux/macOS). Elsewhere a no-op: NTFS journals the rename.
    private static void SyncDirectory(string folder)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Open(folder, 0 /* O_RDONLY */);
        if (fd < 0) return;
        try { _ = Fsync(fd); }
        finally { _ = Close(fd); }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
