#!/usr/bin/python3
"""twamp_tshark: Wireshark's TWAMP-Control dissector reads our server <-> controller exchange
(captured on lo with `tcp port C or udp`, decoded with `-d tcp.port==C,twamp.control`): no
malformed packet, and every message of the classic exchange in order — Server Greeting, Setup
Response, Server Start, Request Session, Accept Session, Start Sessions, Start Sessions ACK,
Stop Session(s). The test packets of those sessions decode as TWAMP-Test (the dissector learns
their ports from Accept-Session), and with --reflect-octets the reflected octets are on the wire
where RFC 6038 puts them.

Skips (exit 77) when tshark is missing or cannot capture on lo.
Usage: test_twamp_tshark.py /path/to/twamp
"""
import os
import shutil
import subprocess
import tempfile

import itlib
from itlib import check

import twamp_ctl

EXPECTED = ["Server Greeting", "Setup Response", "Server Start", "Request Session", "Accept Session",
            "Start Sessions", "Start Sessions ACK", "Stop Session"]


def fields(path, decode_as, display, names):
    r = itlib.run(["tshark", "-r", path, *sum((["-d", d] for d in decode_as), []), "-Y", display, "-T", "fields",
                   "-E", "separator=/t", *sum((["-e", f] for f in names), [])])
    if r.returncode != 0:
        print("tshark -r failed: " + r.stderr)
    return [dict(zip(names, line.split("\t"))) for line in r.stdout.splitlines() if line.strip()]


