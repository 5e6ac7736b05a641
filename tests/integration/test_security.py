#!/usr/bin/python3
"""twamp_security: the authenticated, encrypted and mixed TWAMP modes and authenticated STAMP,
end to end on loopback with the real `twamp` binary.

- `twamp server --key-file` + `twamp controller --auth-mode M --key-id alice --key-file`:
  100 of 100 replies for M = authenticated, encrypted, mixed (and authenticated over [::1]).
- Refusals: a wrong secret and an unknown KeyID (exit 3, "refused the key"), no common mode
  (server --modes open,authenticated, client --auth-mode encrypted), a server Count above the
  client's --max-count. The shared secret (hex and passphrase) never appears in any output.
- Forged test packets: an independent Python TWAMP-Control client (PBKDF2, Token, CBC chains and
  running HMACs done with hashlib + python3-cryptography) sets up an authenticated session and
  sends test packets itself: correctly sealed ones are answered with replies that verify in
  Python; random ones, ones sealed with a wrong key and ones with a flipped byte are not.
  Also, while a `twamp controller` session runs, forged packets sent to its reflector port do not
  disturb it.
- Authenticated STAMP: `twamp responder --key-file` + `twamp sender --stamp --key-file`: 100/100;
  a different key: 0 received and the responder logs "authentication failures: 100"; one request
  captured by a Python socket verifies as HMAC-SHA-256/128 over octets 0..95.

Usage: test_security.py /path/to/twamp
"""
import hashlib
import hmac
import os
import re
import socket
import struct
import subprocess
import tempfile
import time

import itlib
from itlib import check

import twamp_ctl

PASSPHRASE = b"super secret passphrase"
SECRET_HEX = PASSPHRASE.hex()
OTHER_HEX = b"another secret passphrase".hex()

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    HAVE_CRYPTO = True
except ImportError:  # python3-cryptography missing: the Python control client part is skipped
    HAVE_CRYPTO = False

_tmpfiles = []
_outputs = []  # every stdout/stderr/log text, scanned for the secret at the end


def key_file(text):
    f = tempfile.NamedTemporaryFile("w", prefix="twamp-keys-", suffix=".pfs", delete=False)
    f.write(text)
    f.close()
    _tmpfiles.append(f.name)
    return f.name


def remember(*texts):
    for t in texts:
        if t:
            _outputs.append(t)


def controller(twamp, srv, key, *args, key_id="alice", mode="authenticated", timeout=25):
    r, reports = twamp_ctl.controller(twamp, srv, "-c", "100", "-i", "2", "--auth-mode", mode,
                                      "--key-id", key_id, "--key-file", key, *args, timeout=timeout)
    remember(r.stdout, r.stderr)
    return r, reports


# ---------------------------------------------------------------------------------------------
# Sessions in every protected mode

def protected_modes(twamp, keys):
    srv = twamp_ctl.Server(twamp, extra=("--key-file", keys))
    try:
        for mode in ("authenticated", "encrypted", "mixed"):
            t0 = time.monotonic()
            r, reports = controller(twamp, srv, keys, mode=mode)
            got = reports[0] if reports else {}
            check(r.returncode == 0 and got.get("received") == 100 and got.get("lost") == 0,
                  "%s: 100 of 100 replies (rc %d, received %s, %.1f s)"
                  % (mode, r.returncode, got.get("received"), time.monotonic() - t0))
            if r.returncode != 0:
                print(r.stderr)
        log = srv.log_text()
        # The server logs the agreed mode of each connection: 2, 4, 8.
        agreed = [int(m) & 0x0F for m in re.findall(r"control connection .*: mode (\d+)", log)]
        check(agreed == [2, 4, 8], "the server agreed modes 2, 4, 8 in turn (%s)" % agreed)
    finally:
        check(srv.stop() == 0, "modes: server exits 0")
        remember(srv.log_text())

    if not itlib.have_ipv6_loopback():
        itlib.skip("no IPv6 loopback here: the [::1] run")
        return
    srv = twamp_ctl.Server(twamp, host="::1", extra=("--key-file", keys))
    try:
        r, reports = controller(twamp, srv, keys, mode="encrypted")
        got = reports[0] if reports else {}
        check(r.returncode == 0 and got.get("received") == 100 and got.get("reflector", {}).get("address") == "::1",
              "[::1] encrypted: 100 of 100 replies (rc %d, received %s)" % (r.returncode, got.get("received")))
    finally:
        check(srv.stop() == 0, "[::1]: server exits 0")
        remember(srv.log_text())


