#!/usr/bin/python3
"""integration_correctness: every figure of a report is what the per-packet record says.

- Percentiles: the JSON p50/p90/p95/p99/p99.9 of each direction against the exact nearest rank
  of the per-packet CSV's delays (integer rank arithmetic on exact decimals), within the
  histogram's 0.39 % bound; the CSV's fates (ok, lost, late, duplicate) against the counters.
- The controller's report: schedule, counts and the sender address are the ones really used.
- The default local port: busy -> an ephemeral port and one log line; an explicit busy port
  stays an error.
- ICMP port unreachable: every probe is still sent (an error reported by a send belongs to an
  earlier probe), the errors are counted, and the table view and stderr say why nothing came
  back.

Usage: test_correctness.py /path/to/twamp
"""
import csv
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from fractions import Fraction

import itlib
import twamp_ctl
from itlib import check

BOUND = 1.0 / 256  # log_histogram::kMaxRelativeError


def exact_nearest_rank(values, pct):
    """The ceil(p/100 * n)-th smallest value, p given as a decimal string (no floating point)."""
    v = sorted(values)
    n = len(v)
    p = Fraction(pct)
    rank = -((-p * n) // 100)  # ceil without floating point
    rank = max(1, min(n, int(rank)))
    return v[rank - 1]


def within(got_us, want_ns):
    want_us = want_ns / 1000.0
    return abs(got_us - want_us) <= abs(want_us) * BOUND + 1e-6


def percentiles_against_csv(twamp):
    resp = itlib.Responder(twamp)
    tmp = tempfile.TemporaryDirectory(prefix="twamp-correct-")
    try:
        pp = os.path.join(tmp.name, "pp.csv")
        count = 2000
        r = itlib.sender(twamp, resp, "-c", str(count), "-i", "0.5", "--json", "--per-packet", pp,
                         "--timeout", "2", timeout=60)
        check(r.returncode == 0, "percentiles: sender exits 0 (stderr %r)" % r.stderr[-300:])
        rep = json.loads(r.stdout)
        with open(pp, newline="") as f:
            rows = list(csv.DictReader(f))
        in_time = [row for row in rows if row["status"] in ("ok", "reordered")]
        check(len(in_time) == rep["received"],
              "percentiles: CSV in-time rows %d == received %d" % (len(in_time), rep["received"]))
        check(rep["received"] >= count * 0.95, "percentiles: most probes answered (%d)" % rep["received"])
        for direction, col in (("outbound", "outbound_ns"), ("inbound", "inbound_ns"),
                               ("roundtrip", "roundtrip_ns")):
            values = [int(row[col]) for row in in_time]
            for pct, key in (("50", "p50_us"), ("90", "p90_us"), ("95", "p95_us"), ("99", "p99_us"),
                             ("99.9", "p999_us")):
                want = exact_nearest_rank(values, pct)
                got = rep[direction][key]
                check(within(got, want), "percentiles: %s %s = %.3f us, exact %.3f us" %
                      (direction, key, got, want / 1000.0))
                check(within(rep[direction]["percentiles_us"][pct], want),
                      "percentiles: %s percentiles_us[%s]" % (direction, pct))
            # PDV = p99.9 - min (RFC 5481), min exact.
            want_pdv = exact_nearest_rank(values, "99.9") - min(values)
            check(abs(rep[direction]["pdv_us"] - want_pdv / 1000.0) <=
                  exact_nearest_rank(values, "99.9") / 1000.0 * BOUND + 1e-6,
                  "percentiles: %s pdv_us %.3f, exact %.3f" % (direction, rep[direction]["pdv_us"],
                                                              want_pdv / 1000.0))
            # The JSON carries ns / 1000 as a double (full precision): back to ns it rounds to the
            # exact integer, while a plain * 1000 can land a hair below it (1.001 * 1000 =
            # 1000.9999999999999; 360 of the values 1000..19999 ns do).
            check(round(rep[direction]["min_us"] * 1000) == min(values),
                  "percentiles: %s min exact (%r us, %d ns)" % (direction, rep[direction]["min_us"], min(values)))
        # One probe, one fate: the CSV's rows and the counters agree.
        fates = {}
        for row in rows:
            fates.setdefault(int(row["sender_seq"]), []).append(row["status"])
        ok = sum(1 for f in fates.values() if f[0] in ("ok", "reordered"))
        late = sum(f.count("late") for f in fates.values())
        lost_first = sum(1 for f in fates.values() if f[0] in ("lost", "late"))
        bad = [s for s, f in fates.items() if f[0] == "lost" and any(x in ("ok", "reordered") for x in f)]
        check(not bad, "fates: no probe is both lost and answered in time (%s)" % bad[:5])
        check(ok == rep["received"], "fates: ok rows %d == received %d" % (ok, rep["received"]))
        check(late == rep["late"], "fates: late rows %d == late %d" % (late, rep["late"]))
        check(lost_first == rep["lost"], "fates: lost/late probes %d == lost %d" % (lost_first, rep["lost"]))
        check(len(fates) == rep["sent"], "fates: one row per probe sent (%d, sent %d)" % (len(fates), rep["sent"]))
    finally:
        resp.stop()
        tmp.cleanup()


def controller_report(twamp):
    srv = twamp_ctl.Server(twamp)
    try:
        # The test socket on the wildcard address: the report must show the address the request
        # named (the control connection's), not 0.0.0.0.
        argv = [twamp, "controller", "127.0.0.1", "0.0.0.0:0", "--control-port", str(srv.port),
                "--json", "-c", "20", "-i", "50"]
        r = itlib.run(argv, timeout=30)
        check(r.returncode == 0, "controller: exit 0 (stderr %r)" % r.stderr[-300:])
        reps = twamp_ctl.parse_reports(r.stdout)
        check(len(reps) == 1, "controller: one report")
        if reps:
            rep = reps[0]
            check(rep["schedule"]["interval_ms"] == 50, "controller: interval_ms 50 (%s)" % rep["schedule"])
            check(rep["schedule"]["distribution"] == "periodic", "controller: periodic schedule")
            check(rep["requested"] == 20 and rep["scheduled"] == 20 and rep["sent"] == 20,
                  "controller: requested/scheduled/sent 20 (%s/%s/%s)" %
                  (rep["requested"], rep["scheduled"], rep["sent"]))
            check(rep["skipped"] == 0, "controller: skipped 0")
            check(rep["sender"]["address"] == "127.0.0.1",
                  "controller: sender address 127.0.0.1 (%s)" % rep["sender"]["address"])
            check(rep["sender"]["port"] != 0, "controller: sender port known (%s)" % rep["sender"]["port"])
            check(rep["received"] == 20, "controller: 20/20 (%s)" % rep["received"])
            check(rep.get("lost_unknown_direction") == 0, "controller: no loss of unknown direction")
    finally:
        srv.stop()


def hold_port(port):
    """Holds UDP `port` on the wildcard address (or finds it already held by someone else)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        s.close()
        return None  # busy anyway: that is what the test needs
    return s


def default_port_fallback(twamp):
    holder = hold_port(20000)
    resp = itlib.Responder(twamp)
    srv = twamp_ctl.Server(twamp)
    try:
        # Sender without a local address: twampy's :20000 is busy, so an ephemeral port.
        r = itlib.run([twamp, "sender", resp.addr, "-c", "5", "-i", "10", "--json"], timeout=30)
        check(r.returncode == 0, "default port busy: sender exits 0 (stderr %r)" % r.stderr[-300:])
        check(len(re.findall(r"local port 20000 is in use", r.stderr)) == 1,
              "default port busy: one log line says so (%r)" % r.stderr[-300:])
        if r.returncode == 0:
            rep = json.loads(r.stdout)
            check(rep["sender"]["port"] not in (0, 20000), "default port busy: sent from port %s" %
                  rep["sender"]["port"])
            check(rep["sender"]["address"] == "127.0.0.1",
                  "default port: sender address is the route's source (%s)" % rep["sender"]["address"])
            check(rep["received"] == 5, "default port busy: 5/5")
        # An explicit busy port stays an error.
        r = itlib.run([twamp, "sender", resp.addr, ":20000", "-c", "5", "-i", "10"], timeout=30)
        check(r.returncode == 3 and "cannot bind" in r.stderr,
              "explicit busy port: exit 3 'cannot bind' (rc %s, %r)" % (r.returncode, r.stderr[-200:]))
        # Two controllers at once, neither given a local address.
        argv = [twamp, "controller", "127.0.0.1", "--control-port", str(srv.port), "--json", "-c", "10",
                "-i", "20"]
        a = itlib.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        b = itlib.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, p in (("first", a), ("second", b)):
            out, err = p.communicate(timeout=30)
            check(p.returncode == 0, "two controllers: the %s exits 0 (%r)" % (name, err[-300:]))
            if p.returncode == 0:
                check(twamp_ctl.parse_reports(out)[0]["received"] == 10, "two controllers: %s 10/10" % name)
        r = itlib.run(argv[:3] + [":20000"] + argv[3:], timeout=30)
        check(r.returncode == 3 and "cannot bind" in r.stderr,
              "controller, explicit busy port: exit 3 (rc %s, %r)" % (r.returncode, r.stderr[-200:]))
    finally:
        srv.stop()
        resp.stop()
        if holder:
            holder.close()


def icmp_unreachable(twamp):
    # A loopback port with nobody on it: every probe is answered by ICMP port unreachable.
    closed = itlib.free_port()
    target = "127.0.0.1:%d" % closed
    # Probes 10 us apart go out in bursts: each send after the first of a burst finds the ICMP
    # error of the one before pending on the socket.
    r = itlib.run([twamp, "sender", target, "127.0.0.1:0", "-c", "200", "-i", "0.01", "--timeout", "0.5",
                   "--json"], timeout=30)
    check(r.returncode == 1, "icmp: no reply -> exit 1 (rc %s)" % r.returncode)
    rep = json.loads(r.stdout) if r.stdout.strip() else {}
    check(rep.get("sent") == 200 and rep.get("skipped") == 0,
          "icmp: all 200 probes sent, none skipped (sent %s, skipped %s)" % (rep.get("sent"), rep.get("skipped")))
    icmp = rep.get("errors", {}).get("icmp_unreachable", 0)
    check(icmp >= 100, "icmp: errors counted (%s)" % icmp)
    check(rep.get("errors", {}).get("send") == 0, "icmp: no send error (%s)" % rep.get("errors"))
    check("ICMP destination-unreachable" in r.stderr, "icmp: stderr says why (%r)" % r.stderr[-300:])
    # The table view says it too.
    r = itlib.run([twamp, "sender", target, "127.0.0.1:0", "-c", "20", "-i", "5", "--timeout", "0.5"],
                  timeout=30)
    lines = r.stdout.splitlines()
    check("  NO STATS AVAILABLE (100% loss)" in lines, "icmp: twampy's NO STATS line is unchanged")
    check(any(re.fullmatch(r"  \d+ ICMP unreachable errors came back for the probes", l) for l in lines),
          "icmp: the table names the ICMP errors (%r)" % r.stdout[-400:])


def pacing_report(twamp):
    """The sender reports how well it kept its schedule (consistency only: no wall-clock bound)."""
    resp = itlib.Responder(twamp)
    try:
        for interval in ("0.5", "5"):  # fine pacing (spin) below 1 ms, timers above
            r = itlib.sender(twamp, resp, "-c", "200", "-i", interval, "--json")
            check(r.returncode == 0, "pacing -i %s: exit 0" % interval)
            s = json.loads(r.stdout)["schedule"]
            offered = 1000.0 / float(interval)
            check(0 < s.get("achieved_pps", 0) <= 2 * offered,
                  "pacing -i %s: achieved rate reported (%s/s, offered %.0f/s)" % (interval, s.get("achieved_pps"), offered))
            check(0 <= s.get("pacing_error_p50_us", -1) <= s.get("pacing_error_p99_us", -1) <= s.get("pacing_error_max_us", -1),
                  "pacing -i %s: 0 <= p50 <= p99 <= max (%s)" % (interval, s))
        r = itlib.sender(twamp, resp, "-c", "50", "-i", "2", "--extended")
        check(re.search(r"^  pacing: offered 500/s, achieved \d+/s; send-time error p50 [\d.]+us, p99 [\d.]+us, "
                        r"max [\d.]+us$", r.stdout, re.M) is not None, "pacing: --extended prints it (%r)" % r.stdout[-300:])
    finally:
        resp.stop()


def main():
    twamp = sys.argv[1]
    try:
        percentiles_against_csv(twamp)
        pacing_report(twamp)
        controller_report(twamp)
        default_port_fallback(twamp)
        icmp_unreachable(twamp)
    finally:
        itlib.cleanup()
    sys.exit(itlib.finish())


if __name__ == "__main__":
    main()
