#!/usr/bin/python3
"""twamp_malformed: raw, hand-made TWAMP-Control input against one `twamp server`, checked
against the answers control_server.hpp documents:

  * truncated messages then EOF            -> closed, nothing sent;
  * unknown / unexpected command numbers   -> Accept-Session with Accept 3, then closed
                                              (RFC 5357 §3.5; the stream cannot be resynchronised);
  * Start-Sessions with nothing requested  -> Start-Ack Accept 1, connection stays usable;
  * Stop-Sessions without started sessions, or with a wrong Number of Sessions
                                           -> closed without an answer (RFC 5357 §3.8);
  * Request-TW-Session while sessions run  -> closed (RFC 4656 §3.4);
  * bad request fields (IPVN, Conf-*, Type-P, zero addresses of the other IP version)
                                           -> Accept 3, connection stays usable;
  * MBZ octets set                         -> ignored (lenient, RFC 4656 §3.1): normal answers;
  * a mode not offered / two security bits -> Server-Start Accept 3, closed; Mode 0 -> closed;
  * RFC 5938 commands without mode 16, classic ones with it -> Accept 3, closed;
  * a client sending one octet at a time   -> completes a session and gets test replies;
  * everything pipelined in one segment    -> every answer in order; two requests for the same
                                              port share it when their senders differ, not
                                              when they are the same;
  * garbage streams                        -> closed, server unharmed;
then a legitimate controller still gets every reply.

Usage: test_twamp_malformed.py /path/to/twamp
"""
import os
import random
import socket
import struct
import time

import itlib
from itlib import check

import twamp_ctl as tc
from twamp_ctl import recv_exact, closed_by_peer


def silent_close(s, label, timeout=3):
    """The server closes the connection and sends nothing."""
    check(closed_by_peer(s, timeout), "%s: closed by the server without an answer" % label)
    s.close()


def accept3_then_close(s, label):
    a = recv_exact(s, tc.ACCEPT_SESSION, timeout=3)
    check(len(a) == 48 and a[0] == 3 and a[2:4] == b"\0\0" and a[4:20] == bytes(16),
          "%s: Accept-Session with Accept 3, port 0, SID 0 (%s)" % (label, a[:4].hex()))
    check(closed_by_peer(s, 3), "%s: then closed" % label)
    s.close()


def ready(srv, mode=1):
    s, g, ss = tc.greet_and_setup(srv, mode)
    if not (len(ss) == 48 and ss[15] == 0):
        raise RuntimeError("set-up with mode %d failed: %s" % (mode, ss.hex()))
    return s


def request(s, **kw):
    s.sendall(tc.request_tw_session(**kw))
    return recv_exact(s, 48, timeout=3)


def truncated(srv):
    # Part of the Set-Up-Response, then EOF.
    s = srv.connect()
    recv_exact(s, 64)
    s.sendall(tc.setup_response()[:100])
    s.shutdown(socket.SHUT_WR)
    silent_close(s, "truncated Set-Up-Response + EOF")
    # Part of a Request-TW-Session (one block and a bit), then EOF.
    s = ready(srv)
    s.sendall(tc.request_tw_session(sender_port=40000)[:20])
    s.shutdown(socket.SHUT_WR)
    silent_close(s, "truncated Request-TW-Session + EOF")
    # Less than one block of a command, then EOF.
    s = ready(srv)
    s.sendall(b"\x02\x00\x00")
    s.shutdown(socket.SHUT_WR)
    silent_close(s, "3 octets of a command + EOF")
    # Half of a Stop-Sessions during a session, then EOF.
    s = ready(srv)
    a = request(s, sender_port=40000)
    s.sendall(tc.start_sessions())
    ack = recv_exact(s, 32)
    check(a[:1] == b"\0" and ack[:1] == b"\0", "truncated Stop: session accepted and started")
    s.sendall(tc.stop_sessions(1)[:16])
    s.shutdown(socket.SHUT_WR)
    silent_close(s, "truncated Stop-Sessions + EOF")


