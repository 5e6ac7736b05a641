#!/usr/bin/python3
"""twamp_limits: the server's resource limits on loopback.

  * --servwait 2: an idle control connection (greeting read, nothing sent) is closed after ~2 s;
  * --max-connections 3: with 3 idle connections open, a 4th gets a Modes 0 greeting and is
    closed; once one of the 3 goes, a new connection is admitted again;
  * --test-ports P-P: with P held by a started session, a second controller gets Accept 5 and
    exits 3 naming it; when the holder goes, P is handed out again.

Usage: test_twamp_limits.py /path/to/twamp
"""
import socket
import time

import itlib
from itlib import check

import twamp_ctl
from twamp_ctl import recv_exact, closed_by_peer, modes_of


def servwait(twamp):
    srv = twamp_ctl.Server(twamp, extra=["--servwait", "2"])
    try:
        s = srv.connect()
        g = recv_exact(s, twamp_ctl.GREETING)
        t0 = time.monotonic()
        check(len(g) == 64 and modes_of(g) & 1, "servwait: 64-octet greeting offering mode 1")
        closed = closed_by_peer(s, timeout=8)
        dt = time.monotonic() - t0
        print("  idle connection closed after %.2f s" % dt)
        check(closed and 1.5 <= dt <= 4.0, "servwait: idle connection closed after 1.5..4 s (%.2f s)" % dt)
        s.close()
        # A connection that completed the set-up but stays idle is closed as well.
        s, g, ss = twamp_ctl.greet_and_setup(srv)
        t0 = time.monotonic()
        check(len(ss) == 48 and ss[15] == 0, "servwait: Server-Start Accept 0")
        closed = closed_by_peer(s, timeout=8)
        dt = time.monotonic() - t0
        check(closed and 1.5 <= dt <= 4.0, "servwait: idle set-up connection closed after 1.5..4 s (%.2f s)" % dt)
        s.close()
        # A controller still works (its connection is never idle that long).
        r, rep = twamp_ctl.controller(twamp, srv, "-c", "20", "-i", "2")
        check(r.returncode == 0 and rep and rep[0]["received"] == 20, "servwait: controller after it: 20/20")
        check("SERVWAIT expired" in srv.log_text(), "servwait: the server log says SERVWAIT expired")
    finally:
        check(srv.stop() == 0, "servwait: server exits 0")


def max_connections(twamp):
    srv = twamp_ctl.Server(twamp, extra=["--max-connections", "3"])
    held = []
    try:
        for i in range(3):
            s = srv.connect()
            g = recv_exact(s, 64)
            check(len(g) == 64 and modes_of(g) != 0, "max-connections: connection %d admitted (Modes %d)" %
                  (i + 1, modes_of(g) if len(g) == 64 else -1))
            held.append(s)
        s4 = srv.connect()
        g4 = recv_exact(s4, 64)
        check(len(g4) == 64 and g4[12:16] == b"\0\0\0\0", "max-connections: 4th gets a Modes 0 greeting (%s)" %
              g4[12:16].hex())
        check(closed_by_peer(s4, timeout=3), "max-connections: 4th connection is closed by the server")
        s4.close()
        # Slots free up again when a held connection goes.
        held.pop().close()
        ok = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not ok:
            s5 = srv.connect()
            g5 = recv_exact(s5, 64)
            ok = len(g5) == 64 and modes_of(g5) != 0
            if ok:
                held.append(s5)
            else:
                s5.close()
                time.sleep(0.05)
        check(ok, "max-connections: a new connection is admitted once one of the 3 closed")
        check("connection refused (Modes 0)" in srv.log_text() or "Modes 0" in srv.log_text(),
              "max-connections: the server log shows the refusal")
    finally:
        for s in held:
            s.close()
        check(srv.stop() == 0, "max-connections: server exits 0")


