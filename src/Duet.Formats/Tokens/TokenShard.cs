// Reads one token shard (NAME.bin + NAME.idx, layout in TokenFormat.cs) memory-mapped: opening checks magic,
// version, the file lengths against the header counts, every document offset and language code, so that
// afterwards a token or document index within the counts can be read without further checks. The token bytes
// are not read on open (ids are not checked against the vocabulary); their SHA-256 is checked by TokenCorpus
// when asked. Thread-safe for reading.
using System.Buffers.Binary;
using System.Text;

namespace Duet.Formats.Tokens;

/// <summary>One token shard (NAME.bin + NAME.idx), checked on open and memory-mapped.</summary>
public sealed unsafe class TokenShard : IDisposable
{
    private readonly MappedFile _bin, _idx;
    private readonly byte* _tokens;     // at BinHeaderSize
    private readonly long* _offsets;    // at IdxHeaderSize, DocumentCount + 1 of them
    private readonly byte* _languages;  // after the offsets

    public string BinPath { get; }
    public string IdxPath { get; }
    public long TokenCount { get; }
    public long DocumentCount { get; }
    public int VocabSize { get; }
    public int BytesPerToken { get; }

    private TokenShard(string binPath, string idxPath, MappedFile bin, MappedFile idx, long tokens, long documents, int vocab, int bytesPerToken)
    {
        BinPath = binPath; IdxPath = idxPath;
        _bin = bin; _idx = idx;
        TokenCount = tokens; DocumentCount = documents; VocabSize = vocab; BytesPerToken = bytesPerToken;
        _tokens = bin.Pointer + TokenFormat.BinHeaderSize;
        _offsets = (long*)(idx.Pointer + TokenFormat.IdxHeaderSize);
        _languages = idx.Pointer + TokenFormat.IdxHeaderSize + 8 * (documents + 1);
    }

    /// <summary>Opens NAME.bin and its index (NAME.idx beside it unless given).</summary>
    public static TokenShard Open(string binPath, string? idxPath = null)
    {
        if (!BitConverter.IsLittleEndian) throw new NotSupportedException("token shards are little-endian; this reader maps them as they are");
        idxPath ??= Path.ChangeExtension(binPath, ".idx");
        MappedFile? bin = null, idx = null;
        try
        {
            bin = MappedFile.Open(binPath, () => new InvalidDataException($"{binPath}: the file is empty; a token shard starts with a {TokenFormat.BinHeaderSize}-byte header"));
            var (tokens, documents, vocab, bpt) = CheckBin(binPath, bin);
            idx = MappedFile.Open(idxPath, () => new InvalidDataException($"{idxPath}: the file is empty; a token index starts with a {TokenFormat.IdxHeaderSize}-byte header"));
            CheckIdx(idxPath, idx, binPath, tokens, documents);
            return new TokenShard(binPath, idxPath, bin, idx, tokens, documents, vocab, bpt);
        }
        catch
        {
            bin?.Dispose();
            idx?.Dispose();
            throw;
        }
    }

