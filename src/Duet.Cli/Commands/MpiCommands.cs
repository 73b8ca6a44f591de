// MPI in the CLI: joining the job a launcher started (mpirun, mpiexec, srun), and `duet mpi info | check | bench`:
// what library and ranks a job sees, a check of every collective Duet uses against values each rank can compute,
// and the latency and bandwidth of the collectives that data-parallel training uses (the constants of the cost
// model in docs/scale-out.md). Without a launcher nothing here loads libmpi.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Duet.Mpi;

namespace Duet.Cli.Commands;

internal static class MpiCommands
{
    /// <summary>The job this process joined (null when it runs alone).</summary>
    public static MpiWorld? World { get; private set; }

    /// <summary>
    /// Joins the MPI job this process was launched into, if the launcher started more than one process; null when it
    /// runs alone (no libmpi is loaded then). With <paramref name="required"/>, an error when there is no such job.
    /// </summary>
    public static MpiWorld? Join(bool required = false)
    {
        if (World is not null) return World;
        var launch = MpiLaunch.Detect();
        if (launch is not { IsParallel: true })
        {
            if (!required) return null;
            // Asked for MPI outside a launcher: a world of one (MPI singleton), so that `duet mpi info` says what is installed.
            World = MpiWorld.Start(null);
            return World;
        }
        World = MpiWorld.Start(launch);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => World?.Dispose();
        return World;
    }

    /// <summary>Prints to stderr on rank 0 only (or always, alone).</summary>
    public static void Say(string line)
    {
        if (World is null || World.Rank == 0) Console.Error.WriteLine(line);
    }

    /// <summary>
    /// An error on one rank ends the whole job: the message (naming the rank) to stderr, then MPI_Abort, so no other
    /// rank waits for this one.
    /// </summary>
    public static void AbortOnError(string message)
    {
        if (World is not { Size: > 1 } w) return;
        w.Abort($"error: {message}");
    }

    public static Command Create()
    {
        var cmd = new Command("mpi", "MPI: what a job launched by mpirun/srun sees (info), a check of the collectives (check), their speed (bench).");
        cmd.Subcommands.Add(Info());
        cmd.Subcommands.Add(Check());
        cmd.Subcommands.Add(Bench());
        return cmd;
    }

    private static Command Info()
    {
        var cmd = new Command("info", "The MPI library found, its flavour, and every rank's host (run it under mpirun -np N).");
        cmd.SetAction(_ =>
        {
            var w = Join(required: true)!;
            var name = System.Text.Encoding.UTF8.GetBytes(w.ProcessorName.PadRight(64)[..64]);
            var all = new byte[64 * w.Size];
            w.AllGather<byte>(name, all);
            if (w.Rank == 0)
            {
                Console.WriteLine($"library {w.Library}: {w.Version} ({w.Flavour} ABI)");
                Console.WriteLine($"{w.Size} rank{(w.Size == 1 ? "" : "s")}, timeout {w.Timeout.TotalSeconds:0} s (DUET_MPI_TIMEOUT), thread level {w.ThreadLevel} (2 = serialized: a progress thread drives the gradient exchange)");
                for (int r = 0; r < w.Size; r++) Console.WriteLine($"rank {r}: {System.Text.Encoding.UTF8.GetString(all, 64 * r, 64).Trim()}");
            }
            return 0;
        });
        return cmd;
    }

    private static Command Check()
    {
        var cmd = new Command("check", "Runs every collective Duet uses on values each rank can compute and checks the results; prints one line per collective.");
        cmd.SetAction(_ =>
        {
            var w = Join(required: true)!;
            var results = MpiCheck.Run(w);
            if (w.Rank == 0) foreach (var line in results) Console.WriteLine(line);
            return 0;
        });
        return cmd;
    }