# ---------------------------------------------------------------------------------------------
# Refusals

def one_line(text):
    return len([l for l in text.splitlines() if l.strip()]) == 1


def refusals(twamp, keys):
    wrong = key_file("alice %s\n" % OTHER_HEX)
    unknown = key_file("bob %s\n" % SECRET_HEX)
    srv = twamp_ctl.Server(twamp, extra=("--key-file", keys))
    try:
        for what, kf, kid in (("wrong secret", wrong, "alice"), ("unknown KeyID", unknown, "bob")):
            for mode in ("authenticated", "encrypted", "mixed"):
                r, reports = controller(twamp, srv, kf, key_id=kid, mode=mode, timeout=15)
                check(r.returncode == 3 and "refused the key" in r.stderr and one_line(r.stderr) and not reports,
                      "%s, %s: exit 3, one line with 'refused the key' (rc %d: %s)"
                      % (what, mode, r.returncode, r.stderr.strip()))
        check(srv.alive(), "the server survives the refused keys")
        # The server still serves a good key afterwards.
        r, reports = controller(twamp, srv, keys, mode="authenticated")
        check(r.returncode == 0 and reports and reports[0]["received"] == 100,
              "after the refusals a good key still gets 100 of 100")
        # --max-count 1024 against the server's default Count 2048: the client declines in its
        # Set-Up-Response, before it derives a key.
        r, reports = controller(twamp, srv, keys, "--max-count", "1024", mode="encrypted", timeout=15)
        check(r.returncode == 3 and "Count" in r.stderr and one_line(r.stderr),
              "--max-count 1024 vs Count 2048: exit 3, one line naming the Count (rc %d: %s)"
              % (r.returncode, r.stderr.strip()))
        check(itlib.wait_for(r"client declined \(Mode 0\)", srv.log_text, 5.0, srv.proc) is not None,
              "the server saw the client decline with Mode 0 (no KeyID/Token sent)")
    finally:
        check(srv.stop() == 0, "refusals: server exits 0")
        remember(srv.log_text())

    # A server whose Count is above the client's default limit (2^15): refused by the client.
    srv = twamp_ctl.Server(twamp, extra=("--key-file", keys, "--count", "65536"))
    try:
        r, reports = controller(twamp, srv, keys, mode="authenticated", timeout=15)
        check(r.returncode == 3 and "Count" in r.stderr and one_line(r.stderr) and not reports,
              "server --count 65536 vs the default --max-count 32768: exit 3 (rc %d: %s)"
              % (r.returncode, r.stderr.strip()))
    finally:
        check(srv.stop() == 0, "count: server exits 0")
        remember(srv.log_text())

    srv = twamp_ctl.Server(twamp, extra=("--key-file", keys, "--modes", "open,authenticated"))
    try:
        r, reports = controller(twamp, srv, keys, mode="encrypted", timeout=15)
        check(r.returncode == 3 and one_line(r.stderr) and "no common security mode" in r.stderr and not reports,
              "server open,authenticated vs client encrypted: exit 3, one line 'no common security mode' (rc %d: %s)"
              % (r.returncode, r.stderr.strip()))
        # The same server with a mode list that overlaps: the strongest common mode is used.
        r, reports = controller(twamp, srv, keys, mode="encrypted,authenticated")
        check(r.returncode == 0 and reports and reports[0]["received"] == 100,
              "client encrypted,authenticated vs server open,authenticated: authenticated, 100 of 100")
    finally:
        check(srv.stop() == 0, "no-common-mode: server exits 0")
        remember(srv.log_text())


# ---------------------------------------------------------------------------------------------
# An independent TWAMP-Control client (RFC 4656 §3.1-3.2, RFC 5357) for forged test packets

def aes_cbc(key, iv, data, encrypt):
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(data) + op.finalize()


def hmac16(key, data, algo=hashlib.sha1):
    return hmac.new(key, data, algo).digest()[:16]


