// Near-duplicate detection by MinHash with LSH banding (Broder 1997; the scheme of Gopher, RefinedWeb and
// datatrove's minhash stage). A document becomes a set of shingles: word n-grams (lowercased letters and digits)
// for alphabetic text, character n-grams of its letters for Chinese, where words are not separated. Each of K
// seeded hash functions h_k(x) = (a_k·x + b_k) mod (2^61 - 1) of the shingles' 64-bit hashes keeps its minimum;
// the fraction of equal minima between two signatures estimates their Jaccard similarity. The K minima are cut
// into B bands of R rows: documents that agree on a whole band become candidates (probability 1 - (1 - J^R)^B),
// and a candidate whose estimated Jaccard reaches the threshold is a duplicate of the earlier document.
// Everything is seeded and processed in input order, so the same input always keeps the same documents.
using System.Runtime.InteropServices;

namespace Duet.Data.Dedup;

/// <summary>Parameters of near-duplicate detection (they come from the recipe).</summary>
public sealed record MinHashOptions
{
    /// <summary>Words per shingle for alphabetic text.</summary>
    public int WordNgram { get; init; } = 5;
    /// <summary>Characters per shingle for Chinese (and other unspaced) text.</summary>
    public int CharNgram { get; init; } = 5;
    public int Bands { get; init; } = 16;
    public int RowsPerBand { get; init; } = 8;
    /// <summary>Estimated Jaccard similarity at or above which a candidate is a duplicate.</summary>
    public double Threshold { get; init; } = 0.8;
    public ulong Seed { get; init; } = 0x5EED;
    public int Permutations => Bands * RowsPerBand;
}

public sealed class MinHasher
{
    private const ulong Prime = (1UL << 61) - 1;
    private readonly ulong[] _a, _b;
    public MinHashOptions Options { get; }

    public MinHasher(MinHashOptions options)
    {
        Options = options;
        if (options.Bands <= 0 || options.RowsPerBand <= 0 || options.WordNgram <= 0 || options.CharNgram <= 0)
            throw new ArgumentException("MinHash: bands, rows per band and n-gram sizes must be positive");
        int k = options.Permutations;
        _a = new ulong[k]; _b = new ulong[k];
        ulong state = options.Seed;
        for (int i = 0; i < k; i++)
        {
            _a[i] = 1 + SplitMix(ref state) % (Prime - 1);
            _b[i] = SplitMix(ref state) % Prime;
        }
    }

    /// <summary>The signature of a document: K minima (empty text: all ulong.MaxValue).</summary>
    public ulong[] Signature(string text)
    {
        var sig = new ulong[Options.Permutations];
        Array.Fill(sig, ulong.MaxValue);
        foreach (ulong h in Shingles(text, Options))
            for (int i = 0; i < sig.Length; i++)
            {
                ulong v = MulMod(_a[i], h % Prime, _b[i]);
                if (v < sig[i]) sig[i] = v;
            }
        return sig;
    }

    /// <summary>The fraction of equal minima: an estimate of the Jaccard similarity of the two shingle sets.</summary>
    public static double Similarity(ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> y)
    {
        int same = 0;
        for (int i = 0; i < x.Length; i++) if (x[i] == y[i]) same++;
        return (double)same / x.Length;
    }

    /// <summary>64-bit hashes of the document's shingles (duplicates included; they do not change minima).</summary>
    public static IEnumerable<ulong> Shingles(string text, MinHashOptions o)
    {
        var (words, han, letters) = Words(text);
        if (han * 2 >= Math.Max(1, letters))
        {
            // Chinese: character n-grams of the letters (punctuation and spaces out), so "同一句话" matches across line breaks.
            var chars = text.Where(char.IsLetterOrDigit).Select(char.ToLowerInvariant).ToArray();
            if (chars.Length < o.CharNgram) { if (chars.Length > 0) yield return Hash(chars); yield break; }
            for (int i = 0; i + o.CharNgram <= chars.Length; i++) yield return Hash(chars.AsSpan(i, o.CharNgram));
            yield break;
        }
        if (words.Count < o.WordNgram) { if (words.Count > 0) yield return Hash(string.Join(' ', words).AsSpan()); yield break; }
        for (int i = 0; i + o.WordNgram <= words.Count; i++) yield return Hash(string.Join(' ', words.GetRange(i, o.WordNgram)).AsSpan());
    }

