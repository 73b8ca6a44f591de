// Data-parallel training steps over MPI: R ranks, each with the whole model, share the M micro-batches of every
// global batch (rank r runs micro-batches r·k .. r·k + k − 1, k = M / R) and compute the step StepRunner computes on
// one process, bit for bit:
//   1. each local micro-batch's gradient g_m goes into a zeroed buffer of its own; while the backward pass goes on
//      down the layers, every finished range of it (the head's norm, each layer, the embedding) is sent with a
//      non-blocking all-to-all to the ranks that own its pieces: the parameters are cut into R contiguous shards on
//      AdamW.Chunk boundaries, and shard r's owner receives every micro-batch's piece of it. MPI moves a
//      non-blocking collective on only while someone calls into it, so a progress thread polls the outstanding
//      requests every millisecond while the backward computes (MPI_THREAD_SERIALIZED: one lock around every call);
//   2. the owner adds the M pieces in micro-batch order (G = g_0 + g_1 + ... as StepRunner does), so the sum's
//      rounding is fixed by the data, not by the number of ranks or the order messages arrive in — MPI's own
//      all-reduce is not used, since its order of addition is the library's;
//   3. the gradient norm from per-chunk partial sums gathered in chunk order (AdamW.GlobalNorm's order), the clip
//      and learning rate as StepRunner;
//   4. without ZeRO, the reduced shards are all-gathered and every rank applies AdamW to all parameters with the
//      whole optimizer state; with ZeRO-1 each rank keeps the moments of its shard only, updates its shard and the
//      parameters are all-gathered. AdamW is elementwise, so both give the same bits.
// Without ZeRO, steps 2 and 4 run range by range during the backward of the last local micro-batch: when range i is
// sent, range i − 1's exchange is waited on (it had a layer's backward to arrive), added, and its all-gather
// started, so only the last range's exchange and all-gather are left after the backward. Every rank posts its
// collectives in the same order (MPI matches non-blocking collectives by the order they are started). The counts of
// targets of all micro-batches are gathered first, so that the additions skip the same micro-batches as StepRunner.
// Bytes per step per rank: k·P·(R−1)/R floats sent in step 1 and P·(R−1)/R received in step 4 (P parameters):
// the volume of a ring all-reduce when k = 1, which is why a data-parallel run should have as many micro-batches as
// ranks (more micro-batches per rank multiply step 1's volume: each is sent on its own to keep the bits).
using System.Diagnostics;
using Duet.Mpi;
using Duet.Tensors.Parallel;

namespace Duet.Training.Distributed;

/// <summary>What a data-parallel step did: the result, and the seconds spent waiting on communication.</summary>
/// <summary>
/// What a data-parallel step did: the result, the seconds it spent blocked in MPI (CommSeconds), of them the wait for
/// the gradient exchange after the backward (the part of it the backward did not hide), and whether to stop.
/// </summary>
public readonly record struct ParallelStepResult(StepResult Result, double CommSeconds, double ExchangeWaitSeconds, bool StopRequested);

public sealed unsafe class DataParallel : IDisposable
{
    public MpiWorld World { get; }
    public TrainingModel Model { get; }
    public OptimizerOptions Options { get; }
    public AdamW Optimizer { get; }
    /// <summary>Micro-batches of a global batch, and of them this rank's (k = M / R).</summary>
    public int MicroBatches { get; }
    public int LocalMicroBatches { get; }
    public bool Zero { get; }
    /// <summary>Shard r is parameters [ShardStart[r], ShardStart[r + 1]).</summary>
    public long[] ShardStart { get; }

