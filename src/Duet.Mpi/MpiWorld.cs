// MPI_COMM_WORLD of this process: init and finalize, rank and size, and the collectives Duet needs (barrier,
// broadcast, all-reduce, reduce-scatter, all-gather, gather, all-to-all). Every collective is started non-blocking
// and waited on by polling MPI_Testall, so that no call can wait forever: a peer that stops answering (killed, hung)
// turns, after Timeout without completion, into an MpiException naming the call and the rank; the caller then ends
// the job with Abort, which makes the launcher stop every rank. Errors of calls are returned, not fatal
// (MPI_ERRORS_RETURN), and come back as MpiException with the library's message.
// Threading: MPI_THREAD_SERIALIZED; one thread at a time calls in (the trainer's main thread does).
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Duet.Mpi;

public enum MpiOp { Sum, Max, Min }

public sealed unsafe class MpiWorld : IDisposable
{
    private readonly MpiLibrary _lib;
    private bool _finalized;

    public int Rank { get; }
    public int Size { get; }
    public MpiFlavour Flavour => _lib.Flavour;
    /// <summary>The library's file name and its version line (MPI_Get_library_version).</summary>
    public string Library => _lib.Path;
    public string Version => _lib.Version;
    public string ProcessorName { get; }
    /// <summary>
    /// The thread support the library gave (MPI_THREAD_SERIALIZED = 2 asked for): at 2 or more, any one thread at a time
    /// may call in, so a helper thread can drive outstanding requests while the caller computes.
    /// </summary>
    public int ThreadLevel { get; }
    /// <summary>How long a collective may go without completing before the job is taken to have lost a rank.</summary>
    public TimeSpan Timeout { get; set; }

    /// <summary>The default of <see cref="Timeout"/>: DUET_MPI_TIMEOUT seconds, else 300 (a checkpoint of a large model written by rank 0 while the others wait must fit).</summary>
    public static TimeSpan DefaultTimeout =>
        double.TryParse(Environment.GetEnvironmentVariable("DUET_MPI_TIMEOUT"), System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(300);

    private MpiWorld(MpiLibrary lib, MpiLaunch? launch, TimeSpan timeout)
    {
        _lib = lib;
        Timeout = timeout;
        int provided = 0, initialized = 0;
        Check(_lib.Initialized(&initialized), "MPI_Initialized");
        if (initialized == 0) Check(_lib.InitThread(null, null, 2 /* MPI_THREAD_SERIALIZED */, &provided), "MPI_Init_thread");
        ThreadLevel = provided;
        Check(_lib.CommSetErrhandler(_lib.CommWorld, _lib.ErrorsReturn), "MPI_Comm_set_errhandler");
        int rank = 0, size = 0;
        Check(_lib.CommRank(_lib.CommWorld, &rank), "MPI_Comm_rank");
        Check(_lib.CommSize(_lib.CommWorld, &size), "MPI_Comm_size");
        Rank = rank; Size = size;
        var name = new byte[1024];
        int len = 0;
        fixed (byte* b = name) _lib.GetProcessorName(b, &len);
        ProcessorName = Encoding.UTF8.GetString(name, 0, Math.Clamp(len, 0, name.Length));
        if (launch is { } l && (l.Size != size || l.Rank != rank))
        {
            string msg = $"{l.Launcher} started this process as rank {l.Rank} of {l.Size}, but {lib.Path} ({lib.Version}) sees rank {rank} of {size}: the launcher and the library come from different MPI implementations. Use the mpirun of the library found (mpirun.openmpi for Open MPI, mpirun.mpich for MPICH) or set DUET_MPI_LIBRARY";
            _lib.FinalizeF();
            _finalized = true;
            throw new MpiException(msg);
        }
    }

    /// <summary>
    /// Loads libmpi and initializes MPI for a job the launcher started (<see cref="MpiLaunch.Detect"/>), or for a
    /// single process when <paramref name="launch"/> is null. Throws MpiException with what to install when no
    /// usable library is found.
    /// </summary>
    public static MpiWorld Start(MpiLaunch? launch, TimeSpan? timeout = null) => new(MpiLibrary.Load(launch), launch, timeout ?? DefaultTimeout);

    private void Check(int code, string call)
    {
        if (code != 0) throw new MpiException($"{call} failed{(Size > 0 ? $" on rank {Rank} of {Size}" : "")}: {_lib.Describe(code)}", code);
    }

    private nint Type<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? _lib.Float : typeof(T) == typeof(double) ? _lib.Double : typeof(T) == typeof(int) ? _lib.Int
        : typeof(T) == typeof(long) ? _lib.Long : typeof(T) == typeof(byte) ? _lib.Byte
        : throw new NotSupportedException($"no MPI datatype for {typeof(T).Name}");

    private nint Op(MpiOp op) => op switch { MpiOp.Sum => _lib.OpSum, MpiOp.Max => _lib.OpMax, MpiOp.Min => _lib.OpMin, _ => throw new ArgumentOutOfRangeException(nameof(op)) };

    // ---- blocking collectives (each a non-blocking one waited on with the timeout) ----

    public void Barrier()
    {
        var r = NewRequests(1);
        Check(_lib.Ibarrier(_lib.CommWorld, r.Slot(0)), "MPI_Ibarrier");
        r.Wait("MPI_Barrier");
    }

    /// <summary>Root's <paramref name="data"/> to every rank.</summary>
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        CheckRoot(root);
        var r = NewRequests(1);
        fixed (T* p = data)
        {
            Check(_lib.Ibcast(p, data.Length, Type<T>(), root, _lib.CommWorld, r.Slot(0)), "MPI_Ibcast");
            r.Wait("MPI_Bcast");
        }
    }

