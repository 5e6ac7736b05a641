#!/usr/bin/python3
"""A STAMP mesh of three `twamp daemon`s on 127.0.0.1, 127.0.0.2 and 127.0.0.3, each reflecting
and probing the other two, scraped by a real Prometheus (Debian package `prometheus`) started
here on a temporary directory and a free port. PromQL over its HTTP API must return the 6
directed pairs with replies received, and a histogram_quantile(0.5, ...) round-trip value for
each of them. Bounded in time; exits 77 when Prometheus is not installed.

usage: test_prometheus_mesh.py TWAMP_BINARY
"""
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemonlib as dl  # noqa: E402
from daemonlib import check  # noqa: E402

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]

# The queries the README shows; the test runs them as written.
Q_PAIRS = "sum by (instance, reflector) (twamp_sender_replies_received_total) > 0"
Q_MEDIAN = ('histogram_quantile(0.5, sum by (instance, reflector, le) '
            '(rate(twamp_delay_seconds_bucket{direction="roundtrip"}[15s])))')


def find_prometheus():
    for p in ("/usr/bin/prometheus", shutil.which("prometheus") or ""):
        if p and os.access(p, os.X_OK):
            return p
    return None


def query(base, q):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read().decode())
    if body.get("status") != "success":
        raise RuntimeError("query failed: %s" % body)
    return body["data"]["result"]


def main():
    twamp = sys.argv[1]
    prom = find_prometheus()
    if not prom:
        print("SKIP: the Debian package 'prometheus' is not installed "
              "(apt-get install prometheus); this test needs a real Prometheus")
        return dl.SKIP
    for h in HOSTS[1:]:
        try:
            dl.free_port(host=h)
        except OSError:
            print("SKIP: cannot bind %s (no 127.0.0.0/8 loopback routing here)" % h)
            return dl.SKIP

    work = tempfile.mkdtemp(prefix="twamp-mesh-")
    prom_proc = None
    try:
        refl = {h: dl.free_port(host=h) for h in HOSTS}
        mport = {h: dl.free_port(socket.SOCK_STREAM, host=h) for h in HOSTS}
        daemons = []
        for h in HOSTS:
            sessions = [{"name": "to-" + p, "sender-ip": h, "reflector-ip": p,
                         "reflector-udp-port": refl[p], "number-of-packets": 20,
                         "periodic-interval": "0.05", "timeout": "1"}
                        for p in HOSTS if p != h]
            cfg = {
                "twamp-daemon:stamp": {
                    "session-sender": {"test-session": sessions},
                    "session-reflector": {"reflector": [{"name": "stamp", "mode": "stamp",
                                                         "reflector-ip": h,
                                                         "reflector-udp-port": refl[h]}]},
                },
                "twamp-daemon:daemon": {"metrics-listen": "%s:%d" % (h, mport[h]),
                                        "results-file": os.path.join(work, h + ".jsonl")},
            }
            daemons.append(dl.Daemon(twamp, cfg, work, name=h))
        for d, h in zip(daemons, HOSTS):
            if not check(d.wait_log(r"twamp daemon: ready", 15), "daemon on %s ready" % h):
                print(d.log_text())
                return dl.finish()

        pport = dl.free_port(socket.SOCK_STREAM)
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: twamp\n    static_configs:\n"
                    "      - targets: [%s]\n"
                    % ", ".join("'%s:%d'" % (h, mport[h]) for h in HOSTS))
        plog = open(os.path.join(work, "prometheus.log"), "w")
        prom_proc = subprocess.Popen(
            [prom, "--config.file=" + os.path.join(work, "prometheus.yml"),
             "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % pport],
            stdout=plog, stderr=subprocess.STDOUT)
        dl._children.append(prom_proc)
        base = "http://127.0.0.1:%d" % pport

        def ready():
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return prom_proc.poll() is not None and "exited"
        if not check(dl.wait_until(ready, 30, 0.2) is True, "Prometheus ready"):
            print(open(plog.name).read()[-3000:])
            return dl.finish()

        def six_pairs():
            try:
                pairs = query(base, Q_PAIRS)
                med = query(base, Q_MEDIAN)
            except (OSError, RuntimeError):
                return None
            good = [m for m in med if math.isfinite(float(m["value"][1]))
                    and float(m["value"][1]) > 0]
            return (pairs, good) if len(pairs) == 6 and len(good) == 6 else None
        got = dl.wait_until(six_pairs, 60, 1.0)
        if not check(got is not None, "PromQL returns 6 directed pairs with replies and a median"):
            try:
                print("pairs:", query(base, Q_PAIRS))
                print("median:", query(base, Q_MEDIAN))
            except (OSError, RuntimeError) as e:
                print(e)
            return dl.finish()
        pairs, med = got
        seen = set()
        for m in pairs:
            src = m["metric"]["instance"].rsplit(":", 1)[0]
            dst = m["metric"]["reflector"].rsplit(":", 1)[0]
            seen.add((src, dst))
        want = {(a, b) for a in HOSTS for b in HOSTS if a != b}
        check(seen == want, "the pairs are exactly the 6 directed pairs: %s" % sorted(seen))
        for m in med:
            v = float(m["value"][1])
            check(0 < v < 1, "median round trip %s -> %s = %.1f us"
                  % (m["metric"]["instance"], m["metric"]["reflector"], v * 1e6))
        print("Q_PAIRS  =", Q_PAIRS)
        print("Q_MEDIAN =", Q_MEDIAN)
    finally:
        if prom_proc and prom_proc.poll() is None:
            prom_proc.terminate()
            try:
                prom_proc.wait(10)
            except subprocess.TimeoutExpired:
                prom_proc.kill()
        dl.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return dl.finish()


if __name__ == "__main__":
    sys.exit(main())
