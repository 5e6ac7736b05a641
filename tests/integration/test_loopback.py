#!/usr/bin/python3
"""integration_loopback: full TWAMP Light and STAMP sessions against a real responder on
loopback (IPv4 and IPv6), checking the twampy-compatible table, the JSON and the Telegraf output.

Usage: test_loopback.py /path/to/twamp
"""
import re
import socket

import itlib
from itlib import check

RULE = "=" * 79
THIN = "-" * 79
HEADER = "Direction         Min         Max         Avg          Jitter     Loss"
FOOTER = "                                                    Jitter Algorithm [RFC1889]"
ROWS = ("  Outbound:    ", "  Inbound:     ", "  Roundtrip:   ")
# A delay cell is right-aligned in 10 columns: "%8lldus", "%8.2fms", "%7.2fsec", ...
CELL = r"\s*-?[0-9.]+(?:us|ms|sec|min)"


def check_table(name, r):
    """The table must keep twampy's exact layout, since scripts parse it by position."""
    check(r.returncode == 0, "%s: exit 0 (got %d, stderr %r)" % (name, r.returncode, r.stderr))
    lines = r.stdout.splitlines()
    check(len(lines) >= 9, "%s: table has at least 9 lines" % name)
    if len(lines) < 9:
        print(r.stdout)
        return
    check(lines[0] == RULE and lines[8] == RULE, "%s: '=' rules at top and bottom" % name)
    check(lines[1] == HEADER, "%s: header line exact" % name)
    check(lines[2] == THIN and lines[6] == THIN, "%s: '-' rules around the rows" % name)
    for line, prefix in zip(lines[3:6], ROWS):
        ok = line.startswith(prefix) and re.fullmatch(
            re.escape(prefix.rstrip()) + r"\s+" + (CELL + r"\s+") * 4 + r"0\.0%", line)
        check(ok, "%s: row %r well formed with 0.0%% loss" % (name, line))
    check(lines[7] == FOOTER, "%s: 'Jitter Algorithm [RFC1889]' line exact" % name)


def check_telegraf(name, r, ssid=None):
    check(r.returncode == 0, "%s: exit 0" % name)
    lines = r.stdout.splitlines()
    check(len(lines) == 3, "%s: 3 lines (got %d)" % (name, len(lines)))
    for line, direction in zip(lines, ("outbound", "inbound", "roundtrip")):
        tags, _, rest = line.partition(" ")
        fields, _, stamp = rest.partition(" ")
        check(tags.startswith("twamp,") and ",direction=%s" % direction in tags,
              "%s: %s line tags" % (name, direction))
        if ssid is not None:
            check(",ssid=%d" % ssid in tags, "%s: ssid tag" % name)
        kv = dict(f.split("=", 1) for f in fields.split(","))
        check(all(k in kv for k in ("min", "max", "avg", "jitter", "loss")),
              "%s: %s has min,max,avg,jitter,loss" % (name, direction))
        check(kv.get("sent") == "200i" and kv.get("received") == "200i" and kv.get("loss") == "0.000",
              "%s: %s sent=200i received=200i loss=0.000" % (name, direction))
        check(stamp.isdigit() and len(stamp) >= 18, "%s: %s ends with a ns timestamp" % (name, direction))


def check_json(name, j, count):
    check(j is not None and j["sent"] == count and j["received"] == count and j["lost"] == 0,
          "%s: sent == received == %d, lost == 0" % (name, count))
    if j is None:
        return
    check(j["duplicates"] == 0 and j["late"] == 0, "%s: no duplicates or late replies" % name)
    check(all(v == 0 for v in j["errors"].values()), "%s: all error counters 0 (%s)" % (name, j["errors"]))
    for d in ("outbound", "inbound", "roundtrip"):
        s = j[d]
        check(all(k in s for k in ("min_us", "max_us", "avg_us", "jitter_us", "loss_pct"))
              and s["loss_pct"] == 0 and 0 <= s["min_us"] <= s["avg_us"] <= s["max_us"],
              "%s: %s min <= avg <= max, loss 0" % (name, d))


def body(twamp):
    hosts = ["127.0.0.1"]
    if itlib.have_ipv6_loopback():
        hosts.append("::1")
    else:
        itlib.skip("no IPv6 loopback here: the [::1] cases")

    for host in hosts:
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        resp = itlib.Responder(twamp, host, family=fam)
        try:
            tag = "twamp %s" % resp.addr
            check_table(tag, itlib.sender(twamp, resp, "-c", "1000", "-i", "1"))
            tag = "stamp %s" % resp.addr
            check_table(tag, itlib.sender(twamp, resp, "-c", "1000", "-i", "1", "--stamp", "--ssid", "7"))
            r, j = itlib.sender_json(twamp, resp, "-c", "1000", "-i", "1", "--stamp", "--ssid", "7")
            check(r.returncode == 0, tag + " --json: exit 0")
            check_json(tag + " --json", j, 1000)
            if j:
                check(j["mode"] == "stamp", tag + " --json: mode stamp")
            if host == "127.0.0.1":
                r, j = itlib.sender_json(twamp, resp, "-c", "200", "-i", "1")
                check_json("twamp --json", j, 200)
                check_telegraf("telegraf twamp", itlib.sender(twamp, resp, "-c", "200", "-i", "1", "--telegraf"))
                check_telegraf("telegraf stamp", itlib.sender(twamp, resp, "-c", "200", "-i", "1", "--telegraf",
                                                              "--stamp", "--ssid", "7"), ssid=7)
            check(resp.alive(), "responder %s still running" % resp.addr)
        finally:
            check(resp.stop() == 0, "responder %s exits 0 on SIGINT" % resp.addr)


if __name__ == "__main__":
    itlib.main(body)