class Chain:
    """One direction of a protected control connection: a CBC chain that never restarts and a
    running HMAC-SHA1/128 over the plaintext since the previous HMAC."""

    def __init__(self, aes_sk, hmac_sk, iv):
        self.key, self.mac_key, self.iv, self.pending = aes_sk, hmac_sk, iv, b""

    def encrypt(self, plain):  # blocks without an HMAC of their own
        self.pending += plain
        out = aes_cbc(self.key, self.iv, plain, True)
        self.iv = out[-16:]
        return out

    def protect(self, msg):  # msg's last 16 octets are its HMAC field
        body = msg[:-16]
        out = self.encrypt(body)
        mac = hmac16(self.mac_key, self.pending)
        self.pending = b""
        return out + self.encrypt_raw(mac)

    def encrypt_raw(self, block):
        out = aes_cbc(self.key, self.iv, block, True)
        self.iv = out[-16:]
        return out

    def decrypt(self, cipher):
        plain = aes_cbc(self.key, self.iv, cipher, False)
        self.iv = cipher[-16:]
        self.pending += plain
        return plain

    def unprotect(self, msg):
        body = self.decrypt(msg[:-16])
        mac = aes_cbc(self.key, self.iv, msg[-16:], False)
        self.iv = msg[-16:]
        ok = hmac.compare_digest(mac, hmac16(self.mac_key, self.pending))
        self.pending = b""
        return body, ok


class PyClient:
    """Authenticated (mode 2) control connection, one session for a local UDP socket."""

    def __init__(self, srv, key_id=b"alice", secret=PASSPHRASE, mode=2):
        self.sock = srv.connect()
        g = twamp_ctl.recv_exact(self.sock, twamp_ctl.GREETING)
        assert len(g) == 64, "no greeting"
        self.offered = twamp_ctl.modes_of(g)
        challenge, salt, count = g[16:32], g[32:48], struct.unpack_from("!I", g, 48)[0]
        self.count = count
        k = hashlib.pbkdf2_hmac("sha1", secret, salt, count, 16)
        self.aes_sk, self.hmac_sk, client_iv = os.urandom(16), os.urandom(32), os.urandom(16)
        token = aes_cbc(k, bytes(16), challenge + self.aes_sk + self.hmac_sk, True)
        self.sock.sendall(struct.pack("!I", mode) + key_id.ljust(80, b"\0") + token + client_iv)
        ss = twamp_ctl.recv_exact(self.sock, twamp_ctl.SERVER_START)
        assert len(ss) == 48, "no Server-Start"
        self.accept = ss[15]
        if self.accept != 0:
            return
        self.tx = Chain(self.aes_sk, self.hmac_sk, client_iv)
        self.rx = Chain(self.aes_sk, self.hmac_sk, ss[16:32])
        self.rx.decrypt(ss[32:48])  # Start-Time: first block of the server chain, in the next HMAC

    def request(self, sender_port, padding=64):
        m = twamp_ctl.request_tw_session(sender_port, padding=padding, timeout_s=0)
        self.sock.sendall(self.tx.protect(m))
        a, ok = self.rx.unprotect(twamp_ctl.recv_exact(self.sock, twamp_ctl.ACCEPT_SESSION))
        self.port, self.sid = struct.unpack_from("!H", a, 2)[0], a[4:20]
        return a[0], ok

    def start(self):
        self.sock.sendall(self.tx.protect(twamp_ctl.start_sessions()))
        a, ok = self.rx.unprotect(twamp_ctl.recv_exact(self.sock, twamp_ctl.START_ACK))
        return a[0], ok

    def stop(self):
        try:
            self.sock.sendall(self.tx.protect(twamp_ctl.stop_sessions(1)))
        except OSError:
            pass
        self.sock.close()

    def test_keys(self):
        aes = Cipher(algorithms.AES(self.sid), modes.ECB()).encryptor().update(self.aes_sk)
        mac = aes_cbc(self.sid, bytes(16), self.hmac_sk, True)
        return aes, mac


