#!/usr/bin/python3
"""integration_cli_errors: the command line's contract. Bad values exit 2 with one line on stderr
that names the offending flag; `dscptable` prints the 64 code points; a sender facing nobody
exits 1 with twampy's "NO STATS AVAILABLE" table.

Usage: test_cli_errors.py /path/to/twamp
"""
import re
import subprocess

import itlib
from itlib import check

# (arguments after the sub-command, words of which at least one must appear in the message)
TARGET = ["127.0.0.1:9", "127.0.0.1:0"]  # never contacted: the command line is rejected first
USAGE_ERRORS = [
    (["sender", *TARGET, "--dscp", "foo"], ["--dscp"]),
    (["sender", *TARGET, "--ttl", "0"], ["--ttl"]),
    (["sender", *TARGET, "--ttl", "256"], ["--ttl"]),
    (["sender", *TARGET, "--ttl", "abc"], ["--ttl"]),
    (["sender", *TARGET, "--padding", "-5"], ["--padding"]),
    (["sender", *TARGET, "-c", "0"], ["--count", "-c"]),
    (["sender", *TARGET, "-c", "-3"], ["--count", "-c"]),
    (["sender", *TARGET, "-i", "0"], ["--interval", "-i"]),
    (["sender", *TARGET, "--tos", "300"], ["--tos"]),
    (["sender", *TARGET, "--tos", "ef", "--dscp", "ef"], ["--tos"]),
    (["sender", *TARGET, "--timeout", "0"], ["--timeout"]),
    (["sender", *TARGET, "--ssid", "7"], ["--ssid"]),
    (["sender", *TARGET, "--stamp", "--ssid", "70000"], ["--ssid"]),
    (["sender", *TARGET, "--json", "--telegraf"], ["--json", "--telegraf"]),
    (["sender", "1.2.3.4:99999"], ["remote-ip:port", "1.2.3.4:99999"]),
    (["sender", "127.0.0.1:9", "1.2.3.4:99999"], ["local-ip:port", "1.2.3.4:99999"]),
    (["responder", "1.2.3.4:99999"], ["local-ip:port", "1.2.3.4:99999"]),
    (["responder", "127.0.0.1:0", "--dscp", "foo"], ["--dscp"]),
    (["responder", "127.0.0.1:0", "--tos", "300"], ["--tos"]),
    (["responder", "127.0.0.1:0", "--ttl", "0"], ["--ttl"]),
    # controlclient sends no test packets: options only a sender can apply are refused.
    (["controlclient", "127.0.0.1:20000", "127.0.0.1", "--ttl", "5"], ["--ttl"]),
    (["controlclient", "127.0.0.1:20000", "127.0.0.1", "--do-not-fragment"], ["--do-not-fragment"]),
    (["responder", "127.0.0.1:0", "--format", "xyz"], ["--format"]),
    (["responder", "127.0.0.1:0", "--padding", "-1"], ["--padding"]),
    (["sender", *TARGET, "--no-such-flag"], ["--no-such-flag"]),
    # Each flag's own range, checked while the command line is parsed (CLI11 validators).
    (["sender", *TARGET, "-c", "4294967296"], ["--count", "-c"]),
    (["sender", *TARGET, "-i", "3600001"], ["--interval", "-i"]),
    (["sender", *TARGET, "--timeout", "3601"], ["--timeout"]),
    (["sender", *TARGET, "--report-interval", "-1"], ["--report-interval"]),
    (["responder", "127.0.0.1:0", "--refwait", "0"], ["--refwait"]),
    (["responder", "127.0.0.1:0", "--max-sessions", "0"], ["--max-sessions"]),
    (["server", "127.0.0.1:0", "--ttl", "0"], ["--ttl"]),
    (["server", "127.0.0.1:0", "--servwait", "-1"], ["--servwait"]),
    (["server", "127.0.0.1:0", "--refwait", "0"], ["--refwait"]),
    (["server", "127.0.0.1:0", "--max-connections", "0"], ["--max-connections"]),
    (["server", "127.0.0.1:0", "--max-sessions", "0"], ["--max-sessions"]),
    (["server", "127.0.0.1:0", "--max-test-sessions", "0"], ["--max-test-sessions"]),
    (["server", "127.0.0.1:0", "--sessions-per-port", "0"], ["--sessions-per-port"]),
    (["server", "127.0.0.1:0", "--sessions-per-port", "many"], ["--sessions-per-port"]),
    (["server", "127.0.0.1:0", "--max-timeout", "604801"], ["--max-timeout"]),
    (["server", "127.0.0.1:0", "--count", "3000"], ["--count"]),
    (["server", "127.0.0.1:0", "--count", "131072"], ["--count"]),
    (["server", "127.0.0.1:0", "--max-key-derivations", "-1"], ["--max-key-derivations"]),
    (["server", "127.0.0.1:0", "--allow", "10.0.0.0/8", "--allow", "10.0.0.0/33"], ["--allow"]),
    (["server", "127.0.0.1:0", "--test-ports", "5-3"], ["--test-ports"]),
    (["server", "127.0.0.1:0", "--modes", "open,foo"], ["--modes"]),
    (["server", "127.0.0.1:0", "--modes", "individual"], ["--modes"]),
    (["controller", "127.0.0.1:9", "--control-port", "0"], ["--control-port"]),
    (["controller", "127.0.0.1:9", "--sessions", "65"], ["--sessions"]),
    (["controller", "127.0.0.1:9", "--session-timeout", "-1"], ["--session-timeout"]),
    (["controller", "127.0.0.1:9", "--connect-timeout", "0"], ["--connect-timeout"]),
    (["controller", "127.0.0.1:9", "--reply-timeout", "0"], ["--reply-timeout"]),
    (["controller", "127.0.0.1:9", "--max-count", "1000"], ["--max-count"]),
    (["controller", "127.0.0.1:9", "--auth-mode", "open,foo"], ["--auth-mode"]),
    (["controller", "127.0.0.1:9", "--reflect-octets", "--reflect-length", "1"], ["--reflect-length"]),
    (["controller", "127.0.0.1:9", "--padding", "-7"], ["--padding"]),
    (["controlclient", "127.0.0.1:20000", "127.0.0.1", "--duration", "-1"], ["--duration"]),
    (["controlclient", "127.0.0.1:20000", "127.0.0.1", "-c", "0"], ["--count", "-c"]),
]