    /// <summary>data ← op over ranks of data, in place. The order of the reduction is the library's.</summary>
    public void AllReduce<T>(Span<T> data, MpiOp op) where T : unmanaged
    {
        var r = NewRequests(1);
        fixed (T* p = data)
        {
            Check(_lib.Iallreduce(_lib.InPlace, p, data.Length, Type<T>(), Op(op), _lib.CommWorld, r.Slot(0)), "MPI_Iallreduce");
            r.Wait("MPI_Allreduce");
        }
    }

    /// <summary>recv ← block Rank of (op over ranks of send); send holds Size blocks of recv.Length.</summary>
    public void ReduceScatter<T>(ReadOnlySpan<T> send, Span<T> recv, MpiOp op) where T : unmanaged
    {
        if (send.Length != (long)recv.Length * Size) throw new ArgumentException($"reduce-scatter sends {Size} blocks of {recv.Length}, not {send.Length} elements");
        var r = NewRequests(1);
        fixed (T* s = send)
        fixed (T* d = recv)
        {
            Check(_lib.IreduceScatterBlock(s, d, recv.Length, Type<T>(), Op(op), _lib.CommWorld, r.Slot(0)), "MPI_Ireduce_scatter_block");
            r.Wait("MPI_Reduce_scatter_block");
        }
    }

    /// <summary>all ← every rank's <paramref name="mine"/>, in rank order.</summary>
    public void AllGather<T>(ReadOnlySpan<T> mine, Span<T> all) where T : unmanaged
    {
        if (all.Length != (long)mine.Length * Size) throw new ArgumentException($"all-gather of {mine.Length} per rank needs {mine.Length * Size} elements, not {all.Length}");
        var r = NewRequests(1);
        fixed (T* s = mine)
        fixed (T* d = all)
        {
            Check(_lib.Iallgather(s, mine.Length, Type<T>(), d, mine.Length, Type<T>(), _lib.CommWorld, r.Slot(0)), "MPI_Iallgather");
            r.Wait("MPI_Allgather");
        }
    }

    /// <summary>
    /// In place: rank k's block of <paramref name="counts"/>[k] elements, at the sum of the counts before it, goes to
    /// every rank (each rank fills its own block before the call).
    /// </summary>
    public void AllGatherV<T>(Span<T> all, ReadOnlySpan<int> counts) where T : unmanaged
    {
        var (c, d) = Layout(counts, all.Length);
        var r = NewRequests(1);
        fixed (T* p = all)
        fixed (int* cp = c)
        fixed (int* dp = d)
        {
            Check(_lib.Iallgatherv(_lib.InPlace, 0, Type<T>(), p, cp, dp, Type<T>(), _lib.CommWorld, r.Slot(0)), "MPI_Iallgatherv");
            r.Wait("MPI_Allgatherv");
        }
    }

