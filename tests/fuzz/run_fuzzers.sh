#!/usr/bin/env bash
# tests/fuzz/run_fuzzers.sh — build the libFuzzer targets with clang and run each for a bounded
# time. Exits non-zero if a build fails or any fuzzer finds a crash, leak, sanitizer report or
# invariant violation.
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 30)
#   FUZZ_TARGETS   space-separated subset of targets (default: all)
#   FUZZ_JOBS      build parallelism (default: nproc)
#   CXX_FUZZ       the clang++ to use (default: clang++-14, else clang++)
#   BUILD_DIR      build directory (default: <repo>/build-fuzz)
# The committed seed corpus is copied to a temporary working corpus, so the repository is not
# modified; crash reproducers are kept in $BUILD_DIR/fuzz-artifacts/<target>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$repo/build-fuzz}"
seconds="${FUZZ_SECONDS:-30}"
jobs="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}"
targets="${FUZZ_TARGETS:-test_packet reflector sender stamp_tlv control_messages control_server control_client crypto config stamp_tlv_set stamp_tlvs flow_table}"
if [[ -n "${CXX_FUZZ:-}" ]]; then
  cxx="$CXX_FUZZ"
elif command -v clang++-14 >/dev/null 2>&1; then
  cxx=clang++-14
else
  cxx=clang++
fi

cmake -S "$repo" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTWAMP_FUZZ=ON -DTWAMP_BUILD_BENCH=OFF -DTWAMP_BUILD_EXAMPLES=OFF -DTWAMP_BUILD_TOOLS=OFF >/dev/null
build_targets=()
for t in $targets; do build_targets+=("fuzz_$t"); done
cmake --build "$build" -j "$jobs" --target "${build_targets[@]}"

work="$(mktemp -d "${TMPDIR:-/tmp}/twamp-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
failed=()
for t in $targets; do
  bin="$build/tests/fuzz/fuzz_$t"
  corpus="$work/$t"
  artifacts="$build/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cp "$here/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  echo "=== fuzz_$t: ${seconds}s, $(ls "$corpus" | wc -l) seed(s)"
  log="$work/$t.log"
  if "$bin" "$corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units)" "$log" | tail -2 || true
  else
    echo "!!! fuzz_$t FAILED; last lines of its log:" >&2
    tail -n 60 "$log" >&2
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzzers with findings: ${failed[*]} (reproducers in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "all fuzzers ran ${seconds}s without findings"
