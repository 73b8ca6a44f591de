// A bounded cache from a word (a pre-token, or a piece of one) to its token ids, shared by the encoding threads.
//
// Why not ConcurrentDictionary: a cold pass over new text is one miss per distinct word, and on that path the
// dictionary's lock, its node allocation and the resize-and-rehash of a growing table are a large part of the cost
// (bench/README.md, "Cold and warm next to Microsoft.ML.Tokenizers"). This is a fixed table of 4-way sets, like a
// CPU cache: a lookup reads at most four slots, an insert takes a free slot of the set or replaces one, nothing is
// ever rehashed, and a reader sees either an old entry or a new one (entries are immutable and published by one
// reference store), so no locks.
// The hash is not randomized, but colliding words can only evict each other, not slow the table down.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Duet.Tokenizers.Text;

internal sealed class WordCache
{
    private sealed class Entry(string key, int[] ids, uint hash)
    {
        public readonly string Key = key;
        public readonly int[] Ids = ids;
        public readonly uint Hash = hash;
    }

    private const int Ways = 4;
    private readonly Entry?[] _slots;
    private readonly int _setMask;

    /// <param name="capacity">entries held at most, rounded up to a power of two (at least 4)</param>
    public WordCache(int capacity)
    {
        int n = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacity, Ways));
        _slots = new Entry?[n];
        _setMask = n / Ways - 1;
    }

    public int Capacity => _slots.Length;

    /// <summary>A 32-bit hash of the characters: 64-bit multiply-xorshift over four characters at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(ReadOnlySpan<char> word)
    {
        const ulong K = 0x9E3779B97F4A7C15UL;
        ulong h = (ulong)word.Length * K;
        var words = MemoryMarshal.Cast<char, ulong>(word);
        foreach (ulong w in words) { h = (h ^ w) * K; h ^= h >> 32; }
        for (int i = words.Length * 4; i < word.Length; i++) { h = (h ^ word[i]) * K; h ^= h >> 32; }
        return (uint)(h >> 32);
    }

    public bool TryGet(ReadOnlySpan<char> word, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out int[]? ids)
    {
        uint h = Hash(word);
        int set = (int)(h & (uint)_setMask) * Ways;
        var slots = _slots;
        for (int w = 0; w < Ways; w++)
        {
            var e = Volatile.Read(ref slots[set + w]);
            if (e is null) break; // sets fill from their first way, so an empty way ends the search
            if (e.Hash == h && word.SequenceEqual(e.Key)) { ids = e.Ids; return true; }
        }
        ids = null;
        return false;
    }

    /// <summary>
    /// Stores a copy of the ids under the word: in place of its own entry if it has one, else in a free way of its set,
    /// else in place of the way chosen by the hash.
    /// </summary>
    public void Add(ReadOnlySpan<char> word, ReadOnlySpan<int> ids)
    {
        uint h = Hash(word);
        int set = (int)(h & (uint)_setMask) * Ways;
        int way = (int)(h >> 30); // a full set: replace the way named by the hash's top bits
        for (int w = 0; w < Ways; w++)
        {
            var e = Volatile.Read(ref _slots[set + w]);
            if (e is null || (e.Hash == h && word.SequenceEqual(e.Key))) { way = w; break; }
        }
        Volatile.Write(ref _slots[set + way], new Entry(word.ToString(), ids.ToArray(), h));
    }

    /// <summary>Entries held now (counts the table; for tests and diagnostics, not for hot paths).</summary>
    public int Count
    {
        get
        {
            int n = 0;
            foreach (var e in _slots) if (e is not null) n++;
            return n;
        }
    }
}
