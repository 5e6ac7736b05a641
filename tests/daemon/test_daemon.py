#!/usr/bin/python3
"""`twamp daemon` on loopback: --check and its path errors; a daemon with a TWAMP server, a STAMP
reflector and sender sessions to itself serves /metrics with rising counters; SIGHUP adds and
removes a session without resetting the others, and keeps the old configuration when the new
file is invalid; SIGTERM leaves a complete results file.

usage: test_daemon.py TWAMP_BINARY FIXTURE_DIR
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemonlib as dl  # noqa: E402
from daemonlib import check  # noqa: E402


def run_check(twamp, path):
    p = subprocess.run([twamp, "daemon", "--config", path, "--check"], capture_output=True,
                       text=True, timeout=20)
    return p.returncode, p.stdout + p.stderr


def test_check(twamp, fixtures, work):
    # RFC 8913 A.4 carries only reflector state: it runs as is.
    rc, out = run_check(twamp, os.path.join(fixtures, "rfc8913_a4_session_reflector_ipv4.json"))
    check(rc == 0 and "configuration OK" in out, "--check accepts RFC 8913 A.4 (rc %d)" % rc)
    # The other examples load; what --check refuses in them are leaves this daemon does not act on.
    for f in sorted(os.listdir(fixtures)):
        if not f.startswith("rfc8913_"):
            continue
        rc, out = run_check(twamp, os.path.join(fixtures, f))
        lines = [l for l in out.splitlines() if l.startswith("twamp daemon:")]
        load_errors = [l for l in lines if "not supported" not in l and "needs its schedule" not in l
                       and "no client test-session-request" not in l]
        check(rc in (0, 2) and not load_errors, "%s loads (rc %d, load errors: %s)"
              % (f, rc, load_errors))
    example = os.path.join(fixtures, "..", "..", "..", "deploy", "twamp.json")
    rc, out = run_check(twamp, example)
    check(rc == 0, "--check accepts deploy/twamp.json (rc %d) %s" % (rc, out.strip()))
    bad = os.path.join(work, "bad.json")
    with open(bad, "w") as fh:
        fh.write('{"ietf-twamp:twamp": {"client": {"ctrl-connection": [{"name": "pe1", '
                 '"server-ip": "192.0.2.1", "server-tcp-port": 70000}]}}, '
                 '"twamp-daemon:daemon": {"metrics-lisen": "127.0.0.1:1"}}')
    rc, out = run_check(twamp, bad)
    check(rc == 2, "--check on a bad file exits 2 (got %d)" % rc)
    check("/ietf-twamp:twamp/client/ctrl-connection[name='pe1']/server-tcp-port: 70000 is out of "
          "range" in out, "out-of-range value reported with its path")
    check("/twamp-daemon:daemon/metrics-lisen: unknown member" in out,
          "unknown member reported with its path")
    # Running a bad file is refused the same way, before anything starts.
    p = subprocess.run([twamp, "daemon", "--config", bad], capture_output=True, text=True,
                       timeout=20)
    check(p.returncode == 2, "daemon refuses to start on a bad file (rc %d)" % p.returncode)


def config(ports, results, sessions):
    tcp, refl, down, metrics, arefl, keyfile = ports
    twamp = {
        "server": {"server-tcp-port": tcp, "servwait": 60},
        "session-reflector": {"refwait": 60},
        "client": {"ctrl-connection": [{
            "name": "self", "server-ip": "127.0.0.1", "server-tcp-port": tcp,
            "test-session-request": [{"name": "tw1", "reflector-ip": "127.0.0.1",
                                      "repeat": 4294967295, "timeout": "1"}]}]},
        "session-sender": {"test-session": [{"name": "tw1", "number-of-packets": 10,
                                             "periodic-interval": "0.01"}]},
    }
    light = {
        "s1": {"name": "s1", "reflector-ip": "127.0.0.1", "reflector-udp-port": refl,
               "number-of-packets": 20, "periodic-interval": "0.01", "timeout": "0.5"},
        "s2": {"name": "s2", "reflector-ip": "127.0.0.1", "reflector-udp-port": refl,
               "number-of-packets": 20, "periodic-interval": "0.01", "timeout": "0.5", "ssid": 7},
        "l1": {"name": "l1", "mode": "twamp-light", "reflector-ip": "127.0.0.1",
               "reflector-udp-port": refl, "number-of-packets": 20, "periodic-interval": "0.01",
               "timeout": "0.5"},
        "fin": {"name": "fin", "reflector-ip": "127.0.0.1", "reflector-udp-port": refl,
                "number-of-packets": 5, "periodic-interval": "0.01", "timeout": "0.5",
                "repeat": 2},
        "sa": {"name": "sa", "reflector-ip": "127.0.0.1", "reflector-udp-port": arefl,
               "number-of-packets": 10, "periodic-interval": "0.01", "timeout": "0.5",
               "key-id": "k1"},
        "sbad": {"name": "sbad", "reflector-ip": "127.0.0.1", "reflector-udp-port": arefl,
                 "number-of-packets": 5, "periodic-interval": "0.01", "timeout": "0.2",
                 "key-id": "k2"},
        "down": {"name": "down", "reflector-ip": "127.0.0.1", "reflector-udp-port": down,
                 "number-of-packets": 5, "periodic-interval": "0.01", "timeout": "0.2"},
    }
    return {
        "ietf-twamp:twamp": twamp,
        "twamp-daemon:stamp": {
            "session-sender": {"test-session": [light[s] for s in sessions]},
            "session-reflector": {"reflector": [
                {"name": "r1", "mode": "stamp", "reflector-ip": "127.0.0.1",
                 "reflector-udp-port": refl},
                {"name": "rauth", "mode": "stamp", "reflector-ip": "127.0.0.1",
                 "reflector-udp-port": arefl, "key-id": "k1"}]},
        },
        "twamp-daemon:daemon": {"metrics-listen": "127.0.0.1:%d" % metrics,
                                "results-file": results, "retry-initial": "0.2",
                                "retry-max": "1", "probe-allow": ["127.0.0.0/8"],
                                "probe-max-count": 50, "probe-min-interval-ms": 5,
                                "key-file": keyfile},
    }


def test_running(twamp, work):
    keyfile = os.path.join(work, "keys")
    with open(keyfile, "w") as f:
        f.write("# pfs format\nk1 00112233445566778899aabbccddeeff\n"
                "k2 ffeeddccbbaa99887766554433221100\n")
    ports = (dl.free_port(socket.SOCK_STREAM), dl.free_port(), dl.free_port(),
             dl.free_port(socket.SOCK_STREAM), dl.free_port(), keyfile)
    metrics_at = "127.0.0.1:%d" % ports[3]
    results = os.path.join(work, "results.jsonl")
    d = dl.Daemon(twamp, config(ports, results, ["s1", "l1", "fin", "down", "sa", "sbad"]), work)
    if not check(d.wait_log(r"twamp daemon: ready", 15), "daemon ready"):
        print(d.log_text())
        return
    M = lambda: dl.parse_metrics(dl.scrape(metrics_at))  # noqa: E731
    v = dl.value

    # Wait until every kind of session has finished a few runs.
    def progressed():
        m = M()
        return m if ((v(m, "twamp_sender_tests_total", session="s1") or 0) >= 2
                     and (v(m, "twamp_sender_tests_total", session="tw1") or 0) >= 2
                     and (v(m, "twamp_sender_tests_total", session="fin") or 0) >= 3
                     and (v(m, "twamp_sender_tests_total", session="down") or 0) >= 1
                     # reflector and server counters are fed from the event loop every 200 ms
                     and (v(m, "twamp_reflector_packets_reflected_total", reflector="r1") or 0) > 0
                     and (v(m, "twamp_server_connections_total") or 0) >= 2) else None
    m1 = dl.wait_until(progressed, 30, 0.2)
    if not check(m1 is not None, "sessions finished runs (s1, tw1 >= 2, fin = 3, down >= 1) and the reflector and "
              "server counted"):
        print(d.log_text())
        d.stop()
        return
    for name in ["twamp_sender_probes_sent_total", "twamp_sender_replies_received_total",
                 "twamp_sender_probes_lost_total", "twamp_delay_seconds_bucket",
                 "twamp_delay_seconds_count", "twamp_session_up",
                 "twamp_reflector_packets_reflected_total", "twamp_server_connections_total",
                 "twamp_reflector_sessions_total", "twamp_reflector_refusals_total",
                 "twamp_reflector_auth_failures_total"]:
        check(any(n == name for (n, _) in m1), "/metrics has " + name)
    for s, mode in (("s1", "stamp"), ("l1", "twamp-light"), ("tw1", "twamp")):
        check(v(m1, "twamp_sender_replies_received_total", session=s, mode=mode) > 0,
              "%s (%s) received replies" % (s, mode))
        check(v(m1, "twamp_session_up", session=s) == 1, "%s is up" % s)
    m_auth = dl.wait_until(lambda: (lambda m: m if (v(m, "twamp_sender_tests_total", session="sa")
                                                    or 0) >= 1 and
                                    (v(m, "twamp_sender_tests_total", session="sbad") or 0) >= 1
                                    and (v(m, "twamp_reflector_auth_failures_total",
                                           reflector="rauth") or 0) > 0 else None)(M()), 20, 0.2)
    check(m_auth is not None, "authenticated STAMP sessions ran")
    if m_auth:
        check(v(m_auth, "twamp_sender_replies_received_total", session="sa") > 0,
              "authenticated STAMP with the reflector's key gets replies")
        check(v(m_auth, "twamp_sender_replies_received_total", session="sbad") == 0,
              "authenticated STAMP with another key gets none")
        check(v(m_auth, "twamp_reflector_auth_failures_total", reflector="rauth") >= 5,
              "the reflector counts the authentication failures")
    check(v(m1, "twamp_session_up", session="down") == 0, "the session to a dead port is down")
    check(v(m1, "twamp_sender_probes_lost_total", session="down", direction="roundtrip") > 0,
          "its probes count as lost")
    check(v(m1, "twamp_sender_failures_total", session="down") == 0 and
          v(m1, "twamp_sender_tests_total", session="down") >= 1,
          "the dead peer is retried, not failed")
    for direction in ("outbound", "inbound", "roundtrip"):
        for s in ("s1", "tw1"):
            check((v(m1, "twamp_delay_seconds_count", session=s, direction=direction) or 0) > 0,
                  "%s histogram has %s samples" % (s, direction))
    inf = v(m1, "twamp_delay_seconds_bucket", session="s1", direction="roundtrip", le="+Inf")
    small = v(m1, "twamp_delay_seconds_bucket", session="s1", direction="roundtrip", le="1")
    check(inf is not None and inf == small, "round trips on loopback fall in the buckets below 1 s")
    check(len([1 for (n, l) in m1 if n == "twamp_delay_seconds_bucket"
               and ("session", "s1") in l and ("direction", "roundtrip") in l]) >= 50,
          "the histogram has at least 50 buckets")
    check((v(m1, "twamp_reflector_packets_reflected_total", reflector="r1") or 0) > 0,
          "the STAMP reflector counts reflected packets")
    check((v(m1, "twamp_server_connections_total") or 0) >= 2,
          "the server counts control connections (%s)" % v(m1, "twamp_server_connections_total"))
    check(v(m1, "twamp_sender_tests_total", session="fin") == 3,
          "a session with repeat 2 ran exactly 3 times")

    # Counters rise.
    before = {s: v(m1, "twamp_sender_probes_sent_total", session=s) for s in ("s1", "l1", "tw1")}
    refl_before = v(m1, "twamp_reflector_packets_reflected_total", reflector="r1")

    def rose():
        m = M()
        ok = all(v(m, "twamp_sender_probes_sent_total", session=s) > before[s] for s in before)
        return m if ok and v(m, "twamp_reflector_packets_reflected_total",
                             reflector="r1") > refl_before else None
    m2 = dl.wait_until(rose, 20, 0.2)
    check(m2 is not None, "sent and reflected counters rise between scrapes")

    test_probe(metrics_at, ports)

    # SIGHUP: add s2, remove l1; s1 keeps its counters.
    m_pre = M()
    s1_sent = v(m_pre, "twamp_sender_probes_sent_total", session="s1")
    s1_tests = v(m_pre, "twamp_sender_tests_total", session="s1")
    # s1 also changes (25 probes per run instead of 20): it restarts with the new setting, and
    # its counters, whose labels are the same, carry on.
    reloaded = config(ports, results, ["s1", "s2", "fin", "down", "sa", "sbad"])
    reloaded["twamp-daemon:stamp"]["session-sender"]["test-session"][0]["number-of-packets"] = 25
    d.write_config(reloaded)
    d.signal(signal.SIGHUP)
    check(d.wait_log(r"twamp daemon: reloaded", 15), "SIGHUP reload logged")
    m3 = dl.wait_until(lambda: (lambda m: m if (v(m, "twamp_sender_tests_total", session="s2")
                                                or 0) >= 1 and
                                v(m, "twamp_sender_tests_total", session="s1") > s1_tests
                                else None)(M()), 20, 0.2)
    check(m3 is not None, "the added session s2 runs")
    if m3:
        check(v(m3, "twamp_sender_probes_sent_total", session="s1") >= s1_sent and
              v(m3, "twamp_sender_tests_total", session="s1") >= s1_tests,
              "s1 kept its counters across the reload")
        # l1 archives its last run first (at most its loss timeout), then its series go.
        gone = dl.wait_until(lambda: v(M(), "twamp_sender_probes_sent_total", session="l1")
                             is None, 10, 0.1)
        check(gone, "the removed session l1 has no series")
        check(v(m3, "twamp_sender_tests_total", session="fin") == 3,
              "the finished session was not restarted")

    # An invalid file on reload: logged, the old configuration keeps running.
    with open(d.config_path, "w") as fh:
        fh.write('{"ietf-twamp:twamp": {"server": {"servwait": 0}}}')
    d.signal(signal.SIGHUP)
    check(d.wait_log(r"reload failed", 15), "an invalid reload is logged")
    check("/ietf-twamp:twamp/server/servwait: 0 is out of range" in d.log_text(),
          "the invalid reload names the path")
    m4 = M()
    s2_sent = v(m4, "twamp_sender_probes_sent_total", session="s2")
    check(v(m4, "twamp_daemon_config_reloads", result="error") == 1, "reload error counted")
    m5 = dl.wait_until(lambda: (lambda m: m if v(m, "twamp_sender_probes_sent_total",
                                                 session="s2") > s2_sent else None)(M()), 20, 0.2)
    check(m5 is not None, "sessions keep running after an invalid reload")

    # SIGTERM: complete results file.
    last = M()
    rc = d.stop()
    check(rc == 0, "SIGTERM: exit status 0 (got %s)" % rc)
    check("twamp daemon: stopped" in d.log_text(), "the daemon logged its stop")
    try:
        lines = dl.results(results)
    except Exception as e:  # noqa: BLE001
        check(False, "results file parses line by line: %s" % e)
        return
    check(all("session" in l and "interval" in l and "schema_version" in l for l in lines),
          "every results line carries session, interval and the report schema")
    by = {}
    for l in lines:
        by.setdefault(l["session"], []).append(l)
    for s, ls in by.items():
        check([l["interval"] for l in ls] == list(range(len(ls))),
              "%s: intervals numbered 0..%d without gaps" % (s, len(ls) - 1))
    check(len(by.get("fin", [])) == 3, "fin: exactly 3 results lines")
    s1_req = [l["requested"] for l in by.get("s1", [])]
    check(20 in s1_req and s1_req[-1] == 25 and s1_req == sorted(s1_req),
          "s1 ran with 20 probes per run, then with 25 after the reload")
    for s in ("s1", "s2", "tw1"):
        archived = sum(l["sent"] for l in by.get(s, []))
        scraped = v(last, "twamp_sender_probes_sent_total", session=s) or 0
        check(archived >= scraped > 0,
              "%s: every probe counted before SIGTERM is archived (%d >= %d)"
              % (s, archived, scraped))
    check(by.get("l1") and by["l1"][-1]["interrupted"] in (True, False),
          "the removed session l1 left its lines")
    check(by.get("tw1") and by["tw1"][0]["mode"] == "twamp" and by["tw1"][0]["received"] > 0,
          "TWAMP session results are archived")


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_probe(metrics_at, ports):
    tcp, refl, down = ports[:3]
    base = "http://%s/probe?" % metrics_at
    for mode, port in (("stamp", refl), ("light", refl), ("twamp", tcp)):
        st, body = http_get(base + "target=127.0.0.1:%d&mode=%s&count=5&interval_ms=10"
                            % (port, mode))
        m = dl.parse_metrics(body)
        check(st == 200 and dl.value(m, "twamp_probe_success") == 1 and
              dl.value(m, "twamp_probe_received") == 5,
              "/probe %s: 5 of 5 answered (status %d)" % (mode, st))
        check((dl.value(m, "twamp_probe_delay_seconds", direction="roundtrip", stat="max") or 0)
              > 0, "/probe %s: round-trip delay reported" % mode)
    st, body = http_get(base + "target=127.0.0.1:%d&mode=stamp&count=3&interval_ms=10" % down)
    m = dl.parse_metrics(body)
    check(st == 200 and dl.value(m, "twamp_probe_success") == 0 and
          dl.value(m, "twamp_probe_lost", direction="roundtrip") == 3,
          "/probe to a dead port: success 0, 3 lost")
    st, _ = http_get(base + "target=192.0.2.1:862&mode=stamp&count=3&interval_ms=10")
    check(st == 403, "/probe outside probe-allow is refused (%d)" % st)
    st, _ = http_get(base + "target=127.0.0.1:%d&mode=stamp&count=51&interval_ms=10" % refl)
    check(st == 400, "/probe above probe-max-count is refused (%d)" % st)
    st, _ = http_get(base + "target=127.0.0.1:%d&mode=stamp&count=5&interval_ms=1" % refl)
    check(st == 400, "/probe below probe-min-interval-ms is refused (%d)" % st)
    # probe-max-concurrent (default 4): eight tests of 50 probes 10 ms apart (0.5 s each) asked
    # for at once; those beyond the limit get 503, the others run.
    import concurrent.futures
    url = base + "target=127.0.0.1:%d&mode=stamp&count=50&interval_ms=10" % refl
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = sorted(f.result()[0] for f in [pool.submit(http_get, url) for _ in range(8)])
    check(codes.count(503) >= 1 and codes.count(200) >= 1 and codes.count(200) <= 4 and
          set(codes) <= {200, 503},
          "/probe beyond probe-max-concurrent gets 503, at most 4 run at once (%s)" % codes)


def test_notify(twamp, work):
    """The systemd notification protocol: READY, RELOADING (+ MONOTONIC_USEC), READY, STOPPING."""
    path = os.path.join(work, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    cfg = {"twamp-daemon:stamp": {"session-reflector": {"reflector": [
        {"name": "r", "reflector-ip": "127.0.0.1", "reflector-udp-port": dl.free_port()}]}}}
    d = dl.Daemon(twamp, cfg, work, name="notify", env=env)
    msgs = []
    try:
        msgs.append(sock.recv(4096).decode())
        d.signal(signal.SIGHUP)
        msgs.append(sock.recv(4096).decode())
        msgs.append(sock.recv(4096).decode())
        d.signal(signal.SIGTERM)
        msgs.append(sock.recv(4096).decode())
    except socket.timeout:
        pass
    finally:
        sock.close()
    try:
        rc = d.proc.wait(15)  # the SIGTERM above; no second signal
    except subprocess.TimeoutExpired:
        rc = d.stop()
    check(len(msgs) == 4 and msgs[0] == "READY=1" and msgs[1].startswith("RELOADING=1\n") and
          "MONOTONIC_USEC=" in msgs[1] and msgs[2] == "READY=1" and msgs[3] == "STOPPING=1",
          "sd_notify: READY, RELOADING, READY, STOPPING (%s)" % msgs)
    check(rc == 0, "a reflector-only daemon stops with 0 (%s)" % rc)


def main():
    twamp, fixtures = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="twamp-daemon-")
    try:
        test_check(twamp, fixtures, work)
        test_notify(twamp, work)
        test_running(twamp, work)
    finally:
        dl.cleanup()
    rc = dl.finish()
    if rc == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("logs and results kept in " + work)
    return rc


if __name__ == "__main__":
    sys.exit(main())
