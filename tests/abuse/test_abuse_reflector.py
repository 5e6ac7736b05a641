#!/usr/bin/python3
"""abuse_reflector: `twamp responder` under a flood, and its amplification.

  * `--max-sessions 256`: a good `twamp sender` (-c 400 -i 10) runs while valid test packets
    come from 5000 distinct source ports and garbage (random octets, sizes 0..200) comes from
    more: the sender loses nothing; the -v shutdown log shows the per-source state bounded
    (sessions created <= 256) and the excess answered statelessly (table full > 0);
  * reply/request octet ratio over requests of every size 0..100: measured and asserted to
    be at most 41/14 (TWAMP and --format auto) and 44/14 (--format stamp); with --strict-size
    at most 1: a 14-octet request gets no reply, a 41-octet one does.

Usage: test_abuse_reflector.py /path/to/twamp
"""
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import itlib  # noqa: E402
from itlib import check  # noqa: E402

PORTS = 5000
BATCH = 500
MAX_SESSIONS = 256
GOOD_COUNT = 400
GOOD_INTERVAL_MS = 10


def request(seq, size):
    """A test request of `size` octets: sequence, NTP timestamp, error estimate, zeros."""
    now = time.time() + 2208988800
    sec = int(now)
    frac = int((now - sec) * (1 << 32)) & 0xFFFFFFFF
    full = struct.pack("!IIIH", seq, sec, frac, 0x0001)
    return (full + bytes(max(0, size - len(full))))[:size]


def shutdown_counters(log):
    m = re.search(r"reflector stopped: received (\d+), reflected (\d+), malformed (\d+), oversize (\d+), "
                  r"sessions (\d+) \(expired (\d+), table full (\d+)\)", log)
    if not m:
        return None
    keys = ("received", "reflected", "malformed", "oversize", "sessions", "expired", "table_full")
    return dict(zip(keys, (int(x) for x in m.groups())))


def flood(resp):
    target = ("127.0.0.1", resp.port)
    rnd = random.Random(6)
    ports = set()
    valid = garbage = 0
    t0 = time.monotonic()
    for _round in range(40):  # bounded: ports repeat across batches only rarely
        if len(ports) >= PORTS:
            break
        socks = []
        try:
            for _ in range(BATCH):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", 0))
                socks.append(s)
            for i, s in enumerate(socks):
                p = s.getsockname()[1]
                if p not in ports and len(ports) < PORTS:
                    ports.add(p)
                    for k in range(2):  # two valid requests per source: a session, not a one-off
                        s.sendto(request(k, 41), target)
                        valid += 1
                else:
                    n = rnd.randrange(0, 201)
                    s.sendto(bytes(rnd.getrandbits(8) for _ in range(n)), target)
                    garbage += 1
                if i % 5 == 0:  # garbage from the same sources as well, sizes 0..200
                    n = rnd.randrange(0, 201)
                    s.sendto(bytes(rnd.getrandbits(8) for _ in range(n)), target)
                    garbage += 1
                if i % 100 == 99:
                    # Bursts of ~220 datagrams: a flood the responder must keep up with, not one
                    # that overflows its socket buffer (net.core.rmem_max caps it) and so drops
                    # the good sender's packets whatever the responder does.
                    time.sleep(0.01)
        finally:
            for s in socks:
                s.close()
    dt = time.monotonic() - t0
    print("  flood: %d valid requests from %d distinct source ports, %d garbage datagrams, in %.2f s" %
          (valid, len(ports), garbage, dt))
    return len(ports), valid, garbage


