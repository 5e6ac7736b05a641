#!/usr/bin/python3
"""abuse_server: one `twamp server --servwait 2 --refwait 2 --max-connections 300 --max-sessions 4`
under hostile clients while a legitimate `twamp controller` runs its session through all of it:

  * 500 rapid connect/close (half of them closed with an RST: SO_LINGER 0);
  * 20 garbage streams (random octets)                       -> closed by the server;
  * 20 clients dribbling part of a Set-Up-Response one octet at a time, then going quiet
                                                               -> closed by SERVWAIT;
  * 10 clients requesting 4 sessions (the limit) + a 5th, never starting them
                                                               -> 5th: Accept 4; closed by SERVWAIT,
                                                                  their UDP ports freed;
  * 5 clients that start a session, send 3 test packets and vanish (TCP left open)
                                                               -> "nothing received for REFWAIT" in
                                                                  the log, the port stops answering,
                                                                  then SERVWAIT closes the connection
                                                                  and the port is closed (ECONNREFUSED);
  * 250 idle connections plus 80 more than --max-connections allows
                                                               -> the excess gets a Modes 0 greeting;
                                                                  a controller started at the limit is
                                                                  refused (exit 3), one started after
                                                                  SERVWAIT emptied the server succeeds.

The controller started before the abuse completes with no loss; afterwards the server's open
descriptors are back to their baseline and its VmRSS is within 64 MiB of it (figures printed).

Then a server with RLIMIT_NOFILE 32 is given 40 connections: those beyond its descriptors wait
in the listen queue while the server stays idle (it used to retry accept() in a busy loop on
EMFILE), logs "accept failed", and greets them as soon as descriptors are free again.

Also: a client that sends one octet every second is not closed before SERVWAIT (whether it is
closed at all is printed: that is the server's policy on unfinished messages).

Usage: test_abuse_server.py /path/to/twamp
"""
import os
import random
import re
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import itlib  # noqa: E402
from itlib import check, udp_port_state  # noqa: E402

import twamp_ctl as tc  # noqa: E402
from twamp_ctl import recv_exact, closed_by_peer, rst_close  # noqa: E402

SERVWAIT = 2
REFWAIT = 2
# A timer is checked from below by its effect and from above only generously: a loaded machine
# may run the server's handlers seconds late, which is no fault of the timer.
SLACK = 8
MAX_CONN = 300
MAX_SESS = 4
GOOD_COUNT = 700
GOOD_INTERVAL_MS = 15


