#!/usr/bin/env bash
# Installs what building and testing twamp needs on Debian 12, from Debian's archive only.
# Skips apt entirely when everything is already there. Needs root (or sudo) to install.
set -euo pipefail
pkgs=(build-essential cmake g++ clang-14 libclang-rt-14-dev libasio-dev nlohmann-json3-dev
      doctest-dev libbenchmark-dev libcli11-dev libssl-dev tshark python3 python3-scapy iproute2
      prometheus-cpp-dev prometheus pkg-config dpkg-dev help2man clang-format-14
      g++-mingw-w64-x86-64 influxdb librsvg2-bin valgrind python3-cryptography stress-ng)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
