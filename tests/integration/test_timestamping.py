#!/usr/bin/python3
"""integration_timestamping: kernel send timestamps end to end on loopback. `twamp sender
--timestamping software` takes T1 for its delays from the kernel (Linux stamps loopback sends in
software) and its JSON says so per timestamp; `user` takes none; `auto` settles on software here
(loopback has no hardware clock) and says why; `hardware` cannot be met here and exits 3 naming
the flag; a bad value exits 2 naming the flag, on the sender and the responder. The JSON stays
valid against docs/report.schema.json. No assertion on how long anything takes.

Usage: test_timestamping.py /path/to/twamp
"""
import json
import os
import subprocess
import sys

import itlib
from itlib import check

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_outputs import SCHEMA_PATH, validate  # noqa: E402  (the schema subset checker)

COUNT = 200


def sender(twamp, addr, *extra, timeout=60):
    return subprocess.run([twamp, "sender", addr, "127.0.0.1:0", "-c", str(COUNT), "-i", "1",
                           "-q", *extra], capture_output=True, text=True, timeout=timeout)


def main(twamp):
    with open(SCHEMA_PATH) as f:
        schema = json.load(f)
    resp = itlib.Responder(twamp, extra=["--stamp"])
    try:
        # software: every sample's T1 is the kernel's, one stamp per probe.
        r = sender(twamp, resp.addr, "--stamp", "--tlv", "timestamp-info", "--timestamping",
                   "software", "--json")
        check(r.returncode == 0, "software: exit 0 (%d: %s)" % (r.returncode, r.stderr.strip()))
        doc = json.loads(r.stdout)
        errs = validate(schema, schema, doc)
        check(not errs, "software: JSON valid against the schema %s" % errs[:3])
        ts = doc["timestamps"]
        src = ts["sources"]
        recv = doc["received"]
        check(recv == COUNT, "software: every probe answered (%d)" % recv)
        check(ts["requested"] == "software" and ts["t1_enabled"] == "software",
              "software: asked and enabled %s/%s" % (ts["requested"], ts["t1_enabled"]))
        check(src["t1"]["kernel"] == recv and src["t1"]["user"] == 0,
              "software: T1 from the kernel for every sample %s" % src["t1"])
        check(src["t4"]["kernel"] == recv, "software: T4 from the kernel %s" % src["t4"])
        # The reflector's Timestamp Information TLV says SW local for T2 and T3.
        check(src["t2"]["software"] == recv and src["t3"]["software"] == recv,
              "software: T2/T3 as the reflector's TLV says %s %s" % (src["t2"], src["t3"]))
        d = ts["t1_kernel_minus_user"]
        check(d is not None and d["samples"] == doc["sent"],
              "software: one kernel stamp per probe sent %s" % d)
        check(d is not None and 0 <= d["p50_ns"] <= d["p99_ns"] <= d["max_ns"] < 1e9,
              "software: kernel T1 after the user-space T1, below a second %s" % d)
        check(ts["t1_stamps_missing"] == 0, "software: no stamp missing")

        # Without the TLV, the reflector's timestamps are of unknown origin.
        r = sender(twamp, resp.addr, "--stamp", "--timestamping", "software", "--json")
        src = json.loads(r.stdout)["timestamps"]["sources"]
        check(src["t2"]["unknown"] == COUNT and src["t3"]["unknown"] == COUNT,
              "no TLV: T2/T3 unknown %s %s" % (src["t2"], src["t3"]))

        # user: no kernel send time at all.
        r = sender(twamp, resp.addr, "--stamp", "--timestamping", "user", "--json")
        check(r.returncode == 0, "user: exit 0")
        ts = json.loads(r.stdout)["timestamps"]
        check(ts["t1_enabled"] == "user" and ts["sources"]["t1"]["user"] == COUNT and
              ts["sources"]["t1"]["kernel"] == 0 and ts["t1_kernel_minus_user"] is None,
              "user: T1 from user space only %s" % ts["sources"]["t1"])

        # auto (the default): software on loopback, with the reason it is not hardware.
        r = sender(twamp, resp.addr, "--stamp", "--json")
        ts = json.loads(r.stdout)["timestamps"]
        check(ts["requested"] == "auto" and ts["t1_enabled"] == "software" and ts["note"],
              "auto: software on loopback, saying why (%s)" % ts["note"])

        # --extended carries the sources line; the default table is twampy's, untouched.
        r = sender(twamp, resp.addr, "--stamp", "--extended")
        check("  timestamps: T1 kernel %d; T2 unknown %d" % (COUNT, COUNT) in r.stdout,
              "--extended: the sources line")
        check("send timestamps: software (asked auto); kernel - user T1 p50" in r.stdout,
              "--extended: the kernel - user T1 line")
        r = sender(twamp, resp.addr, "--stamp")
        check("timestamps" not in r.stdout, "default table: no timestamps line")

        # hardware cannot be had on loopback: exit 3 naming the flag, nothing sent.
        r = sender(twamp, resp.addr, "--stamp", "--timestamping", "hardware")
        check(r.returncode == 3 and "--timestamping hardware" in r.stderr,
              "hardware on lo: exit 3 naming the flag (%d: %s)" % (r.returncode, r.stderr.strip()))
    finally:
        resp.stop()

    for argv in (["sender", "127.0.0.1:9", "127.0.0.1:0"], ["responder", "127.0.0.1:0"]):
        r = subprocess.run([twamp, *argv, "--timestamping", "kernel"], capture_output=True,
                           text=True, timeout=20)
        check(r.returncode == 2 and "--timestamping" in r.stderr and
              len(r.stderr.strip().splitlines()) == 1,
              "%s --timestamping kernel: exit 2, one line naming the flag (%d: %s)" %
              (argv[0], r.returncode, r.stderr.strip()))
    # The responder on a wildcard address names no interface: hardware is refused there too.
    r = subprocess.run([twamp, "responder", ":0", "--timestamping", "hardware"],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 3 and "--timestamping hardware" in r.stderr,
          "responder hardware on a wildcard: exit 3 (%d: %s)" % (r.returncode, r.stderr.strip()))
    # software on the responder is met (its T3 method stays SW local) and it starts.
    resp = itlib.Responder(twamp, extra=["--timestamping", "software"])
    check(resp.alive(), "responder --timestamping software starts")
    resp.stop()


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    finally:
        itlib.cleanup()
    sys.exit(itlib.finish())
