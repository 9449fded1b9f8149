#!/usr/bin/env bash
# The engine comparison of issue 8 (permessage-deflate), in one run:
# the machine on tokio-websockets, on yawc with compression off and on,
# and the bare engines, against one echo server.
#
#   bench/engines.sh [--quick] [REPETITIONS]     (default: 5 repetitions)
#
# Builds `wsm` and `wsm-bench` (with `wsm-bench-echo`, an echo server on
# yawc that accepts permessage-deflate when offered) in release mode. Servers
# run on 127.0.0.1 pinned to core 0, clients on core 1 (with `taskset`), as
# in bench/run.sh. Per repetition, every client runs every scenario once, in
# an order that rotates from one repetition to the next:
#
#   throughput 64 B x 200,000 and 16 KiB x 20,000, with the contract's
#   payload (one shared buffer of 0xa5 bytes: the best case for deflate) and
#   with distinct JSON-like texts (--payload json: what a feed compresses);
#   idle, 2,000 connections, a fresh server per run; and the machines
#   again, each after exchanging one 1 KiB message (compression in use).
#
# Against `wsm-bench-echo` (yawc, accepts permessage-deflate): the machine
# without compression (tokio-websockets), the machine with compression
# (`--compression`: yawc, deflate agreed), and the bare engines. Against
# `wsm echo-server` (tokio-websockets, the server of bench/run.sh, declines
# compression): the machine without compression, the machine offering it
# (yawc, declined: yawc uncompressed through the machine), and the bare
# engines without compression.
#
# Results: bench/results/engines-<date>.jsonl, one line per run:
#   {"label":"...","server":"...","case":"...","rep":N,"report":<the client's JSON line>}
# and the tables bench/summarize_engines.py prints from it (.md beside it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=0
reps=5
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h | --help)
            sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *[!0-9]* | '')
            echo "engines.sh: unknown argument '$arg'" >&2
            exit 2
            ;;
        *) reps=$arg ;;
    esac
done

if ((quick)); then
    small_msgs=20000 big_msgs=2000 idle_conns=200
else
    small_msgs=200000 big_msgs=20000 idle_conns=2000
fi

echo "building (release)..." >&2
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release --quiet -p wsm -p wsm-bench
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
wsm="$target_dir/release/wsm"
bench="$target_dir/release/wsm-bench"
echo_yawc="$target_dir/release/wsm-bench-echo"

need_files=$((2 * idle_conns + 1024))
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < need_files)); then
    echo "engines.sh: the hard limit on open files is $hard; the idle runs need $need_files." >&2
    exit 1
fi
if [[ $hard == unlimited ]]; then ulimit -n 1048576 2>/dev/null || ulimit -n "$need_files"; else ulimit -n "$hard"; fi

server_pin=()
client_pin=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    server_pin=(taskset -c 0)
    client_pin=(taskset -c 1)
fi

mkdir -p bench/results
stamp=$(date +%Y%m%d-%H%M%S)
suffix=""
if ((quick)); then suffix="-quick"; fi
results="bench/results/engines-$stamp$suffix.jsonl"
: >"$results"
work=$(mktemp -d)
server_pids=()

cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server KIND: KIND is yawc (wsm-bench-echo) or tws (wsm echo-server);
# sets $url and $server_pid.
start_server() {
    local kind=$1 out="$work/server.out" err="$work/server.err"
    : >"$out"
    if [[ $kind == yawc ]]; then
        "${server_pin[@]}" "$echo_yawc" --addr 127.0.0.1:0 >"$out" 2>"$err" &
    else
        "${server_pin[@]}" "$wsm" echo-server --addr 127.0.0.1:0 >"$out" 2>"$err" &
    fi
    server_pid=$!
    server_pids+=("$server_pid")
    url=""
    local tries
    for ((tries = 0; tries < 100; tries++)); do
        url=$(sed -n 's/^listening on //p' "$out")
        [[ -n $url ]] && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "engines.sh: the $kind server did not start:" >&2
            cat "$err" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "engines.sh: no 'listening on' line from the $kind server" >&2
    exit 1
}

