// .NET's GZipStream ends quietly at the end of a truncated file (it returns what it could inflate), so a cut-off
// .gz would enter the corpus as a shorter document. This stream inflates a gzip file and, at its end, checks the
// trailer: the CRC-32 and the length (mod 2^32) of everything inflated must equal the last eight bytes of the
// file. A truncated or corrupted file then fails with InvalidDataException instead of yielding partial text.
// The check covers single-member files (gzip, pigz); a multi-member file (concatenated .gz, bgzip) fails it and is
// skipped as "gzip_corrupt": split such files or recompress them as one member.
using System.IO.Compression;

namespace Duet.Data.Sources;

public sealed class CheckedGzipStream : Stream
{
    private readonly FileStream _file;
    private readonly GZipStream _gzip;
    private readonly uint _expectedCrc, _expectedLength;
    private uint _crc = 0xFFFFFFFFu, _length;
    private bool _checked;

    public CheckedGzipStream(string path)
    {
        _file = File.OpenRead(path);
        if (_file.Length < 18) { _file.Dispose(); throw new InvalidDataException($"{path}: too short for a gzip file"); }
        Span<byte> trailer = stackalloc byte[8];
        _file.Seek(-8, SeekOrigin.End);
        _file.ReadExactly(trailer);
        _file.Seek(0, SeekOrigin.Begin);
        _expectedCrc = BitConverter.ToUInt32(trailer);
        _expectedLength = BitConverter.ToUInt32(trailer[4..]);
        _gzip = new GZipStream(_file, CompressionMode.Decompress);
        Path = path;
    }

    public string Path { get; }

    public override int Read(Span<byte> buffer)
    {
        int n = _gzip.Read(buffer);
        if (n > 0)
        {
            _crc = Crc32.Update(_crc, buffer[..n]);
            _length += (uint)n;
        }
        else if (!_checked && buffer.Length > 0)
        {
            _checked = true;
            if (~_crc != _expectedCrc || _length != _expectedLength)
                throw new InvalidDataException($"{Path}: gzip data ends early or is corrupt (CRC-32 or length differs from the trailer)");
        }
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _gzip.Dispose(); _file.Dispose(); }
        base.Dispose(disposing);
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) as gzip uses it, eight table lookups per step.</summary>
internal static class Crc32
{
    private static readonly uint[] s_table = Build();

    private static uint[] Build()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        for (int i = 0; i < 256; i++)
            for (int s = 1; s < 8; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i] >> 8) ^ t[t[(s - 1) * 256 + i] & 0xFF];
        return t;
    }

    /// <summary>Continues a running CRC (start with 0xFFFFFFFF, finish with ~crc).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        var t = s_table;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            uint a = crc ^ BitConverter.ToUInt32(data.Slice(i, 4)), b = BitConverter.ToUInt32(data.Slice(i + 4, 4));
            crc = t[7 * 256 + (a & 0xFF)] ^ t[6 * 256 + ((a >> 8) & 0xFF)] ^ t[5 * 256 + ((a >> 16) & 0xFF)] ^ t[4 * 256 + (a >> 24)]
                ^ t[3 * 256 + (b & 0xFF)] ^ t[2 * 256 + ((b >> 8) & 0xFF)] ^ t[256 + ((b >> 16) & 0xFF)] ^ t[b >> 24];
        }
        for (; i < data.Length; i++) crc = t[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
        return crc;
    }
}
