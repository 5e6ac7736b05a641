#!/usr/bin/python3
"""abuse_hardening_budget (issue 11 item 1): descriptor and session budgets of `twamp server`.

A server runs with a 1024-descriptor limit (`prlimit --nofile=1024`, or setrlimit in the child
when prlimit is missing) and its default budgets (--max-sessions 64, --max-timeout 60 s,
--max-test-sessions 16384, --sessions-per-port 1024).

Part A, the session pile-up: one unauthenticated client loops, on one connection (reconnecting
when the server closes it), {64 x Request-TW-Session with Timeout 0xFFFFFFFF, Start-Sessions,
Stop-Sessions} until told to stop (at most 40 s). Every stopped session used to keep its socket for
its Timeout (136 years): after ~16 rounds accept() failed with EMFILE and no one else could
connect. Now stopped sessions count against --max-sessions (later requests: Accept 5) and the
Timeout is capped (logged). After 20 rounds (1280 requests), while the attack goes on, a
legitimate `twamp controller` completes 100/100; the server never comes near its limit; after the attacker disconnects the
descriptors are back to their baseline.

Part B, the descriptor budget: 17 connections ask for 64 sessions each, all from one address
with no Sender Port (0), so no two can share a reflector port and each needs a socket of its own
(1088 > the 1024 descriptors): the sessions accepted stay below the descriptor limit, the rest
are answered with Accept 5; then 320 more connections (more than the descriptors left) each get a
64-octet greeting at once (Modes 0 for those beyond the descriptor budget), none is left
waiting in the listen queue; afterwards everything is freed.

Usage: test_abuse_hardening_budget.py /path/to/twamp
"""
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import itlib  # noqa: E402
from itlib import check  # noqa: E402

import twamp_ctl as tc  # noqa: E402
from twamp_ctl import recv_exact  # noqa: E402

NOFILE = 1024


class LimitedServer(tc.Server):
    """twamp_ctl.Server started with RLIMIT_NOFILE = NOFILE."""

    def __init__(self, twamp, extra=(), timeout=5.0):
        super().__init__(twamp, extra=extra, timeout=timeout, nofile=NOFILE)


def accept_code(msg):
    return msg[0] if len(msg) == tc.ACCEPT_SESSION else None


class Attacker(threading.Thread):
    """The pile-up loop; counts the Accept codes it gets and the rounds it completes."""

    def __init__(self, srv, rounds, per_round=64):
        super().__init__(daemon=True)
        self.srv, self.rounds, self.per_round = srv, rounds, per_round
        self.codes = {}
        self.done_rounds = 0
        self.reconnects = 0
        self.errors = []
        self.stop_flag = False
        self.sock = None

    def connect(self):
        s, g, ss = tc.greet_and_setup(self.srv)
        if len(ss) != tc.SERVER_START or ss[15] != 0:
            raise RuntimeError("set-up failed (%d octets)" % len(ss))
        self.sock = s

    def run(self):
        try:
            self.connect()
            deadline = time.monotonic() + 40
            while self.done_rounds < self.rounds and not self.stop_flag and time.monotonic() < deadline:
                s = self.sock
                s.sendall(b"".join(tc.request_tw_session(0, timeout_s=0xFFFFFFFF)
                                   for _ in range(self.per_round)))
                ok = 0
                closed = False
                for _ in range(self.per_round):
                    a = recv_exact(s, tc.ACCEPT_SESSION, 10)
                    code = accept_code(a)
                    if code is None:
                        closed = True
                        break
                    self.codes[code] = self.codes.get(code, 0) + 1
                    ok += code == 0
                if not closed and ok:
                    s.sendall(tc.start_sessions())
                    ack = recv_exact(s, tc.START_ACK, 10)
                    if len(ack) != tc.START_ACK:
                        closed = True
                    else:
                        s.sendall(tc.stop_sessions(ok))
                if closed:
                    # The server closed the connection: come back on a new one.
                    s.close()
                    self.reconnects += 1
                    self.connect()
                elif not ok:
                    # Everything refused: keep the connection (and whatever it holds) and ask
                    # again shortly.
                    time.sleep(0.05)
                self.done_rounds += 1
        except Exception as e:  # recorded; the main thread checks it
            self.errors.append(repr(e))

    def close(self):
        self.stop_flag = True
        self.join(15)
        if self.sock:
            self.sock.close()


def wait_fds(srv, at_most, timeout):
    """Waits until the server holds at most `at_most` sockets (a sanitizer's own pipe, opened
    lazily, is not the server's doing)."""
    deadline = time.monotonic() + timeout
    n = srv.socket_count()
    while n > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
        n = srv.socket_count()
    return n


