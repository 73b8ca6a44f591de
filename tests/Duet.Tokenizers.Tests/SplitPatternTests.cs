// The hand-written GPT-2 / Llama 3 / Qwen split matchers against an independent engine: .NET's Regex
// on ASCII text, where ECMAScript and .NET agree on \s, \p{L} and \p{N}; plus worked non-ASCII cases.
using System.Text.RegularExpressions;
using Duet.Tokenizers.PreTokenizers;

namespace Duet.Tokenizers.Tests;

public class SplitPatternTests
{
    private static List<string> Fast(GptPatternKind kind, string s)
    {
        var list = new List<string>();
        int i = 0;
        while (i < s.Length) { int e = GptSplitPattern.MatchAt(kind, s, i); list.Add(s[i..e]); i = e; }
        return list;
    }

    [Theory]
    [InlineData(GptPatternKind.Gpt2)]
    [InlineData(GptPatternKind.Llama3)]
    [InlineData(GptPatternKind.Qwen2)]
    public void MatchAt_RandomAscii_AgreesWithRegexEngine(GptPatternKind kind)
    {
        var regex = new Regex(GptSplitPattern.PatternOf(kind), RegexOptions.CultureInvariant);
        const string alphabet = "aZ09 '\t\r\n!.,;-_(){}sStTrReEvVmMlLdD\u000b\u000c   xyz123";
        var rng = new Random(1234);
        for (int trial = 0; trial < 3000; trial++)
        {
            var chars = new char[rng.Next(0, 40)];
            for (int i = 0; i < chars.Length; i++) chars[i] = alphabet[rng.Next(alphabet.Length)];
            var s = new string(chars);
            var expected = regex.Matches(s).Select(m => m.Value).ToList();
            Assert.Equal(string.Concat(expected), s); // the patterns tile the text
            Assert.Equal(expected, Fast(kind, s));
        }
    }

    [Fact]
    public void MatchAt_Llama3_NumbersInThreesAndSupplementaryLetters()
    {
        Assert.Equal(["123", "456", "7"], Fast(GptPatternKind.Llama3, "1234567"));
        Assert.Equal(["1", "2", "3"], Fast(GptPatternKind.Qwen2, "123"));
        // U+20000 is a letter (Lo) outside the BMP: one run with the CJK before it, space attached.
        Assert.Equal([" 中\U00020000文", "。"], Fast(GptPatternKind.Llama3, " 中\U00020000文。"));
        // U+3000 (ideographic space) is \s in ECMAScript: \s+(?!\S) leaves the last space to " x".
        Assert.Equal(["\u3000", " x"], Fast(GptPatternKind.Llama3, "\u3000 x"));
        // Contractions are case-insensitive in ASCII only, as the JavaScript port rewrites (?i:'s|...):
        // "'ſt" is not "'ſ" + "t" (Rust's Unicode (?i) would say it is) but one [^\r\n\p{L}\p{N}]?\p{L}+ match.
        Assert.Equal(["I", "'S", " ok", "'\u017Ft"], Fast(GptPatternKind.Llama3, "I'S ok'\u017Ft"));
    }
}
