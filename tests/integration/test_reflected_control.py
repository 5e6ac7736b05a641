#!/usr/bin/python3
"""integration_reflected_control: the STAMP Reflected Test Packet Control TLV end to end.

`twamp responder --stamp --tlv-reflected-control` answers each request of `twamp sender --stamp
--tlv reflected-control=LEN,COUNT,INTERVAL_US` with COUNT replies of LEN octets; the sender counts
the further replies as extra_replies (not duplicates, not losses) and its JSON stays valid. Asking
for more than the responder's cap gets the cap and the C flag; a responder without the flag
answers once and returns the TLV unprocessed (U). Loopback only; nothing timed.

Usage: test_reflected_control.py /path/to/twamp
"""
import json
import os
import subprocess
import sys

import itlib
from itlib import check

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_outputs import SCHEMA_PATH, validate  # noqa: E402

COUNT = 50


def sender(twamp, addr, spec):
    r = subprocess.run([twamp, "sender", addr, "127.0.0.1:0", "-c", str(COUNT), "-i", "5", "-q",
                        "--stamp", "--tlv", "reflected-control=" + spec, "--json"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "sender %s: exit 0 (%d: %s)" % (spec, r.returncode, r.stderr.strip()))
    return json.loads(r.stdout) if r.returncode == 0 else None


def main(twamp):
    with open(SCHEMA_PATH) as f:
        schema = json.load(f)
    resp = itlib.Responder(twamp, extra=["--stamp", "--tlv-reflected-control",
                                         "--tlv-reflected-control-max-replies", "4",
                                         "--tlv-reflected-control-rate", "0"])
    try:
        doc = sender(twamp, resp.addr, "200,3,1000")
        if doc:
            check(not validate(schema, schema, doc), "3 replies: JSON valid against the schema")
            check(doc["received"] == COUNT and doc["lost"] == 0,
                  "3 replies: every probe answered (%d), none lost" % doc["received"])
            # The session ends when every probe has its first reply: the last probe's further
            # replies may come after that.
            check(2 * (COUNT - 1) <= doc["extra_replies"] <= 2 * COUNT and doc["duplicates"] == 0,
                  "3 replies: 2 further replies per probe, no duplicate (%d, %d)" %
                  (doc["extra_replies"], doc["duplicates"]))
            rc = doc["tlvs"]["reflected_control"]
            check(rc is not None and rc["count"] == 3 and rc["length"] == 200 and rc["exact"],
                  "3 replies: the TLV came back as asked %s" % rc)
        doc = sender(twamp, resp.addr, "0,9")
        if doc:
            rc = doc["tlvs"]["reflected_control"]
            check(3 * (COUNT - 1) <= doc["extra_replies"] <= 3 * COUNT,
                  "9 asked, cap 4: 3 further replies per probe (%d)" % doc["extra_replies"])
            check(rc is not None and not rc["exact"] and rc["clamped"] == COUNT,
                  "9 asked, cap 4: C set on every reply %s" % rc)
    finally:
        resp.stop()
    plain = itlib.Responder(twamp, extra=["--stamp"])
    try:
        doc = sender(twamp, plain.addr, "0,3")
        if doc:
            check(doc["received"] == COUNT and doc["extra_replies"] == 0,
                  "off by default: one reply per probe (%d extra)" % doc["extra_replies"])
            check(doc["tlvs"]["unrecognised"] == COUNT, "off by default: the TLV comes back with U")
    finally:
        plain.stop()


if __name__ == "__main__":
    itlib.main(main)
