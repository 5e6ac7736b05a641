#!/usr/bin/env bash
# Writes twamp's bash completion to stdout, read from the program's own --help (so it always
# lists the sub-commands and flags the binary really has). Usage: gen-completion.sh path/to/twamp
set -euo pipefail
twamp=$1
# Sub-commands (and aliases) from the "Subcommands:" section of the top-level help.
subs=$("$twamp" --help | awk '/^Subcommands:/{on=1; next} on && /^  [a-z]/ {
  line=$0; sub(/^  /, "", line); split(line, w, /  +/); gsub(/,/, " ", w[1]); print w[1] }' | xargs)
echo "# bash completion for twamp (generated from its --help by tools/completion/gen-completion.sh)"
echo "_twamp() {"
echo '    local cur=${COMP_WORDS[COMP_CWORD]} sub="" i'
echo '    for ((i = 1; i < COMP_CWORD; i++)); do'
echo '        case ${COMP_WORDS[i]} in -*) ;; *) sub=${COMP_WORDS[i]}; break ;; esac'
echo '    done'
echo '    local opts'
echo '    case $sub in'
for s in $subs; do
  flags=$("$twamp" "$s" --help | awk '/^Options:/{on=1; next} /^[A-Z][a-z]*:/{on=0} on && /^  -/ {
    split($1, f, ","); for (i in f) print f[i] }' | sort -u | xargs)
  echo "    $s) opts=\"$flags\" ;;"
done
echo "    *) opts=\"-h --help -V --version $subs\" ;;"
echo '    esac'
echo '    COMPREPLY=($(compgen -W "$opts" -- "$cur"))'
echo '    case $cur in -*) ;; *) [ -n "$sub" ] && COMPREPLY+=($(compgen -f -- "$cur")) ;; esac'
echo '}'
echo 'complete -F _twamp twamp'
