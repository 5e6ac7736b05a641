#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then run a responder and a sender against each
# other on loopback and print the result table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTWAMP_BUILD_BENCH=OFF -DTWAMP_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target twamp >/dev/null
port=${PORT:-20001}
./build/tools/twamp responder "127.0.0.1:$port" &
responder=$!
trap 'kill $responder 2>/dev/null || true' EXIT
sleep 0.3
./build/tools/twamp sender "127.0.0.1:$port" 127.0.0.1:0 -c "${COUNT:-1000}" -i "${INTERVAL:-1}" "$@"
