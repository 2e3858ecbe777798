#!/usr/bin/env bash
# Installs the dependencies, builds ragd, ingests corpus/ and answers three of the sample
# questions with citations. Run from anywhere; uses ./build and ./ragd-data in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRAGD_TESTS=OFF -DRAGD_BENCH=OFF
cmake --build build -j"$(nproc)" --target ragd
export RAGD_DATA="$PWD/ragd-data"
./build/ragd ingest corpus/
for q in \
    "How much notice is needed to terminate the agreement for convenience?" \
    "What dose of prednisone was the patient discharged on?" \
    "How long is personal data kept after an account is closed?"; do
    echo
    echo "=== $q"
    ./build/ragd ask "$q"
done