def seal_auth_probe(aes, mac, seq, padding=64):
    """Authenticated TWAMP-Test request (RFC 4656 §4.1.2): block 0 ECB-encrypted, HMAC-SHA1/128 of
    its plaintext at 32; T1 and the error estimate in clear."""
    block0 = struct.pack("!I", seq) + bytes(12)
    t1 = int((time.time() + 2208988800) * 2 ** 32)
    enc = Cipher(algorithms.AES(aes), modes.ECB()).encryptor().update(block0)
    return enc + struct.pack("!QH", t1, 0x0001) + bytes(6) + hmac16(mac, block0) + bytes(padding)


def open_auth_reply(aes, mac, pkt):
    if len(pkt) < 112:
        return None
    block0 = Cipher(algorithms.AES(aes), modes.ECB()).decryptor().update(pkt[:16])
    if not hmac.compare_digest(hmac16(mac, block0), pkt[96:112]):
        return None
    return struct.unpack_from("!I", block0)[0], struct.unpack_from("!I", pkt, 48)[0], pkt[80]


def recv_all(sock, wait):
    got = []
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        sock.settimeout(left)
        try:
            got.append(sock.recvfrom(65536)[0])
        except socket.timeout:
            return got


def forged(twamp, keys):
    if not HAVE_CRYPTO:
        itlib.skip("python3-cryptography is not installed: the independent Python control client")
        return
    srv = twamp_ctl.Server(twamp, extra=("--key-file", keys))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)  # RFC 4656 §4.1.2: sent with TTL 255
        udp.bind(("127.0.0.1", 0))
        # A wrong passphrase through the independent client: Server-Start Accept 1.
        bad = PyClient(srv, secret=b"not the passphrase")
        check(bad.accept == 1, "python client, wrong passphrase: Server-Start Accept 1 (%d)" % bad.accept)
        bad.sock.close()
        bad = PyClient(srv, key_id=b"mallory")
        check(bad.accept == 1, "python client, unknown KeyID: Server-Start Accept 1 (%d)" % bad.accept)
        bad.sock.close()

        c = PyClient(srv)
        check(c.accept == 0 and c.count == 2048 and c.offered & 0x0F == 0x0F,
              "python client: the server offers modes 1|2|4|8, Count 2048, and accepts our Token")
        acc, ok = c.request(udp.getsockname()[1])
        check(acc == 0 and ok, "python client: Accept-Session 0 and its HMAC verifies (port %d)" % c.port)
        acc, ok = c.start()
        check(acc == 0 and ok, "python client: Start-Ack 0 and its HMAC verifies")
        aes, mac = c.test_keys()
        dst = ("127.0.0.1", c.port)

        # (a) correctly sealed requests: answered, and the replies verify in Python.
        for seq in range(5):
            udp.sendto(seal_auth_probe(aes, mac, seq), dst)
        replies = recv_all(udp, 1.0)
        opened = [open_auth_reply(aes, mac, p) for p in replies]
        check(len(replies) == 5 and all(o is not None for o in opened)
              and sorted(o[1] for o in opened) == [0, 1, 2, 3, 4] and all(o[2] == 255 for o in opened),
              "sealed by us: 5 replies of 112 octets, HMACs verify, Sender Seq 0-4, Sender TTL 255 (%d)"
              % len(replies))

        # (b) forgeries: random, sealed with another session's keys, one flipped byte in block 0
        # and in the HMAC; none may be reflected.
        good = seal_auth_probe(aes, mac, 99)
        wrong_aes, wrong_mac = os.urandom(16), os.urandom(32)
        forgeries = [os.urandom(112) for _ in range(20)]
        forgeries += [seal_auth_probe(wrong_aes, wrong_mac, s) for s in range(20)]
        for pos in (0, 3, 15, 32, 47):
            f = bytearray(good)
            f[pos] ^= 0x01
            forgeries.append(bytes(f))
        forgeries += [good[:47], good[:16]]  # too short
        for f in forgeries:
            udp.sendto(f, dst)
        stray = recv_all(udp, 1.0)
        check(not stray, "%d forged/short requests: no reply (%d)" % (len(forgeries), len(stray)))

        # In authenticated mode the timestamps are not covered (only block 0 is): a changed T1 is
        # reflected. That is RFC 4656's design (and twampd's), shown here end to end.
        f = bytearray(good)
        f[20] ^= 0x40
        udp.sendto(bytes(f), dst)
        r = recv_all(udp, 1.0)
        check(len(r) == 1 and open_auth_reply(aes, mac, r[0]) is not None,
              "authenticated mode: a request with a changed T1 is still reflected (HMAC covers block 0 only)")
        c.stop()
        # Stop-Sessions ends the session; the server logs its counters then. 45 of the forgeries
        # are full-length requests whose HMAC cannot verify (20 random, 20 sealed with other keys,
        # 5 with one flipped octet); the 2 short ones may be refused before any HMAC is computed.
        m = itlib.wait_for(r"session on UDP port %d from .* ended: .*authentication failures (\d+)" % c.port,
                           srv.log_text, 5.0, srv.proc)
        check(m is not None and 45 <= int(m.group(1)) <= len(forgeries),
              "the server logs the session's authentication failures: 45..%d (%s)"
              % (len(forgeries), m.group(1) if m else "no session-end line"))
    finally:
        udp.close()
        check(srv.stop() == 0, "forged: server exits 0")
        log = srv.log_text()
        remember(log)


