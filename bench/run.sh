#!/usr/bin/env bash
# Benchmarks ws-machine against the bare engine it wraps (tokio-websockets),
# following the bench contract, and prints a Markdown table of medians.
#
#   bench/run.sh [--quick] [REPETITIONS]     (default: 3 repetitions)
#
# Builds `wsm` (the echo server) and `wsm-bench` (the client) in release
# mode, starts echo servers on 127.0.0.1 pinned to core 0 and runs every
# client pinned to core 1 (when `taskset` exists). Within each repetition the
# machine and the bare engine run back to back, taking turns at going first.
# Every run is bounded by `timeout`; a failed run is reported and skipped, and
# the script exits 1 at the end if any failed.
#
# Results: bench/results/<date>.jsonl, one line per run:
#   {"label":"...","rep":N,"report":<the client's JSON line, verbatim>}
# bench/summarize.py turns that file into the table.
#
# --quick uses small sizes (for checking the script; about a minute).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=0
reps=3
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h | --help)
            sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *[!0-9]* | '')
            echo "run.sh: unknown argument '$arg' (expected --quick or a number of repetitions)" >&2
            exit 2
            ;;
        *) reps=$arg ;;
    esac
done
if ((reps < 1)); then
    echo "run.sh: at least one repetition" >&2
    exit 2
fi

if ((quick)); then
    small_msgs=20000 big_msgs=2000 rounds=2000 churn_msgs=2000
    idle_sizes=(200 1000)
else
    small_msgs=200000 big_msgs=20000 rounds=20000 churn_msgs=20000
    idle_sizes=(2000 10000)
fi
small_size=64 big_size=16384 churn_size=64
close_after=1000 freeze_ms=1000 ping_ms=100 pong_ms=200

for tool in cargo python3 timeout; do
    command -v "$tool" >/dev/null || {
        echo "run.sh: '$tool' is needed" >&2
        exit 1
    }
done

# ---- Build ------------------------------------------------------------------
echo "building (release)..." >&2
cargo build --release --quiet -p wsm -p wsm-bench
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
wsm="$target_dir/release/wsm"
bench="$target_dir/release/wsm-bench"

# ---- File limit: every idle connection is a socket in each process ----------
max_idle=0
for n in "${idle_sizes[@]}"; do
    if ((n > max_idle)); then max_idle=$n; fi
done
need_files=$((2 * max_idle > 1024 ? 2 * max_idle : 1024))
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < need_files)); then
    echo "run.sh: the hard limit on open files is $hard; the idle runs need $need_files." >&2
    echo "        Raise it (e.g. 'ulimit -Hn $need_files' as root, or in /etc/security/limits.conf)." >&2
    exit 1
fi
if [[ $hard == unlimited ]]; then
    ulimit -n 1048576 2>/dev/null || ulimit -n "$need_files"
else
    ulimit -n "$hard"
fi
echo "open files limit: $(ulimit -n)" >&2

# ---- Pinning: server on core 0, client on core 1 ---------------------------
server_pin=()
client_pin=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    server_pin=(taskset -c 0)
    client_pin=(taskset -c 1)
else
    echo "run.sh: warning: no taskset or fewer than 2 cores; server and client are not pinned" >&2
fi

# ---- Results -----------------------------------------------------------------
mkdir -p bench/results
stamp=$(date +%Y%m%d-%H%M%S)
suffix=""
if ((quick)); then suffix="-quick"; fi
results="bench/results/$stamp$suffix.jsonl"
: >"$results"
work=$(mktemp -d)

# ---- Servers -----------------------------------------------------------------
server_pids=()
servers_started=0

cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME [FLAGS...]: starts an echo server on a free port and sets
# $url and $server_pid.
start_server() {
    local name=$1
    shift
    # A file of its own, created before the server starts: reading it can
    # never see an earlier server's line, nor find it missing.
    servers_started=$((servers_started + 1))
    local out="$work/server-$servers_started-$name.out" err="$work/server-$servers_started-$name.err"
    : >"$out"
    "${server_pin[@]}" "$wsm" echo-server --addr 127.0.0.1:0 "$@" >"$out" 2>"$err" &
    server_pid=$!
    server_pids+=("$server_pid")
    url=""
    local tries
    for ((tries = 0; tries < 100; tries++)); do
        url=$(sed -n 's/^listening on //p' "$out")
        [[ -n $url ]] && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "run.sh: the $name server did not start:" >&2
            cat "$err" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "run.sh: the $name server printed no 'listening on' line within 10 s" >&2
    exit 1
}

