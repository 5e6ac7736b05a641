#!/usr/bin/python3
"""integration_garbage: a responder under a flood of junk datagrams (every length 0-13, random
bytes of random lengths, 9000- and 60000-octet datagrams) must keep answering a real session
without losing a probe, survive, and answer a second session afterwards.

Usage: test_garbage.py /path/to/twamp
"""
import random
import json
import re
import socket
import subprocess
import threading
import time

import itlib
from itlib import check

ROUNDS = 40          # the flood: ROUNDS x (14 short + 60 random + 2 oversized) = 3040 datagrams
FLOOD_SECONDS = 3.0  # hard stop for the flood, whatever happens


def flood(port, stats, stop_event):
    """Sends bounded rounds of junk, paced so that the responder's socket buffer never overflows
    (a drop there would be a flood artefact, not a responder bug)."""
    rnd = random.Random(8762)
    deadline = time.monotonic() + FLOOD_SECONDS
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        dst = ("127.0.0.1", port)
        for _ in range(ROUNDS):
            if stop_event.is_set() or time.monotonic() > deadline:
                break
            batch = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in range(14)]  # too short
            batch += [rnd.randbytes(rnd.randint(0, 1500)) for _ in range(60)]        # any junk
            batch += [rnd.randbytes(9000), rnd.randbytes(60000)]                     # jumbo, oversize
            for d in batch:
                try:
                    s.sendto(d, dst)
                    stats["sent"] += 1
                except OSError:
                    stats["send_errors"] += 1
            time.sleep(0.02)


def body(twamp):
    resp = itlib.Responder(twamp)
    stats = {"sent": 0, "send_errors": 0}
    stop_event = threading.Event()
    flooder = threading.Thread(target=flood, args=(resp.port, stats, stop_event), daemon=True)
    try:
        # The session runs for about a second; the flood starts with it and overlaps it.
        session = itlib.spawn([twamp, "sender", resp.addr, "127.0.0.1:0", "-c", "500", "-i", "2", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        flooder.start()
        out, err = session.communicate(timeout=30)
        flooder.join(FLOOD_SECONDS + 2)
        print("flood: %(sent)d datagrams sent, %(send_errors)d send errors" % stats)
        check(stats["sent"] >= 1000, "flood sent at least 1000 datagrams")
        check(session.returncode == 0, "session under flood: exit 0 (stderr %r)" % err)
        j = json.loads(out) if out.strip().startswith("{") else None
        check(j is not None and j["received"] == 500 and j["lost"] == 0 and j["loss_pct"] == 0,
              "session under flood: received 500, lost 0")
        if j:
            check(all(v == 0 for v in j["errors"].values()), "session under flood: no errors %s" % j["errors"])
        check(resp.alive(), "responder alive after the flood")

        r, j = itlib.sender_json(twamp, resp, "-c", "20", "-i", "1")
        check(r.returncode == 0 and j and j["received"] == 20 and j["lost"] == 0,
              "second session after the flood: received 20, lost 0")
    finally:
        stop_event.set()
        rc = resp.stop()
    check(rc == 0, "responder exits 0 on SIGINT")
    # Its closing log line counts what it saw: every too-short datagram and every oversized one.
    m = re.search(r"malformed (\d+), oversize (\d+)", resp.log_text())
    check(m is not None, "responder logged its counters")
    if m:
        rounds_done = stats["sent"] // 76
        check(int(m.group(1)) >= 14 * rounds_done, "responder counted the short datagrams as malformed (%s)" % m.group(1))
        check(int(m.group(2)) >= 1 * rounds_done, "responder counted the oversized datagrams (%s)" % m.group(2))


if __name__ == "__main__":
    itlib.main(body)
