#!/usr/bin/python3
"""abuse_hardening_policy (issue 11 item 5): third parties and amplification.

  * `twamp server --allow 127.0.0.1/32`: a Request-TW-Session from 127.0.0.1 naming 127.0.0.2 as
    its Sender Address is refused with Accept 1 (a policy refusal: not a resource limit, 4/5,
    nor an unsupported field, 3); the same request naming 127.0.0.1 is accepted; with
    `--allow 127.0.0.0/8` the third party is accepted (Control-Client for another sender).
  * `--test-ports P-P`: a request for a Receiver Port outside the range is granted P, never the
    port asked for.
  * REFWAIT: test packets from another address than the agreed Sender Address do not keep a
    session alive.
  * `twamp responder --padding 200`: a 41-octet request gets no reply (it would be answered
    with 241 octets, an amplifier for spoofed sources); a 241-octet request gets its 241-octet
    reply; with --allow-amplification the 41-octet request is answered with 241 octets.

Usage: test_abuse_hardening_policy.py /path/to/twamp
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import itlib  # noqa: E402
from itlib import check  # noqa: E402

import twamp_ctl as tc  # noqa: E402
from twamp_ctl import recv_exact  # noqa: E402

LO2 = "127.0.0.2"


def have_lo2():
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((LO2, 0))
        return True
    except OSError:
        return False


def ask(srv, sender_addr=b"", receiver_port=0):
    s, g, ss = tc.greet_and_setup(srv)
    try:
        s.sendall(tc.request_tw_session(40000, receiver_port=receiver_port, sender_addr=sender_addr))
        a = recv_exact(s, tc.ACCEPT_SESSION)
        if len(a) != tc.ACCEPT_SESSION:
            return None, None
        return a[0], struct.unpack_from("!H", a, 2)[0]
    finally:
        s.close()


def third_party(twamp):
    srv = tc.Server(twamp, extra=["--allow", "127.0.0.1/32"])
    try:
        code, _ = ask(srv, sender_addr=socket.inet_aton(LO2))
        check(code == 1, "third party: Sender Address %s outside --allow: Accept %s (want 1)" % (LO2, code))
        code, _ = ask(srv, sender_addr=socket.inet_aton("127.0.0.1"))
        check(code == 0, "third party: Sender Address = the client's own: Accept %s" % code)
        code, _ = ask(srv)
        check(code == 0, "third party: zero Sender Address (the client's): Accept %s" % code)
        check("is not the client's and not allowed" in srv.log_text(), "third party: the refusal is logged")
    finally:
        srv.stop()
    srv = tc.Server(twamp, extra=["--allow", "127.0.0.0/8"])
    try:
        code, _ = ask(srv, sender_addr=socket.inet_aton(LO2))
        check(code == 0, "third party: %s inside --allow 127.0.0.0/8: Accept %s" % (LO2, code))
    finally:
        srv.stop()


def test_ports(twamp):
    p = itlib.free_port()
    q = itlib.free_port()
    while q == p:
        q = itlib.free_port()
    srv = tc.Server(twamp, extra=["--test-ports", "%d-%d" % (p, p)])
    try:
        code, port = ask(srv, receiver_port=q)
        check(code == 0 and port == p,
              "test ports: Receiver Port %d outside --test-ports %d-%d is granted %s" % (q, p, p, port))
    finally:
        srv.stop()


def refwait_other_source(twamp):
    srv = tc.Server(twamp, extra=["--refwait", "1", "--servwait", "30"])
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        other.bind((LO2, 0))
        s, g, ss = tc.greet_and_setup(srv)
        s.sendall(tc.request_tw_session(40000, timeout_s=1))
        a = recv_exact(s, tc.ACCEPT_SESSION)
        check(len(a) == tc.ACCEPT_SESSION and a[0] == 0, "refwait: session accepted")
        port = struct.unpack_from("!H", a, 2)[0]
        s.sendall(tc.start_sessions())
        recv_exact(s, tc.START_ACK)
        # Packets from 127.0.0.2 every 50 ms for up to 4 s: REFWAIT (1 s) must still end it.
        ended = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4:
            other.sendto(bytes(41), ("127.0.0.1", port))
            if "nothing received for REFWAIT" in srv.log_text():
                ended = time.monotonic() - t0
                break
            time.sleep(0.05)
        check(ended is not None, "refwait: packets from another address do not refresh REFWAIT "
              "(ended after %s s)" % ("%.2f" % ended if ended is not None else "never"))
        s.close()
    finally:
        other.close()
        srv.stop()


def reply_size(resp_addr, size, timeout=0.5):
    host, port = resp_addr.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        u.settimeout(timeout)
        now = time.time() + 2208988800
        u.sendto(struct.pack("!IIIH", 7, int(now), 0, 0x0001) + bytes(size - 14), (host, int(port)))
        try:
            return len(u.recv(4096))
        except socket.timeout:
            return None


def responder_padding(twamp):
    r = itlib.Responder(twamp, extra=["--padding", "200"])
    try:
        n = reply_size(r.addr, 41)
        check(n is None, "padding: --padding 200 alone drops a 41-octet request (reply: %s)" % n)
        n = reply_size(r.addr, 241)
        check(n == 241, "padding: a 241-octet request gets its 241-octet reply (%s)" % n)
    finally:
        r.stop()
    r = itlib.Responder(twamp, extra=["--padding", "200", "--allow-amplification"])
    try:
        n = reply_size(r.addr, 41)
        check(n == 241, "padding: with --allow-amplification a 41-octet request gets 241 octets (%s)" % n)
    finally:
        r.stop()


def body(twamp):
    if have_lo2():
        third_party(twamp)
        refwait_other_source(twamp)
    else:
        itlib.skip("127.0.0.2 is not usable on this host: third-party and REFWAIT sections")
    test_ports(twamp)
    responder_padding(twamp)


if __name__ == "__main__":
    itlib.main(body)
