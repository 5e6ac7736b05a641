#!/usr/bin/python3
"""integration_consumers: the programs users feed our outputs to read them.

- --telegraf lines are written into a real InfluxDB 1.x (Debian `influxdb`, started here on a
  temporary directory and free loopback ports) and queried back field by field;
- the --prometheus file passes `promtool check metrics` (Debian `prometheus`);
- the --svg chart renders with `rsvg-convert` (Debian `librsvg2-bin`) into a PNG of its size.

A consumer whose program is not installed is a skipped section (exit 77), never a quiet pass.

Usage: test_consumers.py /path/to/twamp
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import itlib
from itlib import check


def parse_line(line):
    """One InfluxDB line-protocol line of ours: (measurement, tags, fields, ns)."""
    head, fields, ts = line.rsplit(" ", 2)
    parts = head.split(",")
    tags = dict(p.split("=", 1) for p in parts[1:])
    out = {}
    for f in fields.split(","):
        k, v = f.split("=", 1)
        out[k] = int(v[:-1]) if v.endswith("i") else float(v)
    return parts[0], tags, out, int(ts)


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, data=None, timeout=5):
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def start_influxd(tmp):
    """influxd on 127.0.0.1 with free ports; returns (process, http base URL) or (None, None).
    Ports are picked just before the start; a port taken in between makes influxd exit, and the
    start is retried on new ports (three times at most)."""
    for attempt in range(3):
        http_port, rpc_port = free_tcp_port(), free_tcp_port()
        conf = os.path.join(tmp, "influxdb-%d.conf" % attempt)
        with open(conf, "w") as f:
            f.write('reporting-enabled = false\nbind-address = "127.0.0.1:%d"\n'
                    '[meta]\n  dir = "%s/meta"\n'
                    '[data]\n  dir = "%s/data"\n  wal-dir = "%s/wal"\n  query-log-enabled = false\n'
                    '[monitor]\n  store-enabled = false\n'
                    '[http]\n  bind-address = "127.0.0.1:%d"\n  log-enabled = false\n' %
                    (rpc_port, tmp, tmp, tmp, http_port))
        log = open(os.path.join(tmp, "influxd-%d.log" % attempt), "w")
        p = itlib.spawn(["influxd", "-config", conf], stdout=log, stderr=subprocess.STDOUT)
        base = "http://127.0.0.1:%d" % http_port
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and p.poll() is None:
            try:
                if http("GET", base + "/ping")[0] == 204:
                    return p, base
            except OSError:
                pass
            time.sleep(0.1)
        itlib.stop(p)
        print("influxd attempt %d did not come up; log:\n%s" % (attempt, open(log.name).read()[-1500:]))
    return None, None


def influx_roundtrip(twamp, resp, tmp):
    if not shutil.which("influxd"):
        itlib.skip("InfluxDB: influxd is not installed (Debian package influxdb)")
        return
    r = itlib.sender(twamp, resp, "-c", "50", "-i", "5", "--telegraf", "--report-interval", "0.1",
                     "--percentiles", "50,99.9")
    check(r.returncode == 0, "influx: sender exits 0 (%r)" % r.stderr[-200:])
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    finals = [parse_line(l) for l in lines if l.startswith("twamp,")]
    intervals = [parse_line(l) for l in lines if l.startswith("twamp_interval,")]
    check(len(finals) == 3, "influx: three final lines (%d)" % len(finals))
    check(len(intervals) >= 3, "influx: interval lines (%d)" % len(intervals))
    p, base = start_influxd(tmp)
    check(p is not None, "influx: influxd starts on loopback")
    if p is None:
        return
    try:
        http("POST", base + "/query", urllib.parse.urlencode({"q": "CREATE DATABASE twamp"}).encode())
        status, _ = http("POST", base + "/write?db=twamp&precision=ns", r.stdout.encode())
        check(status == 204, "influx: InfluxDB accepts every line (HTTP %d)" % status)
        q = urllib.parse.urlencode({"db": "twamp", "epoch": "ns",
                                    "q": 'SELECT * FROM "twamp" GROUP BY *'})
        _, body = http("GET", base + "/query?" + q)
        series = json.loads(body)["results"][0].get("series", [])
        check(len(series) == 3, "influx: three series (one per direction) come back (%d)" % len(series))
        by_dir = {s["tags"]["direction"]: s for s in series}
        for meas, tags, fields, ts in finals:
            s = by_dir.get(tags["direction"])
            if not check(s is not None, "influx: series for %s" % tags["direction"]):
                continue
            check(all(s["tags"].get(k) == v for k, v in tags.items()),
                  "influx: %s tags %s" % (tags["direction"], tags))
            row = dict(zip(s["columns"], s["values"][0]))
            check(row["time"] == ts, "influx: %s timestamp %d" % (tags["direction"], ts))
            bad = [k for k, v in fields.items() if row.get(k) != v]
            check(not bad, "influx: %s: all %d fields read back equal (differ: %s)" %
                  (tags["direction"], len(fields), [(k, fields[k], row.get(k)) for k in bad]))
        q = urllib.parse.urlencode({"db": "twamp", "q": 'SELECT count("sent") FROM "twamp_interval"'})
        _, body = http("GET", base + "/query?" + q)
        cnt = json.loads(body)["results"][0]["series"][0]["values"][0][1]
        check(cnt == len(intervals), "influx: every interval line stored (%d of %d)" % (cnt, len(intervals)))
    finally:
        itlib.stop(p, timeout=10)


def promtool_check(twamp, resp, tmp):
    if not shutil.which("promtool"):
        itlib.skip("Prometheus: promtool is not installed (Debian package prometheus)")
        return
    prom = os.path.join(tmp, "m.prom")
    r = itlib.sender(twamp, resp, "-c", "50", "-i", "5", "--prometheus", prom, "--percentiles", "50,90,99.9")
    check(r.returncode == 0, "promtool: sender exits 0")
    with open(prom, "rb") as f:
        c = subprocess.run(["promtool", "check", "metrics"], stdin=f, capture_output=True, text=True, timeout=30)
    check(c.returncode == 0, "promtool check metrics: no problem (%r %r)" % (c.stdout, c.stderr))
    # promtool really reads the file: a broken copy is refused.
    broken = os.path.join(tmp, "broken.prom")
    with open(prom) as f, open(broken, "w") as g:
        g.write(f.read().replace("# TYPE twamp_probes gauge", "# TYPE twamp_probes nonsense"))
    with open(broken, "rb") as f:
        c = subprocess.run(["promtool", "check", "metrics"], stdin=f, capture_output=True, text=True, timeout=30)
    check(c.returncode != 0, "promtool refuses a broken copy (the check can fail)")


def svg_render(twamp, resp, tmp):
    if not shutil.which("rsvg-convert"):
        itlib.skip("SVG: rsvg-convert is not installed (Debian package librsvg2-bin)")
        return
    svg, png = os.path.join(tmp, "c.svg"), os.path.join(tmp, "c.png")
    r = itlib.sender(twamp, resp, "-c", "60", "-i", "5", "--svg", svg)
    check(r.returncode == 0, "svg: sender exits 0")
    c = subprocess.run(["rsvg-convert", svg, "-o", png], capture_output=True, text=True, timeout=30)
    check(c.returncode == 0 and c.stderr == "", "rsvg-convert renders the chart without a warning (%r)" % c.stderr)
    with open(png, "rb") as f:
        head = f.read(24)
    ok = head[:8] == b"\x89PNG\r\n\x1a\n"
    check(ok, "svg: the output is a PNG")
    if ok:
        w, h = struct.unpack(">II", head[16:24])
        with open(svg) as f:
            text = f.read()
        check('width="%d"' % w in text and 'height="%d"' % h in text,
              "svg: the PNG has the SVG's size (%dx%d)" % (w, h))


def main():
    twamp = sys.argv[1]
    tmp = tempfile.TemporaryDirectory(prefix="twamp-consumers-")
    resp = itlib.Responder(twamp)
    try:
        influx_roundtrip(twamp, resp, tmp.name)
        promtool_check(twamp, resp, tmp.name)
        svg_render(twamp, resp, tmp.name)
    finally:
        resp.stop()
        itlib.cleanup()
        tmp.cleanup()
    sys.exit(itlib.finish())


if __name__ == "__main__":
    main()