    private static (long Tokens, long Documents, int Vocab, int BytesPerToken) CheckBin(string path, MappedFile f)
    {
        if (f.Length < TokenFormat.BinHeaderSize)
            throw new InvalidDataException($"{path}: {f.Length} bytes, shorter than the {TokenFormat.BinHeaderSize}-byte header of a token shard");
        var h = new ReadOnlySpan<byte>(f.Pointer, TokenFormat.BinHeaderSize);
        CheckMagic(path, h, TokenFormat.BinMagic, "token shard (.bin)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(h[8..]);
        if (version != TokenFormat.Version) throw new InvalidDataException($"{path}: format version {version}; this reader knows version {TokenFormat.Version}");
        uint bpt = BinaryPrimitives.ReadUInt32LittleEndian(h[12..]);
        long tokens = BinaryPrimitives.ReadInt64LittleEndian(h[16..]);
        long documents = BinaryPrimitives.ReadInt64LittleEndian(h[24..]);
        uint vocab = BinaryPrimitives.ReadUInt32LittleEndian(h[32..]);
        if (vocab is 0 or > int.MaxValue) throw new InvalidDataException($"{path}: vocabulary size {vocab} in the header");
        if (bpt != (uint)TokenFormat.BytesPerToken((int)vocab))
            throw new InvalidDataException($"{path}: {bpt} bytes per token in the header; a vocabulary of {vocab} is stored in {TokenFormat.BytesPerToken((int)vocab)}");
        if (tokens < 0 || documents < 0) throw new InvalidDataException($"{path}: negative counts in the header ({tokens} tokens, {documents} documents)");
        long body = f.Length - TokenFormat.BinHeaderSize;
        if (body % bpt != 0 || body / bpt != tokens)
            throw new InvalidDataException($"{path}: {f.Length} bytes; the header's {tokens} tokens of {bpt} bytes need {TokenFormat.BinHeaderSize} + {tokens} x {bpt} = "
                + (tokens <= (long.MaxValue - TokenFormat.BinHeaderSize) / bpt ? $"{TokenFormat.BinHeaderSize + tokens * bpt}" : "more") + " (truncated or not a complete shard)");
        return (tokens, documents, (int)vocab, (int)bpt);
    }

    private static void CheckIdx(string path, MappedFile f, string binPath, long tokens, long documents)
    {
        if (f.Length < TokenFormat.IdxHeaderSize)
            throw new InvalidDataException($"{path}: {f.Length} bytes, shorter than the {TokenFormat.IdxHeaderSize}-byte header of a token index");
        var h = new ReadOnlySpan<byte>(f.Pointer, TokenFormat.IdxHeaderSize);
        CheckMagic(path, h, TokenFormat.IdxMagic, "token index (.idx)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(h[8..]);
        if (version != TokenFormat.Version) throw new InvalidDataException($"{path}: format version {version}; this reader knows version {TokenFormat.Version}");
        long docs = BinaryPrimitives.ReadInt64LittleEndian(h[16..]);
        if (docs != documents) throw new InvalidDataException($"{path}: {docs} documents in the header, but {binPath} holds {documents}");
        // 9 bytes per document and 8 more: documents is below 2^60 here (the .bin's length bounds nothing about it).
        if (docs > (long.MaxValue - 40) / 9 || f.Length != TokenFormat.IdxHeaderSize + 8 * (docs + 1) + docs)
            throw new InvalidDataException($"{path}: {f.Length} bytes; {docs} documents need {TokenFormat.IdxHeaderSize} + 8 x {docs + 1} + {docs} = "
                + (docs <= (long.MaxValue - 40) / 9 ? $"{TokenFormat.IdxHeaderSize + 8 * (docs + 1) + docs}" : "more") + " (truncated or not a complete index)");
        var offsets = (long*)(f.Pointer + TokenFormat.IdxHeaderSize);
        if (offsets[0] != 0) throw new InvalidDataException($"{path}: the first document starts at token {offsets[0]}, expected 0");
        for (long d = 0; d < docs; d++)
        {
            if (offsets[d + 1] < offsets[d])
                throw new InvalidDataException($"{path}: document {d + 1} starts at token {offsets[d + 1]}, before document {d} (at {offsets[d]}); offsets must not decrease");
            if (offsets[d + 1] > tokens)
                throw new InvalidDataException($"{path}: document {d} ends at token {offsets[d + 1]}, past the {tokens} tokens of {binPath}");
        }
        if (offsets[docs] != tokens)
            throw new InvalidDataException($"{path}: the last offset is {offsets[docs]}, expected the token count of {binPath} ({tokens})");
        var languages = f.Pointer + TokenFormat.IdxHeaderSize + 8 * (docs + 1);
        for (long d = 0; d < docs; d++)
            if (languages[d] > (byte)TokenLanguage.Other)
                throw new InvalidDataException($"{path}: document {d} has language code {languages[d]}; known codes are 0 (en) to 3 (other)");
    }

    private static void CheckMagic(string path, ReadOnlySpan<byte> header, ReadOnlySpan<byte> magic, string what)
    {
        if (header[..magic.Length].SequenceEqual(magic)) return;
        var found = new string(header[..magic.Length].ToArray().Select(b => b is >= 0x20 and < 0x7F ? (char)b : '?').ToArray());
        throw new InvalidDataException($"{path}: not a Duet {what}: magic \"{found}\", expected \"{Encoding.ASCII.GetString(magic)}\"");
    }

    /// <summary>Token <paramref name="i"/> of the shard (0 .. TokenCount - 1).</summary>
    public int Token(long i)
    {
        if ((ulong)i >= (ulong)TokenCount) throw new ArgumentOutOfRangeException(nameof(i), $"token {i} of a shard of {TokenCount}");
        ThrowIfDisposed();
        return BytesPerToken == 2 ? ((ushort*)_tokens)[i] : (int)((uint*)_tokens)[i];
    }

    /// <summary>Copies tokens start .. start + destination.Length as ints.</summary>
    public void CopyTokens(long start, Span<int> destination)
    {
        if (start < 0 || start > TokenCount - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(start), $"tokens {start} .. {start + destination.Length} of a shard of {TokenCount}");
        ThrowIfDisposed();
        if (BytesPerToken == 2)
        {
            var src = new ReadOnlySpan<ushort>((ushort*)_tokens + start, destination.Length);
            for (int i = 0; i < src.Length; i++) destination[i] = src[i];
        }
        else
        {
            new ReadOnlySpan<int>((int*)_tokens + start, destination.Length).CopyTo(destination);
        }
    }

    /// <summary>Where document <paramref name="d"/> starts; <c>DocumentOffset(DocumentCount)</c> is TokenCount.</summary>
    public long DocumentOffset(long d)
    {
        if ((ulong)d > (ulong)DocumentCount) throw new ArgumentOutOfRangeException(nameof(d), $"offset {d} of a shard of {DocumentCount} documents");
        ThrowIfDisposed();
        return _offsets[d];
    }

    /// <summary>The language of document <paramref name="d"/>.</summary>
    public TokenLanguage Language(long d)
    {
        if ((ulong)d >= (ulong)DocumentCount) throw new ArgumentOutOfRangeException(nameof(d), $"document {d} of a shard of {DocumentCount}");
        ThrowIfDisposed();
        return (TokenLanguage)_languages[d];
    }

    /// <summary>The tokens of document <paramref name="d"/>, BOS and EOS included (a copy).</summary>
    public int[] DocumentTokens(long d)
    {
        if ((ulong)d >= (ulong)DocumentCount) throw new ArgumentOutOfRangeException(nameof(d), $"document {d} of a shard of {DocumentCount}");
        long start = DocumentOffset(d), end = DocumentOffset(d + 1);
        var ids = new int[checked((int)(end - start))];
        CopyTokens(start, ids);
        return ids;
    }

    private bool _disposed;
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _bin.Dispose();
        _idx.Dispose();
    }
}