# stop_server PID: Ctrl-C (the server's way to stop), then KILL after 5 s.
stop_server() {
    local pid=$1 tries
    kill -INT "$pid" 2>/dev/null || true
    for ((tries = 0; tries < 50; tries++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local kept=()
    local p
    for p in "${server_pids[@]}"; do [[ $p != "$pid" ]] && kept+=("$p"); done
    server_pids=("${kept[@]}")
}

# ---- Runs --------------------------------------------------------------------
failures=0

# run LABEL REP LIMIT_SECS ARGS...: one client run, bounded; its JSON line is
# saved with its label.
run() {
    local label=$1 rep=$2 limit=$3
    shift 3
    local line status=0
    line=$(timeout --kill-after=5 "$limit" "${client_pin[@]}" "$bench" "$@" 2>"$work/client.err") || status=$?
    if ((status != 0)) || [[ $line != \{* ]]; then
        failures=$((failures + 1))
        echo "  FAILED ($label, rep $rep, exit $status): $*" >&2
        sed 's/^/    /' "$work/client.err" >&2
        ((status == 124)) && echo "    (timed out after ${limit}s)" >&2
        return 0
    fi
    printf '{"label":"%s","rep":%d,"report":%s}\n' "$label" "$rep" "$line" >>"$results"
    echo "  $label: $line" >&2
}

# pair LABEL REP LIMIT ARGS...: the machine and the bare engine, taking turns
# at going first.
pair() {
    local label=$1 rep=$2 limit=$3
    shift 3
    if ((rep % 2)); then
        run "$label" "$rep" "$limit" "$@"
        run "$label" "$rep" "$limit" "$@" --raw
    else
        run "$label" "$rep" "$limit" "$@" --raw
        run "$label" "$rep" "$limit" "$@"
    fi
}

echo "results: $results" >&2
for ((rep = 1; rep <= reps; rep++)); do
    echo "repetition $rep/$reps" >&2

    start_server plain
    plain_url=$url plain_pid=$server_pid
    pair "throughput $small_size B x $small_msgs" "$rep" 180 \
        throughput --url "$plain_url" --messages "$small_msgs" --size "$small_size"
    pair "throughput $big_size B x $big_msgs" "$rep" 180 \
        throughput --url "$plain_url" --messages "$big_msgs" --size "$big_size"
    pair "latency $small_size B x $rounds" "$rep" 180 \
        latency --url "$plain_url" --rounds "$rounds" --size "$small_size"
    stop_server "$plain_pid"

    # A fresh server for every idle run, so that its connections and memory
    # start clean.
    for conns in "${idle_sizes[@]}"; do
        if ((rep % 2)); then variants=("" --raw); else variants=(--raw ""); fi
        for raw in "${variants[@]}"; do
            start_server idle
            run "idle $conns" "$rep" 120 idle --url "$url" --conns "$conns" ${raw:+"$raw"}
            stop_server "$server_pid"
        done
    done

    start_server churn --close-after "$close_after"
    churn_url=$url churn_pid=$server_pid
    run "churn min-uptime 0, ack" "$rep" 90 churn --url "$churn_url" \
        --messages "$churn_msgs" --size "$churn_size" --min-uptime-ms 0
    run "churn min-uptime 0, no-ack" "$rep" 90 churn --url "$churn_url" \
        --messages "$churn_msgs" --size "$churn_size" --min-uptime-ms 0 --no-ack
    run "churn default min-uptime, ack" "$rep" 90 churn --url "$churn_url" \
        --messages "$churn_msgs" --size "$churn_size"
    stop_server "$churn_pid"

    start_server deadpeer --freeze-after-ms "$freeze_ms"
    run "deadpeer ping $ping_ms ms, pong $pong_ms ms" "$rep" 150 deadpeer --url "$url" \
        --ping-interval-ms "$ping_ms" --pong-timeout-ms "$pong_ms" --freeze-after-ms "$freeze_ms"
    stop_server "$server_pid"
done

# ---- Summary -----------------------------------------------------------------
{
    echo "## ws-machine vs tokio-websockets ($stamp${suffix:+, quick sizes})"
    echo
    echo "- $reps repetition(s); medians; ratios and differences are medians of per-repetition pairs."
    echo "- commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)'), $(rustc --version)"
    echo "- $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)); server pinned: ${server_pin[*]:-no}, client pinned: ${client_pin[*]:-no}"
    echo
    python3 bench/summarize.py "$results"
} | tee "${results%.jsonl}.md"
echo >&2
echo "saved: $results and ${results%.jsonl}.md" >&2

if ((failures)); then
    echo "run.sh: $failures run(s) failed" >&2
    exit 1
fi