    private readonly WorkerPool _pool;
    private readonly float[][] _grads;        // one gradient buffer per local micro-batch (the first is the model's own)
    private readonly float[] _recv;           // [M, shard] every micro-batch's piece of this rank's shard
    private readonly long _shard0, _shardLength;
    private readonly (long Start, long Length)[] _ranges; // the backward's ranges, in the order it finishes them
    private readonly int[] _shardCounts, _chunkCounts;
    private readonly double[] _chunkPartial, _allPartials, _stats, _allStats;
    private readonly MpiWorld.MpiRequests[] _exchange; // per range, one request per local micro-batch
    private readonly MpiWorld.MpiRequests _gather;      // the ranges' all-gathers (without ZeRO)
    private readonly Dictionary<long, int> _rangeIndex = [];
    // Per range: the all-to-all's counts and displacements (to each owner; from each rank, per local micro-batch) and
    // the all-gather's; fixed by the shards, so made once.
    private readonly int[][] _sendCounts, _sendDispls, _recvCounts, _gatherCounts, _gatherDispls;
    private readonly int[][][] _recvDispls;
    private readonly int[] _counts, _localCounts;       // targets per micro-batch: all M, and this rank's
    private int _finished;                              // ranges added and all-gathered in this step
    private int _local; // the local micro-batch the backward is running
    private readonly Lock _mpi = new(); // one thread in MPI at a time: the caller or the progress thread
    private volatile bool _computing, _disposed;
    private readonly Thread? _progress;
    private Exception? _progressError;

    public DataParallel(MpiWorld world, TrainingModel model, OptimizerOptions options, int microBatches, bool zero, WorkerPool? pool = null)
    {
        if (model.Layout.IsLora) throw new ArgumentException("data-parallel training is for whole models (duet train), not LoRA");
        int r = world.Size;
        if (microBatches % r != 0)
            throw new ArgumentException($"{microBatches} micro-batches cannot be shared by {r} ranks: set \"microBatches\" to a multiple of {r} (each rank runs microBatches / {r}; one process with the same microBatches gives the same bits)");
        World = world; Model = model; Options = options; Zero = zero; MicroBatches = microBatches; LocalMicroBatches = microBatches / r;
        _pool = pool ?? WorkerPool.Shared;
        long p = model.Layout.Count;

        // Shards: whole chunks of AdamW.Chunk, split as evenly as chunks allow (the last chunk may be short).
        long chunks = (p + AdamW.Chunk - 1) / AdamW.Chunk;
        ShardStart = new long[r + 1];
        for (int k = 0; k <= r; k++) ShardStart[k] = Math.Min(p, chunks * k / r * AdamW.Chunk);
        _shard0 = ShardStart[world.Rank];
        _shardLength = ShardStart[world.Rank + 1] - _shard0;
        _shardCounts = new int[r];
        _chunkCounts = new int[r];
        for (int k = 0; k < r; k++)
        {
            _shardCounts[k] = (int)(ShardStart[k + 1] - ShardStart[k]);
            _chunkCounts[k] = (int)((_shardCounts[k] + AdamW.Chunk - 1) / AdamW.Chunk);
        }
        if ((long)microBatches * _shardLength > Array.MaxLength)
            throw new ArgumentException($"{microBatches} micro-batches × a shard of {_shardLength:N0} parameters do not fit one receive buffer: use more ranks or fewer micro-batches");

        Optimizer = zero ? new AdamW(model.Layout, options, _shard0, _shard0 + _shardLength, _pool) : new AdamW(model.Layout, options, _pool);
        _grads = new float[LocalMicroBatches][];
        _grads[0] = model.Gradients;
        for (int j = 1; j < LocalMicroBatches; j++) _grads[j] = GC.AllocateArray<float>((int)p, pinned: true);
        _recv = GC.AllocateArray<float>((int)(microBatches * _shardLength), pinned: true);
        _chunkPartial = new double[_chunkCounts[world.Rank]];
        _allPartials = new double[_chunkCounts.Sum()];
        _stats = new double[2 * LocalMicroBatches + 1];
        _allStats = new double[_stats.Length * r];

        // The ranges the backward pass reports, which must cover the parameters once (checked on the first step).
        var L = model.Layout;
        var ranges = new List<(long, long)> { (L.OutputNorm, p - L.OutputNorm) };
        for (int l = model.Config.Layers - 1; l >= 0; l--) ranges.Add((L.AttnNorm[l], (l + 1 < model.Config.Layers ? L.AttnNorm[l + 1] : L.OutputNorm) - L.AttnNorm[l]));
        ranges.Add((L.Embedding, L.AttnNorm[0] - L.Embedding));
        _ranges = [.. ranges];
        if (_ranges.Sum(x => x.Item2) != p) throw new InvalidOperationException("the backward's gradient ranges do not cover the parameters");
        int nRanges = _ranges.Length, local = LocalMicroBatches;
        _sendCounts = new int[nRanges][]; _sendDispls = new int[nRanges][]; _recvCounts = new int[nRanges][];
        _gatherCounts = new int[nRanges][]; _gatherDispls = new int[nRanges][]; _recvDispls = new int[nRanges][][];
        for (int i = 0; i < nRanges; i++)
        {
            var (start, length) = _ranges[i];
            long end = start + length;
            _sendCounts[i] = new int[r]; _sendDispls[i] = new int[r]; _recvCounts[i] = new int[r];
            _gatherCounts[i] = new int[r]; _gatherDispls[i] = new int[r];
            for (int o = 0; o < r; o++)
            {
                long a = Math.Max(start, ShardStart[o]), b = Math.Min(end, ShardStart[o + 1]);
                if (b > a) { _sendCounts[i][o] = _gatherCounts[i][o] = (int)(b - a); _sendDispls[i][o] = _gatherDispls[i][o] = (int)(a - start); }
            }
            long mine0 = Math.Max(start, _shard0), mine1 = Math.Min(end, _shard0 + _shardLength);
            int mineCount = (int)Math.Max(0, mine1 - mine0);
            long offsetInShard = mineCount > 0 ? mine0 - _shard0 : 0;
            Array.Fill(_recvCounts[i], mineCount);
            _recvDispls[i] = new int[local][];
            for (int j = 0; j < local; j++)
            {
                _recvDispls[i][j] = new int[r];
                for (int q = 0; q < r; q++) _recvDispls[i][j][q] = (int)((q * local + j) * _shardLength + offsetInShard);
            }
        }
        _exchange = new MpiWorld.MpiRequests[_ranges.Length];
        for (int i = 0; i < _ranges.Length; i++) { _exchange[i] = world.NewRequests(LocalMicroBatches); _rangeIndex[_ranges[i].Start] = i; }
        _gather = world.NewRequests(_ranges.Length);
        _counts = new int[microBatches];
        _localCounts = new int[LocalMicroBatches];
        if (world.ThreadLevel >= 2)
        {
            _progress = new Thread(ProgressLoop) { IsBackground = true, Name = "duet-mpi-progress", Priority = ThreadPriority.AboveNormal };
            _progress.Start();
        }
    }

