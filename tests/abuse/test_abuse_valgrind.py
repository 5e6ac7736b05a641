#!/usr/bin/python3
"""abuse_valgrind: one end-to-end loopback exchange with both ends under valgrind memcheck
(`--error-exitcode=99 --leak-check=full`): a responder, a sender -c 50, the responder stopped by
SIGINT. Both exit 0 (not 99), valgrind reports no error and no definite or possible leak in
either, and the sender got every reply. Skipped (77) without valgrind or for an ASan build.

Usage: test_abuse_valgrind.py /path/to/twamp
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import itlib  # noqa: E402
from itlib import check  # noqa: E402

VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,possible",
            "--errors-for-leak-kinds=definite,possible", "--track-fds=no", "--quiet"]


def vg_log(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def body(twamp):
    if not shutil.which("valgrind"):
        print("valgrind not installed: skipped")
        return itlib.SKIP
    with open(twamp, "rb") as f:
        if b"__asan_init" in f.read():
            print("the binary is built with AddressSanitizer, which valgrind cannot run: skipped")
            return itlib.SKIP
    workdir = tempfile.mkdtemp(prefix="twamp-vg-")
    rlog = os.path.join(workdir, "responder.log")
    rvg = os.path.join(workdir, "responder.vg")
    svg = os.path.join(workdir, "sender.vg")
    resp = None
    try:
        port = itlib.free_port()
        with open(rlog, "w") as lf:
            resp = itlib.spawn([*VALGRIND, "--log-file=" + rvg, twamp, "responder", "127.0.0.1:%d" % port, "-v"],
                               stdout=subprocess.DEVNULL, stderr=lf)
        deadline = time.monotonic() + 30
        ready = False
        while time.monotonic() < deadline and resp.poll() is None:
            with open(rlog, errors="replace") as f:
                if "Wait to receive test packets" in f.read():
                    ready = True
                    break
            time.sleep(0.05)
        check(ready, "responder under valgrind is ready")
        t0 = time.monotonic()
        r = itlib.run([*VALGRIND, "--log-file=" + svg, twamp, "sender", "127.0.0.1:%d" % port, "127.0.0.1:0",
                       "-c", "50", "-i", "10", "--timeout", "3", "--json"], timeout=60)
        print("  sender under valgrind took %.2f s" % (time.monotonic() - t0))
        try:
            rep = json.loads(r.stdout)
        except ValueError:
            rep = {}
        check(r.returncode == 0, "sender under valgrind exits 0, not 99 (rc %d, %r)" % (r.returncode, r.stderr[-300:]))
        check(rep.get("received") == 50, "sender under valgrind: 50 of 50 replies (%s)" % rep.get("received"))
        rc = itlib.stop(resp, timeout=20)
        check(rc == 0, "responder under valgrind exits 0 on SIGINT, not 99 (rc %s)" % rc)
        with open(rlog, errors="replace") as f:
            check("reflector stopped: received 50, reflected 50" in f.read(), "responder counted 50 reflected")
        for name, path in (("responder", rvg), ("sender", svg)):
            text = vg_log(path)
            # --quiet prints only errors; any "definitely/possibly lost" or error block is a failure.
            errs = re.findall(r"^==\d+== (?:Invalid|Conditional|Syscall param|Mismatched|Source and destination"
                              r"|.*are (?:definitely|possibly) lost|\s*(?:definitely|possibly) lost: [1-9])",
                              text, re.M)
            check(not errs, "%s: valgrind reports no error and no leak%s" %
                  (name, "" if not errs else ": " + "; ".join(errs[:3])))
            if errs:
                print(text[:3000])
    finally:
        if resp is not None and resp.poll() is None:
            itlib.stop(resp, timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    itlib.main(body)
