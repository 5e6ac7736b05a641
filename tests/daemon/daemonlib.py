"""Helpers for the `twamp daemon` tests: free ports, config files, a daemon child with its log,
and /metrics scraping and parsing. Every wait is bounded; only loopback addresses are used."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

# The bookkeeping every end-to-end test shares (checks, children, the exit status) is itlib's.
from itlib import SKIP, _children, check, cleanup, finish  # noqa: E402,F401


def free_port(kind=socket.SOCK_DGRAM, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Daemon:
    """`twamp daemon --config FILE -v`; stderr goes to a log file the test reads."""

    def __init__(self, twamp, config, workdir, name="d", env=None):
        self.twamp = twamp
        self.workdir = workdir
        self.config_path = os.path.join(workdir, name + ".json")
        self.log_path = os.path.join(workdir, name + ".log")
        self.write_config(config)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([twamp, "daemon", "--config", self.config_path, "-v"],
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        _children.append(self.proc)

    def write_config(self, config):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f, indent=2)
        os.replace(tmp, self.config_path)

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10.0, count=1):
        def seen():
            if self.proc.poll() is not None:
                return "exited"
            return len(re.findall(pattern, self.log_text())) >= count
        r = wait_until(seen, timeout)
        return r is True

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return None
        return self.proc.returncode


def scrape(hostport, timeout=5.0):
    with urllib.request.urlopen("http://%s/metrics" % hostport, timeout=timeout) as r:
        return r.read().decode()


_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} from the text exposition format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(metrics, name, **labels):
    """The sum of every series of `name` whose labels include `labels`; None when none."""
    want = set(labels.items())
    vals = [v for (n, l), v in metrics.items() if n == name and want <= set(l)]
    return sum(vals) if vals else None


def results(path):
    """The results file as a list of objects; raises on a line that is not JSON."""
    with open(path) as f:
        text = f.read()
    lines = text.split("\n")
    assert lines[-1] == "", "the results file does not end with a newline"
    return [json.loads(l) for l in lines[:-1]]
