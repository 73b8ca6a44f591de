// The BPE core on vocabularies small enough to work out by hand (the expected ids are derived in the comments).
using Duet.Tokenizers.Models;

namespace Duet.Tokenizers.Tests;

public class BpeModelTests
{
    private static readonly string[] Vocab = ["<unk>", "a", "b", "c", "ab", "bc", "abc", "<0x64>"];
    private static TokenType[] Normal(int n) => Enumerable.Repeat(TokenType.Normal, n).ToArray();

    private static int[] Encode(BpeModel m, string word)
    {
        var ids = new List<int>();
        m.Encode(word, ids);
        return ids.ToArray();
    }

    [Fact]
    public void Encode_Merges_LowestRankFirst()
    {
        // ranks: (b,c)=0, (a,b)=1, (a,bc)=2. "abc": (b,c) wins -> a bc -> (a,bc) -> abc.
        var m = BpeModel.FromMerges(Vocab, Normal(8), [("b", "c"), ("a", "b"), ("a", "bc")], false, false, false, 0);
        Assert.Equal([6], Encode(m, "abc"));
        // "abab": (a,b) twice, same rank: leftmost first, then the second -> ab ab.
        Assert.Equal([4, 4], Encode(m, "abab"));
    }

    [Fact]
    public void Encode_EqualRanks_LeftmostPairWins()
    {
        // Only (a,b)=0 and (b,c)=1... make (a,b) and (b,c) compete at different ranks in "abc": (a,b) first -> ab c.
        var m = BpeModel.FromMerges(Vocab, Normal(8), [("a", "b"), ("b", "c")], false, false, false, 0);
        Assert.Equal([4, 3], Encode(m, "abc"));
    }

    [Fact]
    public void Encode_SentencePieceScores_HighestScoreFirstThenLeftmost()
    {
        // scores: ab=-2, bc=-1 (better), abc=-3. "abc": bc first -> a bc -> abc exists -> abc.
        float[] scores = [0, 0, 0, 0, -2, -1, -3, 0];
        var types = Normal(8);
        types[0] = TokenType.Unknown;
        types[7] = TokenType.Byte;
        var m = BpeModel.FromScores(Vocab, types, scores, 0, byteFallback: true);
        Assert.Equal([6], Encode(m, "abc"));
        // "bcab": bc(-1) at 0, ab(-2) at 2 -> bc ab; (bc,ab) makes "bcab", not a piece.
        Assert.Equal([5, 4], Encode(m, "bcab"));
        // 'd' is not a piece: byte fallback to <0x64>; 'é' has no byte pieces: unknown.
        Assert.Equal([7], Encode(m, "d"));
        Assert.Equal([1, 0], Encode(m, "aé"));
    }

    [Fact]
    public void Encode_IgnoreMerges_TakesWholeWordFromVocabulary()
    {
        // Without merges at all, "abc" is in the vocabulary: ignore_merges returns it directly (Llama 3).
        var m = BpeModel.FromMerges(Vocab, Normal(8), [], false, ignoreMerges: true, false, 0);
        Assert.Equal([6], Encode(m, "abc"));
        var plain = BpeModel.FromMerges(Vocab, Normal(8), [], false, ignoreMerges: false, false, 0);
        Assert.Equal([1, 2, 3], Encode(plain, "abc"));
    }

    [Fact]
    public void Encode_UnknownCharacters_FuseIntoOneUnknownWhenAsked()
    {
        var fuse = BpeModel.FromMerges(Vocab, Normal(8), [], false, false, fuseUnknown: true, 0);
        Assert.Equal([1, 0, 2], Encode(fuse, "aéèb"));
        var nofuse = BpeModel.FromMerges(Vocab, Normal(8), [], false, false, fuseUnknown: false, 0);
        Assert.Equal([1, 0, 0, 2], Encode(nofuse, "aéèb"));
    }

    [Fact]
    public void FromMerges_MergeOutsideVocabulary_IsRejectedWithItsName()
    {
        var e = Assert.Throws<TokenizerFormatException>(() => BpeModel.FromMerges(Vocab, Normal(8), [("c", "a")], false, false, false, 0));
        Assert.Contains("'c a'", e.Message);
    }
}
