// A read-only memory map of a whole file, exposed as a base pointer and a length, for the format readers
// (GGUF, safetensors, Duet.Data's token shards) that hand out bytes without copying them. The OS pages data in on
// first touch, so opening a multi-gigabyte model to read its vocabulary costs only the pages read.
// Also: PointerMemoryManager, which wraps a pinned or mapped range as Memory<byte>.
using System.Buffers;
using System.IO.MemoryMappedFiles;

namespace Duet.Formats;

public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _pointer;

    private MappedFile(MemoryMappedFile map, MemoryMappedViewAccessor view, byte* pointer, long length)
    {
        _map = map;
        _view = view;
        _pointer = pointer;
        Length = length;
    }

    public long Length { get; }

    public byte* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(MappedFile));

    /// <summary>
    /// Maps <paramref name="path"/> read-only. An empty file cannot be mapped, so it is reported through
    /// <paramref name="emptyFile"/> (the caller's format exception) instead of the map API's ArgumentException.
    /// </summary>
    public static MappedFile Open(string path, Func<Exception> emptyFile)
    {
        // FileShare.Read: other readers are fine, a writer replacing the file in place is not.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            long length = stream.Length;
            if (length == 0)
                throw emptyFile();
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            // The view starts at a page boundary; PointerOffset is where offset 0 of the request lies within it.
            return new MappedFile(map, view, p + view.PointerOffset, length);
        }
        catch
        {
            view?.Dispose();
            if (map is not null)
                map.Dispose();
            else
                stream.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_pointer == null)
            return;
        _pointer = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}

/// <summary>Memory over unmanaged bytes whose lifetime the owner guarantees (a mapped view or a pinned buffer).</summary>
internal sealed unsafe class PointerMemoryManager(byte* pointer, int length) : MemoryManager<byte>
{
    public override Span<byte> GetSpan() => new(pointer, length);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, length);
        return new MemoryHandle(pointer + elementIndex);
    }

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
