// The binary token shard format that `duet data tokenize` writes and the trainer reads (docs/data.md has the
// same tables). Two files per JSONL text shard, both little-endian, fixed headers, no compression, so a reader
// maps them and indexes tokens directly:
//
// NAME.bin  offset size
//           0      8    magic "DUETTOK1"
//           8      4    uint32 version = 1
//           12     4    uint32 bytesPerToken: 2 when vocabSize <= 65536, else 4
//           16     8    int64 tokenCount
//           24     8    int64 documentCount
//           32     4    uint32 vocabSize
//           36     28   zero
//           64          tokenCount tokens, uint16 or uint32; file length = 64 + tokenCount * bytesPerToken
//
// NAME.idx  0      8    magic "DUETIDX1"
//           8      4    uint32 version = 1
//           12     4    zero (reserved)
//           16     8    int64 documentCount
//           24     8    zero
//           32          (documentCount + 1) int64 token offsets: offset[0] = 0, non-decreasing, offset[documentCount] = tokenCount;
//                       document d is tokens offset[d] .. offset[d+1] (BOS and EOS included)
//           32 + 8 (documentCount + 1)   documentCount bytes: the language of each document (TokenLanguage)
//                       file length = 32 + 8 (documentCount + 1) + documentCount
// The writer is Duet.Data's CorpusTokenizer (which also maps the corpus's "lang" values to TokenLanguage); the
// reader is TokenShard, and TokenCorpus opens a split's shards from the manifest.
using System.Buffers.Binary;

namespace Duet.Formats.Tokens;

/// <summary>Language code of a document in a .idx file; the JSONL shards' "lang" values map to it.</summary>
public enum TokenLanguage : byte { English = 0, Chinese = 1, Mixed = 2, Other = 3 }

/// <summary>Constants and header writers of the token shard format (the tables above).</summary>
public static class TokenFormat
{
    public const uint Version = 1;
    public const int BinHeaderSize = 64, IdxHeaderSize = 32;
    public static ReadOnlySpan<byte> BinMagic => "DUETTOK1"u8;
    public static ReadOnlySpan<byte> IdxMagic => "DUETIDX1"u8;

    /// <summary>uint16 tokens while every id fits (vocabularies up to 65536), else uint32.</summary>
    public static int BytesPerToken(int vocabSize) => vocabSize <= 65536 ? 2 : 4;

    /// <summary>Fills the 64-byte header of a .bin file.</summary>
    public static void WriteBinHeader(Span<byte> header, int bytesPerToken, long tokenCount, long documentCount, int vocabSize)
    {
        header[..BinHeaderSize].Clear();
        BinMagic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], (uint)bytesPerToken);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], tokenCount);
        BinaryPrimitives.WriteInt64LittleEndian(header[24..], documentCount);
        BinaryPrimitives.WriteUInt32LittleEndian(header[32..], (uint)vocabSize);
    }

    /// <summary>Fills the 32-byte header of a .idx file.</summary>
    public static void WriteIdxHeader(Span<byte> header, long documentCount)
    {
        header[..IdxHeaderSize].Clear();
        IdxMagic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], documentCount);
    }
}