def unknown_commands(srv):
    for cmd in (0, 1, 4, 6, 8, 10, 11, 200, 255):
        s = ready(srv)
        block = bytes([cmd]) + bytes(15)
        s.sendall(block)  # the first block is enough for the server to decide
        accept3_then_close(s, "command %d" % cmd)
    # Before the set-up, any 164 octets are read as a Set-Up-Response: command 6 there is
    # just a strange Mode, answered by Server-Start Accept 3.
    s = srv.connect()
    recv_exact(s, 64)
    s.sendall(bytes([6]) + bytes(163))
    ss = recv_exact(s, 48)
    check(len(ss) == 48 and ss[15] == 3, "command 6 in place of the Set-Up-Response: Server-Start Accept 3")
    silent_close(s, "command 6 in place of the Set-Up-Response")


def wrong_state(srv):
    # Start-Sessions before any request: Start-Ack Accept 1 (documented choice), and the
    # connection stays usable: a request and a start then work.
    s = ready(srv)
    s.sendall(tc.start_sessions())
    ack = recv_exact(s, 32)
    check(len(ack) == 32 and ack[0] == 1, "Start-Sessions with nothing requested: Start-Ack Accept 1 (%s)" % ack[:1].hex())
    a = request(s, sender_port=40000)
    check(len(a) == 48 and a[0] == 0, "... then a request is accepted")
    s.sendall(tc.start_sessions())
    ack = recv_exact(s, 32)
    check(len(ack) == 32 and ack[0] == 0, "... and started (Start-Ack 0)")
    # Request-TW-Session while the session runs: closed.
    s.sendall(tc.request_tw_session(sender_port=40001))
    silent_close(s, "Request-TW-Session while a session runs")

    # Stop-Sessions with no session at all.
    s = ready(srv)
    s.sendall(tc.stop_sessions(0))
    silent_close(s, "Stop-Sessions before any session")
    # Stop-Sessions for accepted but not started sessions.
    s = ready(srv)
    request(s, sender_port=40000)
    s.sendall(tc.stop_sessions(1))
    silent_close(s, "Stop-Sessions before Start-Sessions")
    # Stop-Sessions with a wrong count (2 for 1 session, and 0).
    for n in (2, 0):
        s = ready(srv)
        request(s, sender_port=40000)
        s.sendall(tc.start_sessions())
        recv_exact(s, 32)
        s.sendall(tc.stop_sessions(n))
        silent_close(s, "Stop-Sessions with Number of Sessions %d for 1 session" % n)
    # Start-Sessions twice (second while running): closed.
    s = ready(srv)
    request(s, sender_port=40000)
    s.sendall(tc.start_sessions())
    recv_exact(s, 32)
    s.sendall(tc.start_sessions())
    silent_close(s, "Start-Sessions while sessions run")
    # The right count keeps the connection open: stop, then a new cycle.
    s = ready(srv)
    request(s, sender_port=40000)
    s.sendall(tc.start_sessions())
    recv_exact(s, 32)
    s.sendall(tc.stop_sessions(1))
    a = request(s, sender_port=40002)
    check(len(a) == 48 and a[0] == 0, "Stop-Sessions with the right count: the connection stays usable")
    s.close()


def n_message(cmd, sids):
    """RFC 5938 Start-N-Sessions (7) / Stop-N-Sessions (9): command, 11 MBZ, N, SIDs, HMAC."""
    return bytes([cmd]) + bytes(11) + struct.pack("!I", len(sids)) + b"".join(sids) + bytes(16)


