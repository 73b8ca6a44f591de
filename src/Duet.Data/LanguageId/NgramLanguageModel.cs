// A language model over character n-grams (CharNgrams): Cavnar and Trenkle's per-language profiles of the most
// frequent n-grams (1994), scored as multinomial naive Bayes (as langid.py scores its n-gram features): each
// n-gram g of a text adds log P(g | language), and the language with the largest sum is the best. P is estimated per order n from the profile counts:
//   P(g | l) = c_l(g) / T_l,n                 when g is among l's kept n-grams of order n,
//   P(g | l) = FloorCount / T_l,n             otherwise (g is kept by another language: below l's cut-off, or unseen),
// where T_l,n is the number of order-n n-grams in l's training text. N-grams kept by no language are skipped:
// they carry no evidence the profiles can weigh. Scores are reported per scored n-gram, so margins compare across
// text lengths.
//
// Speed: the pipeline tags ~100 M characters. An n-gram key (a ulong) is looked up in an open-addressing table
// (linear probing, power-of-two size, Fibonacci hashing) that gives a row of log-probabilities, one per language,
// padded to the SIMD width; a text's scores are the vector sum of its n-grams' rows. Nothing allocates per
// n-gram or per call.
//
// The shipped profiles (langid-profiles.txt, an embedded resource) load once, lazily, on first use.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Duet.Data.LanguageId;

/// <summary>The outcome of scoring a text: the best language, its lead over the second, and the evidence behind it.</summary>
/// <param name="Language">The best language, or null when no n-gram of the text is in the profiles.</param>
/// <param name="Margin">Best minus second-best mean log-probability per scored n-gram (nats), 0 without n-grams.</param>
/// <param name="Ngrams">N-grams that were scored (found in the profiles).</param>
/// <param name="FocusMargin">For Guess(text, focus): the focus language's mean log-probability minus the best other
/// language's (positive when the focus language is the best), 0 without n-grams.</param>
public readonly record struct NgramGuess(string? Language, string? Second, double Margin, int Ngrams, double FocusMargin = 0);

public sealed class NgramLanguageModel
{
    /// <summary>Pseudo-count of an n-gram outside a language's kept ones (see the file header).</summary>
    public const double FloorCount = 0.5;

    /// <summary>The embedded profile file.</summary>
    public const string ResourceName = "Duet.Data.LanguageId.langid-profiles.txt";

    private static readonly Lazy<NgramLanguageModel> s_default = new(LoadDefault);

    /// <summary>The model of the shipped profiles, loaded on first use.</summary>
    public static NgramLanguageModel Default => s_default.Value;

    private readonly string[] _languages;
    private readonly Entry[] _table;  // open addressing; key 0 = empty (no n-gram has key 0)
    private readonly float[] _logp;   // [rows, _stride]: log P(g | l), padding lanes 0
    private readonly int _stride, _shift, _maxOrder;
    private readonly double _floorCount;

    public IReadOnlyList<string> Languages => _languages;
    public NgramProfiles Profiles { get; }
    /// <summary>Distinct n-grams in the table (the union of the languages' kept n-grams).</summary>
    public int Size { get; }

    public NgramLanguageModel(NgramProfiles profiles, double floorCount = FloorCount)
    {
        Profiles = profiles;
        _floorCount = floorCount;
        _languages = profiles.Languages.Select(p => p.Language).ToArray();
        _maxOrder = Math.Max(1, profiles.MaxOrderUsed);
        int width = Vector<float>.Count;
        _stride = (_languages.Length + width - 1) / width * width;
        var index = new Dictionary<ulong, int>();
        foreach (var p in profiles.Languages)
            foreach (var (key, _) in p.Ngrams)
                if (!index.ContainsKey(key)) index.Add(key, index.Count);
        Size = index.Count;
        _logp = new float[Math.Max(1, index.Count) * _stride];
        for (int l = 0; l < _languages.Length; l++)
        {
            var p = profiles.Languages[l];
            var floor = new float[CharNgrams.MaxOrder];
            for (int n = 0; n < floor.Length; n++) floor[n] = (float)Math.Log(_floorCount / Math.Max(1, p.Totals[n]));
            foreach (var (key, row) in index) _logp[row * _stride + l] = floor[CharNgrams.Order(key) - 1];
            foreach (var (key, count) in p.Ngrams)
                _logp[index[key] * _stride + l] = (float)Math.Log((double)count / Math.Max(1, p.Totals[CharNgrams.Order(key) - 1]));
        }
        int bits = Math.Max(4, BitOperations.Log2((uint)Math.Max(1, index.Count)) + 2); // load factor <= 1/2
        _shift = 64 - bits;
        _table = new Entry[1 << bits];
        foreach (var (key, row) in index)
        {
            int slot = Slot(key);
            while (_table[slot].Key != 0) slot = (slot + 1) & (_table.Length - 1);
            _table[slot] = new Entry(key, row);
        }
    }

