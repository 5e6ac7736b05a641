#!/usr/bin/python3
"""abuse_faults: peers that break or disappear.

  * server side: clients that reset (RST, SO_LINGER 0) mid-handshake — half a Set-Up-Response,
    half a Request-TW-Session, after a session was accepted and after it was started: the
    server logs the close, frees the descriptors and reflector ports, and a controller still
    gets every reply;
  * client side: a fake server (a thread in this script) that sends a greeting and closes, or
    resets, or resets after half a Server-Start, or accepts and says nothing (with
    --reply-timeout 1), and a closed control port: `twamp controller` exits 3 with one stderr
    line, in bounded time;
  * `twamp sender` to a closed UDP port: the kernel answers with ICMP port unreachable; the
    sender (IP_RECVERR) counts each one in errors.icmp_unreachable and goes on, finishing on its
    loss timeout with 100 % loss, no send error, exit 1;
  * a responder killed after ~30 % of a -c 300 -i 5 run: the sender finishes on its timeout
    with ~70 % loss and exits 0 (some replies came).

Not tested: a wall-clock step during a session needs CLOCK_REALTIME changes, which are not
namespaced (time namespaces cover CLOCK_MONOTONIC and CLOCK_BOOTTIME only) and need root. By
design the sender's send schedule and its end-of-session wait run on the steady clock, so a step
shows up in the timestamps (T1..T4, the delays) and not in the pacing. The control timers
(server SERVWAIT / REFWAIT / stop timeouts, client reply timeout) are computed from the wall
clock (realtime_now) and armed as steady durations, so a step moves those deadlines.

Usage: test_abuse_faults.py /path/to/twamp
"""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import itlib  # noqa: E402
from itlib import check, udp_port_state  # noqa: E402

import twamp_ctl as tc  # noqa: E402
from twamp_ctl import recv_exact, rst_close  # noqa: E402


# ---- server side

def server_side(twamp):
    srv = tc.Server(twamp)
    try:
        time.sleep(0.2)
        fd0 = srv.socket_count()
        ports = []
        for i in range(10):
            # Half a Set-Up-Response, then RST.
            s = srv.connect()
            recv_exact(s, tc.GREETING)
            s.sendall(tc.setup_response()[:82])
            time.sleep(0.01)
            rst_close(s)
            # Set-up done, half a Request-TW-Session, then RST.
            s = tc.greet_and_setup(srv)[0]
            s.sendall(tc.request_tw_session(sender_port=40000)[:56])
            time.sleep(0.01)
            rst_close(s)
            # A session accepted (a port bound for it), then RST.
            s = tc.greet_and_setup(srv)[0]
            s.sendall(tc.request_tw_session(sender_port=40000))
            a = recv_exact(s, tc.ACCEPT_SESSION)
            ports.append(int.from_bytes(a[2:4], "big") if len(a) == 48 else 0)
            rst_close(s)
            # A session started, then RST.
            s = tc.greet_and_setup(srv)[0]
            s.sendall(tc.request_tw_session(sender_port=40000))
            a = recv_exact(s, tc.ACCEPT_SESSION)
            ports.append(int.from_bytes(a[2:4], "big") if len(a) == 48 else 0)
            s.sendall(tc.start_sessions())
            recv_exact(s, tc.START_ACK)
            rst_close(s)
        check(all(ports), "server side: 20 sessions accepted before their clients reset")
        fd1 = None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            fd1 = srv.socket_count()
            if fd1 == fd0:
                break
            time.sleep(0.05)
        print("  server sockets: baseline %d, after 40 reset connections %d" % (fd0, fd1))
        check(fd1 == fd0, "server side: socket count back to %d after 40 resets mid-handshake (%d)" % (fd0, fd1))
        states = [udp_port_state(p) for p in ports[:6]]
        check(all(st == "refused" for st in states), "server side: the sessions' UDP ports are closed: %s" % states)
        log = srv.log_text()
        n_mid = log.count("closed mid-message")
        check(n_mid >= 20, "server side: log names 20 'closed mid-message' closes (%d)" % n_mid)
        check(srv.alive(), "server side: server still running")
        r, rep = tc.controller(twamp, srv, "-c", "50", "-i", "2", reflector_port=0)
        check(r.returncode == 0 and rep and rep[0]["received"] == 50,
              "server side: a controller afterwards gets 50 of 50 (rc %d)" % r.returncode)
    finally:
        check(srv.stop() == 0, "server side: server exits 0")


# ---- client side: a fake TWAMP server

def greeting():
    g = bytearray(64)
    struct.pack_into("!I", g, 12, 1)      # Modes: unauthenticated
    g[16:32] = os.urandom(16)             # Challenge
    g[32:48] = os.urandom(16)             # Salt
    struct.pack_into("!I", g, 48, 1024)   # Count
    return bytes(g)


class FakeServer:
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.ls.settimeout(10)
        self.port = self.ls.getsockname()[1]
        self.conn = None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        try:
            c, _ = self.ls.accept()
        except OSError:
            return
        self.conn = c
        b = self.behaviour
        try:
            if b == "silent":
                c.settimeout(6)
                try:
                    c.recv(1)
                except OSError:
                    pass
                return
            c.sendall(greeting())
            if b == "greet-close":
                c.close()
            elif b == "greet-rst":
                rst_close(c)
            elif b == "half-server-start-rst":
                recv_exact(c, tc.SETUP_RESPONSE, timeout=5)
                c.sendall(bytes(24))  # half a Server-Start
                time.sleep(0.05)
                rst_close(c)
        except OSError:
            pass

    def close(self):
        try:
            self.ls.close()
        except OSError:
            pass
        if self.conn:
            try:
                self.conn.close()
            except OSError:
                pass
        self.t.join(8)


