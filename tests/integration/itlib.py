"""Shared helpers for the twamp end-to-end tests: start a responder, run a sender, clean up.

Every wait here is bounded in time, every child is tracked so that `cleanup()` (called from the
tests' finally blocks) can stop it, and only loopback addresses are used.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77  # ctest SKIP_RETURN_CODE

_children = []
_failures = []
_skipped = []


def check(cond, what):
    """Records a failed assertion and goes on, so one run reports every problem at once."""
    if cond:
        print("ok   " + what, flush=True)
    else:
        print("FAIL " + what, flush=True)
        _failures.append(what)
    return cond


def skip(what):
    """Records a section that cannot run here. The rest of the test goes on; if nothing failed,
    the test exits SKIP (ctest reports it "Skipped"), so a section that could not run is never a
    quiet pass."""
    print("SKIP " + what)
    _skipped.append(what)


def finish():
    if _failures:
        print("%d check(s) failed" % len(_failures))
        if _skipped:
            print("%d section(s) skipped: %s" % (len(_skipped), "; ".join(_skipped)))
        return 1
    if _skipped:
        print("every check that ran passed, but %d section(s) could not run: %s" %
              (len(_skipped), "; ".join(_skipped)))
        return SKIP
    print("all checks passed")
    return 0


def wait_for(pattern, read, timeout, proc=None):
    """Polls read() (a log file's text so far) until the regex `pattern` matches; returns the
    match, or None when `timeout` seconds pass or `proc` exits first. This is how the tests wait
    for a program to be ready: on a line it logs, never on a fixed sleep."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        m = rx.search(read())
        if m:
            return m
        if time.monotonic() >= deadline:
            return None
        if proc is not None and proc.poll() is not None:
            m = rx.search(read())  # what it logged before exiting
            return m
        time.sleep(0.01)


def file_reader(path):
    def read():
        with open(path, errors="replace") as f:
            return f.read()
    return read


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A UDP port nobody uses right now (the kernel picks it for a port-0 bind)."""
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_taken(port, family=socket.AF_INET, host="127.0.0.1"):
    """True when a UDP bind to host:port fails now (another process holds the port)."""
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
            return False
        except OSError:
            return True


def udp_port_state(port, timeout=0.2, tries=3):
    """'refused' (ICMP port unreachable), 'reply' or 'silent' for a test packet to `port`.

    A connected socket reports the ICMP error as ECONNREFUSED. The kernel rate-limits ICMP
    host-wide (icmp_msgs_per_sec), so a silent answer is retried a few times."""
    state = "silent"
    for _ in range(tries):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.connect(("127.0.0.1", port))
            u.settimeout(timeout)
            try:
                u.send(bytes(41))
                u.recv(2048)
                return "reply"
            except ConnectionRefusedError:
                return "refused"
            except socket.timeout:
                state = "silent"
        finally:
            u.close()
    return state


def have_ipv6_loopback():
    try:
        free_port(socket.AF_INET6, "::1")
        return True
    except OSError:
        return False


def hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    _children.append(p)
    return p


def stop(p, sig=signal.SIGINT, timeout=5.0):
    """Stops a child politely, then by force; returns its exit status."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
    return p.returncode


def cleanup():
    for p in _children:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


class Responder:
    """`twamp responder` on host:0 with -v; its log goes to a temporary file.

    The responder binds port 0 itself and logs the port the kernel gave it ("Wait to receive
    test packets on [addr]:port" once its socket is bound), so no port is probed and released
    first: nothing can take it in between.
    """

    def __init__(self, twamp, host="127.0.0.1", extra=(), family=socket.AF_INET, timeout=10.0):
        del family  # the host literal decides the family
        self.log = tempfile.NamedTemporaryFile("w+", prefix="twamp-resp-", suffix=".log")
        self.proc = spawn([twamp, "responder", hostport(host, 0), "-v", *extra],
                          stdout=subprocess.DEVNULL, stderr=self.log)
        m = wait_for(r"Wait to receive test packets on \[[^\]]*\]:(\d+)", self.log_text, timeout, self.proc)
        if m is None:
            stop(self.proc)
            raise RuntimeError("responder did not start; log:\n" + self.log_text())
        self.port = int(m.group(1))
        self.addr = hostport(host, self.port)

    def log_text(self):
        with open(self.log.name) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        rc = stop(self.proc)
        self.log.flush()
        return rc


class Capture:
    """tshark capturing `bpf` on lo into the pcap file `path`, synchronised by marker packets.

    A marker is a UDP datagram from this process to a socket of its own (port `marker_port`),
    which the capture filter also takes. tshark prints one line per captured packet (-P -l), so
    a marker on its stdout proves that the capture is live with its filter attached (start())
    and that everything sent before it has been captured (stop()). No fixed sleep either way.
    Decoders should leave out `udp.port == marker_port`.
    """

    def __init__(self, bpf, path, buffer_mb=None):
        self.path = path
        self._sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sink.bind(("127.0.0.1", 0))
        self.marker_port = self._sink.getsockname()[1]
        self._src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._markers = 0
        self.out = tempfile.NamedTemporaryFile("w+", prefix="twamp-capture-", suffix=".txt")
        self.err = tempfile.NamedTemporaryFile("w+", prefix="twamp-capture-", suffix=".err")
        argv = ["tshark", "-i", "lo"]
        if buffer_mb:
            argv += ["-B", str(buffer_mb)]
        argv += ["-f", "(%s) or (udp dst port %d)" % (bpf, self.marker_port), "-w", path,
                 "-P", "-l", "-T", "fields", "-e", "udp.dstport"]
        self.proc = spawn(argv, stdout=self.out, stderr=self.err)

    def _seen(self):
        with open(self.out.name, errors="replace") as f:
            return sum(1 for line in f if line.strip() == str(self.marker_port))

    def _mark(self, timeout):
        """Sends markers (one every 50 ms) until one of them shows up in tshark's output."""
        before = self._seen()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            self._markers += 1
            self._src.sendto(b"twamp-capture-marker", ("127.0.0.1", self.marker_port))
            step = time.monotonic() + 0.05
            while time.monotonic() < step:
                if self._seen() > before:
                    return True
                time.sleep(0.005)
        return False

    def start(self, timeout=15.0):
        """True once the capture demonstrably sees packets; False if tshark cannot capture."""
        return self._mark(timeout)

    def stop(self, timeout=15.0):
        """Waits until a marker sent now is captured, stops tshark; returns (synced, stderr)."""
        synced = self.proc.poll() is None and self._mark(timeout)
        stop(self.proc, timeout=10)
        self._sink.close()
        self._src.close()
        with open(self.err.name, errors="replace") as f:
            return synced, f.read()


def local_any(host):
    """The sender's local address: port 0, so concurrent tests never fight over the default 20000."""
    return "[::1]:0" if ":" in host else "127.0.0.1:0"


def run(argv, timeout=30):
    """Runs a command to completion (bounded); returns CompletedProcess with text output."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def sender(twamp, target, *args, timeout=30):
    """`twamp sender` towards a Responder (or an "addr:port" string) from an ephemeral port."""
    addr = target if isinstance(target, str) else target.addr
    host = addr.rsplit(":", 1)[0].strip("[]")
    return run([twamp, "sender", addr, local_any(host), *args], timeout=timeout)


def sender_json(twamp, target, *args, timeout=30):
    """Like sender() with --json; returns (CompletedProcess, parsed report or None)."""
    r = sender(twamp, target, "--json", *args, timeout=timeout)
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        print("sender output is not JSON:\n" + r.stdout + r.stderr)
        return r, None


def main_capture(body):
    """main() for the tests that read a packet capture. They run once: a capture that loses
    packets is a failure, not a reason to try again (itlib.Capture synchronises on marker
    packets so that a loaded machine does not lose any)."""
    main(body)


def main(body):
    """Runs a test body with cleanup; the body gets the twamp binary path."""
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: %s /path/to/twamp" % sys.argv[0])
        sys.exit(2)
    start = time.monotonic()
    try:
        rc = body(sys.argv[1])
        if rc is None:
            rc = finish()
    except Exception as e:  # an unexpected error is a failure, never a hang or a leak
        import traceback
        traceback.print_exc()
        print("ERROR " + repr(e))
        rc = 1
    finally:
        cleanup()
    print("elapsed %.2f s" % (time.monotonic() - start))
    sys.exit(rc)
