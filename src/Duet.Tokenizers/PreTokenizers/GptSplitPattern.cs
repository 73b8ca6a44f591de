// Hand-written matchers for the split regexes of GPT-2, Llama 3 and Qwen 2/3.
//
// They give exactly the matches the regexes give under ECMAScript 'gu' semantics (what the HF
// JavaScript port runs), code point by code point, and are several times faster than a regex engine.
// Each alternative is tried in order at the current position, as a backtracking engine would:
//
//   Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen 2:  the same with \p{N} instead of \p{N}{1,3}
//   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
using Duet.Tokenizers.Text;

namespace Duet.Tokenizers.PreTokenizers;

public enum GptPatternKind { Gpt2, Llama3, Qwen2 }

public static class GptSplitPattern
{
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    public const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static GptPatternKind? Recognize(string regex) => regex switch
    {
        Gpt2 => GptPatternKind.Gpt2,
        Llama3 => GptPatternKind.Llama3,
        Qwen2 => GptPatternKind.Qwen2,
        _ => null,
    };

    public static string PatternOf(GptPatternKind kind) => kind switch
    {
        GptPatternKind.Gpt2 => Gpt2, GptPatternKind.Llama3 => Llama3, _ => Qwen2,
    };

    /// <summary>Calls <paramref name="onMatch"/>(start, length) for each match, in order; the matches tile the text.</summary>
    public static void Split<TState>(GptPatternKind kind, ReadOnlySpan<char> s, ref TState state, MatchHandler<TState> onMatch)
    {
        int i = 0;
        while (i < s.Length)
        {
            int end = MatchAt(kind, s, i);
            onMatch(ref state, i, end - i);
            i = end;
        }
    }

    public delegate void MatchHandler<TState>(ref TState state, int start, int length);

    private static bool IsCrLf(int c) => c == '\r' || c == '\n';

    /// <summary>The end of the match that starts at <paramref name="i"/> (every position starts one).</summary>
    public static int MatchAt(GptPatternKind kind, ReadOnlySpan<char> s, int i)
    {
        int c = CharClass.CodePointAt(s, i, out int cl);
        bool gpt2 = kind == GptPatternKind.Gpt2;

        // 's|'t|'re|'ve|'m|'ll|'d, case-insensitive except in GPT-2. ECMAScript has no (?i:) group, so the
        // JavaScript port rewrites it as [sS]|[tT]|...: ASCII case only, where Rust's (?i) would also take 'ſ'.
        if (c == '\'' && i + 1 < s.Length)
        {
            int n = Contraction(s, i + 1, !gpt2);
            if (n > 0) return i + 1 + n;
        }

        if (gpt2)
        {
            int j = i + (c == ' ' ? 1 : 0);
            if (j < s.Length)
            {
                int d = CharClass.CodePointAt(s, j, out int dl);
                if (CharClass.IsLetter(d)) return RunOf(s, j + dl, CharClass.IsLetter);           //  ?\p{L}+
                if (CharClass.IsNumber(d)) return RunOf(s, j + dl, CharClass.IsNumber);           //  ?\p{N}+
                if (CharClass.IsOther(d)) return RunOf(s, j + dl, CharClass.IsOther);             //  ?[^\s\p{L}\p{N}]+
            }
        }
        else
        {
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (CharClass.IsLetter(c)) return RunOf(s, i + cl, CharClass.IsLetter);
            if (!IsCrLf(c) && !CharClass.IsNumber(c) && i + cl < s.Length)
            {
                int d = CharClass.CodePointAt(s, i + cl, out int dl);
                if (CharClass.IsLetter(d)) return RunOf(s, i + cl + dl, CharClass.IsLetter);
            }
            // \p{N}{1,3} or \p{N}
            if (CharClass.IsNumber(c))
            {
                int end = i + cl, max = kind == GptPatternKind.Llama3 ? 3 : 1;
                for (int k = 1; k < max && end < s.Length; k++)
                {
                    int d = CharClass.CodePointAt(s, end, out int dl);
                    if (!CharClass.IsNumber(d)) break;
                    end += dl;
                }
                return end;
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            int j = i;
            if (c == ' ' && i + 1 < s.Length && CharClass.IsOther(CharClass.CodePointAt(s, i + 1, out _))) j = i + 1;
            if (j < s.Length)
            {
                int d = CharClass.CodePointAt(s, j, out int dl);
                if (CharClass.IsOther(d))
                {
                    int end = RunOf(s, j + dl, CharClass.IsOther);
                    while (end < s.Length && IsCrLf(s[end])) end++;
                    return end;
                }
            }
        }

        // Whitespace alternatives on the maximal run W of \s starting here.
        int w = RunOf(s, i, CharClass.IsWhiteSpace);
        if (w == i) return i + cl; // unreachable for these patterns: every code point is L, N, \s or other
        if (!gpt2)
        {
            // \s*[\r\n]+ : up to and including the last CR or LF of W.
            for (int k = w - 1; k >= i; k--)
                if (IsCrLf(s[k])) return k + 1;
        }
        // \s+(?!\S) : all of W at the end of text, else W less its last code point when that leaves one.
        if (w == s.Length) return w;
        int lastLen = char.IsLowSurrogate(s[w - 1]) && w - 2 >= i && char.IsHighSurrogate(s[w - 2]) ? 2 : 1;
        if (w - lastLen > i) return w - lastLen;
        return w; // \s+
    }

    private static int RunOf(ReadOnlySpan<char> s, int i, Func<int, bool> pred)
    {
        while (i < s.Length)
        {
            int d = CharClass.CodePointAt(s, i, out int dl);
            if (!pred(d)) break;
            i += dl;
        }
        return i;
    }

    private static int Contraction(ReadOnlySpan<char> s, int i, bool ignoreCase)
    {
        static char Fold(char ch, bool ic) => ic && ch is >= 'A' and <= 'Z' ? (char)(ch + 32) : ch;
        char a = Fold(s[i], ignoreCase);
        if (a is 's' or 't' or 'm' or 'd') return 1;
        if (i + 1 >= s.Length) return 0;
        char b = Fold(s[i + 1], ignoreCase);
        return (a, b) switch { ('r', 'e') or ('v', 'e') or ('l', 'l') => 2, _ => 0 };
    }
}
