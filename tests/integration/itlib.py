"""Shared helpers for the twamp end-to-end tests: start a responder, run a sender, clean up.

Every wait here is bounded in time, every child is tracked so that `cleanup()` (called from the
tests' finally blocks) can stop it, and only loopback addresses are used.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77  # ctest SKIP_RETURN_CODE

_children = []
_failures = []


def check(cond, what):
    """Records a failed assertion and goes on, so one run reports every problem at once."""
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        _failures.append(what)
    return cond


def finish():
    if _failures:
        print("%d check(s) failed" % len(_failures))
        return 1
    print("all checks passed")
    return 0


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A UDP port nobody uses right now (the kernel picks it for a port-0 bind)."""
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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
    """`twamp responder` on host:port with -v; its log goes to a temporary file.

    The port comes from a port-0 bind, which can race with another process taking it before
    the responder binds; so a responder that exits right away is retried on a new port.
    """

    def __init__(self, twamp, host="127.0.0.1", extra=(), family=socket.AF_INET):
        for _attempt in range(3):
            self.port = free_port(family, host)
            self.addr = hostport(host, self.port)
            self.log = tempfile.NamedTemporaryFile("w+", prefix="twamp-resp-", suffix=".log")
            self.proc = spawn([twamp, "responder", self.addr, "-v", *extra],
                              stdout=subprocess.DEVNULL, stderr=self.log)
            if self._wait_ready(5.0):
                return
            stop(self.proc)
        raise RuntimeError("responder did not start; log:\n" + self.log_text())

    def _wait_ready(self, timeout):
        # The responder logs "Wait to receive test packets on ..." once its socket is bound.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Wait to receive test packets" in self.log_text():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def log_text(self):
        with open(self.log.name) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        rc = stop(self.proc)
        self.log.flush()
        return rc


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
    """main() for tests that read a packet capture: the kernel may drop captured packets when
    the machine is loaded, so a failed run is repeated once; the second run decides."""
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: %s /path/to/twamp" % sys.argv[0])
        sys.exit(2)
    rc = 1
    for attempt in (1, 2):
        _failures.clear()
        try:
            rc = body(sys.argv[1])
            if rc is None:
                rc = finish()
        except Exception as e:
            import traceback
            traceback.print_exc()
            print("ERROR " + repr(e))
            rc = 1
        finally:
            cleanup()
        if rc in (0, SKIP):
            break
        if attempt == 1:
            print("first run failed; repeating once (a capture can lose packets under load)")
    sys.exit(rc)


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
