#!/usr/bin/env python3
"""Fails a test run in which a test was skipped (ctest "Skipped": exit 77) or not run.

A test that cannot run exits 77 so that ctest shows it as "Skipped" instead of a quiet pass. On
a machine set up by tools/install-deps.sh every test can run, so any skip there is a failure of
the run: a missing tool, a lost capability, a broken environment. This script reads the JUnit
file ctest writes with --output-junit and exits 1, listing each skipped test with the SKIP lines
it printed, unless that test is allowed to skip in this kind of run.

Usage:
  ctest --output-junit ctest-junit.xml ...        (the path is relative to the build directory)
  tools/check-skips.py BUILD/ctest-junit.xml [--allow REGEX]... [--allow-file FILE]

--allow REGEX     a test whose full name matches REGEX may skip (repeatable);
--allow-file FILE one REGEX per line, '#' starts a comment (e.g. for a sanitizer build);
TWAMP_ALLOW_SKIPS a whitespace-separated list of more REGEXes, from the environment.
Every allowed skip is still listed. Exit 0: nothing skipped that is not allowed; 1: something
was; 2: the JUnit file is missing or unreadable (no test ran: that is no success either).
"""
import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET


def skip_lines(case):
    out = case.find("system-out")
    text = out.text if out is not None and out.text else ""
    lines = [x.strip() for x in text.splitlines() if re.match(r"\s*(SKIP\b|every check that ran)", x)]
    return lines[:6]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("junit")
    ap.add_argument("--allow", action="append", default=[], metavar="REGEX")
    ap.add_argument("--allow-file", action="append", default=[], metavar="FILE")
    a = ap.parse_args(argv)

    allow = list(a.allow) + os.environ.get("TWAMP_ALLOW_SKIPS", "").split()
    for path in a.allow_file:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    allow.append(line)
    try:
        allow_rx = [re.compile(x) for x in allow]
    except re.error as e:
        print("check-skips: bad --allow pattern: %s" % e)
        return 2

    try:
        root = ET.parse(a.junit).getroot()
    except (OSError, ET.ParseError) as e:
        print("check-skips: cannot read %s: %s" % (a.junit, e))
        return 2
    cases = root.iter("testcase")
    total, skipped = 0, []
    for c in cases:
        total += 1
        status = c.get("status", "")
        if c.find("skipped") is not None or status in ("notrun", "disabled"):
            skipped.append(c)
    if total == 0:
        print("check-skips: %s lists no test at all" % a.junit)
        return 2

    bad = []
    for c in skipped:
        name = c.get("name", "?")
        ok = any(rx.fullmatch(name) for rx in allow_rx)
        if not ok:
            bad.append(c)
        why = c.find("skipped")
        reason = why.get("message", "") if why is not None else c.get("status", "")
        print("%s %s (%s)" % ("allowed skip:" if ok else "SKIPPED:     ", name, reason))
        for line in skip_lines(c):
            print("    " + line)
    print("check-skips: %d tests, %d skipped, %d of them not allowed" % (total, len(skipped), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
