#!/usr/bin/env bash
# Engine speed on 7B-shaped random models (issue 5's figures; not run by CI).
#
#   bench/generate/run.sh [BUILD_DIR] [MODELS_DIR]
#
# Makes the models with the project's GGUF writer when missing (4.1 GiB Q4_K_M and
# 7.2 GiB Q8_0; about 5 minutes each on 2 cores), then prints:
#   - the machine's memory bandwidth (bench/membw) and the decode ceiling it implies;
#   - load time and peak RSS of `ragd run`;
#   - `ragd bench` prefill (pp512) and decode (tg128) tokens/s at 1 and 2 threads.
# Environment: REPS (3), MMAP=1 or NO_MMAP=1 (force mapping the file or reading it into
# memory; by default ragd reads it when it takes at most half the available memory),
# BASELINE=OLD_RAGD (an older ragd binary run alternately with the new one, each bench
# line prefixed by the binary: an A/B that shares whatever load the machine has).
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
models="${2:-models}"
reps="${REPS:-3}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DRAGD_BENCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target ragd make_model membw >/dev/null
mkdir -p "$models"
for type in Q4_K_M Q8_0; do
    f="$models/7b-${type,,}.gguf"
    [ -f "$f" ] || "$build/bench/make_model" --preset 7b --type "$type" "$f"
done

echo "== machine"
grep -m1 "model name" /proc/cpuinfo
echo "cores: $(nproc)"
for t in 1 2; do "$build/bench/membw" -t "$t"; done

for type in Q4_K_M Q8_0; do
    f="$models/7b-${type,,}.gguf"
    echo "== $f ($(stat -c %s "$f") bytes)"
    cat "$f" >/dev/null  # page cache: both engines are measured with the file cached
    /usr/bin/time -f "ragd run: wall %e s, peak RSS %M KiB" \
        "$build/ragd" run -m "$f" -p "The license grants you the right to" -n 16 --temp 0 -t 2 \
            ${MMAP:+--mmap} ${NO_MMAP:+--no-mmap} \
        2>&1 >/dev/null | grep -E "load|prompt|generated|peak RSS"
    for t in 1 2; do
        for bin in "$build/ragd" ${BASELINE:+"$BASELINE"}; do
            echo -n "$bin: "
            "$bin" bench -m "$f" -p 512 -n 128 -t "$t" -r "$reps" ${MMAP:+--mmap} ${NO_MMAP:+--no-mmap} --json \
                2>/dev/null
        done
    done
done
