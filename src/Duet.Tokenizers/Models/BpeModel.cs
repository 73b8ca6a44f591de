// Byte-pair encoding of one pre-token ("word") into token ids.
//
// Two ways of ranking the pair to merge next, one algorithm:
// - Merges (Hugging Face `"type": "BPE"`): the pair's index in the merges list, lowest first.
// - Scores (SentencePiece BPE, GGUF "llama"): the score of the merged piece, highest first.
// In both, equal priorities go to the leftmost pair, as in HF tokenizers, transformers.js
// (score = rank + position / length) and sentencepiece's bpe_model.cc (agenda ordered by score, then left).
// Symbols that are not in the vocabulary after merging fall back to their UTF-8 bytes (<0xXX> tokens)
// when the model has byte fallback, else to the unknown token.
using System.Runtime.InteropServices;
using Duet.Tokenizers.Text;

namespace Duet.Tokenizers.Models;

public enum BpeRanking { Merges, Scores }

public sealed class BpeModel
{
    private readonly Dictionary<string, int> _tokenToId;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly string[] _idToToken;
    private readonly TokenType[] _types;
    private readonly float[]? _scores;
    private readonly Dictionary<Pair, Merge> _merges = new();
    private readonly Dictionary<int, int> _charToId = new();
    private readonly int[] _byteToId = new int[256];
    private readonly HashSet<string>? _atomicSymbols;   // SentencePiece user-defined symbols
    private readonly int _maxAtomicLength;
    private readonly WordCache _cache = new(MaxCacheEntries);
    // Every pair of adjacent code points found inside some token. Between two characters that are not
    // such a pair, no token can ever span, so the word is encoded as independent pieces there: the
    // result is identical and the pieces are short enough to cache (Llama 2 has no pre-tokenizer, so
    // without this a whole line would be one BPE word).
    private readonly HashSet<long> _innerPairs = new(); // code point pairs: long's hash serves them (measured faster here than Pair's)

    /// <summary>
    /// Two token ids a·2³² + b as a hash key with a multiplicative mix: long's own hash is a ^ b, under which
    /// the pairs of a 100k-token vocabulary fall into few buckets (every (a, b) and (b, a), and every pair with the same
    /// xor, collide), so merge lookups walked long chains. A struct key keeps the default comparer, which the JIT
    /// devirtualizes and inlines (a comparer object measured slower and more erratic under dynamic PGO).
    /// </summary>
    private readonly record struct Pair(long Value)
    {
        public override int GetHashCode() => (int)(((ulong)Value * 0x9E3779B97F4A7C15UL) >> 32);
    }
    private const int MaxCachedWordLength = 256, MaxCacheEntries = 1 << 16;

    private readonly record struct Merge(int Rank, int Result);

    public BpeRanking Ranking { get; }
    public bool ByteFallback { get; }
    public bool IgnoreMerges { get; }
    public bool FuseUnknown { get; }
    public int UnknownId { get; }
    public int VocabSize => _idToToken.Length;
    /// <summary>The merges in rank order (Merges ranking), as token pairs.</summary>
    public IReadOnlyList<(string Left, string Right)> MergeList { get; }

    private BpeModel(string[] idToToken, TokenType[] types, float[]? scores, BpeRanking ranking, bool byteFallback,
        bool ignoreMerges, bool fuseUnknown, int unknownId, IReadOnlyList<(string, string)> mergeList, HashSet<string>? atomic)
    {
        _idToToken = idToToken;
        _types = types;
        _scores = scores;
        Ranking = ranking;
        ByteFallback = byteFallback;
        IgnoreMerges = ignoreMerges;
        FuseUnknown = fuseUnknown;
        UnknownId = unknownId;
        MergeList = mergeList;
        _tokenToId = new Dictionary<string, int>(idToToken.Length, StringComparer.Ordinal);
        for (int i = 0; i < idToToken.Length; i++)
        {
            // First id wins for a duplicated string, as in both reference loaders' maps built in order... except
            // HF's JSON object, which cannot hold duplicates; SentencePiece rejects them (checked by its loader).
            _tokenToId.TryAdd(idToToken[i], i);
        }
        _lookup = _tokenToId.GetAlternateLookup<ReadOnlySpan<char>>();
        Array.Fill(_byteToId, -1);
        for (int b = 0; b < 256; b++)
            if (_tokenToId.TryGetValue($"<0x{b:X2}>", out int id)) _byteToId[b] = id;
        for (int i = 0; i < idToToken.Length; i++)
        {
            var t = idToToken[i];
            if (IsSymbol(i) && t.Length is 1 or 2 && CharClass.CodePointAt(t, 0, out int n) is int cp && n == t.Length)
                _charToId.TryAdd(cp, i);
        }
        for (int i = 0; i < idToToken.Length; i++)
        {
            if (!IsSymbol(i)) continue;
            var t = idToToken[i];
            int prevCp = -1;
            for (int k = 0; k < t.Length;)
            {
                int cp = CharClass.CodePointAt(t, k, out int n);
                if (prevCp >= 0) _innerPairs.Add(((long)prevCp << 32) | (uint)cp);
                prevCp = cp;
                k += n;
            }
        }
        if (atomic is { Count: > 0 })
        {
            _atomicSymbols = atomic;
            _maxAtomicLength = atomic.Max(s => s.Length);
        }
    }