    /// <summary>Drives the outstanding gradient sends while the backward computes; idle otherwise.</summary>
    private void ProgressLoop()
    {
        while (!_disposed)
        {
            try
            {
                if (_computing)
                    lock (_mpi)
                        if (_computing) ProgressAll();
            }
            catch (MpiException e) { _progressError = e; return; } // the caller's next wait reports it
            Thread.Sleep(1);
        }
    }

    /// <summary>Lets MPI move every outstanding exchange and all-gather on (under the lock).</summary>
    private void ProgressAll()
    {
        foreach (var r in _exchange) if (r.Count > 0) r.Progress("the gradient exchange (MPI_Ialltoallv)");
        if (_gather.Count > 0) _gather.Progress("the gradient all-gather (MPI_Iallgatherv)");
    }

    public void Dispose()
    {
        _disposed = true;
        _progress?.Join();
    }

    /// <summary>
    /// One optimizer step on this rank's rows: inputs and targets hold its k micro-batches × the model's batch × SeqLen.
    /// <paramref name="stop"/> is this rank's wish to stop after the step; the result says whether any rank wished so
    /// (all ranks then stop after the same step).
    /// </summary>
    public ParallelStepResult Step(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, bool stop)
    {
        int micro = Model.BatchSize * Model.SeqLen;
        if (inputs.Length != micro * LocalMicroBatches || targets.Length != inputs.Length)
            throw new ArgumentException($"a rank's step takes {LocalMicroBatches} × {Model.BatchSize} × {Model.SeqLen} inputs and targets, not {inputs.Length}");
        var own = Model.Gradients;
        var comm = new Stopwatch();
        // Targets per micro-batch, gathered first: the additions below skip the micro-batches without any, as StepRunner.
        for (int j = 0; j < LocalMicroBatches; j++)
        {
            int c = 0;
            foreach (int t in targets.Slice(j * micro, micro)) if (t >= 0) c++;
            _localCounts[j] = c;
        }
        comm.Start();
        World.AllGather<int>(_localCounts, _counts);
        comm.Stop();
        _finished = 0;
        Model.GradientReady = Send;
        _computing = true;
        try
        {
            for (int j = 0; j < LocalMicroBatches; j++)
            {
                _local = j;
                Model.Gradients = _grads[j];
                Array.Clear(_grads[j]);
                var (sum, count) = Model.Forward(inputs.Slice(j * micro, micro), targets.Slice(j * micro, micro), Model.BatchSize);
                _stats[2 * j] = sum; _stats[2 * j + 1] = count;
                // A micro-batch without targets adds nothing; it still sends its (zero) ranges so every rank posts the same calls.
                if (count > 0) Model.Backward(1f / (count * MicroBatches));
                else foreach (var (start, length) in _ranges) Send(start, length);
            }
        }
        finally
        {
            Model.GradientReady = null; Model.Gradients = own;
            lock (_mpi) _computing = false; // the progress thread is out of MPI from here on
        }
        if (_progressError is not null) throw new MpiException(_progressError.Message);
        _stats[^1] = stop ? 1 : 0;

        comm.Start();
        if (Zero)
        {
            foreach (var r in _exchange) r.Wait("the gradient exchange (MPI_Ialltoallv)");
            AddPieces(_shard0, _shard0 + _shardLength);
        }
        else
        {
            while (_finished < _ranges.Length) FinishRange(_finished);
            _gather.Wait("the gradient all-gather (MPI_Iallgatherv)");
        }
        double exchangeWait = comm.Elapsed.TotalSeconds;
        World.AllGather<double>(_stats, _allStats);
        comm.Stop();

        double loss = 0;
        int tokens = 0;
        bool anyStop = false;
        int n = _stats.Length;
        for (int m = 0; m < MicroBatches; m++)
        {
            if (_counts[m] == 0) continue;
            int rank = m / LocalMicroBatches, j = m % LocalMicroBatches;
            loss += _allStats[rank * n + 2 * j] / _counts[m] / MicroBatches;
            tokens += _counts[m];
        }
        for (int rank = 0; rank < World.Size; rank++) anyStop |= _allStats[rank * n + n - 1] != 0;

        // The norm: this shard's chunk partials, gathered in chunk order.
        AdamW.SquareSums(own, _shard0, _shardLength, _chunkPartial, _pool);
        comm.Start();
        _chunkPartial.CopyTo(_allPartials.AsSpan(Offset(_chunkCounts, World.Rank)));
        World.AllGatherV<double>(_allPartials, _chunkCounts);
        comm.Stop();
        double norm = AdamW.NormOf(_allPartials);
        int step = Optimizer.Steps;
        double lr = Options.LearningRateAt(step);
        bool clip = Options.GradClip > 0 && norm > Options.GradClip;
        double scale = clip ? Options.GradClip / (norm + 1e-6) : 1.0;

        Optimizer.Update(Model.Parameters, own, lr, scale);
        if (Zero)
        {
            comm.Start();
            World.AllGatherV<float>(Model.Parameters, _shardCounts);
            comm.Stop();
        }
        return new ParallelStepResult(new StepResult(step, loss, norm, lr, clip, tokens), comm.Elapsed.TotalSeconds, exchangeWait, anyStop);
    }