def flood_test(twamp):
    resp = itlib.Responder(twamp, extra=["--max-sessions", str(MAX_SESSIONS)])
    out = tempfile.TemporaryFile("w+")
    try:
        good = itlib.spawn([twamp, "sender", resp.addr, "127.0.0.1:0", "-c", str(GOOD_COUNT), "-i",
                            str(GOOD_INTERVAL_MS), "--timeout", "2", "--json", "-q"],
                           stdout=out, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)  # the good sender's session exists before the flood
        nports, valid, garbage = flood(resp)
        check(nports == PORTS, "flood: valid requests came from %d distinct source ports (%d)" % (PORTS, nports))
        try:
            _, gerr = good.communicate(timeout=GOOD_COUNT * GOOD_INTERVAL_MS / 1000.0 + 10)
        except subprocess.TimeoutExpired:
            good.kill()
            _, gerr = good.communicate(timeout=5)
        out.seek(0)
        try:
            rep = json.loads(out.read())
        except ValueError:
            rep = {}
        check(good.returncode == 0 and rep.get("received") == GOOD_COUNT and rep.get("lost") == 0,
              "good sender during the flood: rc %s, %s of %d replies, lost %s, %s" %
              (good.returncode, rep.get("received"), GOOD_COUNT, rep.get("lost"), (gerr or "").strip()[:200]))
        check(rep.get("errors", {}).get("unexpected_source", 1) == 0 and rep.get("duplicates", 1) == 0,
              "good sender: no stray or duplicate replies (errors %s)" % rep.get("errors"))
        rss = None
        try:
            with open("/proc/%d/status" % resp.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
        except OSError:
            pass
        check(resp.alive(), "responder still running after the flood (VmRSS %s kB)" % rss)
        check(resp.stop() == 0, "responder exits 0 on SIGINT")
        c = shutdown_counters(resp.log_text())
        print("  responder counters: %s" % c)
        check(c is not None, "the -v shutdown log has the counters")
        if c:
            check(c["sessions"] <= MAX_SESSIONS, "per-source state bounded: %d sessions created <= %d" %
                  (c["sessions"], MAX_SESSIONS))
            check(c["sessions"] >= MAX_SESSIONS - 1, "the table filled up (%d sessions)" % c["sessions"])
            check(c["table_full"] > 0, "excess sources answered statelessly: table full %d > 0" % c["table_full"])
            check(c["malformed"] > 0, "garbage counted as malformed (%d)" % c["malformed"])
            total = valid + garbage + GOOD_COUNT
            check(c["received"] >= 0.98 * total,
                  "the responder saw the flood: received %d of %d datagrams (%d valid, %d garbage, %d good)" %
                  (c["received"], total, valid, garbage, GOOD_COUNT))
    finally:
        out.close()
        resp.stop()


def ratios(twamp, extra, label):
    """Sends requests of every size 0..100, returns {size: reply length or None}."""
    resp = itlib.Responder(twamp, extra=extra)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    replies = {}
    try:
        for size in range(0, 101):
            u.sendto(request(size, size), ("127.0.0.1", resp.port))
        deadline = time.monotonic() + 1.0
        u.settimeout(0.1)
        while time.monotonic() < deadline and len(replies) < 101:
            try:
                data, _ = u.recvfrom(4096)
            except socket.timeout:
                continue
            if len(data) >= 28:
                seq = struct.unpack_from("!I", data, 24)[0]  # Sender Sequence Number
                if 0 <= seq <= 100 and seq not in replies:
                    replies[seq] = len(data)
    finally:
        u.close()
        resp.stop()
    answered = sorted(replies)
    worst = max(answered, key=lambda s: replies[s] / s) if answered else None
    ratio = replies[worst] / worst if worst else 0.0
    wire = (replies[worst] + 28) / (worst + 28) if worst else 0.0
    print("  %s: %d sizes answered (smallest %s), worst reply/request %d/%d = %.3f (with IPv4+UDP headers %.3f)"
          % (label, len(answered), answered[0] if answered else None, replies.get(worst, 0), worst or 0,
             ratio, wire))
    return replies, ratio


def amplification(twamp):
    r, ratio = ratios(twamp, [], "auto")
    check(not any(s < 14 for s in r), "auto: requests under 14 octets get no reply")
    check(all(s in r for s in range(14, 101)), "auto: every request of 14..100 octets is answered")
    check(abs(ratio - 41 / 14) < 1e-9, "auto: worst reply/request ratio is 41/14 (%.4f)" % ratio)
    check(all(r[s] == max(s, 41) for s in r), "auto: reply length = max(request, 41) (STAMP-shaped 44+ mirror)")

    r, ratio = ratios(twamp, ["--format", "twamp"], "twamp")
    check(abs(ratio - 41 / 14) < 1e-9, "twamp: worst reply/request ratio is 41/14 (%.4f)" % ratio)

    r, ratio = ratios(twamp, ["--format", "stamp"], "stamp")
    check(abs(ratio - 44 / 14) < 1e-9, "stamp: worst reply/request ratio is 44/14 (%.4f)" % ratio)
    check(all(r[s] == max(s, 44) for s in r), "stamp: reply length = max(request, 44)")

    r, ratio = ratios(twamp, ["--strict-size"], "auto --strict-size")
    check(14 not in r, "strict-size: no reply to a 14-octet request")
    check(r.get(41) == 41, "strict-size: a 41-octet request gets a 41-octet reply (%s)" % r.get(41))
    check(not any(s < 41 for s in r), "strict-size: nothing under 41 octets is answered")
    check(ratio <= 1.0, "strict-size: worst reply/request ratio <= 1 (%.4f)" % ratio)

    r, ratio = ratios(twamp, ["--strict-size", "--format", "stamp"], "stamp --strict-size")
    check(not any(s < 44 for s in r) and r.get(44) == 44,
          "stamp strict-size: nothing under 44 octets answered, 44 is (%s)" % r.get(44))
    check(ratio <= 1.0, "stamp strict-size: worst reply/request ratio <= 1 (%.4f)" % ratio)


def body(twamp):
    flood_test(twamp)
    amplification(twamp)


if __name__ == "__main__":
    itlib.main(body)