def client_side(twamp):
    for b, extra, bound in (("greet-close", [], 5), ("greet-rst", [], 5), ("half-server-start-rst", [], 5),
                            ("silent", ["--reply-timeout", "1"], 4)):
        fs = FakeServer(b)
        try:
            t0 = time.monotonic()
            r = itlib.run([twamp, "controller", "127.0.0.1", "127.0.0.1:0", "--control-port", str(fs.port),
                           "-c", "5", "-i", "10", *extra], timeout=15)
            dt = time.monotonic() - t0
            err = r.stderr.strip()
            check(r.returncode == 3, "client side (%s): controller exits 3 (rc %d)" % (b, r.returncode))
            check(len(err.splitlines()) == 1, "client side (%s): one stderr line: %r" % (b, err))
            check(dt < bound, "client side (%s): ends in %.2f s (< %d s)" % (b, dt, bound))
        finally:
            fs.close()
    # Nobody listening on the control port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    r = itlib.run([twamp, "controller", "127.0.0.1", "127.0.0.1:0", "--control-port", str(port), "-c", "5"],
                  timeout=15)
    dt = time.monotonic() - t0
    err = r.stderr.strip()
    check(r.returncode == 3 and len(err.splitlines()) == 1 and dt < 3,
          "client side (refused): exit 3, one line, %.2f s: %r" % (dt, err))


# ---- test packets into the void

def sender_to_closed_port(twamp):
    port = itlib.free_port()
    # The kernel does answer with ICMP port unreachable: a connected socket sees it.
    state = udp_port_state(port)
    print("  probe to the closed port %d with a connected socket: %s" % (port, state))
    t0 = time.monotonic()
    r, rep = itlib.sender_json(twamp, "127.0.0.1:%d" % port, "-c", "10", "-i", "10", "--timeout", "1", timeout=15)
    dt = time.monotonic() - t0
    rep = rep or {}
    check(r.returncode == 1, "closed port: sender exits 1 (rc %d, %r)" % (r.returncode, r.stderr.strip()))
    check(rep.get("sent") == 10 and rep.get("received") == 0 and rep.get("loss_pct") == 100,
          "closed port: sent %s, received %s, loss %s %%" % (rep.get("sent"), rep.get("received"), rep.get("loss_pct")))
    check(rep.get("errors", {}).get("send") == 0 and rep.get("skipped") == 0,
          "closed port: no send error, nothing skipped: errors %s, skipped %s" %
          (rep.get("errors", {}).get("send"), rep.get("skipped")))
    # ICMP is rate-limited by the kernel; at 10 ms spacing every probe normally gets its answer,
    # but allow a few to be suppressed.
    icmp = rep.get("errors", {}).get("icmp_unreachable", -1)
    check(5 <= icmp <= 10, "closed port: ICMP port unreachable counted (%s of 10 probes)" % icmp)
    check(1.0 <= dt < 3.5, "closed port: finished on its 1 s loss timeout (%.2f s)" % dt)


def reflector_vanishes(twamp):
    resp = itlib.Responder(twamp)
    err = tempfile.NamedTemporaryFile("w+", prefix="twamp-sender-", suffix=".log")
    out = tempfile.TemporaryFile("w+")
    try:
        t0 = time.monotonic()
        p = itlib.spawn([twamp, "sender", resp.addr, "127.0.0.1:0", "-c", "300", "-i", "5", "--timeout", "1",
                         "--json", "-v"], stdout=out, stderr=err)
        # -v logs one line per reply: kill the responder after 90 of them (30 %).
        deadline = time.monotonic() + 10
        seen = 0
        while time.monotonic() < deadline and p.poll() is None:
            with open(err.name, errors="replace") as f:
                seen = f.read().count("Reply from")
            if seen >= 90:
                break
            time.sleep(0.005)
        resp.proc.kill()
        resp.proc.wait(5)
        print("  responder killed after %d replies" % seen)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            pass
        dt = time.monotonic() - t0
        out.seek(0)
        try:
            rep = json.loads(out.read())
        except ValueError:
            rep = {}
        check(p.returncode == 0, "reflector gone: sender exits 0 (some replies came) (rc %s)" % p.returncode)
        loss = rep.get("loss_pct")
        print("  sent %s, received %s, loss %s %%, %.2f s" % (rep.get("sent"), rep.get("received"), loss, dt))
        check(rep.get("sent") == 300, "reflector gone: all 300 probes sent (%s)" % rep.get("sent"))
        check(loss is not None and 55 <= loss <= 75, "reflector gone: loss ~70 %% (%s)" % loss)
        check(dt < 1.5 + 1 + 3, "reflector gone: finished on its timeout (%.2f s)" % dt)
    finally:
        out.close()
        err.close()


def body(twamp):
    server_side(twamp)
    client_side(twamp)
    sender_to_closed_port(twamp)
    reflector_vanishes(twamp)
    print("not tested: a wall-clock step (CLOCK_REALTIME is not namespaced; needs root); "
          "the sender's pacing uses the steady clock, control timers the wall clock")


if __name__ == "__main__":
    itlib.main(body)
