#!/usr/bin/python3
"""abuse_signals: SIGINT / SIGTERM and the integrity of what is written.

  * `twamp sender` interrupted mid-run (SIGINT, and SIGTERM): it stops, exits 0, and its JSON
    Lines end with a final report saying "interrupted": true with what it measured; the
    --per-packet CSV has the header and exactly one row per probe sent (sequence numbers
    0..sent-1, every row complete); the --prometheus file, polled all through two runs that
    replace it, is never seen partial (every read parses and ends with a newline);
  * a second SIGINT ends a sender that is waiting for outstanding replies at once;
  * `twamp controller` interrupted mid-run: it stops its sender, sends Stop-Sessions, prints
    its report ("interrupted": true), exits 0; the server sees the connection closed cleanly;
  * `twamp server` (with a session running) and `twamp responder` on SIGINT and SIGTERM: exit
    0 and their -v log says they stopped; the controller whose server went away exits 3 with
    one line.

Usage: test_abuse_signals.py /path/to/twamp
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import itlib  # noqa: E402
from itlib import check  # noqa: E402

import twamp_ctl as tc  # noqa: E402

CSV_HEADER = ("sender_seq,reflector_seq,status,t1_ns,t2_ns,t3_ns,t4_ns,outbound_ns,inbound_ns,roundtrip_ns,"
              "sender_ttl,reply_ttl,reorder_extent")
PROM_LINE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEnaNInf]+$")


class PromPoller:
    """Reads FILE as fast as it can in a thread; every read must be a complete exposition."""

    def __init__(self, path):
        self.path = path
        self.reads = 0
        self.bad = []
        self.versions = set()
        self.history = []  # (seconds since start, length) of each new version seen
        self.t0 = time.monotonic()
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        deadline = time.monotonic() + 30
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            if not self.read_once():
                time.sleep(0.001)
                continue
            time.sleep(0.0005)

    def read_once(self):
        try:
            with open(self.path) as f:
                text = f.read()
        except FileNotFoundError:
            return False
        with self.lock:
            self.reads += 1
            why = self.problem(text)
            if why and len(self.bad) < 5:
                self.bad.append(why)
            key = hash(text)
            if key not in self.versions:
                self.versions.add(key)
                self.history.append((round(time.monotonic() - self.t0, 3), len(text)))
        return True

    @staticmethod
    def problem(text):
        if not text.endswith("\n"):
            return "no final newline (%d octets)" % len(text)
        samples = 0
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            if not PROM_LINE.match(line):
                return "bad line %r" % line[:80]
            samples += 1
        if samples == 0 or "twamp_" not in text:
            return "no samples"
        return None

    def stop(self):
        """Stops polling and reads once more (the thread may not have run since the last write)."""
        if not self.stop_ev.is_set():
            self.stop_ev.set()
            self.t.join(5)
            self.read_once()


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


def sender_interrupted(twamp, sig, workdir, prom, label):
    resp = itlib.Responder(twamp)
    csv = os.path.join(workdir, "pp-%s.csv" % label)
    out = tempfile.TemporaryFile("w+")
    log = tempfile.NamedTemporaryFile("w+", prefix="twamp-sig-", suffix=".log")
    try:
        # -v logs every reply on stderr, unbuffered: the readiness signal. (The interval lines
        # on stdout cannot serve: stdout to a file is block-buffered until the run ends.)
        p = itlib.spawn([twamp, "sender", resp.addr, "127.0.0.1:0", "-c", "1000", "-i", "5", "--timeout", "2",
                         "--json", "--report-interval", "0.2", "--per-packet", csv, "--prometheus", prom, "-v"],
                        stdout=out, stderr=log, text=True)
        # Interrupted mid-run: once the 250th reply is in (1.25 s of its 5 s run).
        check(itlib.wait_for(r"Reply from \S+ \[rseq=\d+ sseq=249 ", itlib.file_reader(log.name), 20.0, p)
              is not None, "%s: 250 replies logged before the signal" % label)
        check(p.poll() is None, "%s: sender still running when signalled" % label)
        t0 = time.monotonic()
        p.send_signal(sig)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        dt = time.monotonic() - t0
        err = itlib.file_reader(log.name)()
        err = "\n".join(x for x in err.splitlines() if "Reply from" not in x)
        check(p.returncode == 0, "%s: sender exits 0 (rc %s, %r)" % (label, p.returncode, err.strip()[:200]))
        # Its replies are all in at once on loopback; the bound is its --timeout 2 plus a
        # generous margin for a loaded machine.
        check(dt < 2 + 6, "%s: sender ends %.2f s after the signal" % (label, dt))
        out.seek(0)
        try:
            lines = json_lines(out.read())
        except ValueError as e:
            lines = []
            print("  stdout is not JSON Lines: %s" % e)
        final = lines[-1] if lines else {}
        intervals = [x for x in lines[:-1] if x.get("type") == "interval"]
        check(final.get("interrupted") is True, "%s: final report says interrupted: true" % label)
        sent = final.get("sent", -1)
        check(0 < sent < 1000 and final.get("scheduled") == sent and final.get("requested") == 1000,
              "%s: it measured what was sent so far: scheduled %s, sent %s of requested %s" %
              (label, final.get("scheduled"), sent, final.get("requested")))
        check(final.get("received") == sent and final.get("lost") == 0,
              "%s: every probe sent was answered (%s of %s)" % (label, final.get("received"), sent))
        check(len(intervals) >= 4 and len(lines) == len(intervals) + 1,
              "%s: %d interval lines before the final report" % (label, len(intervals)))
        with open(csv) as f:
            text = f.read()
        rows = text.splitlines()
        check(text.endswith("\n") and rows and rows[0] == CSV_HEADER, "%s: per-packet CSV has its header" % label)
        body = [r.split(",") for r in rows[1:]]
        seqs = [int(r[0]) for r in body if len(r) == 13 and r[0].isdigit()]
        check(len(body) == sent and all(len(r) == 13 for r in body),
              "%s: one complete 13-field row per probe sent (%d rows, %d sent)" % (label, len(body), sent))
        check(sorted(seqs) == list(range(sent)), "%s: the rows cover sequence numbers 0..%d" % (label, sent - 1))
        check(all(r[2] in ("ok", "reordered") for r in body if len(r) == 13),
              "%s: every row is an in-time reply" % label)
        with open(prom) as f:
            ptext = f.read()
        m = re.search(r'^twamp_probes\{[^}]*state="sent"[^}]*\} (\d+)', ptext, re.M)
        print("  %s: sent %d, %d intervals, CSV %d rows, prometheus %d octets" %
              (label, sent, len(intervals), len(body), len(ptext)))
        check(m and int(m.group(1)) == sent, "%s: the Prometheus file has the interrupted run's sent count (%s)" %
              (label, m.group(1) if m else None))
    finally:
        out.close()
        log.close()
        resp.stop()


def probes_until_quiet(sock, quiet, limit):
    """Reads datagrams until none comes for `quiet` seconds (or `limit` seconds pass); returns
    how many it read."""
    n = 0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        sock.settimeout(quiet)
        try:
            sock.recv(65536)
            n += 1
        except socket.timeout:
            return n
    return n


def sigint_pending(pid):
    """True while SIGINT is still pending for the process (not yet delivered to its handler):
    a second SIGINT sent then would merge with it."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)):
                return True
    return False