    // A symbol that merges may produce or consume: Scores mode follows sentencepiece's pieces_ map
    // (normal, user-defined and unused pieces); Merges mode allows any vocabulary entry.
    private bool IsSymbol(int id) => Ranking == BpeRanking.Merges
        || _types[id] is TokenType.Normal or TokenType.UserDefined or TokenType.Unused;

    /// <summary>A Hugging Face BPE: merges ranked by their order.</summary>
    public static BpeModel FromMerges(string[] idToToken, TokenType[] types, IReadOnlyList<(string Left, string Right)> merges,
        bool byteFallback, bool ignoreMerges, bool fuseUnknown, int unknownId)
    {
        var m = new BpeModel(idToToken, types, null, BpeRanking.Merges, byteFallback, ignoreMerges, fuseUnknown, unknownId, merges, null);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (a, b) = merges[rank];
            if (!m._tokenToId.TryGetValue(a, out int ia) || !m._tokenToId.TryGetValue(b, out int ib))
                throw new TokenizerFormatException($"BPE merge #{rank} '{a} {b}' uses a token that is not in the vocabulary");
            if (!m._tokenToId.TryGetValue(a + b, out int r))
                throw new TokenizerFormatException($"BPE merge #{rank} '{a} {b}' makes '{a + b}', which is not in the vocabulary");
            m._merges[Key(ia, ib)] = new Merge(rank, r); // a repeated merge takes its last rank, as both references do
        }
        return m;
    }

    /// <summary>A SentencePiece BPE: any two symbols whose concatenation is a piece merge, best score first.</summary>
    public static BpeModel FromScores(string[] pieces, TokenType[] types, float[] scores, int unknownId, bool byteFallback)
    {
        var atomic = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++) if (types[i] == TokenType.UserDefined) atomic.Add(pieces[i]);
        var m = new BpeModel(pieces, types, scores, BpeRanking.Scores, byteFallback, false, false, unknownId, [], atomic);
        // Rank = position of the piece's score in descending order; equal scores share a rank.
        var order = Enumerable.Range(0, pieces.Length).Where(m.IsSymbol).OrderByDescending(i => scores[i]).ToArray();
        var rankOf = new int[pieces.Length];
        int rank = 0;
        for (int k = 0; k < order.Length; k++)
        {
            if (k > 0 && scores[order[k]] != scores[order[k - 1]]) rank++;
            rankOf[order[k]] = rank;
        }
        int pseudo = pieces.Length; // ids for single characters that are not pieces but occur inside pieces
        foreach (int id in order)
        {
            var p = pieces[id];
            for (int split = 1; split < p.Length; split++)
            {
                if (char.IsLowSurrogate(p[split]) && char.IsHighSurrogate(p[split - 1])) continue;
                int l = m.SymbolId(p.AsSpan(0, split), ref pseudo), r = m.SymbolId(p.AsSpan(split), ref pseudo);
                if (l < 0 || r < 0) continue;
                ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(m._merges, Key(l, r), out bool exists);
                if (!exists || rankOf[id] < slot.Rank) slot = new Merge(rankOf[id], id);
            }
        }
        return m;
    }

    private int SymbolId(ReadOnlySpan<char> s, ref int pseudo)
    {
        if (_lookup.TryGetValue(s, out int id) && IsSymbol(id)) return id;
        int cp = CharClass.CodePointAt(s, 0, out int n);
        if (n != s.Length) return -1;
        if (_charToId.TryGetValue(cp, out id)) return id;
        _charToId[cp] = pseudo;
        return pseudo++;
    }

    private static Pair Key(int a, int b) => new(((long)a << 32) | (uint)b);

    public string IdToToken(int id) => _idToToken[id];
    public TokenType GetTokenType(int id) => _types[id];
    public float GetScore(int id) => _scores?[id] ?? 0f;
    public bool TryGetId(ReadOnlySpan<char> token, out int id) => _lookup.TryGetValue(token, out id);
    public int ByteTokenId(byte b) => _byteToId[b];

    /// <summary>Appends the ids of one pre-token.</summary>
    public void Encode(string word, List<int> output) => Encode(word.AsSpan(), output);

    /// <summary>Appends the ids of one pre-token.</summary>
    public void Encode(ReadOnlySpan<char> word, List<int> output) => Encode(word, output, cache: true);

    /// <summary>
    /// Appends the ids of one pre-token; <paramref name="cache"/> false when the caller caches whole words itself (the
    /// byte-level path of Tokenizer), so a miss is not stored twice.
    /// </summary>
    public void Encode(ReadOnlySpan<char> word, List<int> output, bool cache)
    {
        if (word.Length == 0) return;
        if (IgnoreMerges && _lookup.TryGetValue(word, out int whole)) { output.Add(whole); return; }
        int start = 0, prevCp = -1, first = output.Count;
        // Cutting at inner-pair boundaries only serves caching (and keeps long words short): a short word that is
        // not cached goes to the merges whole, sparing a hash lookup per character.
        for (int i = !cache && word.Length <= LinearScanLimit ? word.Length : 0; i < word.Length;)
        {
            int cp = CharClass.CodePointAt(word, i, out int n);
            if (prevCp >= 0 && !_innerPairs.Contains(((long)prevCp << 32) | (uint)cp) && _atomicSymbols is null)
            {
                EncodePiece(word[start..i], output, cache);
                start = i;
            }
            prevCp = cp;
            i += n;
        }
        EncodePiece(word[start..], output, cache);
        if (FuseUnknown)
        {
            // Unknown symbols fuse across the pieces of one word too.
            int o = first;
            for (int i = first; i < output.Count; i++)
                if (!(output[i] == UnknownId && o > first && output[o - 1] == UnknownId)) output[o++] = output[i];
            output.RemoveRange(o, output.Count - o);
        }
    }

    private void EncodePiece(ReadOnlySpan<char> piece, List<int> output, bool cache)
    {
        if (piece.Length == 1 && _charToId.TryGetValue(piece[0], out int single) && single < _idToToken.Length
            && (Ranking == BpeRanking.Merges || _types[single] != TokenType.Unused))
        {
            output.Add(single);
            return;
        }
        bool cacheable = cache && piece.Length < MaxCachedWordLength;
        if (cacheable && _cache.TryGet(piece, out var cached)) { output.AddRange(cached); return; }
        int start = output.Count;
        EncodeUncached(piece, output);
        if (cacheable) _cache.Add(piece, CollectionsMarshal.AsSpan(output)[start..]);
    }

    [ThreadStatic] private static Workspace? t_ws;

    private sealed class Workspace
    {
        public int[] Id = new int[64], Prev = new int[64], Next = new int[64], Start = new int[64], Len = new int[64], Rank = new int[64], Result = new int[64];
        public readonly PriorityQueue<(int L, int R, int LId, int RId), long> Queue = new();
        public readonly Dictionary<int, (int L, int R)> Unused = new();
        public void Ensure(int n)
        {
            if (Id.Length >= n) return;
            int m = Math.Max(n, Id.Length * 2);
            Id = new int[m]; Prev = new int[m]; Next = new int[m]; Start = new int[m]; Len = new int[m]; Rank = new int[m]; Result = new int[m];
        }
    }

    private void EncodeUncached(ReadOnlySpan<char> word, List<int> output)
    {
        var ws = t_ws ??= new Workspace();
        ws.Ensure(word.Length);
        int[] id = ws.Id, prev = ws.Prev, next = ws.Next, start = ws.Start, len = ws.Len;
        int n = 0;
        for (int i = 0; i < word.Length;)
        {
            int l = AtomicPrefix(word, i);
            int sid;
            if (l > 0) sid = _lookup[word.Slice(i, l)];
            else
            {
                int cp = CharClass.CodePointAt(word, i, out l);
                sid = _charToId.TryGetValue(cp, out int x) ? x : -1;
            }
            id[n] = sid; start[n] = i; len[n] = l; prev[n] = n - 1; next[n] = n + 1;
            n++; i += l;
        }
        next[n - 1] = -1;
        ws.Unused.Clear();
        if (n <= LinearScanLimit) MergeByScan(ws, n);
        else MergeByQueue(ws, n);
        int lastUnknown = -2;
        for (int i = 0; i >= 0; i = next[i])
        {
            int sid = id[i];
            if (sid >= 0 && sid < _idToToken.Length)
            {
                if (Ranking == BpeRanking.Scores && _types[sid] == TokenType.Unused) Resegment(sid, ws.Unused, output);
                else output.Add(sid);
                continue;
            }
            // Not a token: bytes if every byte has a token (transformers.js checks all of them), else unknown.
            var piece = word.Slice(start[i], len[i]);
            var bytes = Utf8Escape.Encode(piece);
            bool all = ByteFallback;
            if (all) foreach (byte b in bytes) all &= _byteToId[b] >= 0;
            if (all) { foreach (byte b in bytes) output.Add(_byteToId[b]); continue; }
            if (UnknownId < 0) throw new TokenizerFormatException($"'{piece}' is not in the vocabulary and the model has no unknown token");
            if (FuseUnknown && lastUnknown == output.Count - 1) continue;
            output.Add(UnknownId);
            lastUnknown = output.Count - 1;
        }
    }

    // Words of up to this many symbols find the best pair by scanning all adjacent pairs (O(n^2), no heap, all in a few
    // cache lines: most pre-tokens are a handful of symbols); longer ones keep a priority queue, so hostile input of
    // one very long word stays O(n log n). Both merge the pair of lowest rank, the leftmost among equals.
    private const int LinearScanMax = 128;

    /// <summary>The scan/queue threshold, LinearScanMax; tests move it to run one path against the other.</summary>
    internal int LinearScanLimit { get; set; } = LinearScanMax;

    private void MergeByScan(Workspace ws, int n)
    {
        int[] id = ws.Id, prev = ws.Prev, next = ws.Next, rank = ws.Rank, result = ws.Result;
        for (int i = 0; i < n; i++) rank[i] = i + 1 < n ? PairRank(id[i], id[i + 1], out result[i]) : int.MaxValue;
        while (true)
        {
            // A plain pass over the array, not the linked list: merged-away symbols hold int.MaxValue, and array order
            // is text order, so the first minimum is the leftmost pair of lowest rank.
            int best = int.MaxValue, l = -1;
            for (int i = 0; i < n; i++)
                if (rank[i] < best) { best = rank[i]; l = i; }
            if (l < 0) return;
            rank[next[l]] = int.MaxValue;
            Merge2(ws, l, next[l], result[l]);
            rank[l] = next[l] >= 0 ? PairRank(id[l], id[next[l]], out result[l]) : int.MaxValue;
            if (prev[l] >= 0) rank[prev[l]] = PairRank(id[prev[l]], id[l], out result[prev[l]]);
        }
    }

    private int PairRank(int a, int b, out int result)
    {
        if (a >= 0 && b >= 0 && _merges.TryGetValue(Key(a, b), out var m)) { result = m.Result; return m.Rank; }
        result = -1;
        return int.MaxValue;
    }

    private void MergeByQueue(Workspace ws, int n)
    {
        int[] id = ws.Id, prev = ws.Prev, next = ws.Next, start = ws.Start, len = ws.Len;
        var q = ws.Queue;
        q.Clear();
        for (int i = 0; i + 1 < n; i++) TryQueue(q, id, start, i, i + 1);
        while (q.TryDequeue(out var e, out _))
        {
            // Skip stale entries: a side was merged away or changed since this pair was queued.
            if (len[e.L] == 0 || next[e.L] != e.R || id[e.L] != e.LId || id[e.R] != e.RId) continue;
            Merge2(ws, e.L, e.R, _merges[Key(e.LId, e.RId)].Result);
            if (prev[e.L] >= 0) TryQueue(q, id, start, prev[e.L], e.L);
            if (next[e.L] >= 0) TryQueue(q, id, start, e.L, next[e.L]);
        }
    }

    /// <summary>Replaces symbols l and r (adjacent) by the merged token.</summary>
    private void Merge2(Workspace ws, int l, int r, int merged)
    {
        int[] id = ws.Id, prev = ws.Prev, next = ws.Next, len = ws.Len;
        if (Ranking == BpeRanking.Scores && _types[merged] == TokenType.Unused)
            ws.Unused[merged] = (id[l], id[r]); // sentencepiece's rev_merge, for resegmenting
        id[l] = merged;
        len[l] += len[r];
        len[r] = 0;
        next[l] = next[r];
        if (next[l] >= 0) prev[next[l]] = l;
    }

    private void Resegment(int sid, Dictionary<int, (int L, int R)> unused, List<int> output)
    {
        if (_types[sid] != TokenType.Unused || !unused.TryGetValue(sid, out var parts)) { output.Add(sid); return; }
        Resegment(parts.L, unused, output);
        Resegment(parts.R, unused, output);
    }

    private void TryQueue(PriorityQueue<(int, int, int, int), long> q, int[] id, int[] start, int l, int r)
    {
        if (id[l] < 0 || id[r] < 0) return;
        if (_merges.TryGetValue(Key(id[l], id[r]), out var m))
            q.Enqueue((l, r, id[l], id[r]), ((long)m.Rank << 32) | (uint)start[l]);
    }

    private int AtomicPrefix(ReadOnlySpan<char> word, int i)
    {
        if (_atomicSymbols is null) return 0;
        var lookup = _atomicSymbols.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int l = Math.Min(_maxAtomicLength, word.Length - i); l >= 1; l--)
            if (lookup.Contains(word.Slice(i, l))) return l;
        return 0;
    }
}
