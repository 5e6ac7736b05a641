"""Helpers for the full-TWAMP end-to-end tests (test_twamp_*.py): a `twamp server` on an
ephemeral loopback port, `twamp controller` runs with their (concatenated) JSON reports, and raw
TWAMP-Control messages for hand-driven clients.

Builds on itlib: every child is spawned through itlib.spawn (so itlib.cleanup() kills it), every
wait is bounded, and only loopback addresses are used.
"""
import json
import re
import resource
import selectors
import socket
import struct
import subprocess
import tempfile
import threading
import time

import itlib

GREETING = 64
SETUP_RESPONSE = 164
SERVER_START = 48
REQUEST = 112
ACCEPT_SESSION = 48
START_SESSIONS = 32
START_ACK = 32
STOP_SESSIONS = 32


class Server:
    """`twamp server host:0 -v ...`; the port is read from its "listening on" log line."""

    def __init__(self, twamp, host="127.0.0.1", extra=(), timeout=5.0, nofile=None):
        """`nofile`: RLIMIT_NOFILE of the server process only (for the exhaustion tests)."""
        self.host = host
        self.log = tempfile.NamedTemporaryFile("w+", prefix="twamp-server-", suffix=".log")
        kw = {}
        if nofile is not None:
            kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = itlib.spawn([twamp, "server", itlib.hostport(host, 0), "-v", *extra],
                                stdout=subprocess.DEVNULL, stderr=self.log, **kw)
        deadline = time.monotonic() + timeout
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            m = re.search(r"TWAMP server listening on \[[^\]]*\]:(\d+)", self.log_text())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        if self.port is None:
            itlib.stop(self.proc)
            raise RuntimeError("twamp server did not start; log:\n" + self.log_text())

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        rc = itlib.stop(self.proc)
        self.log.flush()
        return rc

    def connect(self, timeout=5.0):
        """A raw TCP connection to the control port."""
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((self.host, self.port))
        return s

    def fd_count(self):
        import os
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def socket_count(self):
        """Sockets the server holds (connections, reflector ports, the listener). Other
        descriptors are left out: a sanitizer runtime opens a pipe of its own lazily."""
        import os
        n = 0
        for fd in os.listdir("/proc/%d/fd" % self.pid):
            try:
                n += os.readlink("/proc/%d/fd/%s" % (self.pid, fd)).startswith("socket:")
            except OSError:
                pass
        return n

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1


def parse_reports(text):
    """The controller prints one pretty-printed JSON object per session, one after another."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


def controller_argv(twamp, server, *args, reflector_port=None):
    host = server.host
    remote = host if reflector_port is None else itlib.hostport(host, reflector_port)
    return [twamp, "controller", remote, itlib.local_any(host), "--control-port", str(server.port),
            "--json", *args]


def controller(twamp, server, *args, reflector_port=None, timeout=30):
    """Runs `twamp controller ... --json`; returns (CompletedProcess, [reports])."""
    r = itlib.run(controller_argv(twamp, server, *args, reflector_port=reflector_port), timeout=timeout)
    try:
        reports = parse_reports(r.stdout)
    except ValueError:
        print("controller output is not JSON:\n" + r.stdout + r.stderr)
        reports = []
    return r, reports


# ---- raw TWAMP-Control messages (RFC 4656 / RFC 5357 layouts)

def setup_response(mode=1):
    return struct.pack("!I", mode) + bytes(SETUP_RESPONSE - 4)


def request_tw_session(sender_port, receiver_port=0, ipvn=4, sender_addr=b"", receiver_addr=b"",
                       padding=27, timeout_s=1, type_p=0, command=5, conf=(0, 0), slots=0, packets=0,
                       mbz_fill=0):
    """Request-TW-Session; zero addresses mean "the control connection's"."""
    m = bytearray(REQUEST)
    m[0] = command
    m[1] = ipvn | (mbz_fill & 0xF0)  # upper nibble of octet 1 is MBZ
    m[2], m[3] = conf
    struct.pack_into("!IIHH", m, 4, slots, packets, sender_port, receiver_port)
    m[16:16 + len(sender_addr)] = sender_addr
    m[32:32 + len(receiver_addr)] = receiver_addr
    struct.pack_into("!I", m, 64, padding)
    struct.pack_into("!II", m, 76, timeout_s, 0)
    struct.pack_into("!I", m, 84, type_p)
    if mbz_fill:
        m[92:96] = bytes([mbz_fill]) * 4  # MBZ octets 92..95
    return bytes(m)


def start_sessions(mbz_fill=0):
    m = bytearray(START_SESSIONS)
    m[0] = 2
    if mbz_fill:
        m[1:16] = bytes([mbz_fill]) * 15
    return bytes(m)


def stop_sessions(count, accept=0):
    m = bytearray(STOP_SESSIONS)
    m[0] = 3
    m[1] = accept
    struct.pack_into("!I", m, 4, count)
    return bytes(m)


def recv_exact(s, n, timeout=5.0):
    """Reads exactly n octets (or fewer if the peer closes / the time runs out)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(buf))
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def rst_close(s):
    """Closes with an RST instead of a FIN (SO_LINGER on, linger time 0)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def closed_by_peer(s, timeout=5.0, answers=False):
    """True when the peer closes (EOF or reset) within `timeout`. Anything it sends first fails the
    wait, unless `answers` (a peer that may answer before it closes: read and dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not chunk:
            return True
        if answers:
            continue
        print("  unexpected %d octets after the expected answer: %s" % (len(chunk), chunk[:48].hex()))
        return False


def greet_and_setup(srv, mode=1):
    """Connects, reads the greeting and completes the set-up; returns (socket, greeting, server_start)."""
    s = srv.connect()
    g = recv_exact(s, GREETING)
    s.sendall(setup_response(mode))
    ss = recv_exact(s, SERVER_START)
    return s, g, ss


def modes_of(greeting):
    return struct.unpack_from("!I", greeting, 12)[0]


class TcpRelay:
    """A TCP relay in a thread between a client and 127.0.0.1:`target`, recording what the
    client sends (`client_bytes`); it serves one connection for at most 20 s. A subclass may
    rewrite the two streams (`rewrite`) and serve sockets of its own (`extra_sockets`, read in
    `on_extra`, closed with the relay); it sets them up before calling this __init__, which
    starts the thread."""

    def __init__(self, target):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.ls.settimeout(10)
        self.port = self.ls.getsockname()[1]
        self.target = target
        self.client_bytes = b""
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def rewrite(self, data, from_client):
        return data

    def extra_sockets(self):
        return []

    def on_extra(self, sock):
        pass

    def join(self):
        self.t.join(25)

    def run(self):
        try:
            c, _ = self.ls.accept()
        except OSError:
            return
        u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        sel = selectors.DefaultSelector()
        sel.register(c, selectors.EVENT_READ, u)
        sel.register(u, selectors.EVENT_READ, c)
        for x in self.extra_sockets():
            sel.register(x, selectors.EVENT_READ, None)
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                done = False
                for key, _ in sel.select(0.2):
                    if key.data is None:
                        self.on_extra(key.fileobj)
                        continue
                    try:
                        data = key.fileobj.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        done = True
                        break
                    if key.fileobj is c:
                        self.client_bytes += data
                    key.data.sendall(self.rewrite(data, key.fileobj is c))
                if done:
                    break
        finally:
            sel.close()
            c.close()
            u.close()
            self.ls.close()
            for x in self.extra_sockets():
                x.close()
