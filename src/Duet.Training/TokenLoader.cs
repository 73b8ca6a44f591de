// Batches of training windows from the token shards of `duet data tokenize`. The split's shards are one stream of
// tokens (each document BOS + text + EOS, as tokenize wrote them); window k holds tokens [k·T, k·T + T + 1): T
// inputs and the same T shifted by one as targets, so windows cross document boundaries as in nanoGPT/llm.c. An
// epoch visits every window once in an order shuffled by a seeded generator (Fisher-Yates over SplitMix64 keyed by
// seed and epoch); the position is (epoch, cursor), two integers a checkpoint stores, and the order from any
// position is the same whatever happened before, so a resumed run reads exactly the batches of an uninterrupted one.
// Validation reads the first windows of its split in order, the same ones every time.
using Duet.Formats.Tokens;

namespace Duet.Training;

/// <summary>Where a loader stands: the epoch and the next window of its shuffled order.</summary>
public readonly record struct LoaderPosition(int Epoch, long Cursor);

public sealed class TokenLoader
{
    private readonly TokenCorpus _corpus;
    private readonly long[] _shardStart; // first global token of each shard
    private readonly ulong _seed;
    private long[]? _order;
    private int _orderEpoch = -1;

    public int SeqLen { get; }
    public long Windows { get; }
    public LoaderPosition Position { get; private set; }
    public bool Shuffle { get; }

    public TokenLoader(TokenCorpus corpus, int seqLen, ulong seed, bool shuffle = true)
    {
        _corpus = corpus;
        SeqLen = seqLen;
        _seed = seed;
        Shuffle = shuffle;
        _shardStart = new long[corpus.Shards.Count];
        long total = 0;
        for (int i = 0; i < corpus.Shards.Count; i++) { _shardStart[i] = total; total += corpus.Shards[i].TokenCount; }
        Windows = total > seqLen ? (total - 1) / seqLen : 0;
        if (Windows == 0)
            throw new InvalidDataException($"{corpus.Root}: the {corpus.Split} split holds {total} tokens, too few for one window of {seqLen} + 1");
    }

    /// <summary>Continues from a position a checkpoint saved.</summary>
    public void Seek(LoaderPosition p)
    {
        if (p.Epoch < 0 || p.Cursor < 0 || p.Cursor > Windows) throw new ArgumentOutOfRangeException(nameof(p), $"loader position {p} outside {Windows} windows");
        Position = p;
    }

    /// <summary>Fills <paramref name="inputs"/> and <paramref name="targets"/> ([rows, SeqLen]) with the next rows windows.</summary>
    public void Next(int rows, Span<int> inputs, Span<int> targets) => Next(rows, inputs, targets, 0, rows);

    /// <summary>
    /// Moves on by <paramref name="rows"/> windows (a global batch) and fills inputs and targets ([count, SeqLen]) with
    /// rows [first, first + count) of them: a data-parallel rank reads only its own rows, and every rank's position
    /// stays the same.
    /// </summary>
    public void Next(int rows, Span<int> inputs, Span<int> targets, int first, int count)
    {
        if (first < 0 || count < 0 || first + count > rows) throw new ArgumentOutOfRangeException(nameof(first), $"rows [{first}, {first + count}) are not inside a batch of {rows}");
        if (inputs.Length != count * SeqLen || targets.Length != inputs.Length) throw new ArgumentException($"buffers must hold {count} × {SeqLen} ids");
        Span<int> window = SeqLen + 1 <= 4096 ? stackalloc int[SeqLen + 1] : new int[SeqLen + 1];
        for (int r = 0; r < rows; r++)
        {
            var (epoch, cursor) = Position;
            if (cursor == Windows) { epoch++; cursor = 0; }
            if (r >= first && r < first + count)
            {
                long k = Window(epoch, cursor);
                Read(k * SeqLen, window);
                window[..SeqLen].CopyTo(inputs.Slice((r - first) * SeqLen, SeqLen));
                window[1..].CopyTo(targets.Slice((r - first) * SeqLen, SeqLen));
            }
            Position = new LoaderPosition(epoch, cursor + 1);
        }
    }

    /// <summary>Windows [first, first + rows) in order, without moving the position (validation).</summary>
    public void ReadInOrder(long first, int rows, Span<int> inputs, Span<int> targets)
    {
        Span<int> window = new int[SeqLen + 1];
        for (int r = 0; r < rows; r++)
        {
            Read((first + r) % Windows * SeqLen, window);
            window[..SeqLen].CopyTo(inputs.Slice(r * SeqLen, SeqLen));
            window[1..].CopyTo(targets.Slice(r * SeqLen, SeqLen));
        }
    }

    private long Window(int epoch, long cursor)
    {
        if (!Shuffle) return cursor;
        if (_orderEpoch != epoch)
        {
            _order ??= new long[Windows];
            for (long i = 0; i < Windows; i++) _order[i] = i;
            ulong state = _seed ^ (0x9E3779B97F4A7C15UL * (ulong)(epoch + 1));
            for (long i = Windows - 1; i > 0; i--)
            {
                long j = (long)(SplitMix(ref state) % (ulong)(i + 1));
                (_order[i], _order[j]) = (_order[j], _order[i]);
            }
            _orderEpoch = epoch;
        }
        return _order![cursor];
    }

    private static ulong SplitMix(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    // Tokens [start, start + dest.Length) of the split's stream, across shard boundaries.
    private void Read(long start, Span<int> dest)
    {
        int shard = Array.BinarySearch(_shardStart, start);
        if (shard < 0) shard = ~shard - 1;
        int done = 0;
        while (done < dest.Length)
        {
            var s = _corpus.Shards[shard];
            long local = start + done - _shardStart[shard];
            int n = (int)Math.Min(dest.Length - done, s.TokenCount - local);
            if (n > 0) s.CopyTokens(local, dest.Slice(done, n));
            done += Math.Max(n, 0);
            shard++;
        }
    }
}