def individual_mode(srv):
    # RFC 5938 commands without mode 16.
    for cmd in (7, 9):
        s = ready(srv, 1)
        s.sendall(n_message(cmd, [bytes(16)]))
        accept3_then_close(s, "command %d without mode 16" % cmd)
    # Classic Start/Stop with mode 16.
    for cmd, msg in ((2, tc.start_sessions()), (3, tc.stop_sessions(1))):
        s = ready(srv, 1 | 16)
        s.sendall(msg)
        accept3_then_close(s, "command %d with mode 16" % cmd)
    # Start-N-Sessions with N = 0: no Ack can describe it, closed without an answer.
    s = ready(srv, 1 | 16)
    s.sendall(bytes([7]) + bytes(15))
    silent_close(s, "Start-N-Sessions with N = 0")
    # N beyond the cap (1024): closed without buffering it.
    s = ready(srv, 1 | 16)
    s.sendall(bytes([7]) + bytes(11) + struct.pack("!I", 0xFFFFFFFF))
    silent_close(s, "Start-N-Sessions with N = 2^32-1")
    # Start-N for an unknown SID: a Start-N-Ack with Accept 1 naming it; connection stays up.
    s = ready(srv, 1 | 16)
    sid = bytes(range(16))
    s.sendall(n_message(7, [sid]))
    ack = recv_exact(s, 48)
    check(len(ack) == 48 and ack[0] == 8 and ack[1] == 1 and ack[16:32] == sid,
          "Start-N-Sessions for an unknown SID: Start-N-Ack Accept 1 listing it (%s)" % ack[:2].hex())
    a = request(s, sender_port=40000)
    check(len(a) == 48 and a[0] == 0, "... and the connection stays usable")
    real = a[4:20]
    # Stop-N for a session not started: Stop-N-Ack Accept 1; then Start-N, Stop-N: Accept 0;
    # a second Stop-N for the same SID: Accept 1 again.
    for label, cmd, want_cmd, want in (("Stop-N before Start-N", 9, 10, 1), ("Start-N", 7, 8, 0),
                                       ("Stop-N", 9, 10, 0), ("Stop-N again", 9, 10, 1)):
        s.sendall(n_message(cmd, [real]))
        ack = recv_exact(s, 48)
        check(len(ack) == 48 and ack[0] == want_cmd and ack[1] == want and ack[16:32] == real,
              "%s for the accepted SID: command %d Accept %d (%s)" % (label, want_cmd, want, ack[:2].hex()))
    s.close()


def bad_fields(srv):
    s = ready(srv)
    cases = [
        ("IPVN 7", dict(ipvn=7)),
        ("Conf-Sender 1", dict(conf=(1, 0))),
        ("Conf-Receiver 1", dict(conf=(0, 1))),
        ("Number of Schedule Slots 1", dict(slots=1)),
        ("Number of Packets 5", dict(packets=5)),
        ("Type-P not a DSCP", dict(type_p=0xFFFFFFFF)),
        ("IPVN 6 with zero addresses on an IPv4 connection", dict(ipvn=6)),
    ]
    for label, kw in cases:
        a = request(s, sender_port=40000, **kw)
        check(len(a) == 48 and a[0] == 3 and a[2:4] == b"\0\0", "%s: Accept 3, port 0 (%s)" % (label, a[:4].hex()))
    a = request(s, sender_port=40000)
    check(len(a) == 48 and a[0] == 0 and a[2:4] != b"\0\0", "after bad fields the same connection gets Accept 0")
    s.close()


def mbz_set(srv):
    # Set-Up-Response with KeyID/Token/Client-IV non-zero (unused in mode 1): accepted.
    s = srv.connect()
    recv_exact(s, 64)
    s.sendall(struct.pack("!I", 1) + b"\xAA" * 160)
    ss = recv_exact(s, 48)
    check(len(ss) == 48 and ss[15] == 0, "Set-Up-Response with junk in KeyID/Token/IV: Server-Start Accept 0")
    # Request with the MBZ nibble of octet 1, the MBZ octets 92..95 and the v4 address tails set,
    # and an unused RFC 6038 field: still Accept 0 (lenient, RFC 4656 §3.1).
    m = bytearray(tc.request_tw_session(sender_port=40000, mbz_fill=0xF0))
    m[20:32] = b"\x55" * 12  # after the IPv4 Sender Address
    m[88:92] = b"\x12\x34\x00\x02"  # Reflect Octets fields without mode 32: MBZ here
    s.sendall(bytes(m))
    a = recv_exact(s, 48)
    check(len(a) == 48 and a[0] == 0 and a[2:4] != b"\0\0", "Request-TW-Session with MBZ set: Accept 0 with a port")
    check(len(a) == 48 and a[20:24] == b"\0\0\0\0", "... and no Reflect Octets echoed without mode 32")
    s.sendall(tc.start_sessions(mbz_fill=0x77))
    ack = recv_exact(s, 32)
    check(len(ack) == 32 and ack[0] == 0, "Start-Sessions with MBZ set: Start-Ack 0")
    stop = bytearray(tc.stop_sessions(1))
    stop[2:4] = b"\xFF\xFF"
    stop[8:16] = b"\xFF" * 8
    s.sendall(bytes(stop))
    a = request(s, sender_port=40001)
    check(len(a) == 48 and a[0] == 0, "Stop-Sessions with MBZ set is taken (connection stays usable)")
    s.close()