def forged_during_controller(twamp, keys):
    """Forged packets to the reflector port while a controller's authenticated session runs."""
    srv = twamp_ctl.Server(twamp, extra=("--key-file", keys))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("127.0.0.1", 0))
        # The server picks the reflector port (no port is probed here and released) and logs it.
        argv = twamp_ctl.controller_argv(twamp, srv, "-c", "100", "-i", "10", "--auth-mode", "authenticated",
                                         "--key-id", "alice", "--key-file", keys, reflector_port=0)
        out = tempfile.TemporaryFile("w+")
        err = tempfile.TemporaryFile("w+")
        p = itlib.spawn(argv, stdout=out, stderr=err)
        m = itlib.wait_for(r"session accepted for .* on UDP port (\d+)", srv.log_text, 10.0, srv.proc)
        check(m is not None, "forged-during-controller: the server accepted the controller's session")
        port = int(m.group(1)) if m else 1
        deadline = time.monotonic() + 3
        sent = 0
        while time.monotonic() < deadline and p.poll() is None:
            pkt = os.urandom(112)
            udp.sendto(pkt, ("127.0.0.1", port))
            sent += 1
            time.sleep(0.005)
        stray = recv_all(udp, 0.3)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            pass
        out.seek(0)
        err.seek(0)
        o, e = out.read(), err.read()
        remember(o, e)
        reports = twamp_ctl.parse_reports(o) if o.strip() else []
        got = reports[0] if reports else {}
        check(p.returncode == 0 and got.get("received") == 100 and got.get("reflector", {}).get("port") == port,
              "controller on reflector port %d: 100 of 100 despite %d forged datagrams (rc %s, received %s)"
              % (port, sent, p.returncode, got.get("received")))
        check(not stray, "forged datagrams to the session's port: no reply (%d)" % len(stray))
    finally:
        udp.close()
        check(srv.stop() == 0, "forged-during-controller: server exits 0")
        remember(srv.log_text())


# ---------------------------------------------------------------------------------------------
# Authenticated STAMP

