#!/usr/bin/env bash
# The generated bash completion (tools/completion/gen-completion.sh) completes sub-commands,
# aliases and each sub-command's own flags, and nothing that sub-command lacks.
# Usage: test_completion.sh path/to/twamp.bash-completion
set -u
# shellcheck source=/dev/null
source "$1"
fail=0
c() {
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    _twamp
    echo "${COMPREPLY[*]}"
}
expect() {
    local want=$1
    shift
    local got
    got=$(c "$@")
    if [ "$got" = "$want" ]; then echo "ok   '$*' -> '$got'"; else echo "FAIL '$*' -> '$got' (want '$want')"; fail=1; fi
}
expect sender twamp sen
expect "controller controlclient" twamp contr
expect "reflector" twamp refl
expect --timeout twamp sender --timeo
expect --max-connections twamp server --max-conn
expect "--refwait" twamp responder --refw
expect --timer twamp responder --timer   # the responder has --timer (twampy), no --timeout
expect "" twamp responder --timeo
expect --timestamping twamp sender --timest
expect --timestamping twamp responder --times
expect "" twamp dscptable --json
exit $fail
