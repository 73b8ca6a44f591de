// GPT-2's bytes_to_unicode table: each byte maps to a printable code point so that BPE vocabularies
// can be stored as text. Printable Latin-1 bytes map to themselves; the other 68 bytes map to
// U+0100 upwards, in byte order.
namespace Duet.Tokenizers.Text;

public static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();
    private static readonly short[] s_charToByte = BuildReverse();

    private static char[] Build()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    private static short[] BuildReverse()
    {
        var r = new short[0x200];
        Array.Fill(r, (short)-1);
        for (int b = 0; b < 256; b++) r[ByteToChar[b]] = (short)b;
        return r;
    }

    /// <summary>The byte a mapped character stands for, or -1 if it is not in the alphabet.</summary>
    public static int CharToByte(char c) => c < 0x200 ? s_charToByte[c] : -1;

    /// <summary>Maps text to its byte-level form: UTF-8 bytes (escaped bytes restored), each as a char.</summary>
    public static string Map(ReadOnlySpan<char> text)
    {
        int n = Utf8Escape.GetByteCount(text);
        Span<byte> bytes = n <= 1024 ? stackalloc byte[n] : new byte[n];
        Utf8Escape.Encode(text, bytes);
        return string.Create(n, bytes.ToArray(), static (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]];
        });
    }
}
