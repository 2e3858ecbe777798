#!/usr/bin/env bash
# Installs the dependencies, builds ragd in Release with its tests and runs them; then,
# unless RAGD_SKIP_SANITIZE=1, builds the tests again under ASan+UBSan and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs="$(nproc)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRAGD_TESTS=ON -DRAGD_BENCH=OFF
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
if [ "${RAGD_SKIP_SANITIZE:-0}" != "1" ]; then
    cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAGD_SANITIZE=ON \
        -DRAGD_TESTS=ON -DRAGD_BENCH=OFF
    cmake --build build-sanitize -j"$jobs"
    # Leaks inside OpenMP and BLAS runtimes are not ours; every other finding fails.
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-sanitize --output-on-failure -j"$jobs"
fi