    /// <summary>On root, all ← every rank's <paramref name="mine"/> in rank order; elsewhere all is not touched (may be empty).</summary>
    public void Gather<T>(ReadOnlySpan<T> mine, Span<T> all, int root) where T : unmanaged
    {
        CheckRoot(root);
        if (Rank == root && all.Length != (long)mine.Length * Size) throw new ArgumentException($"gather of {mine.Length} per rank needs {mine.Length * Size} elements on the root");
        var r = NewRequests(1);
        fixed (T* s = mine)
        fixed (T* d = all)
        {
            Check(_lib.Igather(s, mine.Length, Type<T>(), d, mine.Length, Type<T>(), root, _lib.CommWorld, r.Slot(0)), "MPI_Igather");
            r.Wait("MPI_Gather");
        }
    }

    /// <summary>On root, rank k's <paramref name="mine"/> (counts[k] elements) at the sum of the counts before it.</summary>
    public void GatherV<T>(ReadOnlySpan<T> mine, Span<T> all, ReadOnlySpan<int> counts, int root) where T : unmanaged
    {
        CheckRoot(root);
        if (counts.Length != Size || mine.Length != counts[Rank]) throw new ArgumentException($"gather-v: {counts.Length} counts for {Size} ranks, rank {Rank} sends {mine.Length} of {counts[Rank]}");
        var (c, d) = Layout(counts, Rank == root ? all.Length : -1);
        var r = NewRequests(1);
        fixed (T* s = mine)
        fixed (T* p = all)
        fixed (int* cp = c)
        fixed (int* dp = d)
        {
            Check(_lib.Igatherv(s, mine.Length, Type<T>(), p, cp, dp, Type<T>(), root, _lib.CommWorld, r.Slot(0)), "MPI_Igatherv");
            r.Wait("MPI_Gatherv");
        }
    }

    private (int[] Counts, int[] Displs) Layout(ReadOnlySpan<int> counts, long total)
    {
        if (counts.Length != Size) throw new ArgumentException($"{counts.Length} counts for {Size} ranks");
        var c = counts.ToArray();
        var d = new int[Size];
        long at = 0;
        for (int k = 0; k < Size; k++)
        {
            if (c[k] < 0) throw new ArgumentException($"count {c[k]} of rank {k} is negative");
            d[k] = checked((int)at);
            at += c[k];
        }
        if (total >= 0 && at != total) throw new ArgumentException($"the counts add up to {at}, the buffer holds {total}");
        return (c, d);
    }