    private static Command Bench()
    {
        var sizes = new Option<string>("--sizes") { Description = "message sizes in bytes, comma-separated", DefaultValueFactory = _ => "8,4096,65536,1048576,8388608,33554432" };
        var reps = new Option<int>("--reps") { Description = "timed repetitions per size (after one warm-up)", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "one JSON line per measurement" };
        var cmd = new Command("bench", "Latency and bandwidth of all-reduce, all-to-all (the gradient exchange) and all-gather between the ranks.")
        {
            sizes, reps, json,
        };
        cmd.SetAction(r =>
        {
            var w = Join(required: true)!;
            int n = r.GetValue(reps);
            if (n < 1) throw new ArgumentException("--reps must be positive");
            var list = r.GetValue(sizes)!.Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            foreach (long bytes in list)
            {
                if (bytes < 4 * w.Size || bytes > 1L << 30) throw new ArgumentException($"size {bytes} must be in [{4 * w.Size}, 1 GiB]");
                int count = (int)(bytes / 4 / w.Size * w.Size);
                foreach (var (op, seconds) in MpiCheck.Time(w, count, n))
                {
                    if (w.Rank != 0) continue;
                    // Bus bandwidth (as nccl-tests): the bytes each rank must move for the collective per second:
                    // all-reduce 2(R−1)/R·S, all-to-all and all-gather (R−1)/R·S.
                    double factor = (op == "allreduce" ? 2.0 : 1.0) * (w.Size - 1) / w.Size;
                    double busGBs = factor * count * 4.0 / seconds / 1e9;
                    if (r.GetValue(json))
                        Console.WriteLine(JsonSerializer.Serialize(new { op, ranks = w.Size, bytes = count * 4L, seconds, bus_gb_s = busGBs }));
                    else Console.WriteLine($"{op,-10} {count * 4L,12:N0} B  {seconds * 1e6,12:F1} µs  bus {busGBs,8:F3} GB/s");
                }
            }
            return 0;
        });
        return cmd;
    }
}

/// <summary>Checks and timings of the collectives, on values every rank can compute for every other.</summary>
internal static class MpiCheck
{
    private static float Value(int rank, int i) => rank * 1000 + i % 997; // exact in float for the sizes used

