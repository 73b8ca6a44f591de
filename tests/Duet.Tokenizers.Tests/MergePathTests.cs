// The two merge loops of BpeModel (an array scan for short words, a priority queue for long ones) and the lock-free
// word cache: the scan must merge in exactly the queue's order (lowest rank, then leftmost), and the cache must give
// back what was stored, bounded, under concurrent encoding.
using Duet.Tokenizers.Models;
using Duet.Tokenizers.Text;

namespace Duet.Tokenizers.Tests;

public class MergePathTests
{
    private static int[] Encode(BpeModel m, string word)
    {
        var ids = new List<int>();
        m.Encode(word, ids, cache: false);
        return ids.ToArray();
    }

    [Fact]
    public void ScanAndQueue_GiveTheSameIds_OnRandomWordsWithTiedRanks()
    {
        // Many equal-rank pairs in a row ("ababab...") are where a wrong tie-break shows: the queue orders by
        // (rank, start), the scan takes the first minimum in text order.
        string[] vocab = ["<unk>", "a", "b", "c", "ab", "bc", "abc", "ca", "abab", "cab", "bcbc", "bb"];
        var types = Enumerable.Repeat(TokenType.Normal, vocab.Length).ToArray();
        var merges = new[] { ("b", "c"), ("a", "b"), ("c", "a"), ("ab", "ab"), ("a", "bc"), ("c", "ab"), ("bc", "bc"), ("b", "b") };
        var scan = BpeModel.FromMerges(vocab, types, merges, false, false, false, 0);
        var queue = BpeModel.FromMerges(vocab, types, merges, false, false, false, 0);
        scan.LinearScanLimit = int.MaxValue;
        queue.LinearScanLimit = 0;
        var rng = new Random(21);
        int differing = 0;
        for (int trial = 0; trial < 4000; trial++)
        {
            int len = 1 + rng.Next(trial < 3000 ? 24 : 300);
            var word = new string(Enumerable.Range(0, len).Select(_ => "abc"[rng.Next(3)]).ToArray());
            var a = Encode(scan, word);
            var b = Encode(queue, word);
            Assert.True(a.AsSpan().SequenceEqual(b), $"'{word}': scan [{string.Join(' ', a)}] queue [{string.Join(' ', b)}]");
            if (a.Length != len) differing++;
        }
        Assert.True(differing > 3000, "the random words should mostly merge"); // the test exercises merges, not single symbols
    }

    public static TheoryData<string> Names => new() { "llama2", "llama3", "qwen3", "spm-bpe" };

    [Theory, MemberData(nameof(Names))]
    public void ScanAndQueue_GiveTheSameIds_OnTheBilingualText(string name)
    {
        // Real vocabularies, fresh instances (so every word reaches the merge loop), one forced onto each path.
        Tokenizer Load() => name == "spm-bpe" ? Tokenizer.Load(RepoFiles.TestData("spm-bpe.model")) : Tokenizer.Load(RepoFiles.LenmlTokenizer(name));
        Tokenizer scan = Load(), queue = Load();
        scan.Model.LinearScanLimit = int.MaxValue;
        queue.Model.LinearScanLimit = 0;
        foreach (var line in RepoFiles.TestLines())
            Assert.Equal(queue.Encode(line), scan.Encode(line));
    }

    [Fact]
    public void WordCache_GivesBackWhatWasStored_AndMissesTheRest()
    {
        var c = new WordCache(1024);
        Assert.Equal(1024, c.Capacity);
        Assert.False(c.TryGet("hello", out _));
        c.Add("hello", [1, 2, 3]);
        c.Add("hell", [4]);
        c.Add("", [9]);
        Assert.True(c.TryGet("hello", out var ids));
        Assert.Equal([1, 2, 3], ids);
        Assert.True(c.TryGet("hell".AsSpan(), out ids));
        Assert.Equal([4], ids);
        Assert.True(c.TryGet("", out ids));
        Assert.Equal([9], ids);
        Assert.False(c.TryGet("hello!", out _));
        Assert.False(c.TryGet("Hello", out _));
        // A stored copy: changing the caller's buffer afterwards does not change the entry.
        int[] buffer = [7, 8];
        c.Add("x", buffer);
        buffer[0] = 0;
        Assert.True(c.TryGet("x", out ids));
        Assert.Equal([7, 8], ids);
        // Adding again replaces.
        c.Add("hello", [5]);
        Assert.True(c.TryGet("hello", out ids));
        Assert.Equal([5], ids);
    }

    [Fact]
    public void WordCache_StaysBounded_AndKeepsRecentWordsFindable()
    {
        var c = new WordCache(256);
        for (int i = 0; i < 100_000; i++) c.Add("w" + i, [i]);
        Assert.Equal(256, c.Count); // every slot used, none beyond
        // Whatever it holds is right: no word maps to another word's ids.
        int found = 0;
        for (int i = 0; i < 100_000; i++)
            if (c.TryGet("w" + i, out var ids)) { Assert.Equal([i], ids); found++; }
        Assert.Equal(256, found);
        // A word just added is always findable, even into a full set.
        c.Add("fresh", [42]);
        Assert.True(c.TryGet("fresh", out var f));
        Assert.Equal([42], f);
    }

    [Fact]
    public void Encode_FromManyThreadsOnOneInstance_MatchesOneThread()
    {
        // The caches are shared by the encoding threads without locks: concurrent misses, inserts and evictions
        // (a small text, so the same words race) must not change a single id.
        var lines = RepoFiles.TestLines();
        var single = Tokenizer.Load(RepoFiles.LenmlTokenizer("llama3"));
        var expected = lines.Select(l => single.Encode(l)).ToArray();
        var shared = Tokenizer.Load(RepoFiles.LenmlTokenizer("llama3"));
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            for (int i = t; i < lines.Length * 2; i += 3)
                Assert.Equal(expected[i % lines.Length], shared.Encode(lines[i % lines.Length]));
        });
    }
}
