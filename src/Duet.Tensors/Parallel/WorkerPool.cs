// A low-overhead parallel-for for the kernels: fixed worker threads that spin briefly and then sleep,
// woken per job; the calling thread takes a share of the work too. Work is split into contiguous ranges,
// one per thread, since kernel rows cost the same.
//
// A job is a struct implementing IRangeOp, its arguments as named fields (the TensorPrimitives operator style):
//   pool.For(rows, new RmsNormRows { X = x, W = w, Dim = d, Eps = eps, Y = y, Rstd = rstd });
// The struct is copied into a box kept per calling thread and operator type, so a job allocates nothing after its
// first call, and the workers call the operator's Run through one interface call per range.
namespace Duet.Tensors.Parallel;

/// <summary>The body of a parallel job: runs its work for the items [start, end).</summary>
public interface IRangeOp
{
    void Run(int start, int end);
}

public sealed class WorkerPool : IDisposable
{
    private readonly Thread[] _workers;
    private readonly SemaphoreSlim[] _wake;
    private volatile bool _disposed;
    private IRangeOp? _body; // the running job's box (an OpBox<TOp>)
    private int _count;
    private int _pending;
    private readonly ManualResetEventSlim _done = new(false);
    private Exception? _error;

    public int Threads { get; }

    public static WorkerPool Shared { get; private set; } = new(Environment.ProcessorCount);

    /// <summary>Replaces the shared pool (for example with -t THREADS from the command line).</summary>
    public static void SetSharedThreads(int threads)
    {
        var old = Shared;
        Shared = new WorkerPool(threads);
        old.Dispose();
    }

    public WorkerPool(int threads)
    {
        Threads = Math.Max(1, threads);
        _workers = new Thread[Threads - 1];
        _wake = new SemaphoreSlim[Threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            int index = i + 1;
            _wake[i] = new SemaphoreSlim(0);
            _workers[i] = new Thread(() => Loop(index)) { IsBackground = true, Name = $"duet-worker-{index}" };
            _workers[i].Start();
        }
        // ManualResetEventSlim makes its lock object (24 bytes) the first time a caller really waits; a wait that
        // times out makes it now, so that no later job allocates (the decode and training steps promise none).
        _done.Wait(1);
    }

    /// <summary>Runs <paramref name="op"/> over [0, count) split into one contiguous range per thread; returns when all are done.</summary>
    public void For<TOp>(int count, in TOp op) where TOp : struct, IRangeOp
    {
        if (count <= 0) return;
        int parts = Math.Min(Threads, count);
        if (parts == 1) { var local = op; local.Run(0, count); return; }
        var box = OpBox<TOp>.ForThisThread();
        box.Op = op;
        lock (_done)
        {
            _body = box; _count = count; _error = null;
            Volatile.Write(ref _pending, parts - 1);
            Interlocked.Increment(ref _generation);
            for (int i = 0; i < parts - 1; i++) _wake[i].Release();
            Run(0, parts);
            // Done means _pending == 0, never just "the event is set": a worker of the previous job may set
            // the event late, after this job reset it, so a wake-up is only a hint to look again.
            var spin = new SpinWait();
            while (Volatile.Read(ref _pending) > 0)
            {
                if (!spin.NextSpinWillYield) { spin.SpinOnce(); continue; }
                _done.Wait();
                _done.Reset();
            }
            _body = null;
            box.Op = default; // drop what the operator referenced
            if (_error is { } e) throw new AggregateException("a parallel kernel failed", e);
        }
    }

    /// <summary>A struct operator on the heap, where the workers can reach it: one per calling thread and type.</summary>
    private sealed class OpBox<TOp> : IRangeOp where TOp : struct, IRangeOp
    {
        public TOp Op;
        [ThreadStatic] private static OpBox<TOp>? t_box;
        public static OpBox<TOp> ForThisThread() => t_box ??= new OpBox<TOp>();
        public void Run(int start, int end) => Op.Run(start, end);
    }

    private void Run(int index, int parts)
    {
        int n = _count;
        int start = (int)((long)n * index / parts), end = (int)((long)n * (index + 1) / parts);
        _body!.Run(start, end);
    }

    // How long an idle worker watches for the next job before it sleeps: the ~160 matrix products of a decode
    // step come tens of microseconds apart, and a sleeping worker costs a wake-up (a futex, often 10-50 µs) each.
    private static readonly long s_spinTicks = System.Diagnostics.Stopwatch.Frequency / 4000; // 250 µs
    private int _generation;

    private void Loop(int index)
    {
        int seen = 0;
        while (true)
        {
            long until = System.Diagnostics.Stopwatch.GetTimestamp() + s_spinTicks;
            while (Volatile.Read(ref _generation) == seen && System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.SpinWait(8);
            _wake[index - 1].Wait(); // returns at once if the job was seen while spinning (the caller always releases)
            seen = Volatile.Read(ref _generation);
            if (_disposed) return;
            try { Run(index, Math.Min(Threads, _count)); }
            catch (Exception e) { _error = e; }
            if (Interlocked.Decrement(ref _pending) == 0) _done.Set();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var w in _wake) w.Release();
    }
}
