#!/usr/bin/env bash
# N `duet serve` replicas on loopback behind nginx (deploy/nginx/duet.conf.template), with an active health
# watcher; everything stops when this script does (Ctrl-C, SIGTERM, or --lifetime).
#
# Usage: deploy/replicas.sh -m MODEL [-n N] [--port PORT] [--base-port PORT] [--work DIR] [--lifetime SECONDS]
#                           [--restart] [--nginx-workers N|auto] [--max-body SIZE] [DUET SERVE ARGS...] [-- DUET SERVE ARGS...]
#   -m, --model MODEL   passed to every replica (repeatable, as duet serve takes it; --models DIR also works)
#   -n N                replicas (default 3), on 127.0.0.1:BASE_PORT .. BASE_PORT+N-1
#   --port PORT         nginx listens on 127.0.0.1:PORT (default 8080)
#   --base-port PORT    first replica port (default PORT+1)
#   --work DIR          logs, pid files and nginx's prefix (default /tmp/duet-replicas-PORT)
#   --lifetime SECONDS  stop everything this long after the start (default: run until stopped)
#   --restart           start a replica again when its process exits (at most once every 10 s)
#   --nginx-workers N   nginx worker_processes (default auto)
#   --max-body SIZE     nginx client_max_body_size (default 4m, duet serve's --max-body default)
#   anything else       passed to every `duet serve` (--parallel 8 -t 1 --ctx 1024 --api-key K ...); not --host
#                       or --port: the replicas listen on loopback ports chosen here
# Example: deploy/replicas.sh -m out/duet-tiny.gguf -n 3 --port 8080 --parallel 8 -t 1
#          curl -N http://127.0.0.1:8080/v1/chat/completions -d '{"messages":[{"role":"user","content":"hi"}],"stream":true}'
# Environment: DUET_DLL (a built duet.dll; default: build src/Duet.Cli in Release and use it), NGINX_BIN (default nginx
# on the PATH, else /usr/sbin/nginx; not NGINX, which nginx itself reads).
# Files in DIR: replica-I.log, replica-I.pid (I = 1..N), nginx/ (nginx.conf, upstreams.conf, health.conf,
# error.log, access.log: each line names the replica(s) tried), and this script's own log on stderr.
# The health watcher polls each replica's GET /health every second; a replica that fails it twice running is
# marked "down" in nginx/upstreams.conf, one that answers 200 again is put back, and nginx is reloaded (SIGHUP)
# on every change. Between polls nginx's passive checks (max_fails=1 fail_timeout=10s) and its retry of
# requests that failed before any byte came back (proxy_next_upstream) cover a replica that just died.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

n=3 port=8080 base_port="" work="" lifetime="" restart=0 workers=auto max_body=4m
pass=() have_model=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --base-port) base_port="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --lifetime) lifetime="$2"; shift 2 ;;
    --restart) restart=1; shift ;;
    --nginx-workers) workers="$2"; shift 2 ;;
    --max-body) max_body="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; pass+=("$@"); break ;;
    -m|--model|--models) have_model=1; pass+=("$1" "$2"); shift 2 ;;
    --host|--host=*|--port=*) echo "replicas.sh: $1 is not passed to the replicas: they listen on 127.0.0.1 ports from --base-port" >&2; exit 2 ;;
    *) pass+=("$1"); shift ;;
  esac
done
for a in "${pass[@]}"; do case "$a" in -m|--model|--models|--model=*|--models=*) have_model=1 ;; --host|--host=*|--port|--port=*) echo "replicas.sh: $a is chosen by this script" >&2; exit 2 ;; esac; done
[ "$have_model" = 1 ] || { echo "replicas.sh: give -m MODEL (see --help)" >&2; exit 2; }
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "replicas.sh: -n $n: a positive number" >&2; exit 2; }
[ -n "$base_port" ] || base_port=$((port + 1))
[ -n "$work" ] || work="/tmp/duet-replicas-$port"
nginx_bin="${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}"  # /usr/sbin is not on every user's PATH
unset NGINX  # nginx reads it as a list of inherited sockets
command -v "$nginx_bin" > /dev/null || { echo "replicas.sh: nginx not found (apt-get install -y nginx-light)" >&2; exit 1; }
command -v curl > /dev/null || { echo "replicas.sh: curl not found" >&2; exit 1; }
if [ -n "${DUET_DLL:-}" ]; then
  duet=(dotnet "$DUET_DLL")
else
  "$root/duet" --help > /dev/null   # builds src/Duet.Cli (Release) once, so the replicas do not all build at once
  duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
fi

