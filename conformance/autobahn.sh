#!/usr/bin/env bash
# The Autobahn|Testsuite against ws-machine with permessage-deflate on:
# installs the fuzzing server (setup.sh), builds the driver
# (crates/ws-machine/examples/autobahn.rs), starts the server on
# 127.0.0.1:9001 with fuzzingserver.json, runs every case (or FIRST[-LAST]),
# stops the server and summarizes the report. Exits non-zero if a case
# FAILED, a case did not end, or a step did not finish in its time.
#
#   conformance/autobahn.sh [FIRST[-LAST]]
#
# Reports: conformance/reports/clients/index.html (and index.json);
# the server's log and the driver's output are beside them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
reports=conformance/reports
python2=target/autobahn/venv/bin/python
port=9001
server_pid=

stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}
trap stop_server EXIT

listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

conformance/setup.sh
echo "building the driver (release)"
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} timeout 3600 \
    cargo build --release --quiet -p ws-machine --example autobahn
driver=target/release/examples/autobahn

if listening; then
    echo "autobahn.sh: something already listens on 127.0.0.1:$port" >&2
    exit 1
fi
rm -rf "$reports"
mkdir -p "$reports"
"$python2" -u conformance/fuzzingserver.py -m fuzzingserver \
    -s conformance/fuzzingserver.json --webport 0 >"$reports/fuzzingserver.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
    listening && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "autobahn.sh: the fuzzing server exited; its log:" >&2
        cat "$reports/fuzzingserver.log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! listening; then
    echo "autobahn.sh: the fuzzing server does not listen on 127.0.0.1:$port after 30 s" >&2
    exit 1
fi

started=$(date +%s)
# One line per case goes to driver.log only.
set +e
timeout 3600 "$driver" "ws://127.0.0.1:$port" "$@" 2>&1 | tee "$reports/driver.log" | grep -v '^case '
driver_status=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - started))
stop_server

echo "driver: exit status $driver_status, ${elapsed} s"
summary_status=0
python3 conformance/summarize.py "$reports/clients/index.json" || summary_status=$?
if ((driver_status != 0)); then
    echo "autobahn.sh: the driver failed (exit status $driver_status); see $reports/driver.log" >&2
    exit 1
fi
exit "$summary_status"
