// Character classes with the exact meaning the reference tokenizers give them.
//
// The split regexes of GPT-2, Llama 3 and Qwen are run by Hugging Face's JavaScript port with the
// 'u' flag, so \s is ECMAScript WhiteSpace + LineTerminator (which, unlike .NET's \s, includes U+FEFF
// and excludes U+0085), and \p{L} / \p{N} are tested on code points, supplementary planes included.
// .NET's Regex works on UTF-16 code units and cannot do the latter, hence these hand-written tests.
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Duet.Tokenizers.Text;

public static class CharClass
{
    private const byte Letter = 1, Number = 2, Space = 4;
    private static readonly byte[] s_bmp = BuildBmp();

    private static byte[] BuildBmp()
    {
        var t = new byte[0x10000];
        for (int c = 0; c < 0x10000; c++)
        {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            t[c] = Classify(c);
        }
        return t;
    }

    private static byte Classify(int cp)
    {
        byte k = 0;
        switch (CharUnicodeInfo.GetUnicodeCategory(cp))
        {
            case UnicodeCategory.UppercaseLetter: case UnicodeCategory.LowercaseLetter: case UnicodeCategory.TitlecaseLetter:
            case UnicodeCategory.ModifierLetter: case UnicodeCategory.OtherLetter:
                k |= Letter; break;
            case UnicodeCategory.DecimalDigitNumber: case UnicodeCategory.LetterNumber: case UnicodeCategory.OtherNumber:
                k |= Number; break;
        }
        if (IsJsWhiteSpaceSlow(cp)) k |= Space;
        return k;
    }

    // ECMAScript WhiteSpace and LineTerminator: TAB VT FF SP NBSP ZWNBSP (FEFF), Zs, LF CR LS PS.
    private static bool IsJsWhiteSpaceSlow(int c) =>
        c is 0x09 or 0x0A or 0x0B or 0x0C or 0x0D or 0x20 or 0xA0 or 0x1680 or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 or 0xFEFF
        || (c >= 0x2000 && c <= 0x200A);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Get(int cp) => cp < 0x10000 ? s_bmp[cp] : Classify(cp);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsLetter(int cp) => (Get(cp) & Letter) != 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsNumber(int cp) => (Get(cp) & Number) != 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsWhiteSpace(int cp) => (Get(cp) & Space) != 0;
    /// <summary>Neither \s, \p{L} nor \p{N}: what [^\s\p{L}\p{N}] matches.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsOther(int cp) => Get(cp) == 0;

    /// <summary>Reads the code point at <paramref name="i"/>; a lone surrogate counts as one code point.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CodePointAt(ReadOnlySpan<char> s, int i, out int length)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            length = 2;
            return char.ConvertToUtf32(c, s[i + 1]);
        }
        length = 1;
        return c;
    }
}