def second_sigint(twamp):
    # Nobody answers: this socket takes the probes and never replies, so after a stop the sender
    # waits for its 30 s timeout. The socket stays bound the whole time (no port is released).
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    try:
        p = itlib.spawn([twamp, "sender", "127.0.0.1:%d" % port, "127.0.0.1:0", "-c", "1000", "-i", "5",
                         "--timeout", "30", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Its probes arriving prove it is running with its signal handler installed.
        sink.settimeout(10)
        try:
            sink.recv(65536)
            running = True
        except socket.timeout:
            running = False
        check(running, "second SIGINT: the sender's probes arrive")
        p.send_signal(signal.SIGINT)
        # The first SIGINT stops the probes: wait until it has been delivered and the probes
        # stop (no probe for 0.5 s, when one came every 5 ms), so that the second SIGINT is a
        # separate one.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None and sigint_pending(p.pid):
            time.sleep(0.005)
        probes_until_quiet(sink, 0.5, 15)
        check(p.poll() is None, "second SIGINT: after the first, the sender waits for outstanding replies")
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=5)
        dt = time.monotonic() - t0
    finally:
        sink.close()
    # At once compared with the 30 s it would wait otherwise; generous for a loaded machine.
    check(dt < 5.0, "second SIGINT: the sender ends at once (%.2f s, not its 30 s timeout)" % dt)
    try:
        rep = json.loads(out)
    except ValueError:
        rep = {}
    check(p.returncode == 1 and rep.get("interrupted") is True and rep.get("received") == 0,
          "second SIGINT: exit 1 (no reply), report printed with interrupted: true (rc %s)" % p.returncode)


# Where the relay rewrites a port in the control streams (open mode: nothing is MACed):
# Request-TW-Session follows the 164-octet Set-Up-Response, its Sender Port at octet 12;
# Accept-Session follows the 64-octet Greeting and the 48-octet Server-Start, its Port at octet 2.
REQUEST_SENDER_PORT = 164 + 12
ACCEPT_PORT = 64 + 48 + 2


class Relay(tc.TcpRelay):
    """A TCP relay in a thread between the controller and the server, recording what the
    controller sends (to see its Stop-Sessions on the wire). It also puts itself in the test
    packets' path: the server is told that the test packets come from the relay's `up` UDP
    socket, and the controller that the reflector listens on the relay's `down` socket, so the
    relay counts every test packet (`probes`) it forwards: a readiness signal that test packets
    flow, without any sleep."""

    def __init__(self, port):
        self.down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # faces the controller
        self.down.bind(("127.0.0.1", 0))
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # faces the reflector
        self.up.bind(("127.0.0.1", 0))
        self.probes = 0
        self.sender_addr = None  # the controller's test socket, learnt from its first probe
        self.reflector_port = None  # learnt from Accept-Session
        self._sent = {}  # id(socket) -> octets already forwarded in that direction
        super().__init__(port)

    def _patch(self, data, offset, at, port):
        """Writes `port` at stream offset `at` if this chunk (starting at `offset`) covers it."""
        b = bytearray(data)
        for i, octet in enumerate(port.to_bytes(2, "big")):
            if offset <= at + i < offset + len(b):
                b[at + i - offset] = octet
        return bytes(b)

    def rewrite(self, data, from_client):
        key = "c" if from_client else "s"
        off = self._sent.get(key, 0)
        self._sent[key] = off + len(data)
        if from_client:
            return self._patch(data, off, REQUEST_SENDER_PORT, self.up.getsockname()[1])
        if off <= ACCEPT_PORT and off + len(data) >= ACCEPT_PORT + 2:
            self.reflector_port = int.from_bytes(data[ACCEPT_PORT - off:ACCEPT_PORT - off + 2], "big")
        return self._patch(data, off, ACCEPT_PORT, self.down.getsockname()[1])

    def extra_sockets(self):
        return [self.down, self.up]

    def on_extra(self, sock):
        if sock is self.down:  # a test packet from the controller
            data, self.sender_addr = self.down.recvfrom(65536)
            if self.reflector_port is not None:
                self.up.sendto(data, ("127.0.0.1", self.reflector_port))
                self.probes += 1
        else:  # a reply from the reflector
            data = self.up.recv(65536)
            if self.sender_addr is not None:
                self.down.sendto(data, self.sender_addr)


def controller_interrupted(twamp, sig, label):
    srv = tc.Server(twamp)
    out = tempfile.TemporaryFile("w+")
    relay = Relay(srv.port)
    try:
        fd0 = srv.fd_count()
        argv = tc.controller_argv(twamp, srv, "-c", "1000", "-i", "5", reflector_port=0)
        argv[argv.index("--control-port") + 1] = str(relay.port)
        p = itlib.spawn(argv, stdout=out, stderr=subprocess.PIPE, text=True)
        # Interrupted mid-run: once the relay has forwarded 20 of its test packets.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and relay.probes < 20 and p.poll() is None:
            time.sleep(0.01)
        check(relay.probes >= 20, "%s: the controller's test packets flow (%d relayed)" % (label, relay.probes))
        t0 = time.monotonic()
        p.send_signal(sig)
        try:
            _, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate(timeout=5)
        dt = time.monotonic() - t0
        check(p.returncode == 0, "%s: controller exits 0 (rc %s, %r)" % (label, p.returncode, err.strip()[:200]))
        # Generous: it waits for no more than its outstanding replies (all in on loopback).
        check(dt < 8, "%s: controller ends %.2f s after the signal" % (label, dt))
        out.seek(0)
        try:
            reps = tc.parse_reports(out.read())
        except ValueError:
            reps = []
        rep = reps[0] if reps else {}
        sent = rep.get("sent", -1)
        check(rep.get("interrupted") is True and 0 < sent < 1000 and rep.get("received") == sent,
              "%s: report interrupted: true, sent %s < 1000, received %s" % (label, sent, rep.get("received")))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and srv.fd_count() != fd0:
            time.sleep(0.05)
        relay.join()
        sent_msgs = relay.client_bytes
        # Set-Up-Response (164), Request-TW-Session (112), Start-Sessions (32), Stop-Sessions (32).
        stop = sent_msgs[-tc.STOP_SESSIONS:]
        check(len(sent_msgs) == 164 + 112 + 32 + 32 and stop[0] == 3 and stop[1] == 0 and
              int.from_bytes(stop[4:8], "big") == 1,
              "%s: the controller sent Stop-Sessions (Accept 0, 1 session) last (%d octets: %s)" %
              (label, len(sent_msgs), stop[:8].hex()))
        log = srv.log_text()
        check("closed: client closed the connection" in log,
              "%s: the server saw the control connection closed cleanly after Stop-Sessions" % label)
        check(srv.fd_count() == fd0, "%s: the server released the session (fds back to %d)" % (label, fd0))
    finally:
        out.close()
        check(srv.stop() == 0, "%s: server exits 0" % label)


def server_signalled(twamp, sig, label):
    srv = tc.Server(twamp)
    relay = Relay(srv.port)
    argv = tc.controller_argv(twamp, srv, "-c", "1000", "-i", "5", reflector_port=0)
    argv[argv.index("--control-port") + 1] = str(relay.port)
    p = itlib.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # With a session running: once the relay has forwarded 20 of its test packets.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and relay.probes < 20 and p.poll() is None:
        time.sleep(0.01)
    check(relay.probes >= 20, "%s: the controller's test packets flow (%d relayed)" % (label, relay.probes))
    t0 = time.monotonic()
    srv.proc.send_signal(sig)
    try:
        rc = srv.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = None
    dt = time.monotonic() - t0
    check(rc == 0 and dt < 5, "%s: server exits 0 at once with a session running (rc %s, %.2f s)" % (label, rc, dt))
    log = srv.log_text()
    check("signal received: closing connections and sessions" in log and "server stopped:" in log,
          "%s: the server's -v log says it stopped" % label)
    try:
        _, err = p.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate(timeout=5)
    check(p.returncode == 3 and len(err.strip().splitlines()) == 1 and "closed the control connection" in err,
          "%s: its controller exits 3 with one line (rc %s): %r" % (label, p.returncode, err.strip()))
    relay.join()


def responder_signalled(twamp, sig, label):
    resp = itlib.Responder(twamp)
    itlib.sender(twamp, resp, "-c", "5", "-i", "1")
    t0 = time.monotonic()
    resp.proc.send_signal(sig)
    try:
        rc = resp.proc.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    dt = time.monotonic() - t0
    check(rc == 0 and dt < 5, "%s: responder exits 0 at once (rc %s, %.2f s)" % (label, rc, dt))
    log = resp.log_text()
    check("signal received: stopping the reflector" in log and "reflector stopped: received 5" in log,
          "%s: the responder's -v log says it stopped, with its counters" % label)


def body(twamp):
    workdir = tempfile.mkdtemp(prefix="twamp-abuse-sig-")
    prom = os.path.join(workdir, "twamp.prom")
    with open(prom, "w") as f:  # an older, complete exposition the runs replace
        f.write("# HELP twamp_up old\n# TYPE twamp_up gauge\ntwamp_up 1\n")
    poller = PromPoller(prom)
    try:
        sender_interrupted(twamp, signal.SIGINT, workdir, prom, "sender SIGINT")
        sender_interrupted(twamp, signal.SIGTERM, workdir, prom, "sender SIGTERM")
        poller.stop()
        print("  prometheus file: %d reads, versions first seen at (s, octets): %s" % (poller.reads, poller.history))
        check(poller.reads > 100 and not poller.bad,
              "prometheus: never partial over %d reads while two runs replaced it %s" % (poller.reads, poller.bad))
        check(len(poller.versions) >= 3, "prometheus: the poller saw the old file and both replacements (%d)" %
              len(poller.versions))
        leftovers = [n for n in os.listdir(workdir) if ".tmp" in n]
        check(not leftovers, "prometheus: no temporary file left behind (%s)" % leftovers)
        second_sigint(twamp)
        controller_interrupted(twamp, signal.SIGINT, "controller SIGINT")
        controller_interrupted(twamp, signal.SIGTERM, "controller SIGTERM")
        server_signalled(twamp, signal.SIGINT, "server SIGINT")
        server_signalled(twamp, signal.SIGTERM, "server SIGTERM")
        responder_signalled(twamp, signal.SIGINT, "responder SIGINT")
        responder_signalled(twamp, signal.SIGTERM, "responder SIGTERM")
    finally:
        poller.stop()
        for n in os.listdir(workdir):
            os.unlink(os.path.join(workdir, n))
        os.rmdir(workdir)


if __name__ == "__main__":
    itlib.main(body)
