#!/usr/bin/python3
# What the network between two MPI ranks delivers: small-message latency (ping-pong) and large-message bandwidth
# (one-way send, two-way sendrecv, allreduce of float32 SUM), timed with MPI.Wtime. Run by bench/netns_mpi.sh
# (`check`), or by hand under any 2-rank mpirun:
#   mpirun -np 2 /usr/bin/python3 bench/mpi_link_check.py --mb 100
# Needs Debian's python3-mpi4py (and its numpy) under /usr/bin/python3; that is a benchmark tool here, not a
# dependency of the project. Every loop is bounded: fixed repetition counts, and a repetition is not started once
# --max-seconds have passed (rank 0 decides and broadcasts, so both ranks stop together).
#
# Rank 0 prints a human-readable block and one line "RESULT {json}" for scripts. MB = 10^6 bytes.
# Bandwidths are payload bytes per second in one direction: a one-way send of N bytes moves N bytes; a sendrecv
# moves N bytes each way at once; a 2-rank allreduce of N bytes moves about N bytes each way (Open MPI's
# recursive doubling exchanges the whole vector; a ring does N/2 reduce-scatter + N/2 allgather), so N / time is
# its per-direction rate too, and is what a data-parallel cost model charges for a gradient all-reduce.
import argparse
import json
import os
import socket
import statistics
import sys