    public static List<string> Run(MpiWorld w)
    {
        var lines = new List<string>();
        int size = w.Size, rank = w.Rank;
        void Ok(string what, bool ok)
        {
            if (!ok) throw new InvalidDataException($"rank {rank}: {what} gave a wrong result");
            lines.Add($"{what}: ok");
        }
        w.Barrier();
        Ok("barrier", true);

        var b = new long[5];
        if (rank == size - 1) for (int i = 0; i < b.Length; i++) b[i] = (1L << 40) + i;
        w.Broadcast<long>(b, size - 1);
        Ok("broadcast", b.Select((x, i) => x == (1L << 40) + i).All(x => x));

        const int n = 1000;
        var a = Enumerable.Range(0, n).Select(i => Value(rank, i)).ToArray();
        w.AllReduce<float>(a, MpiOp.Sum);
        Ok("all-reduce (sum)", a.Select((x, i) => x == Enumerable.Range(0, size).Sum(r => Value(r, i))).All(x => x));
        var mx = new[] { (double)rank };
        w.AllReduce<double>(mx, MpiOp.Max);
        Ok("all-reduce (max)", mx[0] == size - 1);

        var send = Enumerable.Range(0, n * size).Select(i => Value(rank, i)).ToArray();
        var part = new float[n];
        w.ReduceScatter<float>(send, part, MpiOp.Sum);
        Ok("reduce-scatter", part.Select((x, i) => x == Enumerable.Range(0, size).Sum(r => Value(r, rank * n + i))).All(x => x));

        var all = new int[3 * size];
        w.AllGather<int>([rank, rank * 2, -rank], all);
        Ok("all-gather", Enumerable.Range(0, size).All(r => all[3 * r] == r && all[3 * r + 1] == 2 * r && all[3 * r + 2] == -r));

        var counts = Enumerable.Range(0, size).Select(r => r + 1).ToArray(); // rank r holds r + 1 values
        var v = new double[counts.Sum()];
        int at = counts.Take(rank).Sum();
        for (int i = 0; i < counts[rank]; i++) v[at + i] = rank + i / 10.0;
        w.AllGatherV<double>(v, counts);
        bool okv = true;
        for (int r = 0, o = 0; r < size; o += counts[r], r++) for (int i = 0; i < counts[r]; i++) okv &= v[o + i] == r + i / 10.0;
        Ok("all-gather-v", okv);

        var g = new int[rank == 0 ? 2 * size : 0];
        w.Gather<int>([rank, 7], g, 0);
        Ok("gather", rank != 0 || Enumerable.Range(0, size).All(r => g[2 * r] == r && g[2 * r + 1] == 7));
        var gv = new float[rank == 0 ? counts.Sum() : 0];
        w.GatherV<float>(Enumerable.Repeat((float)rank, counts[rank]).ToArray(), gv, counts, 0);
        bool okg = true;
        if (rank == 0) for (int r = 0, o = 0; r < size; o += counts[r], r++) for (int i = 0; i < counts[r]; i++) okg &= gv[o + i] == r;
        Ok("gather-v", okg);

        // All-to-all: rank r sends to rank q the values q·10 + r (q + 1 of them), at the front of its buffer in q order.
        var sc = Enumerable.Range(0, size).Select(q => q + 1).ToArray();
        var sd = new int[size];
        for (int q = 1; q < size; q++) sd[q] = sd[q - 1] + sc[q - 1];
        var sbuf = new float[sc.Sum()];
        for (int q = 0; q < size; q++) for (int i = 0; i < sc[q]; i++) sbuf[sd[q] + i] = q * 10 + rank;
        var rc = Enumerable.Repeat(rank + 1, size).ToArray();
        var rd = Enumerable.Range(0, size).Select(q => q * (rank + 1)).ToArray();
        var rbuf = new float[(rank + 1) * size];
        var req = w.NewRequests(1);
        w.AllToAllV(sbuf, sc, sd, rbuf, rc, rd, req);
        req.Wait("MPI_Ialltoallv");
        Ok("all-to-all-v", Enumerable.Range(0, size).All(q => Enumerable.Range(0, rank + 1).All(i => rbuf[rd[q] + i] == rank * 10 + q)));
        lines.Insert(0, $"{size} ranks, {w.Version} ({w.Flavour} ABI)");
        return lines;
    }

    /// <summary>Median seconds of all-reduce, all-to-all-v and all-gather of count floats per rank (after one warm-up).</summary>
    public static IEnumerable<(string Op, double Seconds)> Time(MpiWorld w, int count, int reps)
    {
        var data = GC.AllocateArray<float>(count, pinned: true);
        var recv = GC.AllocateArray<float>(count, pinned: true);
        data.AsSpan().Fill(1);
        int per = count / w.Size;
        var counts = Enumerable.Repeat(per, w.Size).ToArray();
        var displs = Enumerable.Range(0, w.Size).Select(q => q * per).ToArray();
        double Median(Action op)
        {
            var t = new List<double>();
            for (int i = 0; i <= reps; i++)
            {
                w.Barrier();
                var sw = Stopwatch.StartNew();
                op();
                if (i > 0) t.Add(sw.Elapsed.TotalSeconds);
            }
            // The slowest rank's time is the collective's.
            var mine = new[] { t.Order().ElementAt(t.Count / 2) };
            w.AllReduce<double>(mine, MpiOp.Max);
            return mine[0];
        }
        yield return ("allreduce", Median(() => w.AllReduce<float>(data, MpiOp.Sum)));
        yield return ("alltoall", Median(() =>
        {
            var req = w.NewRequests(1);
            w.AllToAllV(data, counts, displs, recv, counts, displs, req);
            req.Wait("MPI_Ialltoallv");
        }));
        yield return ("allgather", Median(() => w.AllGatherV<float>(data.AsSpan(0, per * w.Size), counts)));
    }
}