    // Key and row side by side: one cache line per probe.
    private readonly record struct Entry(ulong Key, int Row);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> _shift);

    /// <summary>The row of a key, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Find(ulong key)
    {
        var table = _table;
        int mask = table.Length - 1;
        for (int slot = Slot(key); ; slot = (slot + 1) & mask)
        {
            ref readonly var e = ref table[slot];
            if (e.Key == key) return e.Row;
            if (e.Key == 0) return -1;
        }
    }

    /// <summary>
    /// Adds log P(g | l) of every n-gram g of the text found in the profiles into <paramref name="sums"/>
    /// (one per language, at least Languages.Count long; it is not cleared). Returns the n-grams scored.
    /// </summary>
    public int Score(ReadOnlySpan<char> text, Span<float> sums)
    {
        if (sums.Length < _languages.Length) throw new ArgumentException($"need {_languages.Length} sums", nameof(sums));
        Span<float> acc = _stride <= 64 ? stackalloc float[64] : new float[_stride];
        acc = acc[.._stride];
        acc.Clear();
        var accV = MemoryMarshal.Cast<float, Vector<float>>(acc);
        var rowsV = MemoryMarshal.Cast<float, Vector<float>>(_logp.AsSpan());
        int vectors = _stride / Vector<float>.Count, scored = 0;
        // CharNgrams.Keys inlined by hand (the enumerator costs a third more here): push each lowercased letter of a
        // word, and the marker around it, into a window of the last four characters; the n-grams ending at that
        // character are the window's low 1..min(length, max) characters (no 1-gram for a marker).
        ulong window = 0;
        int length = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            int first;
            if (i < text.Length && CharNgrams.IsLetter(text[i], out char lower))
            {
                if (length == 0) { window = CharNgrams.Marker; length = 1; }
                window = (window << 16) | lower;
                first = 1;
            }
            else if (length > 0)
            {
                window = (window << 16) | CharNgrams.Marker;
                first = 2;
            }
            else continue;
            length++;
            int top = Math.Min(length, _maxOrder);
            for (int n = first; n <= top; n++)
            {
                int row = Find(n == 4 ? window : window & ((1UL << (16 * n)) - 1));
                if (row < 0) continue;
                scored++;
                var r = rowsV.Slice(row * vectors, vectors);
                for (int v = 0; v < vectors; v++) accV[v] += r[v];
            }
            if (first == 2) length = 0;
        }
        for (int l = 0; l < _languages.Length; l++) sums[l] += acc[l];
        return scored;
    }

    /// <summary>
    /// The best language of a text and its margin over the second; with <paramref name="focus"/> (a language of the
    /// model), also that language's margin over the best of the others (see NgramGuess).
    /// </summary>
    public NgramGuess Guess(ReadOnlySpan<char> text, string? focus = null)
    {
        Span<float> sums = _languages.Length <= 64 ? stackalloc float[64] : new float[_languages.Length];
        sums = sums[.._languages.Length];
        sums.Clear();
        int n = Score(text, sums);
        if (n == 0) return new NgramGuess(null, null, 0, 0);
        int best = 0, second = -1;
        for (int l = 1; l < sums.Length; l++)
        {
            if (sums[l] > sums[best]) { second = best; best = l; }
            else if (second < 0 || sums[l] > sums[second]) second = l;
        }
        if (second < 0) return new NgramGuess(_languages[best], null, 0, n);
        double focusMargin = 0;
        int f = focus is null ? -1 : Array.IndexOf(_languages, focus);
        if (f >= 0) focusMargin = (sums[f] - sums[f == best ? second : best]) / n;
        return new NgramGuess(_languages[best], _languages[second], (sums[best] - sums[second]) / n, n, focusMargin);
    }

    /// <summary>
    /// The same scores computed the plain way: n-grams as strings (CharNgrams.Reference), log-probabilities straight
    /// from the profile counts in double precision. The fast Score is tested against it.
    /// </summary>
    public double[] ScoreReference(string text, out int scored)
    {
        var kept = new HashSet<string>(StringComparer.Ordinal);
        var perLanguage = Profiles.Languages.Select(p => p.Ngrams.ToDictionary(g => CharNgrams.ToText(g.Key), g => g.Count, StringComparer.Ordinal)).ToArray();
        foreach (var d in perLanguage) kept.UnionWith(d.Keys);
        var sums = new double[_languages.Length];
        scored = 0;
        foreach (var g in CharNgrams.Reference(text, _maxOrder))
        {
            if (!kept.Contains(g)) continue;
            scored++;
            for (int l = 0; l < sums.Length; l++)
            {
                long total = Math.Max(1, Profiles.Languages[l].Totals[g.Length - 1]);
                sums[l] += Math.Log(perLanguage[l].TryGetValue(g, out long c) ? (double)c / total : _floorCount / total);
            }
        }
        return sums;
    }

    private static NgramLanguageModel LoadDefault()
    {
        using var stream = typeof(NgramLanguageModel).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the embedded resource {ResourceName} is missing from Duet.Data");
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
        return new NgramLanguageModel(NgramProfiles.Read(reader, ResourceName));
    }
}