stop_server() {
    local pid=$1 tries p kept=()
    kill -INT "$pid" 2>/dev/null || true
    for ((tries = 0; tries < 50; tries++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${server_pids[@]}"; do [[ $p != "$pid" ]] && kept+=("$p"); done
    server_pids=("${kept[@]}")
}

failures=0

# Each client: a label and its flags. machine-yawc and machine-yawc-deflate
# are the same client (a machine offering compression); the server decides.
labels=(machine-tws machine-yawc-deflate tws yawc yawc-deflate)
declare -A flags_of=([machine-tws]="" [machine-yawc]="--compression" [machine-yawc-deflate]="--compression"
    [tws]="--raw" [yawc]="--raw --raw-engine yawc" [yawc-deflate]="--raw --raw-engine yawc-deflate")
compression_off=(machine-tws machine-yawc tws yawc)

# run LABEL SERVER CASE REP LIMIT ARGS...: one client run, bounded.
run() {
    local label=$1 server=$2 case=$3 rep=$4 limit=$5
    shift 5
    local line status=0
    # shellcheck disable=SC2086
    line=$(timeout --kill-after=5 "$limit" \
        "${client_pin[@]}" "$bench" "$@" ${flags_of[$label]} 2>"$work/client.err") || status=$?
    if ((status != 0)) || [[ $line != \{* ]]; then
        failures=$((failures + 1))
        echo "  FAILED ($label, $server, rep $rep, exit $status): $*" >&2
        sed 's/^/    /' "$work/client.err" >&2
        return 0
    fi
    printf '{"label":"%s","server":"%s","case":"%s","rep":%d,"report":%s}\n' \
        "$label" "$server" "$case" "$rep" "$line" >>"$results"
    echo "  $label @$server: $line" >&2
}

# rotated REP LABELS...: the labels, starting at position REP.
rotated() {
    local rep=$1
    shift
    local all=("$@") n=$# i
    for ((i = 0; i < n; i++)); do echo "${all[$(((i + rep) % n))]}"; done
}

echo "results: $results" >&2
for ((rep = 1; rep <= reps; rep++)); do
    echo "repetition $rep/$reps (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    for server in yawc tws; do
        if [[ $server == yawc ]]; then clients=("${labels[@]}"); else clients=("${compression_off[@]}"); fi
        start_server "$server"
        for payload in same json; do
            for label in $(rotated "$rep" "${clients[@]}"); do
                run "$label" "$server" "64 B x $small_msgs, $payload" "$rep" 180 throughput \
                    --url "$url" --messages "$small_msgs" --size 64 --payload "$payload"
            done
            for label in $(rotated "$rep" "${clients[@]}"); do
                run "$label" "$server" "16 KiB x $big_msgs, $payload" "$rep" 180 throughput \
                    --url "$url" --messages "$big_msgs" --size 16384 --payload "$payload"
            done
        done
        stop_server "$server_pid"
    done
    for server in yawc tws; do
        if [[ $server == yawc ]]; then clients=("${labels[@]}"); else clients=("${compression_off[@]}"); fi
        for label in $(rotated "$rep" "${clients[@]}"); do
            start_server "$server"
            run "$label" "$server" "idle $idle_conns" "$rep" 120 idle --url "$url" --conns "$idle_conns"
            stop_server "$server_pid"
        done
    done
    # Machines that have each exchanged one message: with compression, the
    # compressor and decompressor then exist.
    for label in $(rotated "$rep" machine-tws machine-yawc-deflate); do
        start_server yawc
        run "$label" yawc "idle $idle_conns, one message each" "$rep" 120 idle --url "$url" \
            --conns "$idle_conns" --exchange
        stop_server "$server_pid"
    done
done

{
    echo "## Engines for permessage-deflate ($stamp${suffix:+, quick sizes})"
    echo
    echo "- \`bench/engines.sh $*\`: $reps repetition(s); medians; ratios are medians of per-repetition ratios."
    echo "- commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)'), $(rustc --version)"
    echo "- $(nproc) cores; server pinned: ${server_pin[*]:-no}, client pinned: ${client_pin[*]:-no}; load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    python3 bench/summarize_engines.py "$results"
} | tee "${results%.jsonl}.md"
echo "saved: $results and ${results%.jsonl}.md" >&2
if ((failures)); then
    echo "engines.sh: $failures run(s) failed" >&2
    exit 1
fi