    private static (List<string> Words, int Han, int Letters) Words(string text)
    {
        var words = new List<string>();
        int han = 0, letters = 0, start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            bool letter = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (letter) letters++;
            if (i < text.Length && IsHan(text[i])) han++;
            if (letter && start < 0) start = i;
            if (!letter && start >= 0) { words.Add(text[start..i].ToLowerInvariant()); start = -1; }
        }
        return (words, han, letters);
    }

    internal static bool IsHan(char c) => c is (>= '\u4E00' and <= '\u9FFF') or (>= '\u3400' and <= '\u4DBF') or (>= '\uF900' and <= '\uFAFF');

    // FNV-1a over UTF-16 code units, then a SplitMix finalizer to spread the bits.
    private static ulong Hash(ReadOnlySpan<char> s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s) { h ^= c; h *= 1099511628211UL; }
        return Mix(h);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong SplitMix(ref ulong state) => Mix(state += 0x9E3779B97F4A7C15UL);

    // (a·x + b) mod (2^61 - 1) with a, x, b < 2^61, through a 128-bit product.
    private static ulong MulMod(ulong a, ulong x, ulong b)
    {
        UInt128 p = (UInt128)a * x + b;
        ulong lo = (ulong)p & Prime, hi = (ulong)(p >> 61);
        ulong r = lo + hi;
        r = (r & Prime) + (r >> 61);
        return r >= Prime ? r - Prime : r;
    }
}

/// <summary>
/// The LSH index of kept documents: <see cref="IsDuplicate"/> answers for a new signature and, if it is not a
/// duplicate, remembers it. Bands are keyed by a hash of their rows; candidates are confirmed by estimated Jaccard.
/// </summary>
public sealed class MinHashIndex(MinHashOptions options)
{
    private readonly Dictionary<ulong, List<int>>[] _bands = Enumerable.Range(0, options.Bands).Select(_ => new Dictionary<ulong, List<int>>()).ToArray();
    private readonly List<ulong[]> _kept = [];

    public int Count => _kept.Count;

    /// <summary>True (and nothing stored) if a kept document is estimated at least Threshold similar; otherwise stores it.</summary>
    public bool IsDuplicate(ulong[] signature) => FindDuplicate(signature) >= 0;

    /// <summary>The index (in keeping order) of a kept document this one duplicates, or -1 after storing it.</summary>
    public int FindDuplicate(ulong[] signature)
    {
        if (signature.Length != options.Permutations) throw new ArgumentException($"signature of {signature.Length} minima, expected {options.Permutations}");
        Span<ulong> keys = stackalloc ulong[options.Bands];
        for (int b = 0; b < options.Bands; b++)
        {
            ulong h = 0xCBF29CE484222325UL;
            foreach (ulong v in signature.AsSpan(b * options.RowsPerBand, options.RowsPerBand)) { h ^= v; h *= 0x100000001B3UL; }
            keys[b] = h;
            if (_bands[b].TryGetValue(h, out var docs))
                foreach (int d in docs)
                    if (MinHasher.Similarity(signature, _kept[d]) >= options.Threshold) return d;
        }
        int id = _kept.Count;
        _kept.Add(signature);
        for (int b = 0; b < options.Bands; b++)
        {
            ref var list = ref CollectionsMarshal.GetValueRefOrAddDefault(_bands[b], keys[b], out _);
            (list ??= []).Add(id);
        }
        return -1;
    }
}
