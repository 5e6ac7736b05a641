#!/usr/bin/python3
"""integration_cli_flags: command-line flags checked by their effect, not only by being accepted.

  * sender --tos / --dscp / --ttl: the probes reach a plain UDP socket of this script (no
    reflector) with the DS field and TTL it reads through IP_RECVTOS / IP_RECVTTL;
    --do-not-fragment: the sender's own socket has IP_MTU_DISCOVER = IP_PMTUDISC_DO (read through
    a copy of that descriptor, pidfd_getfd), and IP_PMTUDISC_DONT without the flag;
  * responder --timer S (twampy's session reset timer): a sender port silent for longer than S
    starts again at reflector sequence 0, while a responder without --timer keeps counting;
  * server --allow PREFIX: a client outside every prefix gets a Modes 0 greeting (the controller
    exits 3), a client inside one runs its session;
  * controller --zero-addresses and --session-timeout S: read off the Request-TW-Session on the
    wire (a TCP relay of this script): zero Sender/Receiver Address, and the Timeout field S;
  * -q: the warning a sender prints when its default local port is taken is not printed;
  * --logfile FILE: the responder's log goes to FILE, not to stderr;
  * `twamp reflector` (the alias of responder) reflects.

Usage: test_cli_flags.py /path/to/twamp
"""
import ctypes
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time

import itlib
from itlib import check

import twamp_ctl

IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_TOS = socket.IP_TOS
IP_TTL = socket.IP_TTL
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT, IP_PMTUDISC_DO = 0, 2
SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438  # x86-64 and arm64 (asm-generic) alike


class Peer:
    """A plain UDP socket on 127.0.0.1 that reads the DS field and TTL of what arrives."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.port = self.s.getsockname()[1]
        self.s.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        self.s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)

    def receive(self, timeout=5.0):
        """(payload, tos, ttl, source port) or None."""
        self.s.settimeout(timeout)
        try:
            data, anc, _flags, addr = self.s.recvmsg(65536, socket.CMSG_SPACE(64))
        except socket.timeout:
            return None
        tos = ttl = None
        for level, kind, val in anc:
            if level != socket.IPPROTO_IP:
                continue
            if kind == IP_TOS:
                tos = val[0]
            elif kind == IP_TTL:
                ttl = struct.unpack("i", val[:4])[0]
        return data, tos, ttl, addr[1]

    def close(self):
        self.s.close()


def socket_option_of(pid, port, level, name):
    """getsockopt on process pid's UDP socket bound to `port`, through a copy of its descriptor
    (pidfd_getfd). None when the kernel or the permissions do not allow it."""
    inode = None
    with open("/proc/%d/net/udp" % pid) as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                inode = fields[9]
    if inode is None:
        return None
    fdnum = None
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                fdnum = int(fd)
        except OSError:
            pass
    if fdnum is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        return None
    try:
        dup = libc.syscall(SYS_PIDFD_GETFD, pidfd, fdnum, 0)
        if dup < 0:
            return None
        s = socket.socket(fileno=dup)
        try:
            return s.getsockopt(level, name)
        finally:
            s.close()
    finally:
        os.close(pidfd)


def ip_options(twamp):
    peer = Peer()
    try:
        for args, want_tos, want_ttl in ((["--dscp", "ef"], 0xB8, 255), (["--tos", "0x28"], 0x28, 255),
                                         (["--dscp", "af41", "--ttl", "9"], 0x88, 9), ([], 0, 255)):
            r = itlib.run([twamp, "sender", "127.0.0.1:%d" % peer.port, "127.0.0.1:0", "-c", "3", "-i", "1",
                           "--timeout", "0.2", "--json", *args], timeout=20)
            got = [peer.receive() for _ in range(3)]
            ok = all(g is not None for g in got)
            check(ok and all(g[1] == want_tos and g[2] == want_ttl for g in got),
                  "sender %s: probes arrive with DS field 0x%02x and TTL %d (%s)" %
                  (" ".join(args) or "(defaults)", want_tos, want_ttl, [(g[1], g[2]) for g in got if g]))
            check(r.returncode == 1, "sender %s: no reply from a plain socket, exit 1 (rc %d)" %
                  (" ".join(args) or "(defaults)", r.returncode))
        # Don't-fragment is not visible to a receiver: it is read off the sender's own socket.
        for args, want, what in ((["--do-not-fragment"], IP_PMTUDISC_DO, "IP_PMTUDISC_DO"),
                                 ([], IP_PMTUDISC_DONT, "IP_PMTUDISC_DONT")):
            p = itlib.spawn([twamp, "sender", "127.0.0.1:%d" % peer.port, "127.0.0.1:0", "-c", "400", "-i", "10",
                             "--timeout", "0.2", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            first = peer.receive()  # the sender is running: its socket exists
            val = socket_option_of(p.pid, first[3], socket.IPPROTO_IP, IP_MTU_DISCOVER) if first else None
            itlib.stop(p, signal.SIGKILL)
            while peer.receive(0.05) is not None:  # what it sent before it was stopped
                pass
            if first is not None and val is None:
                itlib.skip("pidfd_getfd is not permitted here: the sender's IP_MTU_DISCOVER (%s)" % what)
                continue
            check(val == want, "sender %s: its socket has IP_MTU_DISCOVER %s (%s)" %
                  (" ".join(args) or "(no --do-not-fragment)", what, val))
    finally:
        peer.close()


def replies(log_text):
    """[(rseq, sseq)] from a sender's -v log."""
    return [(int(a), int(b)) for a, b in re.findall(r"Reply from \S+ \[rseq=(\d+) sseq=(\d+)", log_text)]


