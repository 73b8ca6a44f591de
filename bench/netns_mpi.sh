#!/usr/bin/env bash
# netns_mpi.sh: a 2-rank Open MPI job on this one machine whose ranks talk over a real, shaped network link:
# rank 0 in network namespace duet-ns0, rank 1 in duet-ns1, joined by a veth pair limited to RATE (1 Gbit/s by
# default) with tc on both ends. For checking the cost model of data-parallel training against a real 1 GbE link.
#
#   bench/netns_mpi.sh up [RATE] [DELAY]   create the namespaces, link, addresses, shaping (needs root)
#                                          RATE: a tc rate (1gbit, 100mbit, 10gbit) or "none" (veth unshaped)
#                                          DELAY: one-way delay (100us, 1ms) or 0; needs netem (see limits)
#   bench/netns_mpi.sh run [MPIRUN-OPTIONS] -- PROGRAM [ARGS...]
#                                          mpirun -np 2: rank 0 in duet-ns0, rank 1 in duet-ns1; a "{rank}" in
#                                          ARGS becomes the rank (e.g. --out runs/dp-{rank})
#   bench/netns_mpi.sh check [MB] [REPS]   bench/mpi_link_check.py twice: two ranks over loopback in this
#                                          namespace (no netns), then over the link; prints latency and bandwidth
#   bench/netns_mpi.sh status              namespaces, addresses, qdiscs with their counters
#   bench/netns_mpi.sh down                remove everything "up" made (namespaces, veth, qdiscs, /etc/netns files)
#
# Example (the project's own command; the duet script is built once in this namespace first, see below):
#   nice -n 10 bench/netns_mpi.sh up 1gbit
#   nice -n 10 bench/netns_mpi.sh run -- /work/main/duet train --config models/duet-tiny/train.json --out /tmp/dp-{rank}
#   bench/netns_mpi.sh down
#
# How it works
# - Network: namespaces duet-ns0 (10.200.0.1/24 on veth duet-veth0) and duet-ns1 (10.200.0.2/24 on duet-veth1),
#   loopback up in each, IPv6 off in each (so the TCP BTL has one address per side); the /24 is on-link, so the
#   connected route is the whole routing table and nothing can leave the pair. Names: /etc/netns/duet-nsN/hosts,
#   which "ip netns exec" bind-mounts over /etc/hosts inside that namespace only: the machine's /etc/hosts is
#   never edited. Each rank also gets its own UTS namespace with hostname duet-nsN, so MPI_Get_processor_name
#   and gethostname differ between the ranks as on two real hosts.
# - Shaping: tbf (token bucket) as the root qdisc of each veth end, so each direction gets RATE on its own (full
#   duplex, as Ethernet). Why tbf and not netem's rate: this kernel has no netem (CONFIG_NET_SCH_NETEM is not set
#   and modules cannot be loaded; of the rate qdiscs only tbf and htb are built), and tbf is the qdisc made for a
#   rate: it charges each packet's length with its Ethernet header, so 1gbit carries at most 1448/1514 x 125 MB/s
#   = 119.5 MB/s of TCP payload (a real GbE wire also carries preamble, FCS and inter-frame gap: ~117.7 MB/s,
#   so this link is ~1.5% faster than real GbE). Measured here: 118 MB/s one way, 118 MB/s each way at once.
#   burst 64kb (TBF_BURST) is one full TCP segmentation-offload packet: after an idle spell at most ~0.5 ms of
#   data goes out faster than RATE. limit 1mb (TBF_LIMIT) is the queue per direction (8 ms at 1 Gbit/s, like a
#   host's 1000-packet pfifo_fast) and nothing was dropped in our runs; tc's "latency 5ms" form gives ~125 KB
#   at 100 Mbit/s, which two 64 KB offload packets overflow: 17-35% of the packets were dropped (the rate held
#   only because TCP here is BBR, this kernel's default; a loss-based congestion control would back off).
#   DELAY, when not 0, puts netem (delay) at the root with the tbf under it: RTT = 2 x DELAY. Where netem is
#   missing (as on this machine) "up" with a DELAY fails and leaves nothing behind (untested for that reason).
# - MPI: mpirun (Open MPI 4.1) runs inside duet-ns0 with a hostfile of the two names, one slot each, --map-by
#   node, so rank 0 lands on duet-ns0 (mpirun's own node) and rank 1 on duet-ns1. To start its daemon (orted)
#   on duet-ns1 mpirun runs its rsh agent, which is this script ("netns_mpi.sh agent HOST COMMAND"): instead of
#   ssh it runs COMMAND with sh inside that namespace. orted then dials back to mpirun over the veth (OOB and
#   PMIx wire-up: --mca oob_tcp_if_include 10.200.0.0/24). MPI traffic: --mca pml ob1 --mca btl tcp,self
#   --mca btl_tcp_if_include 10.200.0.0/24: the TCP BTL on the veth addresses only; no shared-memory BTL
#   (vader), no UCX or libfabric, even though both ranks share one kernel, /dev/shm and /tmp. --bind-to none
#   (two cores shared with other work). As root: --allow-run-as-root. The agent is a child of mpirun, so both
#   ranks inherit mpirun's environment and working directory (unlike ssh).
# - duet: when PROGRAM is the repository's duet script, "run" builds it once here and starts "dotnet
#   src/Duet.Cli/bin/Release/net10.0/duet.dll ARGS" in both ranks instead (NETNS_MPI_PREBUILD=0: run the script
#   in each rank). The script's own build is serialized by a lock, but inside the namespaces it has no network
#   (NuGet) and took 40 s instead of 5 s for a 4-step duet-tiny run.
#
# Limits
# - Both ranks share this machine's CPUs, memory bandwidth and kernel: the veth, the shaping and TCP cost CPU
#   time that on two hosts would be spread over two machines, and on a busy 2-core machine the ranks, which
#   busy-poll, can wait a scheduler tick (4 ms here, HZ=250) for a core: latencies then read in milliseconds and
#   bandwidths fall under RATE (two-way rates halved while other builds ran). "check" samples how idle the CPUs
#   are before it starts; trust numbers taken on an idle machine.
# - Rate and queue are emulated; there is no random loss, no switch, no NIC offload timing. Without netem there
#   is no added propagation delay: the latency is that of veth + TCP + Open MPI (~7 us), below the ~25-50 us of
#   a real GbE hop. TCP's congestion control is the kernel's default in each namespace (bbr here).
# - Exactly two ranks (one per namespace). Root only (namespaces, tc). One set of namespaces at a time.
# - Time bounds: "run" passes --timeout NETNS_MPI_TIMEOUT (default 3600 s) to mpirun and kills it 60 s after
#   that; "check" gives each mpirun 300 s and mpi_link_check.py bounds its own repetitions.
set -euo pipefail