def port_range(twamp):
    """--sessions-per-port 1: a reflector port per session, so a one-port range holds one."""
    port = itlib.free_port()
    srv = twamp_ctl.Server(twamp, extra=["--test-ports", "%d-%d" % (port, port),
                                         "--sessions-per-port", "1"])
    holder = None
    try:
        # A raw client asks for "any port" (0), gets P from the range, starts, never stops.
        holder, g, ss = twamp_ctl.greet_and_setup(srv)
        holder.sendall(twamp_ctl.request_tw_session(sender_port=40000, receiver_port=0))
        acc = recv_exact(holder, 48)
        got = int.from_bytes(acc[2:4], "big") if len(acc) == 48 else None
        check(len(acc) == 48 and acc[0] == 0 and got == port,
              "port range: raw client's session accepted on P=%d (Accept %s, port %s)" %
              (port, acc[0] if acc else None, got))
        holder.sendall(twamp_ctl.start_sessions())
        ack = recv_exact(holder, 32)
        check(len(ack) == 32 and ack[0] == 0, "port range: raw client's Start-Ack Accept 0")

        # Asking for P explicitly, or for any port: both exhausted -> Accept 5, exit 3.
        for label, rport in (("P", port), ("any", 0)):
            t0 = time.monotonic()
            r, rep = twamp_ctl.controller(twamp, srv, "-c", "5", "-i", "10", reflector_port=rport, timeout=20)
            err = r.stderr.strip()
            check(r.returncode == 3, "port range (%s): second controller exits 3 (rc %d)" % (label, r.returncode))
            check("Accept 5" in err and len(err.splitlines()) == 1,
                  "port range (%s): one stderr line naming Accept 5: %r" % (label, err))
            check(time.monotonic() - t0 < 5, "port range (%s): refused at once" % label)
        holder.close()
        holder = None
        # The holder's connection is gone, so its session ended and P is free for the next one.
        ok = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not ok:
            r, rep = twamp_ctl.controller(twamp, srv, "-c", "20", "-i", "2", reflector_port=0, timeout=20)
            ok = r.returncode == 0 and bool(rep) and rep[0]["received"] == 20
            if not ok:
                time.sleep(0.2)
        check(ok, "port range: after the holder left, a controller gets P and 20/20 replies")
        check(ok and rep[0]["reflector"]["port"] == port, "port range: ... on port P")
    finally:
        if holder:
            holder.close()
        check(srv.stop() == 0, "port range: server exits 0")


def shared_port_range(twamp):
    """By default sessions share reflector ports: a one-port range serves a second client whose
    sender can be told apart, and refuses (Accept 5) one that cannot."""
    port = itlib.free_port()
    srv = twamp_ctl.Server(twamp, extra=["--test-ports", "%d-%d" % (port, port)])
    holder = None
    try:
        holder, g, ss = twamp_ctl.greet_and_setup(srv)
        holder.sendall(twamp_ctl.request_tw_session(sender_port=40000, receiver_port=0))
        acc = recv_exact(holder, 48)
        got = int.from_bytes(acc[2:4], "big") if len(acc) == 48 else None
        check(len(acc) == 48 and acc[0] == 0 and got == port,
              "shared port: raw client's session accepted on P=%d (port %s)" % (port, got))
        holder.sendall(twamp_ctl.start_sessions())
        ack = recv_exact(holder, 32)
        check(len(ack) == 32 and ack[0] == 0, "shared port: raw client's Start-Ack Accept 0")
        for label, rport in (("P", port), ("any", 0)):
            r, rep = twamp_ctl.controller(twamp, srv, "-c", "10", "-i", "5", reflector_port=rport,
                                          timeout=20)
            check(r.returncode == 0 and bool(rep) and rep[0]["received"] == 10
                  and rep[0]["reflector"]["port"] == port,
                  "shared port (%s): a second client shares P, 10/10 replies (rc %d, %s)" %
                  (label, r.returncode, rep[0]["received"] if rep else None))
        # Same address, same sender port as the holder's session: not told apart, refused.
        other, g2, ss2 = twamp_ctl.greet_and_setup(srv)
        other.sendall(twamp_ctl.request_tw_session(sender_port=40000, receiver_port=port))
        acc = recv_exact(other, 48)
        check(len(acc) == 48 and acc[0] == 5 and acc[2:4] == b"\0\0",
              "shared port: the holder's own sender again gets Accept 5, Port 0 (Accept %s)" %
              (acc[0] if acc else None))
        # Sender port unknown (0): cannot share an address with another session either.
        other.sendall(twamp_ctl.request_tw_session(sender_port=0, receiver_port=0))
        acc = recv_exact(other, 48)
        check(len(acc) == 48 and acc[0] == 5,
              "shared port: a request without a sender port gets Accept 5 (Accept %s)" %
              (acc[0] if acc else None))
        other.close()
    finally:
        if holder:
            holder.close()
        check(srv.stop() == 0, "shared port: server exits 0")


def body(twamp):
    servwait(twamp)
    max_connections(twamp)
    port_range(twamp)
    shared_port_range(twamp)


if __name__ == "__main__":
    itlib.main(body)
