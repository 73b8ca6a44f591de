// UTF-8 <-> UTF-16 that never loses a byte.
//
// Tokenizers work on strings, but their input is bytes, and invalid UTF-8 must reach the model
// through byte fallback instead of being replaced by U+FFFD. We use Python's "surrogateescape"
// (PEP 383): an undecodable byte b becomes the lone low surrogate U+DC00+b (b >= 0x80), which no
// valid UTF-8 can produce, and turning the string back into bytes restores b exactly.
// Any other lone surrogate (only possible in strings made in memory) becomes U+FFFD's bytes,
// as JavaScript's TextEncoder and Rust's String do.
using System.Buffers;
using System.Text;

namespace Duet.Tokenizers.Text;

public static class Utf8Escape
{
    /// <summary>Decodes UTF-8, mapping each invalid byte b to the lone surrogate U+DC00+b.</summary>
    public static string Decode(ReadOnlySpan<byte> utf8)
    {
        if (System.Text.Unicode.Utf8.IsValid(utf8)) return Encoding.UTF8.GetString(utf8);
        var sb = new StringBuilder(utf8.Length);
        while (!utf8.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(utf8, out var rune, out int consumed);
            if (status == OperationStatus.Done)
            {
                if (rune.IsBmp) sb.Append((char)rune.Value);
                else { sb.Append(rune.ToString()); }
            }
            else
            {
                // Rune reports the maximal invalid subsequence; escape it byte by byte.
                for (int i = 0; i < consumed; i++) sb.Append((char)(0xDC00 + utf8[i]));
            }
            utf8 = utf8[consumed..];
        }
        return sb.ToString();
    }

    /// <summary>Number of UTF-8 bytes <see cref="Encode(ReadOnlySpan{char}, Span{byte})"/> writes.</summary>
    public static int GetByteCount(ReadOnlySpan<char> text)
    {
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c < 0x80) n += 1;
            else if (c < 0x800) n += 2;
            else if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { n += 4; i++; }
            else if (IsEscapedByte(c)) n += 1;
            else n += 3; // BMP char, or a lone surrogate written as U+FFFD
        }
        return n;
    }

    /// <summary>Encodes to UTF-8, turning escaped bytes back into raw bytes. Returns bytes written.</summary>
    public static int Encode(ReadOnlySpan<char> text, Span<byte> dest)
    {
        int o = 0;
        for (int i = 0; i < text.Length; i++)
        {
            int c = text[i];
            if (c < 0x80) { dest[o++] = (byte)c; continue; }
            if (c < 0x800) { dest[o++] = (byte)(0xC0 | (c >> 6)); dest[o++] = (byte)(0x80 | (c & 0x3F)); continue; }
            if (char.IsHighSurrogate((char)c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int cp = char.ConvertToUtf32((char)c, text[++i]);
                dest[o++] = (byte)(0xF0 | (cp >> 18)); dest[o++] = (byte)(0x80 | ((cp >> 12) & 0x3F));
                dest[o++] = (byte)(0x80 | ((cp >> 6) & 0x3F)); dest[o++] = (byte)(0x80 | (cp & 0x3F));
                continue;
            }
            if (IsEscapedByte((char)c)) { dest[o++] = (byte)(c - 0xDC00); continue; }
            if (char.IsSurrogate((char)c)) c = 0xFFFD;
            dest[o++] = (byte)(0xE0 | (c >> 12)); dest[o++] = (byte)(0x80 | ((c >> 6) & 0x3F)); dest[o++] = (byte)(0x80 | (c & 0x3F));
        }
        return o;
    }

    public static byte[] Encode(ReadOnlySpan<char> text)
    {
        var bytes = new byte[GetByteCount(text)];
        Encode(text, bytes);
        return bytes;
    }

    /// <summary>True for U+DC80..U+DCFF, the escapes of the bytes 0x80..0xFF.</summary>
    public static bool IsEscapedByte(char c) => c >= 0xDC80 && c <= 0xDCFF;

    /// <summary>Decodes UTF-8 for display: invalid sequences become U+FFFD (as HF's decoders do).</summary>
    public static string DecodeLossy(ReadOnlySpan<byte> utf8) => Encoding.UTF8.GetString(utf8);
}
