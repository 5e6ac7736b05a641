#!/usr/bin/python3
"""integration_load: the load generator (bench/twamp_load) against a real `twamp server` on
loopback.

  * 5 connections x 4 sessions x 20 probes/s x 2 s (--json, --server-pid): exit 0, 20 sessions
    set up, 5*4*40 = 800 probes sent, every one answered (loopback: zero loss, no late or
    duplicate reply), a set-up rate and round-trip figures, the server's CPU and RSS read;
  * the same without --json: the human summary says so;
  * a server with --max-sessions 2 and 4 sessions per connection: every connection is refused
    with an Accept code (4 or 5, a resource limit), the JSON names it, stderr names it, exit 1;
  * a port where nothing listens: the connection fails, exit 1, no Accept code;
  * bad flags: exit 2 with a message naming the flag, nothing on stdout.

Usage: test_load.py /path/to/twamp /path/to/twamp_load
"""
import json
import socket
import sys

import itlib
from itlib import check

import twamp_ctl

CONNECTIONS, SESSIONS, RATE, DURATION = 5, 4, 20, 2
COUNT = RATE * DURATION


def run_load(load, *args, timeout=40):
    return itlib.run([load, *args], timeout=timeout)


def load_json(r, what):
    try:
        return json.loads(r.stdout)
    except ValueError:
        check(False, "%s: stdout is one JSON object (%r / %r)" % (what, r.stdout[:300], r.stderr[:300]))
        return None


def full_run(twamp, load):
    srv = twamp_ctl.Server(twamp)
    try:
        r = run_load(load, "127.0.0.1:%d" % srv.port, "--connections", str(CONNECTIONS), "--sessions",
                     str(SESSIONS), "--rate", str(RATE), "--duration", str(DURATION), "--timeout", "5",
                     "--server-pid", str(srv.pid), "--json")
        check(r.returncode == 0, "load: exit 0 (rc %d, stderr %r)" % (r.returncode, r.stderr[-300:]))
        j = load_json(r, "load")
        if j is None:
            return
        total = CONNECTIONS * SESSIONS
        sent = total * COUNT
        p = j["probes"]
        print("  set-up: %.0f sessions/s, all after %.3f s; probes %d sent, %d received, %d lost; "
              "rtt p50 %.1f us p99 %.1f us; generator CPU %.2f s, %.0f kB/session; server CPU %s s" %
              (j["setup"]["sessions_per_s"], j["setup"]["all_set_up_after_s"], p["sent"], p["received"],
               p["lost"], j["rtt_ns"]["p50"] / 1e3, j["rtt_ns"]["p99"] / 1e3, j["generator"]["cpu_s"],
               j["generator"]["rss_kb_per_session"], j["server_process"]["cpu_s"]))
        check(j["ok"] is True and j["connections_ok"] == CONNECTIONS and j["connections_failed"] == 0,
              "load: %d connections ok, none failed" % CONNECTIONS)
        check(j["failed_accept_codes"] == {} and j["first_error"] is None, "load: no refusal, no error")
        check(j["sessions"] == {"requested": total, "accepted": total, "set_up": total},
              "load: %d sessions requested, accepted and set up (%s)" % (total, j["sessions"]))
        check(j["count_per_session"] == COUNT, "load: %d probes per session" % COUNT)
        check(p["scheduled"] == sent and p["sent"] == sent,
              "load: %d probes scheduled and sent (%d, %d)" % (sent, p["scheduled"], p["sent"]))
        # Loopback, 400 probes/s in all, a 5 s loss timeout: nothing may be lost.
        check(p["received"] == sent and p["lost"] == 0 and p["loss_ratio"] == 0,
              "load: every probe answered (%d of %d, %d lost)" % (p["received"], sent, p["lost"]))
        check(p["late"] == 0 and p["duplicates"] == 0 and p["send_errors"] == 0,
              "load: no late, duplicate or refused probe (%d, %d, %d)" %
              (p["late"], p["duplicates"], p["send_errors"]))
        check(j["rtt_ns"]["samples"] == sent and 0 < j["rtt_ns"]["p50"] <= j["rtt_ns"]["p99"],
              "load: a round trip sample per probe, 0 < p50 <= p99")
        s = j["setup"]
        check(s["connections_timed"] == CONNECTIONS and 0 < s["all_set_up_after_s"] < 20 and
              s["sessions_per_s"] > 0 and 0 < s["latency_p50_s"] <= s["latency_max_s"],
              "load: set-up timed for every connection (%s)" % s)
        # The test ran for about DURATION seconds (sessions end once every probe is answered).
        check(DURATION * 0.9 <= j["elapsed_s"] < DURATION + 15, "load: elapsed %.2f s" % j["elapsed_s"])
        g = j["generator"]
        check(g["cpu_s"] > 0 and g["rss_peak_kb"] > g["rss_base_kb"] > 0 and g["fd_peak"] >= total,
              "load: generator CPU, RSS and descriptors (a socket per session) measured (%s)" % g)
        sp = j["server_process"]
        # Sessions share reflector ports: far fewer descriptors than sessions.
        check(sp["pid"] == srv.pid and sp["cpu_s"] is not None and sp["cpu_s"] >= 0 and
              sp["rss_peak_kb"] > 0 and sp["fd_base"] <= sp["fd_peak"] < sp["fd_base"] + total,
              "load: server CPU, RSS and descriptors read from /proc (%s)" % sp)
        check(srv.alive(), "load: the server is still up")

        # The human summary.
        r = run_load(load, "127.0.0.1:%d" % srv.port, "--connections", "2", "--sessions", "2", "--rate", "20",
                     "--duration", "0.5", "--timeout", "5")
        out = r.stdout
        check(r.returncode == 0 and "2 ok, 0 failed" in out and "40 sent, 40 received, 0 lost" in out and
              "sessions/s" in out, "summary: exit 0, 2 ok, 40 sent / received, a set-up rate:\n" + out)
    finally:
        check(srv.stop() == 0, "load: server exits 0")