def stamp(twamp):
    skey = key_file("1 %s\n2 %s\n" % (SECRET_HEX, OTHER_HEX))
    other = key_file("1 %s\n" % OTHER_HEX)
    resp = itlib.Responder(twamp, extra=("--key-file", skey))
    try:
        r, j = itlib.sender_json(twamp, resp, "--stamp", "--key-file", skey, "--key-id", "1", "-c", "100",
                                 "-i", "1", "--timeout", "1")
        remember(r.stdout, r.stderr)
        check(r.returncode == 0 and j and j["received"] == 100 and j["loss_pct"] == 0 and j["mode"] == "stamp",
              "authenticated STAMP: 100 of 100, 0%% loss (rc %d, received %s)" % (r.returncode, j and j["received"]))
        # The responder uses its file's first key (no --key-id); the sender signs with another.
        r, j = itlib.sender_json(twamp, resp, "--stamp", "--key-file", other, "-c", "100", "-i", "1",
                                 "--timeout", "1")
        remember(r.stdout, r.stderr)
        check(r.returncode == 1 and j and j["sent"] == 100 and j["received"] == 0,
              "STAMP with a different key: 100 sent, 0 received, exit 1 (rc %d, received %s)"
              % (r.returncode, j and j["received"]))
        # An open STAMP sender is refused too (44 octets: too short to carry an HMAC).
        r, j = itlib.sender_json(twamp, resp, "--stamp", "-c", "5", "-i", "1", "--timeout", "0.5")
        check(r.returncode == 1 and j and j["received"] == 0, "open STAMP to an authenticated responder: 0 received")
    finally:
        check(resp.stop() == 0, "authenticated responder exits 0 on SIGINT")
        log = resp.log_text()
        remember(log)
        m = re.search(r"authentication failures: (\d+)", log)
        check(m is not None and int(m.group(1)) == 105,
              "responder logs 'authentication failures: 105' (100 wrong-key + 5 open) (%s)"
              % (m and m.group(1)))

    # One request captured by a Python socket posing as the responder, verified independently;
    # a reply sealed in Python is accepted by the sender, one with a bad HMAC is not.
    for good_reply in (True, False):
        ps = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            ps.bind(("127.0.0.1", 0))
            port = ps.getsockname()[1]
            p = itlib.spawn([twamp, "sender", "127.0.0.1:%d" % port, "127.0.0.1:0", "--stamp", "--ssid", "77",
                             "--key-file", skey, "--key-id", "1", "-c", "1", "--timeout", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            ps.settimeout(5)
            try:
                data, peer = ps.recvfrom(65536)
            except socket.timeout:
                data, peer = b"", None
            if good_reply:
                check(len(data) == 112, "captured authenticated STAMP request is 112 octets (%d)" % len(data))
                check(len(data) >= 112 and hmac16(PASSPHRASE, data[:96], hashlib.sha256) == data[96:112],
                      "python: HMAC-SHA-256(key, octets 0..95)[:16] == octets 96..111")
                check(len(data) >= 112 and struct.unpack_from("!IH", data, 0)[0] == 0
                      and struct.unpack_from("!H", data, 26)[0] == 77 and data[28:96] == bytes(68),
                      "captured request: Seq 0, SSID 77 at octet 26, MBZ 28..95 zero")
            if peer is not None and len(data) >= 112:
                reply = bytearray(112)
                reply[0:4] = struct.pack("!I", 0)
                t = int((time.time() + 2208988800) * 2 ** 32)
                struct.pack_into("!QHH", reply, 16, t, 0x0001, 77)   # T3, ErrEst, SSID
                struct.pack_into("!Q", reply, 32, t)                 # T2
                reply[48:52] = data[0:4]                             # Sender Seq
                reply[64:74] = data[16:26]                           # T1 + ErrEst
                reply[80] = 255
                reply[96:112] = hmac16(PASSPHRASE, bytes(reply[:96]), hashlib.sha256)
                if not good_reply:
                    reply[100] ^= 1
                ps.sendto(bytes(reply), peer)
            try:
                out, err = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            remember(out, err)
            try:
                j = twamp_ctl.parse_reports(out)[0]
            except (ValueError, IndexError):
                j = None
            if good_reply:
                check(p.returncode == 0 and j and j["received"] == 1,
                      "sender accepts a reply sealed in Python (rc %s)" % p.returncode)
            else:
                check(p.returncode == 1 and j and j["received"] == 0,
                      "sender drops a reply whose HMAC is off by one bit (rc %s)" % p.returncode)
        finally:
            ps.close()


def body(twamp):
    keys = key_file("# test keys\nalice %s\n" % SECRET_HEX)
    try:
        protected_modes(twamp, keys)
        refusals(twamp, keys)
        forged(twamp, keys)
        forged_during_controller(twamp, keys)
        stamp(twamp)
        leaks = [t for t in _outputs if SECRET_HEX in t.lower() or PASSPHRASE.decode() in t
                 or OTHER_HEX in t.lower()]
        check(not leaks, "no output or log (%d texts) contains the secret in hex or as the passphrase"
              % len(_outputs))
        for t in leaks:
            print("leak: " + t[:200])
    finally:
        for f in _tmpfiles:
            try:
                os.unlink(f)
            except OSError:
                pass


if __name__ == "__main__":
    itlib.main(body)