def body(twamp):
    for args, names in USAGE_ERRORS:
        # The responder cases would run forever if accepted; the timeout turns that into a failure.
        try:
            r = itlib.run([twamp, *args], timeout=5)
        except subprocess.TimeoutExpired:
            check(False, "%s: rejected (it ran instead)" % " ".join(args))
            continue
        lines = r.stderr.splitlines()
        check(r.returncode == 2 and r.stdout == "" and len(lines) == 1 and any(n in lines[0] for n in names),
              "%s: exit 2 (got %d), one stderr line naming %s: %r" % (" ".join(args), r.returncode,
                                                                       names[0], r.stderr))

    # dscptable: 64 rows, name / value / TOS in binary / TOS in hex, consistent with each other.
    r = itlib.run([twamp, "dscptable"])
    check(r.returncode == 0, "dscptable: exit 0")
    row = re.compile(r"^(\S+)\s+(\d+)\s+([01]{4}) ([01]{4})\s+([0-9A-F]{2})$")
    rows = [m.groups() for m in map(row.match, r.stdout.splitlines()) if m]
    check(len(rows) == 64, "dscptable: 64 rows (got %d)" % len(rows))
    check(sorted(int(x[1]) for x in rows) == list(range(64)), "dscptable: every DSCP 0-63 once")
    check(all(int(b1 + b2, 2) == int(v) << 2 == int(h, 16) for _, v, b1, b2, h in rows),
          "dscptable: TOS columns are DSCP << 2")
    check("ef             46             1011 1000      B8" in r.stdout.splitlines(), "dscptable: exact ef row")

    # Nobody listens on this port (found free and released): 100% loss, exit 1, and the
    # sender must not hang on the ICMP port-unreachable errors loopback sends back.
    port = itlib.free_port()
    r = itlib.sender(twamp, "127.0.0.1:%d" % port, "-c", "3", "-i", "10", "--timeout", "0.5", timeout=10)
    check(r.returncode == 1, "no listener: exit 1 (got %d, stderr %r)" % (r.returncode, r.stderr))
    check("  NO STATS AVAILABLE (100% loss)" in r.stdout.splitlines(), "no listener: NO STATS AVAILABLE line")
    r, j = itlib.sender_json(twamp, "127.0.0.1:%d" % port, "-c", "3", "-i", "10", "--timeout", "0.5", timeout=10)
    check(r.returncode == 1 and j and j["sent"] == 3 and j["received"] == 0 and j["lost"] == 3,
          "no listener --json: exit 1, sent 3, received 0, lost 3")


if __name__ == "__main__":
    itlib.main(body)
