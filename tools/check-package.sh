#!/usr/bin/env bash
# Builds the Debian package from a configured and built tree (default: build) and checks what it
# holds: unpacks it into a scratch root with dpkg -x, lists it, and runs the packaged binary.
# Usage: tools/check-package.sh [build-dir]
set -euo pipefail
dir=$(cd "${1:-build}" && pwd)
cd "$dir"
rm -f twamp_*.deb
cpack -G DEB >/dev/null
deb=$(ls twamp_*.deb)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
echo "== contents of $deb"
dpkg-deb -c "$deb" | awk '{print $6}'
dpkg-deb -x "$deb" "$scratch"
fail=0
for f in usr/bin/twamp usr/include/twamp/sender_session.hpp usr/include/twamp/version.hpp \
         usr/include/twamp/asio/server.hpp usr/include/twamp/report/json.hpp \
         usr/lib/cmake/twamp/twampConfig.cmake usr/lib/cmake/twamp/twampTargets.cmake \
         usr/lib/cmake/twamp/twampAsio.cmake usr/share/pkgconfig/twamp.pc \
         usr/share/man/man1/twamp.1 usr/share/bash-completion/completions/twamp; do
  if [ -e "$scratch/$f" ]; then echo "ok   /$f"; else echo "FAIL /$f missing"; fail=1; fi
done
if [ -e "$dir/../deploy/twamp.service" ] || [ -e "$(dirname "$0")/../deploy/twamp.service" ]; then
  f=usr/lib/systemd/system/twamp.service
  if [ -e "$scratch/$f" ]; then echo "ok   /$f"; else echo "FAIL /$f missing"; fail=1; fi
fi
dpkg-deb -f "$deb" Depends | grep -q libssl3 && echo "ok   Depends names libssl3" || { echo "FAIL Depends lacks libssl3"; fail=1; }
"$scratch/usr/bin/twamp" --version | grep -q "^twamp " && echo "ok   packaged twamp --version runs" || { echo "FAIL packaged binary"; fail=1; }
exit $fail