def run_from(twamp, resp, port, count):
    """A sender run from 127.0.0.1:port (bound by the sender; retried by the caller if taken)."""
    r = itlib.run([twamp, "sender", resp.addr, "127.0.0.1:%d" % port, "-c", str(count), "-i", "1", "-v"],
                  timeout=20)
    return r.returncode, replies(r.stderr), r.stderr


def timer(twamp):
    TIMER = 2
    with_timer = itlib.Responder(twamp, extra=("--timer", str(TIMER)))
    default = itlib.Responder(twamp)
    try:
        for _attempt in range(3):
            # A fixed local port for the sender (the reflector tells sessions apart by it). The
            # sender binds it itself; if another process took it meanwhile, try another.
            port = itlib.free_port()
            t0 = time.monotonic()
            rc1, a1, e1 = run_from(twamp, with_timer, port, 3)
            rc2, b1, e2 = run_from(twamp, default, port, 3)
            if "cannot bind" in e1 + e2:
                continue
            rc3, a2, _ = run_from(twamp, with_timer, port, 3)
            rc4, b2, _ = run_from(twamp, default, port, 3)
            quick = time.monotonic() - t0
            check(rc1 == rc2 == rc3 == rc4 == 0, "--timer: four runs exit 0")
            check([r for r, _ in a1] == [0, 1, 2], "--timer %d: the first run is numbered 0-2 (%s)" % (TIMER, a1))
            if quick < TIMER:
                # Both runs from the port came within TIMER seconds: one session.
                check([r for r, _ in a2] == [3, 4, 5],
                      "--timer %d: a run %.2f s later continues at 3 (%s)" % (TIMER, quick, a2))
            check([r for r, _ in b2] == [3, 4, 5], "no --timer: the second run continues at 3 (%s)" % b2)
            # Let more than TIMER seconds pass with nothing from the port (a lower bound: the
            # timer is what is tested here, so its time has to pass).
            time.sleep(TIMER + 0.5)
            rc5, a3, _ = run_from(twamp, with_timer, port, 3)
            rc6, b3, _ = run_from(twamp, default, port, 3)
            check(rc5 == rc6 == 0, "--timer: the runs after the pause exit 0")
            check([r for r, _ in a3] == [0, 1, 2],
                  "--timer %d: after %.1f s of silence the port starts again at 0 (%s)" % (TIMER, TIMER + 0.5, a3))
            check([r for r, _ in b3] == [6, 7, 8],
                  "no --timer (REFWAIT 900 s): after the same pause it continues at 6 (%s)" % b3)
            break
        else:
            check(False, "--timer: a free local port for the sender in 3 attempts")
    finally:
        check(with_timer.stop() == 0 and default.stop() == 0, "--timer: responders exit 0")


def allow(twamp):
    for prefix, admitted in (("10.0.0.0/8", False), ("127.0.0.0/8", True)):
        srv = twamp_ctl.Server(twamp, extra=("--allow", "192.0.2.0/24", "--allow", prefix))
        try:
            r, reps = twamp_ctl.controller(twamp, srv, "-c", "5", "-i", "2", reflector_port=0, timeout=20)
            if admitted:
                check(r.returncode == 0 and reps and reps[0]["received"] == 5,
                      "--allow %s: a client from 127.0.0.1 runs its session (rc %d)" % (prefix, r.returncode))
            else:
                check(r.returncode == 3 and not reps,
                      "--allow %s: a client from 127.0.0.1 is refused, controller exits 3 (rc %d, %r)" %
                      (prefix, r.returncode, r.stderr.strip()))
                # The refusal is a Modes 0 greeting (RFC 4656 3.1).
                s = srv.connect()
                g = twamp_ctl.recv_exact(s, twamp_ctl.GREETING)
                s.close()
                check(len(g) == twamp_ctl.GREETING and twamp_ctl.modes_of(g) == 0,
                      "--allow %s: the greeting offers Modes 0" % prefix)
        finally:
            check(srv.stop() == 0, "--allow %s: server exits 0" % prefix)