import numpy as np
from mpi4py import MPI


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=float, default=100.0, help="large-message size in MB (10^6 bytes), float32 (default 100)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions of each large-message test (default 3, at most 20)")
    ap.add_argument("--pingpong", type=int, default=1000, help="timed small-message round trips (default 1000, at most 100000)")
    ap.add_argument("--small-bytes", type=int, default=8, help="small-message size in bytes (default 8)")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="start no repetition after this many seconds (default 120)")
    ap.add_argument("--label", default="", help="a name for this run, echoed in the output")
    a = ap.parse_args()
    a.reps = max(1, min(a.reps, 20))
    a.pingpong = max(10, min(a.pingpong, 100000))

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size != 2:
        if rank == 0:
            print(f"mpi_link_check: needs exactly 2 ranks, got {size}", file=sys.stderr)
        comm.Abort(2)
    peer = 1 - rank
    t_start = MPI.Wtime()

    # Where each rank runs: its network namespace and its non-loopback IPv4 addresses.
    def where():
        try:
            ns = os.readlink("/proc/self/ns/net")
        except OSError:
            ns = "?"
        addrs = []
        try:
            import subprocess
            out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, timeout=5).stdout
            for line in out.splitlines():
                f = line.split()
                if len(f) >= 4 and f[1] != "lo":
                    addrs.append(f"{f[1]}={f[3]}")
        except Exception:
            pass
        return {"rank": rank, "host": socket.gethostname(), "netns": ns, "addrs": addrs, "pid": os.getpid()}

    places = comm.gather(where(), root=0)

    def keep_going():
        # rank 0 decides from its clock; both ranks follow
        go = (MPI.Wtime() - t_start) < a.max_seconds if rank == 0 else None
        return comm.bcast(go, root=0)

    # --- latency: ping-pong of small messages ----------------------------------------------------------------
    small = np.zeros(max(1, a.small_bytes), dtype=np.uint8)
    warm = min(100, a.pingpong)
    times = []
    for i in range(warm + a.pingpong):
        t0 = MPI.Wtime()
        if rank == 0:
            comm.Send(small, dest=peer, tag=1)
            comm.Recv(small, source=peer, tag=2)
        else:
            comm.Recv(small, source=peer, tag=1)
            comm.Send(small, dest=peer, tag=2)
        if i >= warm:
            times.append(MPI.Wtime() - t0)
    rtt = sorted(times)
    lat = {
        "bytes": int(small.nbytes),
        "iters": len(times),
        "half_rtt_us_min": rtt[0] / 2 * 1e6,
        "half_rtt_us_median": statistics.median(rtt) / 2 * 1e6,
        "half_rtt_us_mean": statistics.fmean(rtt) / 2 * 1e6,
        "half_rtt_us_p99": rtt[min(len(rtt) - 1, int(len(rtt) * 0.99))] / 2 * 1e6,
    }

    # --- bandwidth ---------------------------------------------------------------------------------------------
    n = max(1, int(a.mb * 1e6) // 4)
    nbytes = n * 4
    send = np.full(n, rank + 1, dtype=np.float32)
    recv = np.empty(n, dtype=np.float32)
    ack = np.zeros(1, dtype=np.uint8)

    def one_way():
        # rank 0 -> rank 1, then a 1-byte ack back so the sender's clock covers the delivery
        comm.Barrier()
        t0 = MPI.Wtime()
        if rank == 0:
            comm.Send(send, dest=peer, tag=3)
            comm.Recv(ack, source=peer, tag=4)
        else:
            comm.Recv(recv, source=peer, tag=3)
            comm.Send(ack, dest=peer, tag=4)
        return MPI.Wtime() - t0

    def two_way():
        comm.Barrier()
        t0 = MPI.Wtime()
        comm.Sendrecv(send, dest=peer, sendtag=5, recvbuf=recv, source=peer, recvtag=5)
        return MPI.Wtime() - t0

    def allreduce():
        comm.Barrier()
        t0 = MPI.Wtime()
        comm.Allreduce(send, recv, op=MPI.SUM)
        dt = MPI.Wtime() - t0
        # both ranks contributed 1 and 2: every element must be 3
        idx = np.linspace(0, n - 1, num=min(n, 1000), dtype=np.int64)
        if not np.all(recv[idx] == 3.0):
            raise SystemExit(f"rank {rank}: allreduce gave a wrong sum")
        return dt

    def timed(fn):
        fn()  # warm-up: connections, registration, page faults
        ts = []
        for _ in range(a.reps):
            if not keep_going():
                break
            t = fn()
            ts.append(comm.allreduce(t, op=MPI.MAX))  # the slower rank's time
        return ts

    bw = {}
    for name, fn in (("send_one_way", one_way), ("sendrecv_two_way", two_way), ("allreduce_sum", allreduce)):
        ts = timed(fn)
        if ts:
            bw[name] = {
                "reps": len(ts),
                "seconds_median": statistics.median(ts),
                "seconds_best": min(ts),
                "MBps_median": nbytes / statistics.median(ts) / 1e6,
                "MBps_best": nbytes / min(ts) / 1e6,
                "Gbps_median": nbytes * 8 / statistics.median(ts) / 1e9,
            }

    if rank == 0:
        lib = MPI.Get_library_version().replace("\0", "").splitlines()[0].strip()
        print(f"== mpi_link_check {a.label}".rstrip())
        print(f"   library: {lib}")
        for p in places:
            print(f"   rank {p['rank']}: host {p['host']}, {p['netns']}, {' '.join(p['addrs']) or 'no non-loopback IPv4'}")
        print(f"   latency, {lat['bytes']}-byte ping-pong x{lat['iters']}: half round trip min "
              f"{lat['half_rtt_us_min']:.1f} us, median {lat['half_rtt_us_median']:.1f} us, mean {lat['half_rtt_us_mean']:.1f} us, p99 {lat['half_rtt_us_p99']:.1f} us")
        for name, r in bw.items():
            print(f"   {name:17s} {nbytes / 1e6:.0f} MB: median {r['seconds_median']:.3f} s = {r['MBps_median']:.1f} MB/s "
                  f"({r['Gbps_median']:.3f} Gbit/s payload), best {r['MBps_best']:.1f} MB/s, reps {r['reps']}")
        print("RESULT " + json.dumps({"label": a.label, "library": lib, "places": places, "latency": lat,
                                      "bytes": nbytes, "bandwidth": bw}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
