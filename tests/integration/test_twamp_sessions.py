#!/usr/bin/python3
"""twamp_sessions: `twamp server` + `twamp controller` over loopback, IPv4 and IPv6, in every mode
combination the controller offers: 200 probes every 2 ms each, all 200 replies, no errors.

Usage: test_twamp_sessions.py /path/to/twamp
"""
import socket

import itlib
from itlib import check

import twamp_ctl

COUNT = 200

# name, controller flags
CASES = [
    ("open", []),
    ("individual", ["--individual"]),
    ("reflect-octets", ["--reflect-octets", "--padding", "40"]),
    ("reflect-octets-len8", ["--reflect-octets", "--reflect-length", "8", "--padding", "40"]),
    ("symmetric", ["--symmetric", "--padding", "27"]),
    ("symmetric+reflect", ["--symmetric", "--reflect-octets", "--padding", "40"]),
    ("individual+reflect+symmetric", ["--individual", "--symmetric", "--reflect-octets", "--padding", "40"]),
    ("two-sessions", ["--sessions", "2"]),
]


def check_report(name, r, reports, sessions=1):
    check(r.returncode == 0, "%s: controller exits 0 (rc %d, stderr %r)" % (name, r.returncode, r.stderr.strip()[:300]))
    check(len(reports) == sessions, "%s: %d JSON report(s) (got %d)" % (name, sessions, len(reports)))
    for j in reports:
        check(j.get("sent") == COUNT and j.get("received") == COUNT and j.get("lost") == 0,
              "%s: %s of %s replies, %s lost" % (name, j.get("received"), j.get("sent"), j.get("lost")))
        errs = j.get("errors", {})
        check(all(v == 0 for v in errs.values()), "%s: all error counters 0 (%s)" % (name, errs))
        if "reflected_octets_mismatch" in errs:
            check(errs["reflected_octets_mismatch"] == 0, "%s: reflected octets came back intact" % name)
        check(j.get("reflector", {}).get("port", 0) not in (0, None), "%s: report names the reflector port" % name)


def body(twamp):
    families = [("v4", "127.0.0.1")]
    if itlib.have_ipv6_loopback():
        families.append(("v6", "::1"))
    else:
        itlib.skip("no IPv6 loopback here: the [::1] cases")
    for fam, host in families:
        srv = twamp_ctl.Server(twamp, host)
        try:
            for name, flags in CASES:
                label = "%s %s" % (fam, name)
                sessions = 2 if "--sessions" in flags else 1
                r, reports = twamp_ctl.controller(twamp, srv, "-c", str(COUNT), "-i", "2", "--timeout", "2", *flags)
                check_report(label, r, reports, sessions)
                if "reflect" in name:
                    errs = reports[0].get("errors", {}) if reports else {}
                    check(errs.get("reflected_octets_mismatch") == 0,
                          "%s: every reflected octet came back intact (reflected_octets_mismatch %s)" %
                          (label, errs.get("reflected_octets_mismatch")))
            # A reflector port asked for by number is granted when free. The port is found free
            # here and released; should another process take it before the server binds it, the
            # server rightly grants another one, so that case is told apart (the port is busy
            # when this script tries it again) and retried with a new port.
            fam_af = socket.AF_INET6 if ":" in host else socket.AF_INET
            for _attempt in range(3):
                want = itlib.free_port(fam_af, host)
                r, reports = twamp_ctl.controller(twamp, srv, "-c", "20", "-i", "2", reflector_port=want)
                got = reports[0]["reflector"]["port"] if reports else None
                if got is not None and got != want and itlib.port_taken(want, fam_af, host):
                    print("  port %d was taken by another process meanwhile; again" % want)
                    continue
                break
            check(r.returncode == 0 and reports and reports[0]["received"] == 20,
                  "%s requested port: 20 of 20 replies" % fam)
            check(got == want, "%s requested port: the server granted port %d (got %s)" % (fam, want, got))
            check(srv.alive(), "%s: server still running" % fam)
        finally:
            check(srv.stop() == 0, "%s: server exits 0 on SIGINT" % fam)
        log = srv.log_text()
        check("session accepted" in log, "%s: server log shows accepted sessions" % fam)


if __name__ == "__main__":
    itlib.main(body)
