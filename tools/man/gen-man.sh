#!/usr/bin/env bash
# twamp(1): help2man's page of the top-level --help, followed by one section per sub-command
# with that sub-command's --help. Usage: gen-man.sh help2man path/to/twamp out.1
set -euo pipefail
help2man=$1 twamp=$2 out=$3
inc=$(mktemp)
trap 'rm -f "$inc"' EXIT
subs=$("$twamp" --help | awk '/^Subcommands:/{on=1; next} on && /^  [a-z]/ {
  line=$0; sub(/^  /, "", line); split(line, w, /  +/); split(w[1], n, ","); print n[1] }')
{
  echo "[SUB-COMMANDS]"
  for s in $subs; do
    echo ".SS \"twamp $s\""
    echo ".nf"
    "$twamp" "$s" --help | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./' -e "s|$twamp|twamp|g"
    echo ".fi"
  done
  echo "[EXIT STATUS]"
  echo "0 success; 1 the sender or controller got no reply at all; 2 bad command line; 3 run-time"
  echo "error (address, socket, refused by the server)."
} > "$inc"
"$help2man" --no-info --section 1 --name "TWAMP, TWAMP Light and STAMP active measurement" \
  --include "$inc" --output "$out" "$twamp"
