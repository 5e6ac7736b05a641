#!/usr/bin/python3
"""twamp_shared_ports (issue 14 item 1): sessions of many senders on one reflector port.

A `twamp server` (default: up to 1024 sessions per reflector port) gets two raw control
connections, one from 127.0.0.1 and one from 127.0.0.2, each asking for 8 sessions whose senders
are 8 UDP sockets of its own address (16 source ports, two addresses). Checked:
  * all 16 sessions are granted the same reflector port;
  * interleaved test packets (A0 B0 A1 B1 ..., two from A0 in a row) come back to the socket that
    sent them, each with the reflector sequence number of its own session (0, 1, 2, ...) and its
    own sender sequence number echoed;
  * the connection from 127.0.0.1 closes (its sessions end) while 127.0.0.2's go on: theirs keep
    counting on the same port, the ended senders get no reply;
  * when the last session has ended the port is closed (ICMP port unreachable);
  * the server's log at stop counts 1 port opened, 15 sessions joined it, 8 packets unmatched;
  * with --sessions-per-port 4, 10 sessions of one client take 3 ports (4 + 4 + 2).

Usage: test_twamp_shared_ports.py /path/to/twamp
"""
import re
import socket
import struct
import time

import itlib
from itlib import check

import twamp_ctl as tc
from twamp_ctl import recv_exact

SESSIONS = 8
ROUNDS = 5