def request_on_wire(twamp, srv, *args):
    """The controller's Request-TW-Session as sent (it follows the 164-octet Set-Up-Response)."""
    relay = twamp_ctl.TcpRelay(srv.port)
    argv = twamp_ctl.controller_argv(twamp, srv, "-c", "3", "-i", "2", *args, reflector_port=0)
    argv[argv.index("--control-port") + 1] = str(relay.port)
    r = itlib.run(argv, timeout=20)
    relay.join()
    req = relay.client_bytes[164:164 + 112]
    return r, req


def controller_fields(twamp):
    srv = twamp_ctl.Server(twamp)
    try:
        r, req = request_on_wire(twamp, srv)
        check(r.returncode == 0 and len(req) == 112 and req[0] == 5, "controller: a Request-TW-Session on the wire")
        if len(req) == 112:
            check(req[16:20] == socket.inet_aton("127.0.0.1") and req[32:36] == socket.inet_aton("127.0.0.1"),
                  "no --zero-addresses: Sender and Receiver Address 127.0.0.1 (%s, %s)" % (req[16:20].hex(), req[32:36].hex()))
            check(struct.unpack_from("!I", req, 76)[0] == 2, "no --session-timeout: Timeout 2 s (the default)")
        r, req = request_on_wire(twamp, srv, "--zero-addresses", "--session-timeout", "7.5")
        check(r.returncode == 0, "controller --zero-addresses --session-timeout 7.5: exit 0 (rc %d, %r)" %
              (r.returncode, r.stderr.strip()[:200]))
        if len(req) == 112:
            check(req[16:48] == bytes(32), "--zero-addresses: Sender and Receiver Address all zero (%s)" % req[16:48].hex())
            secs, frac = struct.unpack_from("!II", req, 76)
            check(secs == 7 and frac == 1 << 31, "--session-timeout 7.5: Timeout 7 s + 2^31/2^32 (%d, %d)" % (secs, frac))
        else:
            check(False, "--zero-addresses: a Request-TW-Session on the wire (%d octets)" % len(req))
    finally:
        check(srv.stop() == 0, "controller flags: server exits 0")


def quiet(twamp):
    # The sender's default local port is 20000; taken, it warns and sends from another port,
    # unless -q. The port is held here (or by someone else: taken either way).
    hold = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        hold.bind(("0.0.0.0", 20000))
    except OSError:
        pass  # already taken by another process: just as good
    resp = itlib.Responder(twamp)
    try:
        r = itlib.run([twamp, "sender", resp.addr, "-c", "3", "-i", "1"], timeout=20)
        check(r.returncode == 0 and "local port 20000 is in use" in r.stderr,
              "default: a taken default port is reported on stderr (rc %d, %r)" % (r.returncode, r.stderr.strip()))
        r = itlib.run([twamp, "sender", resp.addr, "-c", "3", "-i", "1", "-q"], timeout=20)
        check(r.returncode == 0 and r.stderr == "", "-q: nothing on stderr (rc %d, %r)" % (r.returncode, r.stderr))
        check(r.stdout.strip() != "", "-q: the report is still printed on stdout")
    finally:
        hold.close()
        check(resp.stop() == 0, "-q: responder exits 0")


def logfile_and_alias(twamp):
    d = tempfile.mkdtemp(prefix="twamp-flags-")
    path = os.path.join(d, "reflector.log")
    err = tempfile.NamedTemporaryFile("w+", prefix="twamp-flags-", suffix=".err")
    # `reflector` is the alias of `responder`.
    p = itlib.spawn([twamp, "reflector", "127.0.0.1:0", "-v", "--logfile", path],
                    stdout=subprocess.DEVNULL, stderr=err)
    try:
        m = itlib.wait_for(r"Wait to receive test packets on \[[^\]]*\]:(\d+)",
                           lambda: open(path).read() if os.path.exists(path) else "", 10.0, p)
        check(m is not None, "--logfile: the log line is in the file")
        if m:
            r, j = itlib.sender_json(twamp, "127.0.0.1:%s" % m.group(1), "-c", "5", "-i", "1")
            check(r.returncode == 0 and j and j["received"] == 5, "`twamp reflector` reflects: 5 of 5")
    finally:
        rc = itlib.stop(p)
        check(rc == 0, "`twamp reflector` exits 0 on SIGINT")
        with open(path) as f:
            text = f.read()
        check("reflector stopped: received 5" in text, "--logfile: the stop line and counters are in the file")
        check(itlib.file_reader(err.name)() == "", "--logfile: nothing on stderr")
        os.unlink(path)
        os.rmdir(d)


def body(twamp):
    ip_options(twamp)
    timer(twamp)
    allow(twamp)
    controller_fields(twamp)
    quiet(twamp)
    logfile_and_alias(twamp)


if __name__ == "__main__":
    itlib.main(body)
