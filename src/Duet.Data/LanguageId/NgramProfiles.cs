// Character n-gram profiles: per language, the most frequent n-grams of each order (CharNgrams) with their counts
// and the total count of that order, as counted on training text. Integers only, so a profile file is exactly
// reproducible; NgramLanguageModel turns the counts into log-probabilities when it loads them.
//
// File format (UTF-8, LF): '#' lines are comments; "orders K1 K2 K3 K4" gives the kept n-grams per order the
// file was built with; then per language a line "lang CODE T1 T2 T3 T4" (total n-grams of each order in its
// training text) followed by its kept n-grams, one "NGRAM COUNT" a line ('_' is the word boundary), order 1
// first, each order by count descending, then by ordinal text.
using System.Globalization;
using System.Text;

namespace Duet.Data.LanguageId;

/// <summary>One language's kept n-grams (key, count) and its totals per order (index order - 1).</summary>
public sealed record NgramProfile(string Language, long[] Totals, IReadOnlyList<(ulong Key, long Count)> Ngrams);

public sealed class NgramProfiles
{
    /// <summary>Kept n-grams per order (index order - 1): the profile's size.</summary>
    public int[] Kept { get; }
    public IReadOnlyList<NgramProfile> Languages { get; }
    /// <summary>Comment lines written at the top of the file (without the "# ").</summary>
    public IReadOnlyList<string> Header { get; }

    public NgramProfiles(int[] kept, IReadOnlyList<NgramProfile> languages, IReadOnlyList<string> header)
    {
        if (kept.Length != CharNgrams.MaxOrder) throw new ArgumentException($"one kept count per order 1..{CharNgrams.MaxOrder}", nameof(kept));
        Kept = kept; Languages = languages; Header = header;
    }

    /// <summary>Orders that have kept n-grams (1..MaxOrderUsed).</summary>
    public int MaxOrderUsed => Array.FindLastIndex(Kept, k => k > 0) + 1;

    /// <summary>
    /// Counts the n-grams of each language's texts and keeps the <paramref name="kept"/>[order - 1] most frequent
    /// of each order (ties by ordinal text, so the result does not depend on hashing or input grouping), dropping
    /// n-grams seen fewer than <paramref name="minCount"/> times. Languages come out in ordinal order.
    /// </summary>
    public static NgramProfiles Count(IEnumerable<(string Language, string Text)> texts, int[] kept, int minCount, IReadOnlyList<string> header)
    {
        int maxOrder = Array.FindLastIndex(kept, k => k > 0) + 1;
        var counts = new SortedDictionary<string, (Dictionary<ulong, long> Counts, long[] Totals)>(StringComparer.Ordinal);
        foreach (var (lang, text) in texts)
        {
            if (!counts.TryGetValue(lang, out var c)) counts[lang] = c = (new Dictionary<ulong, long>(), new long[CharNgrams.MaxOrder]);
            foreach (var (key, order) in CharNgrams.Keys(text, maxOrder))
            {
                c.Totals[order - 1]++;
                System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(c.Counts, key, out _)++;
            }
        }
        var profiles = new List<NgramProfile>();
        foreach (var (lang, (c, totals)) in counts)
        {
            var keptNgrams = new List<(ulong, long)>();
            for (int n = 1; n <= maxOrder; n++)
                keptNgrams.AddRange(c.Where(kv => CharNgrams.Order(kv.Key) == n && kv.Value >= minCount)
                    .Select(kv => (kv.Key, kv.Value, Text: CharNgrams.ToText(kv.Key)))
                    .OrderByDescending(t => t.Value).ThenBy(t => t.Text, StringComparer.Ordinal)
                    .Take(kept[n - 1]).Select(t => (t.Key, t.Value)));
            profiles.Add(new NgramProfile(lang, totals, keptNgrams));
        }
        return new NgramProfiles(kept, profiles, header);
    }

    public void Write(TextWriter w)
    {
        foreach (var line in Header) w.Write($"# {line}\n");
        w.Write($"orders {string.Join(' ', Kept)}\n");
        foreach (var p in Languages)
        {
            w.Write($"lang {p.Language} {string.Join(' ', p.Totals)}\n");
            foreach (var (key, count) in p.Ngrams) w.Write($"{CharNgrams.ToText(key)} {count.ToString(CultureInfo.InvariantCulture)}\n");
        }
    }

    public override string ToString()
    {
        var sb = new StringWriter(CultureInfo.InvariantCulture);
        Write(sb);
        return sb.ToString();
    }

    /// <summary>Reads a profile file; a malformed line is an error naming its number.</summary>
    public static NgramProfiles Read(TextReader r, string name = "profiles")
    {
        int[]? kept = null;
        var header = new List<string>();
        var languages = new List<NgramProfile>();
        string? lang = null;
        long[]? totals = null;
        List<(ulong, long)>? ngrams = null;
        int lineNo = 0;
        void Flush()
        {
            if (lang is not null) languages.Add(new NgramProfile(lang, totals!, ngrams!));
        }
        for (string? line; (line = r.ReadLine()) is not null;)
        {
            lineNo++;
            if (line.Length == 0) continue;
            if (line[0] == '#') { header.Add(line.StartsWith("# ", StringComparison.Ordinal) ? line[2..] : line[1..]); continue; }
            var parts = line.Split(' ');
            try
            {
                if (parts[0] == "orders" && kept is null) kept = parts[1..].Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
                else if (parts[0] == "lang" && parts.Length == 2 + CharNgrams.MaxOrder)
                {
                    Flush();
                    lang = parts[1];
                    totals = parts[2..].Select(p => long.Parse(p, CultureInfo.InvariantCulture)).ToArray();
                    ngrams = [];
                }
                else if (parts.Length == 2 && ngrams is not null) ngrams.Add((CharNgrams.FromText(parts[0]), long.Parse(parts[1], CultureInfo.InvariantCulture)));
                else throw new FormatException("expected 'orders ...', 'lang CODE T1..T4' or 'NGRAM COUNT'");
            }
            catch (Exception e) when (e is FormatException or ArgumentException or OverflowException or IndexOutOfRangeException)
            {
                throw new InvalidDataException($"{name}:{lineNo}: {e.Message}: '{line}'", e);
            }
        }
        Flush();
        if (kept is null || kept.Length != CharNgrams.MaxOrder) throw new InvalidDataException($"{name}: no 'orders' line with {CharNgrams.MaxOrder} counts");
        if (languages.Count == 0) throw new InvalidDataException($"{name}: no languages");
        return new NgramProfiles(kept, languages, header);
    }

    public static NgramProfiles Read(string text, string name = "profiles")
    {
        using var r = new StringReader(text);
        return Read(r, name);
    }

    /// <summary>The file's bytes: UTF-8 without a BOM.</summary>
    public byte[] ToUtf8() => new UTF8Encoding(false).GetBytes(ToString());
}