def refused(twamp, load):
    srv = twamp_ctl.Server(twamp, extra=["--max-sessions", "2"])
    try:
        r = run_load(load, "127.0.0.1:%d" % srv.port, "--connections", "2", "--sessions", "4", "--rate", "10",
                     "--duration", "1", "--json")
        check(r.returncode == 1, "refused: exit 1 (rc %d)" % r.returncode)
        j = load_json(r, "refused")
        if j is None:
            return
        codes = j["failed_accept_codes"]
        print("  refusals: %s; %s" % (codes, j["first_error"]))
        check(j["ok"] is False and j["connections_failed"] == 2 and j["connections_ok"] == 0,
              "refused: both connections failed")
        check(set(codes) <= {"4", "5"} and sum(codes.values()) == 2,
              "refused: both refused with a resource-limit Accept code, 4 or 5 (%s)" % codes)
        check(j["first_error"] and "Accept" in j["first_error"], "refused: the first error names the Accept code")
        check(j["sessions"]["accepted"] == 4 and j["sessions"]["set_up"] == 0 and j["probes"]["sent"] == 0,
              "refused: 2 sessions accepted per connection, none set up, nothing sent (%s)" % j["sessions"])
        err = r.stderr.strip()
        check("2 of 2 connections failed" in err and "Accept" in err,
              "refused: stderr says how many failed and the Accept code: %r" % err)
    finally:
        check(srv.stop() == 0, "refused: server exits 0")


def no_server(load):
    # A bound, non-listening TCP socket: its port answers connects with RST, and nobody else can
    # take it while we hold it.
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hold.bind(("127.0.0.1", 0))
    port = hold.getsockname()[1]
    try:
        r = run_load(load, "127.0.0.1:%d" % port, "--connections", "3", "--duration", "1", "--json",
                     timeout=20)
        j = load_json(r, "no server")
        check(r.returncode == 1, "no server: exit 1 (rc %d)" % r.returncode)
        if j is not None:
            check(j["connections_failed"] == 3 and j["failed_accept_codes"] == {} and
                  "cannot connect" in (j["first_error"] or ""),
                  "no server: 3 connections failed to connect, no Accept code (%s)" % j["first_error"])
    finally:
        hold.close()


def bad_flags(load):
    cases = [
        (["--rate", "0"], "--rate"),
        (["--rate", "abc"], "--rate"),
        (["--connections", "0"], "--connections"),
        (["--connections", "1.5"], "--connections"),
        (["--sessions", "70000"], "--sessions"),
        (["--duration", "-1"], "--duration"),
        (["--duration", "0.01", "--rate", "1"], "--duration"),
        (["--padding", "x"], "--padding"),
        (["--timeout", "0"], "--timeout"),
        (["--ramp", "-2"], "--ramp"),
        (["--batch", "0"], "--batch"),
        (["--server-pid", "nope"], "--server-pid"),
        (["--json=1"], "--json"),
        (["--sessions"], "--sessions"),
        (["--bogus"], "--bogus"),
        (["127.0.0.1:862", "127.0.0.2:862"], "server-host:port"),
        (["127.0.0.1:99999"], "server-host:port"),
    ]
    for argv, name in cases:
        r = run_load(load, *argv, timeout=10)
        err = r.stderr.strip()
        check(r.returncode == 2 and name in err and r.stdout == "" and len(err.splitlines()) == 1,
              "bad flag %s: exit 2, one stderr line naming %s (rc %d, %r)" % (argv, name, r.returncode, err))
    r = run_load(load, "--help", timeout=10)
    check(r.returncode == 0 and "--connections" in r.stdout and "--server-pid" in r.stdout, "--help: exit 0")


def body(twamp):
    if len(sys.argv) < 3:
        print("usage: test_load.py /path/to/twamp /path/to/twamp_load")
        return 2
    load = sys.argv[2]
    bad_flags(load)
    no_server(load)
    full_run(twamp, load)
    refused(twamp, load)
    return None


if __name__ == "__main__":
    itlib.main(body)
