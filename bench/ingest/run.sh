#!/bin/bash
# Ingestion throughput: ragd ingest against poppler's own pdftotext on the same PDFs.
#
#   bench/ingest/run.sh [-b BUILD_DIR] [-d PDF_DIR] [-r RUNS]
#
#   -b  build tree holding the ragd binary (default: build-bench, else build)
#   -d  where the synthetic PDFs are (generated there by make_pdfs.py if missing;
#       default /tmp/ragd-bench-pdfs)
#   -r  timed runs per command (default 5), after one warm-up run
#
# Times, each over all the PDFs, with the OS page cache warm:
#   ragd ingest --workers 1 / --workers 2 into a fresh data directory (parse + chunk +
#     SQLite + Xapian + embedding + FAISS: everything `ragd ingest` does)
#   ragd reindex on the result (the index part alone, to split the above)
#   ragd __pdf-worker FILE, one file after the other (ragd's isolated poppler-cpp
#     extraction alone; an internal entry point, skipped if it fails)
#   pdftotext, one file after the other, and two at a time (xargs -P2)
# and prints the median seconds, pages/s, and ragd's rate as a fraction of pdftotext's at
# the same parallelism. Uses hyperfine when installed (apt-get install -y hyperfine) unless
# NO_HYPERFINE=1, else a plain loop and the median. Prints figures only; asserts nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=""
pdfs=/tmp/ragd-bench-pdfs
runs=5
while getopts "b:d:r:h" opt; do
    case $opt in
        b) build=$OPTARG ;;
        d) pdfs=$OPTARG ;;
        r) runs=$OPTARG ;;
        *) sed -n '2,20p' "$0"; exit 2 ;;
    esac
done
if [ -z "$build" ]; then
    if [ -x "$root/build-bench/ragd" ]; then build=$root/build-bench; else build=$root/build; fi
fi
ragd=$(cd "$build" && pwd)/ragd
[ -x "$ragd" ] || { echo "run.sh: no ragd binary at $ragd (build first)" >&2; exit 2; }
command -v pdftotext >/dev/null || { echo "run.sh: pdftotext missing (apt-get install -y poppler-utils)" >&2; exit 2; }
py=/usr/bin/python3  # Debian's, with python3-cairo

if ! ls "$pdfs"/*.pdf >/dev/null 2>&1; then
    "$py" "$here/make_pdfs.py" "$pdfs"
fi
files=("$pdfs"/*.pdf)
nfiles=${#files[@]}
pages=0
for f in "${files[@]}"; do
    n=$(pdfinfo "$f" 2>/dev/null | awk '/^Pages:/ {print $2}')
    pages=$((pages + n))
done
bytes=$(du -cb "${files[@]}" | tail -1 | cut -f1)

work=$(mktemp -d /tmp/ragd-ingest-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
data=$work/data

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs," \
    "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM;" \
    "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus:  $nfiles PDFs, $pages pages, $((bytes / 1024)) KiB in $pdfs"
echo "ragd:    $ragd"
echo "poppler: $(pdftotext -v 2>&1 | head -1)"

# One ingest to report what it produced (pages, chunks).
rm -rf "$data"
summary=$("$ragd" ingest --data "$data" --workers 2 --json "$pdfs")
chunks=$(echo "$summary" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
got_pages=$(echo "$summary" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["pages"])')
echo "ingest:  $got_pages pages -> $chunks chunks"
if [ "$got_pages" != "$pages" ]; then
    echo "run.sh: WARNING: ragd ingested $got_pages pages, pdfinfo counts $pages" >&2
fi

worker_ok=1
"$ragd" __pdf-worker "${files[0]}" >/dev/null 2>&1 || worker_ok=0

# Commands to time, as parallel arrays: name, command, preparation (run by bash -c, so
# the paths in them are quoted with %q).
qr=$(printf %q "$ragd") qp=$(printf %q "$pdfs") qd=$(printf %q "$data") qk=$(printf %q "$data.keep")
names=() cmds=() preps=()
add() { names+=("$1"); cmds+=("$2"); preps+=("$3"); }
add "ragd ingest --workers 1" "$qr ingest --data $qd --quiet --workers 1 $qp" "rm -rf $qd"
add "ragd ingest --workers 2" "$qr ingest --data $qd --quiet --workers 2 $qp" "rm -rf $qd"
add "pdftotext sequential" "for f in $qp/*.pdf; do pdftotext -q \"\$f\" - >/dev/null; done" ""
add "pdftotext xargs -P2" "printf '%s\\0' $qp/*.pdf | xargs -0 -P2 -I{} pdftotext -q {} /dev/null" ""
if [ $worker_ok = 1 ]; then
    add "ragd __pdf-worker sequential" \
        "for f in $qp/*.pdf; do $qr __pdf-worker \"\$f\" >/dev/null; done" ""
fi
# Last: reindex of a finished ingest (the indexes alone).
rm -rf "$data.keep"
"$ragd" ingest --data "$data.keep" --quiet --workers 2 "$pdfs" >/dev/null
add "ragd reindex (indexes only)" "$qr reindex --data $qk >/dev/null" ""

median_of() {  # seconds per run on stdin, one a line
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

use_hyperfine=0
if command -v hyperfine >/dev/null && [ -z "${NO_HYPERFINE:-}" ]; then use_hyperfine=1; fi
declare -A med
for i in "${!names[@]}"; do
    name=${names[$i]} cmd=${cmds[$i]} prep=${preps[$i]}
    if [ $use_hyperfine = 1 ]; then
        args=(--style none --warmup 1 --runs "$runs" --export-json "$work/hf.json")
        [ -n "$prep" ] && args+=(--prepare "$prep")
        hyperfine "${args[@]}" "$cmd" >/dev/null
        med[$name]=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$work/hf.json")
    else
        : >"$work/times"
        for r in $(seq 0 "$runs"); do
            if [ -n "$prep" ]; then bash -c "$prep"; fi
            t0=$(date +%s.%N)
            bash -c "$cmd"
            t1=$(date +%s.%N)
            # Run 0 is the warm-up.
            if [ "$r" -gt 0 ]; then awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >>"$work/times"; fi
        done
        med[$name]=$(median_of <"$work/times")
    fi
    printf '  %-32s median %7.3f s\n' "$name" "${med[$name]}" >&2
done

rate() { awk -v p="$pages" -v s="$1" 'BEGIN { printf "%.1f", p / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }  # rate(a)/rate(b) = b/a

echo
echo "| command | median s | pages/s | vs pdftotext (same parallelism) |"
echo "|---|---:|---:|---:|"
for name in "ragd ingest --workers 1" "pdftotext sequential" "ragd __pdf-worker sequential" \
    "ragd ingest --workers 2" "pdftotext xargs -P2" "ragd reindex (indexes only)"; do
    [ -n "${med[$name]:-}" ] || continue
    s=${med[$name]}
    case $name in
        "ragd ingest --workers 1" | "ragd __pdf-worker sequential")
            r=$(ratio "$s" "${med[pdftotext sequential]}") ;;
        "ragd ingest --workers 2") r=$(ratio "$s" "${med[pdftotext xargs -P2]}") ;;
        *) r="" ;;
    esac
    printf '| %s | %.3f | %s | %s |\n' "$name" "$s" "$(rate "$s")" "$r"
done
echo
echo "($pages pages, $chunks chunks; ratio = ragd pages/s / pdftotext pages/s;" \
    "reindex pages/s is pages whose chunks it indexed per second;" \
    "load average at the end $(cut -d' ' -f1-3 /proc/loadavg))"
