#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then run a responder and a sender against each
# other on loopback and print the result table. It builds in its own directory (build-demo), with
# only the tool, so it never shares a CMake cache with the test command (tools/test.sh, build/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTWAMP_BUILD_TOOLS=ON \
  -DTWAMP_BUILD_BENCH=OFF -DTWAMP_BUILD_TESTS=OFF -DTWAMP_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" --target twamp >/dev/null
port=${PORT:-20001}
log=$(mktemp)
./build-demo/tools/twamp responder "127.0.0.1:$port" -v 2>"$log" &
responder=$!
trap 'kill $responder 2>/dev/null || true; rm -f "$log"' EXIT
# Start the sender once the responder says it is listening (bounded: 10 s).
for _ in $(seq 100); do
  grep -q "Wait to receive" "$log" && break
  kill -0 $responder 2>/dev/null || { cat "$log" >&2; exit 3; }
  sleep 0.1
done
grep -q "Wait to receive" "$log" || { echo "demo: the responder did not start" >&2; cat "$log" >&2; exit 3; }
./build-demo/tools/twamp sender "127.0.0.1:$port" 127.0.0.1:0 -c "${COUNT:-1000}" -i "${INTERVAL:-1}" "$@"