NS0=duet-ns0
NS1=duet-ns1
IP0=10.200.0.1
IP1=10.200.0.2
NET=10.200.0.0/24
VETH0=duet-veth0
VETH1=duet-veth1
TBF_BURST=${TBF_BURST:-64kb}
TBF_LIMIT=${TBF_LIMIT:-1mb}
STATE=/run/duet-netns-mpi        # what "up" made: the shaping in effect, whether /etc/netns was created
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
repo="$(dirname "$here")"
PY=/usr/bin/python3              # Debian's python, which has python3-mpi4py (not a pyenv/venv one)

die() { echo "netns_mpi.sh: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "needs root (network namespaces, tc)"; }
is_up() { ip netns list 2>/dev/null | grep -qw "$NS0" && ip netns list 2>/dev/null | grep -qw "$NS1"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

shape() {  # shape NS DEV RATE DELAY
    local ns=$1 dev=$2 rate=$3 delay=$4
    if [ "$delay" != 0 ]; then
        in_ns "$ns" tc qdisc add dev "$dev" root handle 1: netem delay "$delay" limit 100000 2>/dev/null \
            || die "tc netem is not available in this kernel (CONFIG_NET_SCH_NETEM): DELAY must be 0 here"
        [ "$rate" = none ] && return 0
        # under netem the queue also has to hold a bandwidth-delay product
        in_ns "$ns" tc qdisc add dev "$dev" parent 1:1 handle 10: tbf rate "$rate" burst "$TBF_BURST" limit "$TBF_LIMIT"
    elif [ "$rate" != none ]; then
        in_ns "$ns" tc qdisc add dev "$dev" root handle 1: tbf rate "$rate" burst "$TBF_BURST" limit "$TBF_LIMIT"
    fi
}

cmd_up() {
    need_root
    command -v tc >/dev/null || die "tc (iproute2) not found"
    if is_up || [ -d "$STATE" ]; then echo "netns_mpi.sh: already up; taking it down first"; cmd_down; fi
    # the steps run in a child bash (its own set -e), so that any failure is undone here
    if ! bash "$self" _up "$@"; then
        echo "netns_mpi.sh: up failed, undoing" >&2
        cmd_down >/dev/null 2>&1 || true
        exit 1
    fi
}

cmd_up_steps() {
    local rate=${1:-1gbit} delay=${2:-0}
    case "$delay" in 0|0ms|0us|0s) delay=0;; esac
    mkdir -p "$STATE"
    [ -d /etc/netns ] || { mkdir /etc/netns; touch "$STATE/made-etc-netns"; }
    ip netns add "$NS0"
    ip netns add "$NS1"
    ip link add "$VETH0" netns "$NS0" type veth peer name "$VETH1" netns "$NS1"
    local ns dev ip
    for i in 0 1; do
        if [ $i = 0 ]; then ns=$NS0 dev=$VETH0 ip=$IP0; else ns=$NS1 dev=$VETH1 ip=$IP1; fi
        # IPv6 off: otherwise the TCP BTL also opens the link-local address (same link, but two addresses)
        in_ns "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null || true
        in_ns "$ns" ip link set lo up
        in_ns "$ns" ip addr add "$ip/24" dev "$dev"
        in_ns "$ns" ip link set "$dev" up
        mkdir -p "/etc/netns/$ns"
        printf '127.0.0.1 localhost\n%s %s\n%s %s\n' "$IP0" "$NS0" "$IP1" "$NS1" > "/etc/netns/$ns/hosts"
        shape "$ns" "$dev" "$rate" "$delay"
    done
    printf 'rate=%s\ndelay=%s\nburst=%s\nlimit=%s\n' "$rate" "$delay" "$TBF_BURST" "$TBF_LIMIT" > "$STATE/shaping"
    echo "up: $NS0 $IP0 ($VETH0) <-> $NS1 $IP1 ($VETH1), rate $rate per direction, one-way delay $delay"
    in_ns "$NS0" tc qdisc show dev "$VETH0" | sed 's/^/  ns0: /'
    in_ns "$NS1" tc qdisc show dev "$VETH1" | sed 's/^/  ns1: /'
}

cmd_down() {
    need_root
    local ns pid
    for ns in "$NS0" "$NS1"; do
        if ip netns list 2>/dev/null | grep -qw "$ns"; then
            # processes still in the namespace (a stuck rank or orted of ours): end them by id
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
            sleep 0.2
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns"          # deleting the namespace deletes its veth end and qdiscs
        fi
        rm -rf "/etc/netns/$ns"
    done
    if [ -f "$STATE/made-etc-netns" ]; then rmdir /etc/netns 2>/dev/null || true; fi
    rm -rf "$STATE"
    echo "down: no $NS0/$NS1 namespaces, veth or qdiscs left"
}

cmd_status() {
    if ! is_up; then echo "down"; return 0; fi
    [ -f "$STATE/shaping" ] && tr '\n' ' ' < "$STATE/shaping" && echo
    for ns in "$NS0" "$NS1"; do
        echo "== $ns"
        in_ns "$ns" ip -br addr
        in_ns "$ns" tc -s qdisc show | sed 's/^/  /'
    done
}

# The rsh agent mpirun calls instead of ssh: agent [OPTIONS] HOST COMMAND... ; COMMAND is one shell string, as
# ssh would hand it to the remote shell. Runs it in HOST's namespace, with HOST as the hostname (own UTS ns).
cmd_agent() {
    while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
    local host=${1:-}; shift || true
    case "$host" in
        "$NS0"|"$IP0") host=$NS0;;
        "$NS1"|"$IP1") host=$NS1;;
        *) die "agent: unknown host '$host' (only $NS0 and $NS1)";;
    esac
    exec ip netns exec "$host" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$host" "$*"
}

