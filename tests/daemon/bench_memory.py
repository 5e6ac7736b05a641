#!/usr/bin/python3
"""Benchmark (not a test): memory of `twamp daemon` per sender session over a long run.

Starts one daemon with a STAMP reflector and 1 session, and one with the same reflector and N
sessions to it, lets both run for DURATION seconds, and samples VmRSS of both from /proc. Prints
the RSS over time and the memory per session: (RSS(N) - RSS(1)) / (N - 1), early and late, so
growth over the run shows.

usage: bench_memory.py TWAMP_BINARY [N=50] [DURATION=600] [RATE_PPS=20]
"""
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemonlib as dl  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def make(n, refl, work, rate):
    sessions = [{"name": "s%d" % i, "reflector-ip": "127.0.0.1", "reflector-udp-port": refl,
                 "number-of-packets": rate * 10, "periodic-interval": "%.5f" % (1.0 / rate),
                 "timeout": "1"} for i in range(n)]
    return {"twamp-daemon:stamp": {
        "session-sender": {"test-session": sessions},
        "session-reflector": {"reflector": [{"name": "r", "mode": "stamp",
                                             "reflector-ip": "127.0.0.1",
                                             "reflector-udp-port": refl}]}},
        "twamp-daemon:daemon": {"results-file": os.path.join(work, "r%d.jsonl" % n)}}


def main():
    twamp = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 600
    rate = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    work = tempfile.mkdtemp(prefix="twamp-bench-mem-")
    try:
        one = dl.Daemon(twamp, make(1, dl.free_port(), work, rate), work, "one")
        many = dl.Daemon(twamp, make(n, dl.free_port(), work, rate), work, "many")
        for d in (one, many):
            if not d.wait_log(r"twamp daemon: ready", 15):
                print(d.log_text())
                return 1
        t0 = time.monotonic()
        samples = []
        while time.monotonic() - t0 < duration:
            time.sleep(min(10, duration / 20))
            t = time.monotonic() - t0
            a, b = rss_kib(one.proc.pid), rss_kib(many.proc.pid)
            samples.append((t, a, b))
            print("t=%6.0fs  rss(1)=%7d KiB  rss(%d)=%7d KiB  per session=%6.1f KiB"
                  % (t, a, n, b, (b - a) / (n - 1)), flush=True)
        lines = sum(1 for _ in open(os.path.join(work, "r%d.jsonl" % n)))
        early, late = samples[min(2, len(samples) - 1)], samples[-1]
        print("sessions %d at %d pps each, %.0f s, %d results lines" % (n, rate, duration, lines))
        print("per session: %.1f KiB at t=%.0fs, %.1f KiB at t=%.0fs"
              % ((early[2] - early[1]) / (n - 1), early[0], (late[2] - late[1]) / (n - 1),
                 late[0]))
    finally:
        dl.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
