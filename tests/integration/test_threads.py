#!/usr/bin/python3
"""integration_threads: `twamp responder --threads 2` reflects on two sockets sharing one port.

24 senders (24 flows, so the kernel's flow hash puts some on each thread: all on one thread has
probability 2 * 2^-24) run at once against a stateful responder on two threads. Each flow must get
every reply, and the reflector's own sequence numbers in its per-packet record must be exactly
0, 1, 2, ... in the order of our sequence numbers: a flow never changes thread, so its session
state stays whole. At exit the responder logs one counter line per thread; they add up to the
total, and both threads reflected something.

Usage: test_threads.py /path/to/twamp
"""
import csv
import os
import re
import subprocess
import sys
import tempfile

import itlib
from itlib import check

FLOWS = 24
COUNT = 100


def main():
    twamp = sys.argv[1]
    tmp = tempfile.TemporaryDirectory(prefix="twamp-threads-")
    resp = itlib.Responder(twamp, extra=["--threads", "2"])
    try:
        check(re.search(r"\(2 threads\)", resp.log_text()) is not None, "the responder says it runs 2 threads")
        procs = []
        for i in range(FLOWS):
            pp = os.path.join(tmp.name, "pp%d.csv" % i)
            p = itlib.spawn([twamp, "sender", resp.addr, "127.0.0.1:0", "-c", str(COUNT), "-i", "2",
                             "--timeout", "2", "--json", "--per-packet", pp],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append((p, pp))
        exact = 0
        for i, (p, pp) in enumerate(procs):
            out, err = p.communicate(timeout=60)
            with open(pp, newline="") as f:
                rows = sorted((int(r["sender_seq"]), r) for r in csv.DictReader(f))
            ok = [r for _, r in rows if r["status"] == "ok"]
            rseq = [int(r["reflector_seq"]) for _, r in rows if r["status"] in ("ok", "reordered")]
            if p.returncode == 0 and len(ok) == COUNT and rseq == list(range(COUNT)):
                exact += 1
            else:
                print("flow %d: rc %s, %d ok, reflector sequence %s..., stderr %r" %
                      (i, p.returncode, len(ok), rseq[:8], err[-200:]))
        check(exact == FLOWS, "%d of %d flows got every reply with reflector numbers 0..%d in order" %
              (exact, FLOWS, COUNT - 1))
        rc = resp.stop()
        check(rc == 0, "the responder stops cleanly on SIGINT")
        log = resp.log_text()
        threads = [(int(t), int(r), int(f)) for t, r, f in
                   re.findall(r"thread (\d+): received \d+, reflected (\d+), malformed \d+, sessions (\d+)", log)]
        check(sorted(t for t, _, _ in threads) == [1, 2], "one counter line per thread (%s)" % threads)
        m = re.search(r"reflector stopped: received \d+, reflected (\d+),.* sessions (\d+)", log)
        total = int(m.group(1)) if m else -1
        check(total == FLOWS * COUNT, "reflected %d = %d flows x %d" % (total, FLOWS, COUNT))
        check(sum(r for _, r, _ in threads) == total, "the threads' counts add up to the total")
        check(all(r > 0 for _, r, _ in threads), "both threads reflected (%s)" % [r for _, r, _ in threads])
        check(sum(s for _, _, s in threads) == FLOWS, "each flow made one session, on one thread (%s)" %
              [s for _, _, s in threads])
        for bad in ("0", "x", "2.5", "300"):
            r = itlib.run([twamp, "responder", "127.0.0.1:0", "--threads", bad], timeout=10)
            check(r.returncode == 2 and "--threads" in r.stderr,
                  "--threads %s: exit 2 naming the flag (rc %s, %r)" % (bad, r.returncode, r.stderr))
    finally:
        itlib.cleanup()
        tmp.cleanup()
    sys.exit(itlib.finish())


if __name__ == "__main__":
    main()