def body(twamp):
    if shutil.which("tshark") is None:
        print("SKIP: tshark is not installed")
        return itlib.SKIP
    workdir = tempfile.mkdtemp(prefix="twamp-tshark-ctl-")
    os.chmod(workdir, 0o777)
    path = os.path.join(workdir, "lo.pcap")
    srv = twamp_ctl.Server(twamp)
    try:
        c = srv.port
        # A 16 MiB capture buffer: "udp" also takes whatever else runs on lo at the time.
        cap = itlib.Capture("tcp port %d or udp" % c, path, buffer_mb=32)
        if not cap.start():
            print("SKIP: tshark cannot capture on lo:\n" + cap.stop()[1])
            return itlib.SKIP
        runs = [("plain", ["-c", "20", "-i", "5"]),
                ("reflect-octets", ["-c", "10", "-i", "5", "--reflect-octets", "--reflect-length", "8",
                                    "--padding", "40"]),
                ("symmetric+reflect", ["-c", "10", "-i", "5", "--symmetric", "--reflect-octets",
                                       "--reflect-length", "8", "--padding", "40"])]
        sessions = {}
        for name, args in runs:
            r, rep = twamp_ctl.controller(twamp, srv, *args)
            n = int(args[1])
            check(r.returncode == 0 and rep and rep[0]["received"] == n, "%s: controller got %d of %d replies" % (name, n, n))
            if rep:
                sessions[name] = (rep[0]["sender"]["port"], rep[0]["reflector"]["port"], n)
            # Each controller has exited before the next starts, so the TCP streams are numbered in
            # the order of the runs.
        synced, err = cap.stop()
        check(synced, "the capture saw its end marker, so it holds every packet sent before it (%s)" % (err[-300:] if not synced else "ok"))

        # ---- control exchange
        ctl = "tcp.port==%d,twamp.control" % c
        bad = itlib.run(["tshark", "-r", path, "-d", ctl, "-Y", "(_ws.malformed || _ws.expert.severity >= error) && !(udp.port == %d)" % cap.marker_port]).stdout
        check(bad.strip() == "", "no malformed packets or expert errors: %r" % bad[:400])
        warn = itlib.run(["tshark", "-r", path, "-d", ctl, "-Y",
                          "twamp.control && _ws.expert.severity >= warning"]).stdout
        check(warn.strip() == "", "no expert warnings on TWAMP-Control frames: %r" % warn[:400])
        rows = fields(path, [ctl], "tcp.port==%d && tcp.len > 0" % c,
                      ["frame.number", "tcp.stream", "tcp.srcport", "tcp.len", "_ws.col.Protocol", "_ws.col.Info"])
        streams = {}
        for x in rows:
            streams.setdefault(x["tcp.stream"], []).append(x)
        check(len(streams) == len(runs), "%d control connections captured (got %d)" % (len(runs), len(streams)))
        for (name, _), (sid, msgs) in zip(runs, sorted(streams.items(), key=lambda kv: int(kv[0]))):
            infos = [m["_ws.col.Info"] for m in msgs]
            protos = {m["_ws.col.Protocol"] for m in msgs}
            print("  %s (tcp.stream %s): %s" % (name, sid, " | ".join(infos)))
            check(protos == {"TWAMP-Control"}, "%s: every control segment decodes as TWAMP-Control (%s)" % (name, protos))
            check(len(infos) == len(EXPECTED) and all(i.startswith(e) for i, e in zip(infos, EXPECTED)),
                  "%s: the messages are %s in order" % (name, ", ".join(EXPECTED)))
            lens = [int(m["tcp.len"]) for m in msgs]
            check(lens == [64, 164, 48, 112, 48, 32, 32, 32], "%s: message lengths 64/164/48/112/48/32/32/32 (%s)" % (name, lens))
            check(all("Error" not in i for i in infos), "%s: no Accept error shown" % name)
            from_server = [m for m in msgs if m["tcp.srcport"] == str(c)]
            check([m["_ws.col.Info"].split(",")[0] for m in from_server] ==
                  ["Server Greeting", "Server Start", "Accept Session", "Start Sessions ACK"],
                  "%s: the server sent Greeting, Server Start, Accept Session, Start Sessions ACK" % name)
        mode_rows = fields(path, [ctl], "twamp.control.modes", ["twamp.control.modes"])
        check(mode_rows and all(int(x["twamp.control.modes"]) & 1 for x in mode_rows),
              "greetings offer mode 1 (%s)" % [x["twamp.control.modes"] for x in mode_rows])
        mode_rows = fields(path, [ctl], "twamp.control.mode", ["twamp.control.mode"])
        selected = [int(x["twamp.control.mode"], 0) for x in mode_rows]
        check(selected == [1, 1 | 32, 1 | 32 | 64], "Setup Response modes 1, 33 (reflect octets), 97 (+ symmetrical "
              "size) (%s)" % selected)

        # ---- the test packets: TWAMP-Test through the ports Accept-Session named
        for name, (sport, rport, n) in sessions.items():
            t = fields(path, [ctl], "udp.port==%d && udp.port==%d" % (sport, rport),
                       ["udp.srcport", "udp.dstport", "udp.length", "_ws.col.Protocol", "udp.payload"])
            reqs = [x for x in t if x["udp.dstport"] == str(rport)]
            reps = [x for x in t if x["udp.srcport"] == str(rport)]
            check(len(reqs) == n and len(reps) == n, "%s: %d test requests and replies on the wire (%d, %d)" %
                  (name, n, len(reqs), len(reps)))
            check(all(x["_ws.col.Protocol"] == "TWAMP-Test" for x in t),
                  "%s: the test packets decode as TWAMP-Test via the control session" % name)
            check(all(x["udp.length"] == reqs[0]["udp.length"] for x in t) if reqs else False,
                  "%s: replies as long as requests (%s)" % (name, reqs[0]["udp.length"] if reqs else None))
            if name == "plain":
                continue
            check(t and all(x.get("udp.payload") for x in t),
                  "%s: tshark shows the UDP payload of every test packet" % name)
            if not t or not all(x.get("udp.payload") for x in t):
                continue
            # RFC 6038: the first 8 padding octets of the request (at 14, or 41 with Symmetrical
            # Size) come back at offset 41 of the reply.
            start = 41 if name.startswith("symmetric") else 14
            by_seq = {}
            for x in reqs:
                p = bytes.fromhex(x["udp.payload"].replace(":", ""))
                by_seq[p[0:4]] = p
            ok = 0
            for x in reps:
                p = bytes.fromhex(x["udp.payload"].replace(":", ""))
                q = by_seq.get(p[24:28])
                # Our sender fills them with its sequence number, repeated (never all zero
                # but for sequence 0), so a reply with the octets of another probe fails too.
                if q is not None and p[41:49] == q[start:start + 8] == p[24:28] * 2:
                    ok += 1
            check(ok == n, "%s: every reply carries the request's 8 octets to be reflected at offset 41 (%d of %d)" %
                  (name, ok, n))
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGINT")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    itlib.main_capture(body)
