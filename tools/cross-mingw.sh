#!/usr/bin/env bash
# The core and report layers are plain C++20: cross-compile every one of their headers and the
# in-memory example for Windows with Debian's MinGW-w64 g++, warnings as errors.
# Usage: tools/cross-mingw.sh [build-dir]   (a configured build dir, for the generated version.hpp)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
cxx=${MINGW_CXX:-x86_64-w64-mingw32-g++-posix}
command -v "$cxx" >/dev/null || { echo "cross-mingw: $cxx not found (apt-get install g++-mingw-w64-x86-64)"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# nlohmann_json is header-only: reach it without putting the host's /usr/include on the path.
mkdir -p "$out/inc"
ln -s /usr/include/nlohmann "$out/inc/nlohmann"
flags=(-std=c++20 -Wall -Wextra -Wpedantic -Werror -Iinclude "-I$build/include" -isystem "$out/inc")
n=0
for h in include/twamp/*.hpp include/twamp/report/*.hpp; do
  case $h in include/twamp/crypto_openssl.hpp) continue ;; esac # OpenSSL: the host's policy
  rel=${h#include/}
  printf '#include <%s>\n#include <%s>\n' "$rel" "$rel" > "$out/h.cpp"
  "$cxx" "${flags[@]}" -fsyntax-only "$out/h.cpp" || { echo "cross-mingw: $rel does not compile"; exit 1; }
  n=$((n + 1))
done
"$cxx" "${flags[@]}" -O2 -o "$out/in_memory.exe" examples/in_memory.cpp -static
head -c 2 "$out/in_memory.exe" | grep -q MZ || { echo "cross-mingw: not a PE executable"; exit 1; }
echo "cross-mingw: $n core and report headers and examples/in_memory.cpp build for Windows ($cxx, -Werror)"