def part_a(twamp):
    srv = LimitedServer(twamp, extra=["--servwait", "30", "--refwait", "30"])
    try:
        base = srv.fd_count()
        base_sockets = srv.socket_count()
        print("part A: server descriptors at rest: %d (limit %d)" % (base, NOFILE))
        att = Attacker(srv, rounds=100000)
        peak = [base]
        sampling = [True]

        def sample():
            while sampling[0]:
                try:
                    peak[0] = max(peak[0], srv.fd_count())
                except OSError:
                    return
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        att.start()
        # The legitimate controller starts once the attack has asked for more sessions than the
        # server has descriptors (20 rounds: 1280 requests), and runs while it goes on.
        deadline = time.monotonic() + 30
        while att.done_rounds < 20 and att.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        check(att.done_rounds >= 20, "part A: the attack is running (%d rounds, %d requests done)"
              % (att.done_rounds, 64 * att.done_rounds))
        t0 = time.monotonic()
        r, rep = tc.controller(twamp, srv, "--count", "100", "--interval", "10", "--timeout", "2",
                               "--connect-timeout", "5", "--reply-timeout", "10", timeout=40)
        t1 = time.monotonic()
        during = att.is_alive()
        rounds_at_end = att.done_rounds
        received = rep[0]["received"] if rep else None
        check(r.returncode == 0 and received == 100,
              "part A: legitimate controller during the attack: %s/100 (exit %d, %.1f s)"
              % (received, r.returncode, t1 - t0))
        if r.returncode != 0:
            print(r.stderr[-2000:])
        check(during, "part A: the attack was still running when the controller finished "
              "(round %d)" % rounds_at_end)
        att.stop_flag = True
        att.join(30)
        sampling[0] = False
        sampler.join(5)
        print("part A: attacker rounds %d, reconnects %d, Accept codes %s, errors %s"
              % (att.done_rounds, att.reconnects, att.codes, att.errors))
        check(not att.errors, "part A: the attacker ran to its end without a server failure")
        check(att.codes.get(0, 0) >= 64, "part A: the first round was served (%d accepted)"
              % att.codes.get(0, 0))
        check(att.codes.get(5, 0) > 0,
              "part A: stopped sessions still waiting out their Timeout count against "
              "--max-sessions: Accept 5 (%d)" % att.codes.get(5, 0))
        check(peak[0] < base + 64 + 16,
              "part A: server descriptors peaked at %d (baseline %d, limit %d)" % (peak[0], base, NOFILE))
        log = srv.log_text()
        check(re.search(r"Timeout of \d+ ms capped to 60000 ms", log) is not None,
              "part A: the 136-year Timeout is capped to 60 s, and the log says so")
        check("accept failed" not in log, "part A: accept() never failed")
        att.close()
        n = wait_fds(srv, base_sockets, 10)
        check(n <= base_sockets, "part A: sockets back to the baseline after the attack (%d, baseline %d)"
              % (n, base_sockets))
        check(srv.alive(), "part A: the server is still running")
    finally:
        srv.stop()


def part_b(twamp):
    srv = LimitedServer(twamp, extra=["--servwait", "30", "--refwait", "30", "--max-connections", "2000"])
    socks = []
    try:
        base = srv.fd_count()
        base_sockets = srv.socket_count()
        m = re.search(r"limits: (\d+) test sessions server-wide", srv.log_text())
        budget = int(m.group(1)) if m else None
        check(budget == 16384, "part B: server-wide session budget 16384 by default (%s)" % budget)
        codes = {}
        for i in range(17):
            s, g, ss = tc.greet_and_setup(srv)
            socks.append(s)
            s.sendall(b"".join(tc.request_tw_session(0, timeout_s=10) for _ in range(64)))
            for _ in range(64):
                c = accept_code(recv_exact(s, tc.ACCEPT_SESSION, 10))
                codes[c] = codes.get(c, 0) + 1
        print("part B: Accept codes for 1088 requests on 17 connections: %s" % codes)
        check(500 < codes.get(0, 0) < NOFILE - 17,
              "part B: sessions with a socket each accepted up to the descriptor budget (%d)" %
              codes.get(0, 0))
        check(codes.get(5, 0) > 0 and codes.get(0, 0) + codes.get(5, 0) == 1088,
              "part B: the rest is answered with Accept 5 (%d)" % codes.get(5, 0))
        peak = srv.fd_count()
        check(peak < NOFILE, "part B: %d descriptors in use (limit %d)" % (peak, NOFILE))
        # More connections than descriptors remain: every one is answered at once.
        greeted = refused = unanswered = 0
        extra = []
        for i in range(320):
            try:
                c = srv.connect(timeout=5)
            except OSError as e:
                unanswered += 1
                print("  connect %d: %r" % (i, e))
                continue
            extra.append(c)
            g = recv_exact(c, tc.GREETING, 3)
            if len(g) == tc.GREETING:
                greeted += 1
                refused += tc.modes_of(g) == 0
            else:
                unanswered += 1
        socks.extend(extra)
        print("part B: 320 connections at the budget: %d greeted (%d with Modes 0), %d unanswered; "
              "server descriptors %d" % (greeted, refused, unanswered, srv.fd_count()))
        check(unanswered == 0, "part B: no connection is left unanswered at the descriptor limit")
        check(refused > 0, "part B: those beyond the descriptor budget get a Modes 0 greeting")
        check(srv.fd_count() < NOFILE, "part B: the server stays below its descriptor limit")
        for s in socks:
            s.close()
        socks = []
        n = wait_fds(srv, base_sockets, 10)
        check(n <= base_sockets, "part B: sockets back to the baseline (%d, baseline %d)" % (n, base_sockets))
        r, rep = tc.controller(twamp, srv, "--count", "20", "--interval", "10", timeout=30)
        check(r.returncode == 0 and rep and rep[0]["received"] == 20,
              "part B: a controller afterwards: %s/20" % (rep[0]["received"] if rep else None))
    finally:
        for s in socks:
            s.close()
        srv.stop()


def body(twamp):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        print("SKIP: this test needs 2048 descriptors of its own (hard limit %d)" % hard)
        return itlib.SKIP
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048) if hard == resource.RLIM_INFINITY
                                                 else max(soft, min(hard, 4096)), hard))
    part_a(twamp)
    part_b(twamp)


if __name__ == "__main__":
    itlib.main(body)