    private static int Offset(int[] counts, int rank)
    {
        int at = 0;
        for (int k = 0; k < rank; k++) at += counts[k];
        return at;
    }

    /// <summary>
    /// Starts sending range [start, start + length) of the running micro-batch's gradient to the shards' owners; in the
    /// last local micro-batch without ZeRO, then finishes the range before it (its addition and all-gather).
    /// </summary>
    private void Send(long start, long length)
    {
        int j = _local, index = _rangeIndex[start];
        lock (_mpi)
        {
            fixed (float* g = _grads[j])
            fixed (float* recv = _recv)
                World.AllToAllV(g + start, _sendCounts[index], _sendDispls[index], recv, _recvCounts[index], _recvDispls[index][j], _exchange[index]);
            ProgressAll();
        }
        if (!Zero && j == LocalMicroBatches - 1 && index > 0) FinishRange(index - 1);
    }

    /// <summary>
    /// Range i (in the backward's order): waits for its exchange, adds this shard's part of it from every micro-batch,
    /// and starts its all-gather into the model's gradient. Ranges are finished in order on every rank.
    /// </summary>
    private void FinishRange(int i)
    {
        if (i != _finished) throw new InvalidOperationException($"range {i} finished out of order (next is {_finished})");
        var (start, length) = _ranges[i];
        lock (_mpi) _exchange[i].Wait("the gradient exchange (MPI_Ialltoallv)");
        AddPieces(Math.Max(start, _shard0), Math.Min(start + length, _shard0 + _shardLength));
        lock (_mpi)
        {
            fixed (float* g = _grads[0])
                World.AllGatherV(g + start, _gatherCounts[i], _gatherDispls[i], _gather);
            ProgressAll();
        }
        _finished++;
    }