log() { echo "$(date +%H:%M:%S) replicas.sh: $*" >&2; }
rport() { echo $((base_port + $1 - 1)); }
busy() { curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/" 2> /dev/null; }  # something already answers there
for p in "$port" $(for i in $(seq 1 "$n"); do rport "$i"; done); do
  if busy "$p"; then echo "replicas.sh: 127.0.0.1:$p is in use" >&2; exit 1; fi
done

prefix="$work/nginx"
mkdir -p "$work" "$prefix/tmp"
work="$(cd "$work" && pwd)" prefix="$work/nginx"
rm -f "$work"/replica-*.pid
nginx_pid=""

stop_pid() {  # SIGTERM, then SIGKILL after 10 s
  local pid="$1"
  kill -TERM "$pid" 2> /dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2> /dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  set +e
  [ -n "$nginx_pid" ] && stop_pid "$nginx_pid"
  for f in "$work"/replica-*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" & done
  wait 2> /dev/null
  log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_replica() {
  local i="$1"
  "${duet[@]}" serve "${pass[@]}" --port "$(rport "$i")" >> "$work/replica-$i.log" 2>&1 &
  echo $! > "$work/replica-$i.pid"
}
healthy() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$(rport "$1")/health" 2> /dev/null)" = 200 ]; }

# upstreams.conf and health.conf from a state string: one character per replica, 1 up, 0 down.
write_conf() {
  local state="$1" up=0 i
  for i in $(seq 1 "$n"); do [ "${state:i-1:1}" = 1 ] && up=$((up + 1)); done
  {
    echo "# written by deploy/replicas.sh: $up of $n replicas healthy"
    for i in $(seq 1 "$n"); do
      # With none healthy, all stay listed: nginx then tries them in turn rather than refusing at once.
      local down=""
      [ "${state:i-1:1}" = 1 ] || [ "$up" = 0 ] || down=" down"
      echo "server 127.0.0.1:$(rport "$i") max_fails=1 fail_timeout=10s$down;"
    done
  } > "$prefix/upstreams.conf.new"
  mv "$prefix/upstreams.conf.new" "$prefix/upstreams.conf"
  if [ "$up" -gt 0 ]; then
    echo "return 200 '{\"status\":\"ok\",\"replicas\":$n,\"healthy\":$up}\n';" > "$prefix/health.conf.new"
  else
    echo "return 503 '{\"status\":\"error\",\"replicas\":$n,\"healthy\":0}\n';" > "$prefix/health.conf.new"
  fi
  mv "$prefix/health.conf.new" "$prefix/health.conf"
}

for i in $(seq 1 "$n"); do start_replica "$i"; done
log "starting $n replicas on 127.0.0.1:$(rport 1)..$(rport "$n"): duet serve ${pass[*]}"
ready=0
for _ in $(seq 1 600); do  # up to 5 minutes
  ready=0
  for i in $(seq 1 "$n"); do
    kill -0 "$(cat "$work/replica-$i.pid")" 2> /dev/null || { log "replica $i exited:"; tail -n 20 "$work/replica-$i.log" >&2; exit 1; }
    healthy "$i" && ready=$((ready + 1))
  done
  [ "$ready" = "$n" ] && break
  sleep 0.5
done
[ "$ready" = "$n" ] || { log "replicas not ready after 5 minutes"; exit 1; }

sed -e "s|@PREFIX@|$prefix|g" -e "s|@LISTEN@|127.0.0.1:$port|g" -e "s|@WORKERS@|$workers|g" -e "s|@MAX_BODY@|$max_body|g" \
  "$root/deploy/nginx/duet.conf.template" > "$prefix/nginx.conf"
state="$(printf '1%.0s' $(seq 1 "$n"))"
write_conf "$state"
"$nginx_bin" -t -q -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;'
"$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/health" 2> /dev/null)" = 200 ] && break
  kill -0 "$nginx_pid" 2> /dev/null || { log "nginx exited:"; tail -n 20 "$prefix/error.log" >&2; exit 1; }
  sleep 0.1
done
log "ready: http://127.0.0.1:$port (nginx pid $nginx_pid, $n replicas, work dir $work)"

# The health watcher, in this script's main loop: one poll of every replica a second while nginx runs.
fails=() restarted=()
for i in $(seq 1 "$n"); do fails[i]=0; restarted[i]=-10; done
while kill -0 "$nginx_pid" 2> /dev/null; do
  sleep 1 & wait $!   # a signal interrupts the wait, not a whole second of sleep
  if [ -n "$lifetime" ] && [ "$SECONDS" -ge "$lifetime" ]; then log "--lifetime $lifetime s over"; exit 0; fi
  next=""
  for i in $(seq 1 "$n"); do
    if [ "$restart" = 1 ] && ! kill -0 "$(cat "$work/replica-$i.pid")" 2> /dev/null && [ $((SECONDS - restarted[i])) -ge 10 ]; then
      log "replica $i (127.0.0.1:$(rport "$i")) exited; starting it again"
      restarted[i]=$SECONDS
      start_replica "$i"
    fi
    if healthy "$i"; then
      fails[i]=0 s=1
    else
      fails[i]=$((fails[i] + 1)) s="${state:i-1:1}"
      [ "${fails[i]}" -ge 2 ] && s=0
    fi
    next+="$s"
  done
  if [ "$next" != "$state" ]; then
    for i in $(seq 1 "$n"); do
      [ "${next:i-1:1}" = "${state:i-1:1}" ] || log "replica $i (127.0.0.1:$(rport "$i")) $([ "${next:i-1:1}" = 1 ] && echo up || echo down)"
    done
    state="$next"
    write_conf "$state"
    kill -HUP "$nginx_pid"
  fi
done
log "nginx exited"
exit 1
