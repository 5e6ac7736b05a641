#!/usr/bin/env bash
# Every test on a fresh machine: install, build (warnings are errors), run the whole ctest suite.
# SANITIZE=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan instead.
# Every option that decides what is built is set here, so a cache left by another command cannot
# turn the tests off, and a run in which ctest found no test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
if [ "${SANITIZE:-0}" = 1 ]; then
  dir=build-asan
  opts=(-DCMAKE_BUILD_TYPE=Debug -DTWAMP_SANITIZE=ON -DTWAMP_BUILD_BENCH=OFF)
else
  dir=build
  opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTWAMP_SANITIZE=OFF -DTWAMP_BUILD_BENCH=ON)
fi
opts+=(-DTWAMP_BUILD_TESTS=ON -DTWAMP_BUILD_TOOLS=ON -DTWAMP_BUILD_EXAMPLES=ON -DTWAMP_WERROR=ON)
cmake -S . -B "$dir" "${opts[@]}" ${CMAKE_EXTRA:-} >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
# A test that cannot run here exits 77 (ctest: Skipped). On a machine tools/install-deps.sh set
# up every test can run, so a skip fails the run (tools/check-skips.py lists it); valgrind cannot
# run an ASan binary, so that one may skip in the sanitizer build.
status=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure --no-tests=error -j"$(nproc)" --output-junit ctest-junit.xml || status=$?
allow=()
[ "${SANITIZE:-0}" = 1 ] && allow=(--allow '^abuse_valgrind$')
python3 ../tools/check-skips.py ctest-junit.xml "${allow[@]}" || status=1
exit $status