# Each rank's program goes through here: "{rank}" in an argument becomes this rank's number.
cmd_exec() {
    [ "${1:-}" = -- ] && shift
    local r=${OMPI_COMM_WORLD_RANK:?not started by mpirun} a out=()
    for a in "$@"; do out+=("${a//\{rank\}/$r}"); done
    exec "${out[@]}"
}

cmd_run() {
    need_root
    is_up || die "not up: run 'bench/netns_mpi.sh up' first"
    local extra=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do extra+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || die "usage: netns_mpi.sh run [MPIRUN-OPTIONS] -- PROGRAM [ARGS...]"
    local prog=("$@")
    # The repository's duet script builds before it runs: build once here, then run the built dll in both ranks.
    if [ "${NETNS_MPI_PREBUILD:-1}" = 1 ] && [ -f "$1" ] && [ "$(realpath "$1")" = "$(realpath "$repo/duet")" ]; then
        local dll="$repo/src/Duet.Cli/bin/Release/net10.0/duet.dll"
        echo "netns_mpi.sh: building duet once before the ranks start" >&2
        "$1" --version >/dev/null || die "building duet failed"
        [ -f "$dll" ] || die "duet built but $dll is missing"
        prog=(dotnet "$dll" "${@:2}")
    fi
    local hostfile timeout=${NETNS_MPI_TIMEOUT:-3600} root=()
    [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
    hostfile=$(mktemp /tmp/netns_mpi_hosts.XXXXXX)
    trap 'rm -f "${hostfile:-}"' EXIT
    printf '%s slots=1\n%s slots=1\n' "$NS0" "$NS1" > "$hostfile"
    local rc=0
    timeout -k 10 $((timeout + 60)) \
        ip netns exec "$NS0" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$NS0" \
        mpirun "${root[@]}" --hostfile "$hostfile" -np 2 --map-by node --bind-to none --timeout "$timeout" \
            --mca plm_rsh_agent "$self agent" \
            --mca oob_tcp_if_include "$NET" \
            --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$NET" \
            "${extra[@]}" \
            "$self" _exec -- "${prog[@]}" || rc=$?
    rm -f "$hostfile"
    return $rc
}

cpu_idle() {  # percent of all CPU time that was idle over 2 s
    local a b c d e f g t1 i1 t2 i2
    read -r _ a b c d e f g _ < /proc/stat; t1=$((a + b + c + d + e + f + g)); i1=$((d + e))
    sleep 2
    read -r _ a b c d e f g _ < /proc/stat; t2=$((a + b + c + d + e + f + g)); i2=$((d + e))
    echo $(( 100 * (i2 - i1) / (t2 - t1 + 1) ))
}

cmd_check() {
    need_root
    local mb=${1:-100} reps=${2:-3} out
    "$PY" -c 'import mpi4py, numpy' 2>/dev/null \
        || die "check needs Debian's python3-mpi4py for $PY: apt-get install python3-mpi4py"
    out=$(mktemp -d /tmp/netns_mpi_check.XXXXXX)
    trap '[ -z "${out:-}" ] || rm -rf "$out"' EXIT
    local args=(--mb "$mb" --reps "$reps" --max-seconds 120)
    local idle
    idle=$(cpu_idle)
    echo "check: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ${idle}% idle over the last 2 s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    [ "$idle" -ge 80 ] || echo "check: warning: the machine is busy; the ranks compete for cores and the numbers will show it"

    echo "check: [1/2] two ranks over loopback in this namespace (no netns, no shaping)"
    local root=()
    [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
    timeout -k 10 300 mpirun "${root[@]}" -np 2 --oversubscribe --bind-to none --timeout 240 \
        --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo \
        "$PY" "$here/mpi_link_check.py" "${args[@]}" --label "loopback (no netns)" | tee "$out/loopback.txt" | grep -v '^RESULT '

    if is_up; then
        echo "check: [2/2] rank 0 in $NS0, rank 1 in $NS1, over the veth ($(tr '\n' ' ' < "$STATE/shaping" 2>/dev/null))"
        local tx0 tx1
        tx0=$(in_ns "$NS0" cat "/sys/class/net/$VETH0/statistics/tx_bytes")
        tx1=$(in_ns "$NS1" cat "/sys/class/net/$VETH1/statistics/tx_bytes")
        NETNS_MPI_TIMEOUT=240 cmd_run -- "$PY" "$here/mpi_link_check.py" "${args[@]}" --label "netns veth" \
            | tee "$out/netns.txt" | grep -v '^RESULT '
        tx0=$(( $(in_ns "$NS0" cat "/sys/class/net/$VETH0/statistics/tx_bytes") - tx0 ))
        tx1=$(( $(in_ns "$NS1" cat "/sys/class/net/$VETH1/statistics/tx_bytes") - tx1 ))
        echo "   bytes sent over the veth during the run: $VETH0 $((tx0 / 1000000)) MB, $VETH1 $((tx1 / 1000000)) MB"
    else
        echo "check: [2/2] skipped: the namespaces are not up ('bench/netns_mpi.sh up' first)"
    fi

    # one table; MB/s are medians of the repetitions, best in parentheses
    cat "$out"/*.txt | grep '^RESULT ' | sed 's/^RESULT //' | "$PY" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print()
print("| path | latency, 8 B half round trip (us) | one-way MB/s | sendrecv MB/s each way | allreduce MB/s |")
print("|---|---|---|---|---|")
for r in rows:
    bw = r["bandwidth"]
    cell = lambda k: "%.1f (%.1f)" % (bw[k]["MBps_median"], bw[k]["MBps_best"]) if k in bw else "-"
    print("| %s | %.1f | %s | %s | %s |" % (r["label"], r["latency"]["half_rtt_us_median"],
          cell("send_one_way"), cell("sendrecv_two_way"), cell("allreduce_sum")))
print("(%d MB float32 messages, MB = 10^6 bytes; median of the repetitions, best in parentheses)" % (rows[0]["bytes"] // 10**6) if rows else "")
'
    rm -rf "$out"
}

case "${1:-}" in
    up) shift; cmd_up "$@";;
    _up) shift; cmd_up_steps "$@";;
    down) shift; cmd_down "$@";;
    status) shift; cmd_status "$@";;
    run) shift; cmd_run "$@";;
    check) shift; cmd_check "$@";;
    agent) shift; cmd_agent "$@";;
    _exec) shift; cmd_exec "$@";;
    *) sed -n '2,21p' "$self" | sed 's/^# \{0,1\}//'; exit 2;;
esac
