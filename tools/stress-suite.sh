#!/usr/bin/env bash
# The whole ctest suite RUNS times in a row while stress-ng keeps every core busy: the flake
# check of issue 10 ("the full suite 20 times in a row under stress-ng loading both cores").
#
#   tools/stress-suite.sh [BUILD_DIR] [RUNS]        (defaults: build, 20)
#
# BUILD_DIR must be built already (tools/test.sh builds `build`). Each run is the same ctest
# command tools/test.sh uses (-j nproc, junit output) followed by tools/check-skips.py, so a
# skipped test counts as a failure too. Stops at the first failing run and exits 1; prints one
# line per run (wall time, tests passed) and keeps each run's junit and log in
# BUILD_DIR/stress-runs/. stress-ng runs `--cpu $(nproc) --cpu-load 100` for the whole loop and
# is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${1:-build}
runs=${2:-20}
command -v stress-ng >/dev/null || { echo "stress-ng is not installed (tools/install-deps.sh)" >&2; exit 2; }
[ -f "$dir/CTestTestfile.cmake" ] || { echo "$dir is not a configured build directory" >&2; exit 2; }
cores=$(nproc)
out="$dir/stress-runs"
rm -rf "$out" && mkdir -p "$out"
stress-ng --cpu "$cores" --cpu-load 100 --timeout 0 --quiet &
stress_pid=$!
trap 'kill "$stress_pid" 2>/dev/null || true; wait "$stress_pid" 2>/dev/null || true' EXIT
echo "stress-ng --cpu $cores --cpu-load 100 (pid $stress_pid); suite in $dir, $runs runs; $(git -C "$root" rev-parse --short HEAD)"
for i in $(seq 1 "$runs"); do
  t0=$(date +%s)
  status=0
  (cd "$dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure --no-tests=error -j"$cores" --output-junit "stress-runs/run-$i.xml") \
     >"$out/run-$i.log" 2>&1 || status=$?
  python3 tools/check-skips.py "$dir/stress-runs/run-$i.xml" >>"$out/run-$i.log" 2>&1 || status=1
  summary=$(grep -E '^[0-9]+% tests passed' "$out/run-$i.log" || echo "no summary")
  echo "run $i/$runs: $(( $(date +%s) - t0 )) s, load $(cut -d' ' -f1 /proc/loadavg), $summary"
  if [ "$status" != 0 ]; then
    echo "run $i failed; see $out/run-$i.log" >&2
    grep -E '\(Failed\)|\(Timeout\)|\(SEGFAULT\)|\*\*\*' "$out/run-$i.log" >&2 || true
    exit 1
  fi
done
echo "all $runs runs passed"