def test_packet(seq, size=41):
    now = time.time() + 2208988800
    sec = int(now)
    frac = int((now - sec) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack("!IIIH", seq, sec, frac, 0x0001) + bytes(size - 14)


def wait_closed_all(socks, timeout):
    """How many of `socks` the server closed (EOF or reset) within `timeout` in total."""
    deadline = time.monotonic() + timeout
    closed = 0
    for s in socks:
        if closed_by_peer(s, max(0.05, deadline - time.monotonic())):
            closed += 1
    return closed


def rapid_connect_close(srv, n=500):
    t0 = time.monotonic()
    errors = 0
    for i in range(n):
        try:
            s = srv.connect(timeout=2)
            if i % 2:
                rst_close(s)
            else:
                s.close()
        except OSError:
            errors += 1
    dt = time.monotonic() - t0
    print("  %d connect/close in %.2f s (%d connect errors)" % (n, dt, errors))
    check(errors == 0, "rapid: %d connect/close (half RST) without a connect error (%d)" % (n, errors))


def garbage_streams(srv, n=20):
    rnd = random.Random(6)
    socks = []
    for _ in range(n):
        s = srv.connect()
        recv_exact(s, tc.GREETING, timeout=2)
        try:
            s.sendall(bytes(rnd.getrandbits(8) for _ in range(2048)))
        except OSError:
            pass
        socks.append(s)
    # A random Set-Up-Response names a mode we do not offer: Server-Start with Accept != 0, then
    # the server closes (RFC 4656 §3.1). Read whatever comes until EOF or reset.
    deadline = time.monotonic() + 4
    closed, answers = 0, set()
    for s in socks:
        got = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            except OSError:
                closed += 1
                break
            if not chunk:
                closed += 1
                break
            got += chunk
        answers.add("Server-Start Accept %d" % got[15] if len(got) == tc.SERVER_START else "%d octets" % len(got))
    check(closed == n, "garbage: %d of %d garbage streams closed by the server within 4 s" % (closed, n))
    check(all(a.startswith("Server-Start Accept") and not a.endswith(" 0") or a == "0 octets" for a in answers),
          "garbage: at most a refusing Server-Start came back (%s)" % sorted(answers))
    for s in socks:
        s.close()


def dribblers(srv, n=20, octets=100):
    """Part of a Set-Up-Response, one octet at a time round-robin, then silence."""
    socks = []
    for _ in range(n):
        s = srv.connect()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        recv_exact(s, tc.GREETING, timeout=2)
        socks.append(s)
    msg = tc.setup_response()[:octets]
    for b in msg:
        for s in socks:
            s.send(bytes([b]))
        time.sleep(0.003)
    t0 = time.monotonic()
    return socks, t0


def never_started(srv, n=10):
    """n clients request MAX_SESS sessions and one more, and never start them."""
    held, ports, ok_accepts, fifth = [], [], 0, []
    for _ in range(n):
        s = tc.greet_and_setup(srv)[0]
        for k in range(MAX_SESS + 1):
            s.sendall(tc.request_tw_session(sender_port=40000 + k))
            a = recv_exact(s, tc.ACCEPT_SESSION, timeout=3)
            if len(a) != 48:
                break
            if k < MAX_SESS:
                ok_accepts += a[0] == 0
                ports.append(int.from_bytes(a[2:4], "big"))
            else:
                fifth.append(a[0])
        held.append(s)
    check(ok_accepts == n * MAX_SESS, "never started: %d of %d requests within the limit accepted" %
          (ok_accepts, n * MAX_SESS))
    check(fifth == [4] * n, "never started: request %d on each connection refused with Accept 4 (%s)" %
          (MAX_SESS + 1, sorted(set(fifth))))
    return held, ports, time.monotonic()


def vanishers(srv, n=5):
    """n clients start one session each, get 3 replies, then go silent with TCP left open."""
    held, ports, replies = [], [], 0
    for _ in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.settimeout(1)
        s = tc.greet_and_setup(srv)[0]
        s.sendall(tc.request_tw_session(sender_port=u.getsockname()[1], timeout_s=1))
        a = recv_exact(s, tc.ACCEPT_SESSION, timeout=3)
        port = int.from_bytes(a[2:4], "big") if len(a) == 48 else 0
        s.sendall(tc.start_sessions())
        recv_exact(s, tc.START_ACK, timeout=3)
        for seq in range(3):
            u.sendto(test_packet(seq), ("127.0.0.1", port))
            try:
                u.recvfrom(2048)
                replies += 1
            except socket.timeout:
                pass
        u.close()  # the sender vanishes
        held.append(s)
        ports.append(port)
    check(replies == 3 * n, "vanish: %d sessions started and reflected %d of %d packets" % (n, replies, 3 * n))
    return held, ports, time.monotonic()


def idle_and_over_limit(srv, idle=250, extra=80):
    held, admitted, refused, other = [], 0, 0, 0
    for i in range(idle + extra):
        s = srv.connect()
        g = recv_exact(s, tc.GREETING, timeout=3)
        if len(g) == 64 and tc.modes_of(g) != 0:
            admitted += 1
            held.append(s)
        elif len(g) == 64:
            refused += 1
            s.close()
        else:
            other += 1
            s.close()
    print("  %d connections: %d admitted, %d refused with Modes 0, %d without a greeting" %
          (idle + extra, admitted, refused, other))
    return held, admitted, refused, other


def slowloris_probe(srv, seconds=SERVWAIT * 2 + 1):
    """A connection that sends one octet per second: (still open at the end, seconds it ran)."""
    t0 = time.monotonic()  # before the connect: dt is at least the server's time for the connection
    s = srv.connect()
    recv_exact(s, tc.GREETING, timeout=2)
    msg = tc.setup_response()
    alive = True
    i = 0
    while time.monotonic() - t0 < seconds and i < len(msg):
        try:
            s.send(msg[i:i + 1])
        except OSError:
            alive = False
            break
        i += 1
        s.settimeout(1.0)
        try:
            if s.recv(1) == b"":
                alive = False
                break
        except socket.timeout:
            pass
        except OSError:
            alive = False
            break
    s.close()
    return alive, time.monotonic() - t0


class LimitedServer(tc.Server):
    """tc.Server with RLIMIT_NOFILE lowered for the server process only."""

    def __init__(self, twamp, nofile, extra=()):
        super().__init__(twamp, extra=extra, nofile=nofile)

    def cpu_s(self):
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def greeting_modes(s, timeout):
    """The Modes word of the server's greeting, or None when no whole greeting came."""
    s.settimeout(timeout)
    try:
        g = recv_exact(s, tc.GREETING, timeout)
    except OSError:
        return None
    return tc.modes_of(g) if len(g) == tc.GREETING else None


def open_fds(pid):
    """What a process's descriptors point at (sockets, pipes, files), for a failure message."""
    out = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            out.append("%s->%s" % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
        except OSError:
            pass
    return " ".join(out)


def socket_count(pid):
    """Sockets the process holds (what clients and sessions cost). Other descriptors are left
    out: a sanitizer runtime opens a pipe of its own lazily, at a moment that depends on load."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def fd_exhaustion(twamp, nofile=32, conns=40):
    """More connections than descriptors: the server keeps its budget and a reserve descriptor,
    so every client gets an answer (Modes 0 for those over the budget), accept() never fails and
    the server never spins."""
    srv = LimitedServer(twamp, nofile, extra=["--servwait", "30"])
    socks = []
    try:
        sock0 = socket_count(srv.pid)
        for _ in range(conns):
            socks.append(srv.connect())
        modes = [greeting_modes(s, 3.0) for s in socks]
        n_greeted = sum(m is not None for m in modes)
        n_refused = sum(m == 0 for m in modes)
        print("  RLIMIT_NOFILE %d: %d of %d connections greeted, %d with Modes 0; server holds %d fds" %
              (nofile, n_greeted, conns, n_refused, srv.fd_count()))
        check(n_greeted == conns, "fd exhaustion: every connection gets a greeting (%d of %d)" % (n_greeted, conns))
        check(0 < n_refused < conns, "fd exhaustion: those over the descriptor budget get Modes 0 (%d)" % n_refused)
        check("accept failed" not in srv.log_text(), "fd exhaustion: accept() never fails (no EMFILE)")
        c0 = srv.cpu_s()
        time.sleep(1.0)
        cpu = srv.cpu_s() - c0
        print("  server CPU with every descriptor in use: %.2f s in 1 s" % cpu)
        check(cpu < 0.25, "fd exhaustion: the server does not spin (%.2f s CPU in 1 s)" % cpu)
        for s in socks:
            s.close()
        socks = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and socket_count(srv.pid) != sock0:
            time.sleep(0.05)
        r, rep = tc.controller(twamp, srv, "-c", "20", "-i", "2", reflector_port=0, timeout=15)
        check(r.returncode == 0 and rep and rep[0]["received"] == 20,
              "fd exhaustion: a controller afterwards gets 20 of 20 (rc %d)" % r.returncode)
        # The controller has exited; the server closes its side when it reads the EOF and frees
        # the session's socket after Stop-Sessions + Timeout, which a loaded machine (an ASan
        # build beside other tests) may run later: wait for it (bounded), then compare, naming
        # what is still open if it is not.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and socket_count(srv.pid) != sock0:
            time.sleep(0.05)
        left = socket_count(srv.pid)
        if left != sock0:
            print("  server fds now: %s" % open_fds(srv.pid))
        check(left == sock0, "fd exhaustion: sockets back to %d (%d)" % (sock0, left))
    finally:
        for s in socks:
            s.close()
        check(srv.stop() == 0, "fd exhaustion: server exits 0")


def body(twamp):
    # A reflector port per session: the checks below probe each session's port after it ended
    # (shared ports are covered by twamp_shared_ports).
    srv = tc.Server(twamp, extra=["--sessions-per-port", "1", "--servwait", str(SERVWAIT), "--refwait", str(REFWAIT),
                                  "--max-connections", str(MAX_CONN), "--max-sessions", str(MAX_SESS)])
    good = None
    out = tempfile.TemporaryFile("w+")
    err = tempfile.TemporaryFile("w+")
    sockets = []
    try:
        fd0, rss0 = srv.fd_count(), srv.rss_kb()
        print("server baseline: %d fds, VmRSS %d kB" % (fd0, rss0))
        peak_fd, peak_rss = fd0, rss0

        def sample():
            nonlocal peak_fd, peak_rss
            peak_fd = max(peak_fd, srv.fd_count())
            peak_rss = max(peak_rss, srv.rss_kb())

        # The legitimate controller: connected and started before the abuse begins.
        good = itlib.spawn(tc.controller_argv(twamp, srv, "-c", str(GOOD_COUNT), "-i", str(GOOD_INTERVAL_MS),
                                              "--timeout", "2", reflector_port=0), stdout=out, stderr=err)
        check(itlib.wait_for("session accepted", srv.log_text, 10.0, srv.proc) is not None,
              "the legitimate controller's session is accepted before the abuse")
        t_abuse = time.monotonic()

        rapid_connect_close(srv)
        sample()
        garbage_streams(srv)
        sample()
        drib, t_drib = dribblers(srv)
        sockets += drib
        ns, ns_ports, t_ns = never_started(srv)
        sockets += ns
        van, van_ports, t_van = vanishers(srv)
        sockets += van
        sample()

        # Dribblers and never-started clients are idle now: SERVWAIT closes them.
        closed = wait_closed_all(drib, SERVWAIT + SLACK)
        dt = time.monotonic() - t_drib
        check(closed == len(drib), "dribble: %d of %d half-sent Set-Up-Responses closed by SERVWAIT (all within %.1f s)"
              % (closed, len(drib), dt))
        closed = wait_closed_all(ns, SERVWAIT + SLACK - (time.monotonic() - t_ns))
        check(closed == len(ns), "never started: %d of %d connections closed by SERVWAIT" % (closed, len(ns)))
        states = [udp_port_state(p) for p in ns_ports[:8]]
        check(all(st == "refused" for st in states),
              "never started: their reflector ports are closed (ICMP port unreachable): %s" % states)

        # Vanished senders: REFWAIT ends the sessions (port silent), then SERVWAIT resumes and
        # closes the connection, which closes the port.
        deadline = t_van + REFWAIT + SLACK
        while time.monotonic() < deadline and srv.log_text().count("nothing received for REFWAIT") < len(van):
            time.sleep(0.05)
        n_refwait = srv.log_text().count("nothing received for REFWAIT")
        check(n_refwait >= len(van), "vanish: log says 'nothing received for REFWAIT' for all %d sessions (%d)" %
              (len(van), n_refwait))
        states = [udp_port_state(p, tries=1) for p in van_ports[:2]]
        check("reply" not in states, "vanish: after REFWAIT their ports reflect nothing: %s" % states)
        sample()
        closed = wait_closed_all(van, SERVWAIT + SLACK)
        check(closed == len(van), "vanish: %d of %d connections closed by SERVWAIT after REFWAIT" % (closed, len(van)))
        states = [udp_port_state(p) for p in van_ports]
        check(all(st == "refused" for st in states),
              "vanish: the reflector ports are freed (ICMP port unreachable): %s" % states)

        # Connections beyond --max-connections.
        held, admitted, refused, other = idle_and_over_limit(srv)
        sockets += held
        sample()
        check(refused > 0 and other == 0, "over limit: the excess connections get a Modes 0 greeting (%d refused)" % refused)
        check(len(held) + 1 <= MAX_CONN, "over limit: at most %d connections admitted (%d idle + the controller)" %
              (MAX_CONN, len(held)))
        r, rep = tc.controller(twamp, srv, "-c", "5", "-i", "10", reflector_port=0, timeout=15)
        check(r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1,
              "over limit: a controller at the limit is refused: exit 3, one line (rc %d): %r" %
              (r.returncode, r.stderr.strip()))
        print("abuse took %.2f s" % (time.monotonic() - t_abuse))

        # The legitimate controller.
        try:
            good.wait(GOOD_COUNT * GOOD_INTERVAL_MS / 1000.0 + 15)
        except subprocess.TimeoutExpired:
            pass
        check(good.returncode == 0, "legit controller (started before the abuse) exits 0 (%s)" % good.returncode)
        out.seek(0)
        err.seek(0)
        try:
            reps = tc.parse_reports(out.read())
        except ValueError:
            reps = []
        rep = reps[0] if reps else {}
        check(rep.get("received") == GOOD_COUNT and rep.get("lost") == 0,
              "legit controller: %s of %d replies, lost %s (stderr %r)" %
              (rep.get("received"), GOOD_COUNT, rep.get("lost"), err.read().strip()[:200]))

        # The idle connections go after SERVWAIT; then a new controller is admitted and clean.
        closed = wait_closed_all(held, SERVWAIT + SLACK + 1)
        check(closed == len(held), "idle: %d of %d idle connections closed by SERVWAIT" % (closed, len(held)))
        r, rep = tc.controller(twamp, srv, "-c", "100", "-i", "2", reflector_port=0, timeout=15)
        check(r.returncode == 0 and rep and rep[0]["received"] == 100 and rep[0]["lost"] == 0,
              "after the abuse: a new controller gets 100 of 100 replies (rc %d, %s)" %
              (r.returncode, rep[0]["received"] if rep else r.stderr.strip()))

        for s in sockets:
            s.close()
        sockets = []
        # Back to the baseline.
        fd1 = rss1 = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            fd1, rss1 = srv.fd_count(), srv.rss_kb()
            if fd1 == fd0:
                break
            time.sleep(0.1)
        print("server fds:   baseline %d, peak %d, after %d" % (fd0, peak_fd, fd1))
        print("server VmRSS: baseline %d kB, peak %d kB, after %d kB (+%d kB)" % (rss0, peak_rss, rss1, rss1 - rss0))
        check(fd1 == fd0, "the server's fd count is back to its baseline %d (%d)" % (fd0, fd1))
        check(rss1 < rss0 + 64 * 1024, "the server's VmRSS is within 64 MiB of its baseline (+%d kB)" % (rss1 - rss0))

        # A client sending one octet a second: whether SERVWAIT counts from its last octet (kept
        # open) or from the start of the unfinished message (closed) is the server's policy; what
        # must hold either way is that it is not dropped before SERVWAIT.
        alive, dt = slowloris_probe(srv)
        print("  slowloris: a client sending one octet per second is %s after %.1f s (SERVWAIT %d s)" %
              ("still connected" if alive else "closed", dt, SERVWAIT))
        check(alive or dt >= SERVWAIT, "slowloris: not closed before SERVWAIT (%s after %.2f s)" %
              ("open" if alive else "closed", dt))

        check(srv.alive(), "server still running")
        log = srv.log_text()
        print("  server log: %d 'SERVWAIT expired', %d 'Modes 0', %d REFWAIT" %
              (log.count("SERVWAIT expired"), log.count("Modes 0"), log.count("nothing received for REFWAIT")))
    finally:
        for s in sockets:
            s.close()
        out.close()
        err.close()
        check(srv.stop() == 0, "server exits 0 on SIGINT")
    m = re.search(r"server stopped: (\d+) connections \((\d+) refused\)", srv.log_text())
    check(m and int(m.group(1)) >= 500 + 20 + 20 + 10 + 5 + 330,
          "the server accepted every connection made (%s)" % (m.group(0) if m else None))
    fd_exhaustion(twamp)


if __name__ == "__main__":
    itlib.main(body)