def modes(srv):
    for mode, label in ((2, "authenticated (not offered)"), (4, "encrypted (not offered)"),
                        (3, "two security bits"), (1 | 128, "IKEv2 bit"), (1 | 0x10000, "unknown bit"),
                        (16, "no security bit")):
        s = srv.connect()
        recv_exact(s, 64)
        s.sendall(tc.setup_response(mode))
        ss = recv_exact(s, 48)
        check(len(ss) == 48 and ss[15] == 3, "Set-Up-Response mode %#x (%s): Server-Start Accept 3" % (mode, label))
        check(len(ss) == 48 and ss[32:48] == bytes(16), "... with Start-Time 0")
        silent_close(s, "mode %#x" % mode)
    s = srv.connect()
    recv_exact(s, 64)
    s.sendall(tc.setup_response(0))
    silent_close(s, "Set-Up-Response Mode 0 (client declines)")


def test_packet(seq, size=41):
    now = time.time() + 2208988800
    sec = int(now)
    frac = int((now - sec) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack("!IIIH", seq, sec, frac, 0x0001) + bytes(size - 14)


def byte_at_a_time(srv):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(2)
    sport = udp.getsockname()[1]
    s = srv.connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got = bytearray()

    def dribble(msg):
        for b in msg:
            s.send(bytes([b]))
            time.sleep(0.0005)

    try:
        g = recv_exact(s, 64)
        check(len(g) == 64 and tc.modes_of(g) & 1, "byte-at-a-time: greeting")
        dribble(tc.setup_response())
        ss = recv_exact(s, 48)
        check(len(ss) == 48 and ss[15] == 0, "byte-at-a-time: Server-Start Accept 0")
        dribble(tc.request_tw_session(sender_port=sport, padding=27, timeout_s=1))
        a = recv_exact(s, 48)
        port = int.from_bytes(a[2:4], "big") if len(a) == 48 else 0
        check(len(a) == 48 and a[0] == 0 and port != 0, "byte-at-a-time: Accept-Session 0, port %d" % port)
        dribble(tc.start_sessions())
        ack = recv_exact(s, 32)
        check(len(ack) == 32 and ack[0] == 0, "byte-at-a-time: Start-Ack 0")
        replies = 0
        for seq in range(10):
            udp.sendto(test_packet(seq), ("127.0.0.1", port))
            try:
                data, _ = udp.recvfrom(2048)
                if len(data) == 41 and struct.unpack_from("!I", data, 24)[0] == seq:
                    replies += 1
            except socket.timeout:
                pass
        check(replies == 10, "byte-at-a-time: 10 of 10 test packets reflected (%d)" % replies)
        dribble(tc.stop_sessions(1))
        # The connection stays open after a correct Stop-Sessions: another request works.
        dribble(tc.request_tw_session(sender_port=sport))
        a = recv_exact(s, 48)
        check(len(a) == 48 and a[0] == 0, "byte-at-a-time: after Stop, a new request is accepted")
    finally:
        s.close()
        udp.close()


def pipelined(srv):
    # Set-Up-Response, three requests for the same free port, Start-Sessions and a correct
    # Stop-Sessions, all in one segment: every answer in order; the first two (sender ports
    # 40000, 40001) share the port, the third (40000 again: its packets could not be told from
    # the first's) gets another one.
    # The port is found free and released here: if another process takes it before the server
    # binds it (the server then rightly grants another, and the port is busy when tried again
    # below), the step is repeated with a new port.
    for _attempt in range(3):
        want = itlib.free_port()
        s = srv.connect()
        recv_exact(s, 64)
        s.sendall(tc.setup_response() + tc.request_tw_session(sender_port=40000, receiver_port=want) +
                  tc.request_tw_session(sender_port=40001, receiver_port=want) +
                  tc.request_tw_session(sender_port=40000, receiver_port=want) + tc.start_sessions())
        answer = recv_exact(s, 48 + 3 * 48 + 32)
        p1 = int.from_bytes(answer[50:52], "big") if len(answer) == 224 else None
        if p1 is not None and p1 != want and itlib.port_taken(want):
            print("  port %d was taken by another process meanwhile; again" % want)
            s.close()
            continue
        break
    check(len(answer) == 224, "pipelined: Server-Start, 3 Accept-Sessions and a Start-Ack (%d octets)" % len(answer))
    if len(answer) == 224:
        a1, a2, a3, ack = answer[48:96], answer[96:144], answer[144:192], answer[192:224]
        p1, p2, p3 = (int.from_bytes(a[2:4], "big") for a in (a1, a2, a3))
        check(answer[15] == 0 and a1[0] == 0 and a2[0] == 0 and a3[0] == 0 and ack[0] == 0,
              "pipelined: all Accept 0")
        check(p1 == want, "pipelined: the first request gets the port it asked for (%d)" % p1)
        check(p2 == want, "pipelined: the second, another sender port, shares it (%d)" % p2)
        check(p3 not in (0, want), "pipelined: the third, the first's sender again, gets another one (%d)" % p3)
    s.sendall(tc.stop_sessions(3) + tc.request_tw_session(sender_port=40002))
    a = recv_exact(s, 48)
    check(len(a) == 48 and a[0] == 0, "pipelined: Stop-Sessions 2 + a new request in one segment: Accept 0")
    s.close()


def garbage(srv):
    rnd = random.Random(5357)
    # Random Set-Up-Responses: each gets a Server-Start (Accept 0 or 3) or a close, never a hang.
    answered = 0
    for i in range(20):
        s = srv.connect()
        recv_exact(s, 64)
        s.sendall(bytes(rnd.getrandbits(8) for _ in range(164)))
        ss = recv_exact(s, 48, timeout=2)
        if len(ss) == 48 and ss[15] in (0, 3):
            answered += 1
        s.close()
    check(answered == 20, "random Set-Up-Responses: each answered by a Server-Start (%d of 20)" % answered)
    # Random commands after a good set-up: each is closed within 3 s (no idle wait needed).
    closed = 0
    for i in range(20):
        s = ready(srv)
        blob = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 600)))
        s.sendall(blob)
        s.shutdown(socket.SHUT_WR)
        if closed_by_peer(s, 3, answers=True):
            closed += 1
        s.close()
    check(closed == 20, "random command streams: all 20 connections closed by the server (%d)" % closed)
    # A 1 MiB random stream (seeded), sent while the server answers and closes: the server must
    # close the connection (a reset or broken pipe while sending shows it did), not stop reading
    # and leave it open (the send times out) nor keep it open after the stream.
    s = srv.connect()
    recv_exact(s, 64)
    closed, stuck = False, False
    try:
        s.settimeout(5)
        s.sendall(rnd.randbytes(1 << 20))
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    except socket.timeout:
        stuck = True
    if not closed and not stuck:
        closed = closed_by_peer(s, 3, answers=True)
    check(closed, "1 MiB random stream: the server closes the connection (%s)" %
          ("closed" if closed else "send timed out: nobody reads" if stuck else "still open after 3 s"))
    s.close()
    # Raw zero bytes forever (well, 64 KiB): a Set-Up-Response with Mode 0, then closed.
    s = srv.connect()
    recv_exact(s, 64)
    try:
        s.sendall(bytes(65536))
    except (BrokenPipeError, ConnectionResetError):
        pass
    check(closed_by_peer(s, 3, answers=True), "64 KiB of zeros: closed (Mode 0)")
    s.close()
    check(srv.alive(), "garbage: the server is still running")


def body(twamp):
    srv = tc.Server(twamp, extra=["--servwait", "10", "--refwait", "5"])
    try:
        fd0 = srv.socket_count()
        for step in (truncated, unknown_commands, wrong_state, individual_mode, bad_fields, mbz_set, modes,
                     byte_at_a_time, pipelined, garbage):
            print("-- " + step.__name__)
            step(srv)
            check(srv.alive(), "%s: server still running" % step.__name__)
        r, rep = tc.controller(twamp, srv, "-c", "200", "-i", "2", "--timeout", "2")
        check(r.returncode == 0 and rep and rep[0]["received"] == 200 and rep[0]["lost"] == 0,
              "after all of it a controller gets 200 of 200 replies (rc %d %s)" %
              (r.returncode, r.stderr.strip()[:200]))
        # No connection or reflector socket is left behind.
        deadline = time.monotonic() + 3
        while srv.socket_count() != fd0 and time.monotonic() < deadline:
            time.sleep(0.05)
        fd1 = srv.socket_count()
        check(fd1 == fd0, "server sockets back to %d after the abuse (%d)" % (fd0, fd1))
    finally:
        check(srv.stop() == 0, "server exits 0 on SIGINT")


if __name__ == "__main__":
    itlib.main(body)