    private void CheckRoot(int root)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} is not a rank of {Size}");
    }

    // ---- non-blocking all-to-all, for overlapping communication with computation ----

    /// <summary>
    /// Starts MPI_Ialltoallv of floats: to rank k, sendCounts[k] elements from send + sendDispls[k]; from rank k,
    /// recvCounts[k] elements to recv + recvDispls[k]. The buffers must stay pinned (pinned-heap arrays or native
    /// memory) until <paramref name="requests"/> completes; the count arrays are kept alive by the request set.
    /// </summary>
    public void AllToAllV(float* send, int[] sendCounts, int[] sendDispls, float* recv, int[] recvCounts, int[] recvDispls, MpiRequests requests)
    {
        if (sendCounts.Length != Size || sendDispls.Length != Size || recvCounts.Length != Size || recvDispls.Length != Size)
            throw new ArgumentException($"all-to-all needs {Size} counts and displacements each way");
        int slot = requests.Add(sendCounts, sendDispls, recvCounts, recvDispls);
        var h = requests.Pins;
        Check(_lib.Ialltoallv(send, (int*)h[^4].AddrOfPinnedObject(), (int*)h[^3].AddrOfPinnedObject(), _lib.Float,
            recv, (int*)h[^2].AddrOfPinnedObject(), (int*)h[^1].AddrOfPinnedObject(), _lib.Float, _lib.CommWorld, requests.Slot(slot)), "MPI_Ialltoallv");
    }

    /// <summary>
    /// Starts an in-place MPI_Iallgatherv of floats: rank k's counts[k] elements at buffer + displs[k] go to every rank.
    /// The buffer must stay pinned until <paramref name="requests"/> completes.
    /// </summary>
    public void AllGatherV(float* buffer, int[] counts, int[] displs, MpiRequests requests)
    {
        if (counts.Length != Size || displs.Length != Size) throw new ArgumentException($"all-gather needs {Size} counts and displacements");
        int slot = requests.Add(counts, displs);
        var h = requests.Pins;
        Check(_lib.Iallgatherv(_lib.InPlace, 0, _lib.Float, buffer, (int*)h[^2].AddrOfPinnedObject(), (int*)h[^1].AddrOfPinnedObject(), _lib.Float,
            _lib.CommWorld, requests.Slot(slot)), "MPI_Iallgatherv");
    }

    /// <summary>The same with managed arrays, pinned by the request set until it completes (displacements from each array's start).</summary>
    public void AllToAllV(float[] send, int[] sendCounts, int[] sendDispls, float[] recv, int[] recvCounts, int[] recvDispls, MpiRequests requests)
    {
        requests.Pins.Add(GCHandle.Alloc(send, GCHandleType.Pinned));
        requests.Pins.Add(GCHandle.Alloc(recv, GCHandleType.Pinned));
        AllToAllV((float*)requests.Pins[^2].AddrOfPinnedObject(), sendCounts, sendDispls, (float*)requests.Pins[^1].AddrOfPinnedObject(), recvCounts, recvDispls, requests);
    }

    public MpiRequests NewRequests(int capacity) => new(this, capacity);

    /// <summary>
    /// Ends the whole job (MPI_Abort on COMM_WORLD): the launcher stops every rank. Writes the message to stderr first,
    /// prefixed with this rank.
    /// </summary>
    public void Abort(string message, int code = 1)
    {
        Console.Error.WriteLine($"rank {Rank} of {Size}: {message}");
        Console.Error.Flush();
        _lib.AbortF(_lib.CommWorld, code);
        Environment.Exit(code); // MPI_Abort does not return; in case a library's does
    }

    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        int done = 0;
        _lib.FinalizedF(&done);
        if (done == 0) _lib.FinalizeF();
    }

    /// <summary>Outstanding requests of one world, with the count arrays they read kept pinned until they complete.</summary>
    public sealed class MpiRequests
    {
        private readonly MpiWorld _w;
        private byte[] _handles;
        private int _count;
        internal readonly List<GCHandle> Pins = [];

        internal MpiRequests(MpiWorld w, int capacity)
        {
            _w = w;
            _handles = GC.AllocateArray<byte>(Math.Max(1, capacity) * w._lib.RequestSize, pinned: true);
        }

        public int Count => _count;

        internal int Add(params int[][] arrays)
        {
            foreach (var a in arrays) Pins.Add(GCHandle.Alloc(a, GCHandleType.Pinned));
            if ((_count + 1) * _w._lib.RequestSize > _handles.Length)
            {
                if (_count > 0) throw new InvalidOperationException("a request set does not grow while requests are outstanding: size it for all of them");
                _handles = GC.AllocateArray<byte>(_handles.Length * 2, pinned: true);
            }
            return _count++;
        }

        internal void* Slot(int i)
        {
            if (i >= _count) _count = i + 1;
            return Unsafe(i);
        }

        private void* Unsafe(int i)
        {
            fixed (byte* b = _handles) return b + i * _w._lib.RequestSize; // pinned-heap array: the address stays valid
        }

        /// <summary>Lets the library move the outstanding requests on; true when all are complete (then the set is empty again).</summary>
        public bool Progress(string what)
        {
            if (_count == 0) return true;
            int flag = 0;
            _w.Check(_w._lib.Testall(_count, Unsafe(0), &flag, _w._lib.StatusesIgnore), what);
            if (flag == 0) return false;
            Release();
            return true;
        }

        /// <summary>Waits for every outstanding request; MpiException after the world's Timeout without completion.</summary>
        public void Wait(string what)
        {
            var sw = Stopwatch.StartNew();
            while (!Progress(what))
            {
                if (sw.Elapsed > _w.Timeout)
                    throw new MpiException($"rank {_w.Rank} of {_w.Size}: {what} has not completed after {_w.Timeout.TotalSeconds:0} s: another rank has stopped (killed, crashed or stuck); the job cannot go on");
                Thread.Yield();
            }
        }

        private void Release()
        {
            foreach (var p in Pins) p.Free();
            Pins.Clear();
            _count = 0;
        }
    }
}
