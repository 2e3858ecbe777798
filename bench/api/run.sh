#!/bin/bash
# REST API load: wrk against `ragd serve` on loopback, bounded in time.
#
#   bench/api/run.sh [-b BUILD_DIR] [-d SECONDS] [-c CONNECTIONS] [-t WRK_THREADS]
#
#   -b  build tree holding the ragd binary (default: build-bench, else build)
#   -d  duration of each run in seconds (default 10)
#   -c  concurrent connections (default 32; kept below the server's request capacity,
#       handler_threads + max_queued_requests = 4 + 64, so no request may fail)
#   -t  wrk threads (default 1: on a 2-core machine the server needs the other core)
#
# Ingests the demo corpus (corpus/) into a fresh data directory, starts `ragd serve` with
# an API key (every request carries the Bearer header, as real clients do), then runs wrk
# (Debian package `wrk`: apt-get install -y wrk) for GET /health, POST /v1/search in
# hybrid mode and in keyword mode, one after the other, each for -d seconds after a 2 s
# warm-up. Prints requests/s, p50/p90/p99 latency and the error count (non-2xx answers
# plus socket errors) per route. Prints figures only; asserts nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=""
duration=10
conns=32
threads=1
while getopts "b:d:c:t:h" opt; do
    case $opt in
        b) build=$OPTARG ;;
        d) duration=$OPTARG ;;
        c) conns=$OPTARG ;;
        t) threads=$OPTARG ;;
        *) sed -n '2,18p' "$0"; exit 2 ;;
    esac
done
if [ -z "$build" ]; then
    if [ -x "$root/build-bench/ragd" ]; then build=$root/build-bench; else build=$root/build; fi
fi
ragd=$(cd "$build" && pwd)/ragd
[ -x "$ragd" ] || { echo "run.sh: no ragd binary at $ragd (build first)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "run.sh: wrk missing (apt-get install -y wrk)" >&2; exit 2; }
[ "$threads" -le "$conns" ] || { echo "run.sh: -t must not exceed -c" >&2; exit 2; }

work=$(mktemp -d /tmp/ragd-api-bench.XXXXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
key=bench-key-$$
cat > "$work/ragd.json" <<JSON
{"api_key": "$key", "handler_threads": 4, "max_queued_requests": 64, "threads": 2,
 "max_connections": 512}
JSON

"$ragd" ingest --quiet --data "$work/data" "$root/corpus" > /dev/null
"$ragd" serve --data "$work/data" --port 0 --config "$work/ragd.json" 2> "$work/serve.log" &
server_pid=$!
port=""
for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/serve.log")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "run.sh: ragd serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
chunks=$("$ragd" stats --data "$work/data" --json 2>/dev/null | sed -n 's/.*"chunks": *\([0-9]*\).*/\1/p' || true)

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs," \
     "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: ragd serve, 2 I/O threads, 4 handler threads, queue 64, API key on;" \
     "corpus: $(ls "$root/corpus" | grep -vc json) documents${chunks:+, $chunks chunks}"
echo "wrk: $threads thread(s), $conns connections, ${duration}s per route (after a 2 s warm-up)"
echo
printf "%-26s %10s %9s %9s %9s %9s %8s\n" route "req/s" "p50 ms" "p90 ms" "p99 ms" "max ms" errors
for mode in health search search-keyword; do
    case $mode in
        health) label="GET /health" ;;
        search) label="POST /v1/search (hybrid)" ;;
        search-keyword) label="POST /v1/search (keyword)" ;;
    esac
    export RAGD_BENCH_MODE=$mode RAGD_BENCH_KEY=$key
    wrk -t "$threads" -c "$conns" -d 2s -s "$here/wrk.lua" "http://127.0.0.1:$port" > /dev/null
    out=$(wrk -t "$threads" -c "$conns" -d "${duration}s" --timeout 10s -s "$here/wrk.lua" "http://127.0.0.1:$port")
    line=$(grep '^RESULT' <<< "$out")
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$line"; }
    printf "%-26s %10s %9s %9s %9s %9s %8s\n" "$label" "$(get rps)" "$(get p50_ms)" \
        "$(get p90_ms)" "$(get p99_ms)" "$(get max_ms)" "$(get errors)"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
