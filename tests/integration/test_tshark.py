#!/usr/bin/python3
"""integration_tshark: capture real sessions on lo and let Wireshark's TWAMP-Test dissector judge
the packets on the wire: well formed, Sender TTL filled, reply as long as the request, and the IP
options (DSCP, DF, TTL) the command line asked for.

Skips (exit 77) when tshark is missing or cannot capture on lo (needs root or CAP_NET_RAW).
Usage: test_tshark.py /path/to/twamp
"""
import os
import shutil
import subprocess
import tempfile

import itlib
from itlib import check

FIELDS = ["frame.number", "udp.srcport", "udp.dstport", "udp.length", "ip.dsfield", "ip.flags.df",
          "ip.ttl", "twamp.test.seq_number", "twamp.test.sender_seq_number", "twamp.test.sender_ttl",
          "_ws.col.Protocol"]


def decode(path, port, marker_port):
    """Rows of FIELDS for every captured packet but the capture's markers, with the port forced
    to the TWAMP-Test dissector."""
    r = itlib.run(["tshark", "-r", path, "-d", "udp.port==%d,twamp.test" % port,
                   "-Y", "!(udp.port == %d)" % marker_port, "-T", "fields",
                   "-E", "separator=/t", *sum((["-e", f] for f in FIELDS), [])])
    rows = [dict(zip(FIELDS, line.split("\t"))) for line in r.stdout.splitlines() if line.strip()]
    malformed = itlib.run(["tshark", "-r", path, "-d", "udp.port==%d,twamp.test" % port,
                           "-Y", "_ws.malformed || _ws.expert.severity >= warning"]).stdout
    return rows, malformed


def split_by_sender(rows, port, sender_port):
    """The packets of one session: requests from, and replies to, that sender's UDP port."""
    sp = str(sender_port)
    return [x for x in rows if (x["udp.dstport"] == str(port) and x["udp.srcport"] == sp) or
            (x["udp.srcport"] == str(port) and x["udp.dstport"] == sp)]


def check_common(name, rows, port, count):
    reqs = [x for x in rows if x["udp.dstport"] == str(port)]
    reps = [x for x in rows if x["udp.srcport"] == str(port)]
    check(len(reqs) == count and len(reps) == count,
          "%s: %d requests and %d replies captured (got %d, %d)" % (name, count, count, len(reqs), len(reps)))
    check(all(x["_ws.col.Protocol"] == "TWAMP-Test" for x in rows), "%s: every packet is TWAMP-Test" % name)
    check(all(x["twamp.test.sender_ttl"] not in ("", "0") for x in reps), "%s: replies carry a Sender TTL" % name)
    check(all(x["ip.ttl"] == "255" for x in reps), "%s: replies leave with IP TTL 255" % name)
    # Requests and replies pair up by the reply's Sender Sequence Number. A reply is as long as
    # its request, except that a request shorter than the 41-octet reflector base (IMIX's 64-octet
    # frames) gets the base (RFC 5357 4.2.1).
    by_seq = {x["twamp.test.seq_number"]: x for x in reqs}
    same_len = all(x["twamp.test.sender_seq_number"] in by_seq and
                   int(x["udp.length"]) == max(8 + 41, int(by_seq[x["twamp.test.sender_seq_number"]]["udp.length"]))
                   for x in reps)
    check(same_len, "%s: each reply's UDP length equals its request's (at least 8 + 41)" % name)
    return reqs, reps


# name, sender options, probe count
CASES = [
    ("default", [], 20),
    ("stamp", ["--stamp", "--ssid", "7", "--padding", "40"], 20),
    ("dscp-ef", ["--dscp", "ef"], 20),
    ("df", ["--do-not-fragment"], 20),
    ("ttl5", ["--ttl", "5"], 20),
    ("imix", ["--padding", "-1"], 24),
]


def check_case(name, reqs, reps, rows):
    if name == "default":
        check(all(x["twamp.test.sender_ttl"] == "255" for x in reps), "default: Sender TTL 255 on loopback")
        check(all(x["ip.dsfield"] == "0x00" for x in rows), "default: DS field 0 both ways")
        check(all(x["ip.flags.df"] == "0" for x in reqs), "default: DF clear on requests")
        check(all(x["udp.length"] == str(8 + 41) for x in rows), "default: 41-octet TWAMP packets")
    elif name == "stamp":
        check(all(x["udp.length"] == str(8 + 44 + 40) for x in rows), "stamp: 84-octet STAMP packets")
    elif name == "dscp-ef":
        check(all(x["ip.dsfield"] == "0xb8" for x in reqs), "dscp-ef: requests carry DS field 0xb8")
        check(all(x["ip.dsfield"] == "0xb8" for x in reps), "dscp-ef: replies copy DS field 0xb8")
    elif name == "df":
        check(all(x["ip.flags.df"] == "1" for x in reqs), "df: DF set on requests")
    elif name == "ttl5":
        check(all(x["ip.ttl"] == "5" for x in reqs), "ttl5: requests leave with IP TTL 5")
        check(all(x["twamp.test.sender_ttl"] == "5" for x in reps), "ttl5: replies report Sender TTL 5")
    elif name == "imix":
        sizes = sorted({int(x["udp.length"]) for x in reqs})
        check(len(sizes) == 3, "imix: three request sizes (got %s)" % sizes)


def body(twamp):
    if shutil.which("tshark") is None:
        print("SKIP: tshark is not installed")
        return itlib.SKIP
    # dumpcap (tshark's capture child) must be able to write here even when it drops privileges.
    workdir = tempfile.mkdtemp(prefix="twamp-tshark-")
    os.chmod(workdir, 0o777)
    path = os.path.join(workdir, "lo.pcap")
    resp = itlib.Responder(twamp)  # no --dscp / --tos: it must copy the request's DSCP
    try:
        # One capture for all sessions; each session is told apart by its sender's UDP port.
        cap = itlib.Capture("udp port %d" % resp.port, path, buffer_mb=32)
        if not cap.start():
            print("SKIP: tshark cannot capture on lo:\n" + cap.stop()[1])
            return itlib.SKIP
        sessions = []
        for name, args, count in CASES:
            r, j = itlib.sender_json(twamp, resp, "-c", str(count), "-i", "2", *args)
            check(r.returncode == 0 and j and j["received"] == count, "%s: sender got all %d replies" % (name, count))
            if j:
                sessions.append((name, count, j["sender"]["port"]))
        synced, err = cap.stop()
        check(synced, "the capture saw its end marker, so it holds every packet sent before it (%s)" % (err[-300:] if not synced else "ok"))

        rows, malformed = decode(path, resp.port, cap.marker_port)
        check(malformed.strip() == "" and "Malformed" not in malformed,
              "no malformed packets or expert warnings: %r" % malformed[:300])
        check(len(rows) == 2 * sum(c for _, c, _ in sessions), "no packets besides the sessions' (%d)" % len(rows))
        for name, count, sender_port in sessions:
            mine = split_by_sender(rows, resp.port, sender_port)
            reqs, reps = check_common(name, mine, resp.port, count)
            check_case(name, reqs, reps, mine)
    finally:
        check(resp.stop() == 0, "responder exits 0 on SIGINT")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    itlib.main_capture(body)