def connect_from(srv, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((source, 0))
    s.connect((srv.host, srv.port))
    g = recv_exact(s, tc.GREETING)
    s.sendall(tc.setup_response(1))
    ss = recv_exact(s, tc.SERVER_START)
    check(len(g) == tc.GREETING and len(ss) == tc.SERVER_START and ss[15] == 0,
          "control connection from %s set up" % source)
    return s


def senders(source, n):
    out = []
    for _ in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((source, 0))
        u.settimeout(2)
        out.append(u)
    return out


def request_all(ctl, socks):
    """Request-TW-Session for each sender socket (its address and port); returns the ports."""
    ports = []
    for u in socks:
        addr, port = u.getsockname()
        ctl.sendall(tc.request_tw_session(sender_port=port, receiver_port=0,
                                          sender_addr=socket.inet_aton(addr), timeout_s=1))
        a = recv_exact(ctl, tc.ACCEPT_SESSION)
        ports.append(int.from_bytes(a[2:4], "big") if len(a) == 48 and a[0] == 0 else None)
    ctl.sendall(tc.start_sessions())
    ack = recv_exact(ctl, tc.START_ACK)
    check(len(ack) == tc.START_ACK and ack[0] == 0, "Start-Ack Accept 0")
    return ports


def probe(seq):
    return struct.pack("!I", seq) + bytes(37)  # 41 octets: open-mode TWAMP-Test


def reply_of(u, timeout=2.0):
    u.settimeout(timeout)
    try:
        data = u.recv(2048)
    except socket.timeout:
        return None
    if len(data) < 41:
        return None
    return struct.unpack_from("!I", data, 0)[0], struct.unpack_from("!I", data, 24)[0]


def body(twamp):
    srv = tc.Server(twamp, extra=["--refwait", "30"])
    a_ctl = b_ctl = None
    a_socks, b_socks = senders("127.0.0.1", SESSIONS), senders("127.0.0.2", SESSIONS)
    try:
        a_ctl, b_ctl = connect_from(srv, "127.0.0.1"), connect_from(srv, "127.0.0.2")
        a_ports, b_ports = request_all(a_ctl, a_socks), request_all(b_ctl, b_socks)
        ports = set(a_ports + b_ports)
        check(len(ports) == 1 and None not in ports,
              "16 sessions from 16 source ports on two addresses share one reflector port (%s)" % ports)
        port = a_ports[0]
        dest = ("127.0.0.1", port)

        # Interleaved: A0 B0 A1 B1 ... and A0 twice per round.
        order = [(a_socks, 0)]
        for i in range(SESSIONS):
            order += [(a_socks, i), (b_socks, i)]
        expect = {}  # socket -> next reflector sequence number
        bad = []
        for rnd in range(ROUNDS):
            for socks, i in order:
                socks[i].sendto(probe(1000 * rnd + i), dest)
            counts = {}
            for socks, i in order:
                counts[socks[i]] = counts.get(socks[i], 0) + 1
            for u, n in counts.items():
                for _ in range(n):
                    got = reply_of(u)
                    want_seq = expect.get(u, 0)
                    if got is None or got[0] != want_seq or got[1] % 1000 != (a_socks + b_socks).index(u) % SESSIONS:
                        bad.append((u.getsockname(), rnd, got, want_seq))
                    expect[u] = want_seq + 1
        check(not bad, "%d interleaved replies: each to its sender, with its session's own sequence "
              "number and its sender sequence (wrong: %s)" % (ROUNDS * len(order), bad[:4]))
        check(expect[a_socks[0]] == 2 * ROUNDS and expect[b_socks[0]] == ROUNDS,
              "the session sending twice a round counted twice as many (%d, %d)" %
              (expect[a_socks[0]], expect[b_socks[0]]))

        # The sessions of 127.0.0.1 end with their connection; 127.0.0.2's go on on the port.
        a_ctl.close()
        a_ctl = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and srv.log_text().count(" ended: reflected ") < SESSIONS:
            time.sleep(0.05)
        check(srv.log_text().count(" ended: reflected ") == SESSIONS,
              "the log shows the 8 sessions of the closed connection ended")
        for u in a_socks:
            u.sendto(probe(7), dest)
        b_ok = 0
        for rnd in range(2):
            for i, u in enumerate(b_socks):
                u.sendto(probe(5000 + i), dest)
            for i, u in enumerate(b_socks):
                got = reply_of(u)
                b_ok += got is not None and got[0] == expect[u] and got[1] == 5000 + i
                expect[u] += 1
        check(b_ok == 2 * SESSIONS,
              "the other address's sessions go on on the same port, counting on (%d/%d)" %
              (b_ok, 2 * SESSIONS))
        stray = [reply_of(u, timeout=0.2) for u in a_socks]
        check(all(r is None for r in stray), "the ended sessions' senders get no reply: %s" % stray)

        # The last sessions end: the port is closed.
        b_ctl.close()
        b_ctl = None
        closed = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not closed:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(0.2)
            u.connect(dest)
            try:
                u.send(probe(9))
                u.recv(2048)
            except ConnectionRefusedError:
                closed = True
            except socket.timeout:
                pass
            u.close()
        check(closed, "with its last session ended the reflector port is closed (ICMP port unreachable)")
    finally:
        for s in (a_ctl, b_ctl):
            if s:
                s.close()
        for u in a_socks + b_socks:
            u.close()
        check(srv.stop() == 0, "server exits 0")
    # One socket for all 16 sessions; the 8 probes of the ended senders reached the port while
    # only 127.0.0.2's sessions held it, and no session took them.
    m = re.search(r"reflector ports: (\d+) opened, (\d+) sessions joined a port already open, "
                  r"(\d+) test packets matched no session", srv.log_text())
    got = tuple(int(x) for x in m.groups()) if m else None
    check(got == (1, 2 * SESSIONS - 1, SESSIONS),
          "server log at stop: 1 port opened, 15 sessions joined it, 8 packets unmatched (%s)" %
          (got,))



def port_cap(twamp):
    """--sessions-per-port 4: 10 sessions of one client fill a port, then the next."""
    srv = tc.Server(twamp, extra=["--sessions-per-port", "4"])
    ctl = None
    socks = senders("127.0.0.1", 10)
    try:
        ctl = connect_from(srv, "127.0.0.1")
        ports = request_all(ctl, socks)
        counts = {}
        for p in ports:
            counts[p] = counts.get(p, 0) + 1
        check(None not in counts and sorted(counts.values()) == [2, 4, 4],
              "--sessions-per-port 4: 10 sessions on 3 ports, 4 + 4 + 2 (%s)" % counts)
        ok = 0
        for i, u in enumerate(socks):
            u.sendto(probe(i), ("127.0.0.1", ports[i]))
            got = reply_of(u)
            ok += got is not None and got[1] == i
        check(ok == 10, "every session answered on its own port (%d/10)" % ok)
    finally:
        if ctl:
            ctl.close()
        for u in socks:
            u.close()
        check(srv.stop() == 0, "port cap: server exits 0")
    m = re.search(r"reflector ports: (\d+) opened, (\d+) sessions joined", srv.log_text())
    check(m is not None and (int(m.group(1)), int(m.group(2))) == (3, 7),
          "port cap: the log says 3 ports opened, 7 sessions joined one (%s)" %
          (m.groups() if m else None,))


def main(twamp):
    body(twamp)
    port_cap(twamp)


if __name__ == "__main__":
    itlib.main(main)