    /// <summary>
    /// The model's gradient over [a, b) (inside this rank's shard) ← the micro-batches' pieces added in micro-batch
    /// order, skipping those without targets (StepRunner's sum, element by element).
    /// </summary>
    private void AddPieces(long a, long b)
    {
        if (b <= a) return;
        var dest = _grads[0].AsSpan((int)a, (int)(b - a));
        bool first = true;
        for (int m = 0; m < MicroBatches; m++)
        {
            if (_counts[m] == 0) continue;
            var piece = _recv.AsSpan((int)(m * _shardLength + (a - _shard0)), (int)(b - a));
            if (first) piece.CopyTo(dest);
            else System.Numerics.Tensors.TensorPrimitives.Add(dest, piece, dest);
            first = false;
        }
        if (first) dest.Clear();
    }

    // ---- optimizer state for checkpoints ----

    /// <summary>The whole moments on rank 0 (gathered from the shards under ZeRO-1); null elsewhere.</summary>
    public (float[] M, float[] V)? GatherMoments()
    {
        if (!Zero) return World.Rank == 0 ? (Optimizer.M, Optimizer.V) : null;
        long p = Model.Layout.Count;
        float[] m = World.Rank == 0 ? new float[p] : [], v = World.Rank == 0 ? new float[p] : [];
        World.GatherV<float>(Optimizer.M, m, _shardCounts, 0);
        World.GatherV<float>(Optimizer.V, v, _shardCounts, 0);
        return World.Rank == 0 ? (m, v) : null;
    }

    /// <summary>Takes this rank's part of whole moments read from a checkpoint.</summary>
    public void LoadMoments(float[] m, float[] v)
    {
        if (m.LongLength != Model.Layout.Count || v.LongLength != m.LongLength) throw new InvalidDataException("the checkpoint's optimizer moments do not match the model");
        m.AsSpan((int)Optimizer.Start, Optimizer.M.Length).CopyTo(Optimizer.M);
        v.AsSpan((int)Optimizer.Start, Optimizer.V.Length).CopyTo(Optimizer.V);
    }
}
