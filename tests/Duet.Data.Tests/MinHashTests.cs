// Near-duplicate removal on planted duplicates (the data issue's acceptance 2): distinct documents, related
// ones (sharing much of their text, Jaccard well below the threshold), and near duplicates with Jaccard >= 0.9.
using Duet.Data.Dedup;

namespace Duet.Data.Tests;

public class MinHashTests
{
    private static readonly MinHashOptions Options = new() { WordNgram = 5, CharNgram = 5, Bands = 16, RowsPerBand = 8, Threshold = 0.8 };

    private static string EnglishDoc(Random rng, string[] vocab, int words)
        => string.Join(' ', Enumerable.Range(0, words).Select(_ => vocab[rng.Next(vocab.Length)]));

    private static string ChineseDoc(Random rng, int chars)
        => new(Enumerable.Range(0, chars).Select(_ => (char)('\u4E00' + rng.Next(3000))).ToArray());

    private static double Jaccard(string a, string b)
    {
        var x = MinHasher.Shingles(a, Options).ToHashSet();
        var y = MinHasher.Shingles(b, Options).ToHashSet();
        return (double)x.Intersect(y).Count() / x.Union(y).Count();
    }

    // A copy with a few words (or characters) replaced, spread out, until its exact Jaccard is just above 0.9.
    private static string NearCopy(Random rng, string doc, bool chinese, string[] vocab)
    {
        for (int changes = 3; ; changes--)
        {
            string copy;
            if (chinese)
            {
                var c = doc.ToCharArray();
                for (int k = 0; k < changes; k++) c[(k + 1) * c.Length / (changes + 1)] = (char)('\u4E00' + rng.Next(3000));
                copy = new string(c);
            }
            else
            {
                var w = doc.Split(' ');
                for (int k = 0; k < changes; k++) w[(k + 1) * w.Length / (changes + 1)] = vocab[rng.Next(vocab.Length)];
                copy = string.Join(' ', w);
            }
            if (Jaccard(doc, copy) >= 0.9 || changes == 0) return copy;
        }
    }

    [Fact]
    public void Dedup_PlantedNearDuplicates_RemovesAtLeast95PercentAndUnder1PercentOfDistinct()
    {
        var rng = new Random(42);
        var vocab = Enumerable.Range(0, 5000).Select(i => $"w{i}").ToArray();
        var docs = new List<(string Text, bool Duplicate)>();
        var originals = new List<(string Text, bool Chinese)>();
        for (int i = 0; i < 600; i++)
        {
            bool zh = i % 3 == 0;
            var d = zh ? ChineseDoc(rng, 300 + rng.Next(300)) : EnglishDoc(rng, vocab, 200 + rng.Next(200));
            originals.Add((d, zh));
            docs.Add((d, false));
        }
        // Related but distinct: the first half of one document followed by new text (Jaccard about 0.3 to 0.5).
        for (int i = 0; i < 200; i++)
        {
            var (o, zh) = originals[i];
            string tail = zh ? ChineseDoc(rng, o.Length / 2) : EnglishDoc(rng, vocab, o.Split(' ').Length / 2);
            string related = zh ? o[..(o.Length / 2)] + tail : string.Join(' ', o.Split(' ').Take(o.Split(' ').Length / 2)) + " " + tail;
            Assert.InRange(Jaccard(o, related), 0.2, 0.7);
            docs.Add((related, false));
        }
        // Planted near duplicates, Jaccard >= 0.9 measured exactly, interleaved after their originals.
        int planted = 0;
        for (int i = 0; i < 400; i++)
        {
            var (o, zh) = originals[rng.Next(originals.Count)];
            var copy = NearCopy(rng, o, zh, vocab);
            Assert.True(Jaccard(o, copy) >= 0.9, "a planted copy must have Jaccard >= 0.9");
            docs.Add((copy, true));
            planted++;
        }
        var hasher = new MinHasher(Options);
        var index = new MinHashIndex(Options);
        int removedDup = 0, removedDistinct = 0, distinct = docs.Count - planted;
        foreach (var (text, dup) in docs)
            if (index.IsDuplicate(hasher.Signature(text)))
            {
                if (dup) removedDup++;
                else removedDistinct++;
            }
        Assert.True(removedDup >= 0.95 * planted, $"removed {removedDup} of {planted} planted near duplicates");
        Assert.True(removedDistinct < 0.01 * distinct, $"removed {removedDistinct} of {distinct} distinct documents");
    }

    [Fact]
    public void Signature_SameSeedAndText_IsDeterministic_AndEstimatesJaccard()
    {
        var rng = new Random(7);
        var vocab = Enumerable.Range(0, 1000).Select(i => $"v{i}").ToArray();
        var a = EnglishDoc(rng, vocab, 400);
        var words = a.Split(' ');
        var b = string.Join(' ', words.Take(300)) + " " + EnglishDoc(rng, vocab, 100);
        var big = Options with { Bands = 64, RowsPerBand = 8 };
        var h1 = new MinHasher(big);
        var h2 = new MinHasher(big);
        Assert.Equal(h1.Signature(a), h2.Signature(a));
        double exact = Jaccard(a, b), estimate = MinHasher.Similarity(h1.Signature(a), h1.Signature(b));
        Assert.InRange(estimate, exact - 0.08, exact + 0.08); // 512 minima: standard error about 0.02
    }
}
