#!/usr/bin/python3
"""integration_outputs: the sender's report outputs on loopback, checked against each other.

One run writes --json (with --report-interval interval lines), --per-packet CSV, --svg and
--prometheus; the JSON must follow docs/report.schema.json, the SVG must be well-formed XML,
the Prometheus file must pass a strict text-format parser, every Influx line must parse, and the
four must agree (counts, minimum delay, median, interval bins). Also: the Poisson schedule, the
interval lines of the table output, --extended, the CSV on SIGINT, and usage errors.

Usage: test_outputs.py /path/to/twamp
"""
import csv
import json
import math
import os
import re
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from fractions import Fraction

import itlib
from itlib import check

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "report.schema.json")


# --- JSON Schema: the subset docs/report.schema.json uses ------------------------------------
def validate(root, sc, v, at="", errs=None):
    errs = [] if errs is None else errs
    if "$ref" in sc:
        return validate(root, root["$defs"][sc["$ref"].split("/")[-1]], v, at, errs)
    types = {"object": lambda x: isinstance(x, dict), "array": lambda x: isinstance(x, list),
             "string": lambda x: isinstance(x, str), "boolean": lambda x: isinstance(x, bool),
             "null": lambda x: x is None,
             "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
             "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)}
    if "type" in sc:
        ts = sc["type"] if isinstance(sc["type"], list) else [sc["type"]]
        if not any(types[t](v) for t in ts):
            errs.append("%s: expected %s, got %r" % (at, ts, v))
            return errs
    if "const" in sc and v != sc["const"]:
        errs.append("%s: const %r" % (at, sc["const"]))
    if "enum" in sc and v not in sc["enum"]:
        errs.append("%s: %r not in enum" % (at, v))
    if types["number"](v):
        if "minimum" in sc and v < sc["minimum"]:
            errs.append("%s: below minimum" % at)
        if "maximum" in sc and v > sc["maximum"]:
            errs.append("%s: above maximum" % at)
    if "oneOf" in sc and sum(1 for alt in sc["oneOf"] if not validate(root, alt, v, at, [])) != 1:
        errs.append("%s: oneOf" % at)
    if isinstance(v, dict):
        for k in sc.get("required", []):
            if k not in v:
                errs.append("%s: missing %s" % (at, k))
        for k, x in v.items():
            if k in sc.get("properties", {}):
                validate(root, sc["properties"][k], x, at + "/" + k, errs)
            elif sc.get("additionalProperties") is False:
                errs.append("%s: unexpected key %s" % (at, k))
            elif isinstance(sc.get("additionalProperties"), dict):
                validate(root, sc["additionalProperties"], x, at + "/" + k, errs)
    if isinstance(v, list) and "items" in sc:
        for i, x in enumerate(v):
            validate(root, sc["items"], x, "%s/%d" % (at, i), errs)
    return errs


def schema_check(name, doc, schema, sub=None):
    errs = validate(schema, schema["$defs"][sub] if sub else schema, doc)
    check(not errs, "%s: valid against docs/report.schema.json%s %s" % (name, " #/$defs/" + sub if sub else "", errs[:3]))
    try:  # a second opinion when the jsonschema module is there (not required)
        import jsonschema
        target = dict(schema["$defs"][sub], **{"$defs": schema["$defs"]}) if sub else schema
        jsonschema.validate(doc, target)
        check(True, "%s: jsonschema agrees" % name)
    except ImportError:
        pass
    except Exception as e:  # noqa: BLE001 - any validation error is a failure
        check(False, "%s: jsonschema: %s" % (name, e))


# --- Prometheus text format 0.0.4, strictly ----------------------------------------------------
PROM_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
PROM_LABELS = r'\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)?\}'
PROM_VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|NaN|[+-]Inf)"
PROM_SAMPLE = re.compile(r"^(%s)(%s)? (%s)(?: -?\d+)?$" % (PROM_NAME, PROM_LABELS, PROM_VALUE))


def parse_prometheus(text):
    """Returns {(name, labels): value}; raises ValueError on any deviation from the format."""
    if not text.endswith("\n"):
        raise ValueError("no final newline")
    types, helps, out, seen_samples = {}, set(), {}, set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            if name in helps or name in seen_samples:
                raise ValueError("line %d: HELP repeated or after samples" % n)
            helps.add(name)
        elif line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "summary", "histogram", "untyped"):
                raise ValueError("line %d: bad TYPE" % n)
            if parts[2] in types or parts[2] in seen_samples:
                raise ValueError("line %d: TYPE repeated or after samples" % n)
            types[parts[2]] = parts[3]
        elif line.startswith("#") or not line:
            raise ValueError("line %d: unexpected %r" % (n, line))
        else:
            m = PROM_SAMPLE.match(line)
            if not m:
                raise ValueError("line %d: not a sample: %r" % (n, line))
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            family = name
            for suffix in ("_sum", "_count", "_bucket"):
                if name.endswith(suffix) and name[: -len(suffix)] in types:
                    family = name[: -len(suffix)]
            if family not in types:
                raise ValueError("line %d: sample without TYPE" % n)
            if types[family] == "summary" and name == family and "quantile=" not in labels:
                raise ValueError("line %d: summary sample without quantile" % n)
            if (name, labels) in out:
                raise ValueError("line %d: duplicate series" % n)
            seen_samples.add(family)
            out[(name, labels)] = float(value)
    return out


def prom_get(samples, name, **labels):
    for (n, l), v in samples.items():
        if n == name and all('%s="%s"' % (k, val) in l for k, val in labels.items()):
            return v
    return None


# --- Influx line protocol, strictly --------------------------------------------------------
INFLUX_KEY = r"(?:[^,= \\]|\\[,= ])+"
INFLUX_FIELD_VALUE = r'(?:-?\d+i|-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|"(?:[^"\\]|\\.)*"|true|false)'
INFLUX_LINE = re.compile(r"^(%s)((?:,%s=%s)*) (%s=%s(?:,%s=%s)*) (\d{19})$" % (
    INFLUX_KEY, INFLUX_KEY, INFLUX_KEY, INFLUX_KEY, INFLUX_FIELD_VALUE, INFLUX_KEY, INFLUX_FIELD_VALUE))


def parse_influx(line):
    m = INFLUX_LINE.match(line)
    if not m:
        return None
    tags = dict(t.split("=", 1) for t in m.group(2)[1:].split(",")) if m.group(2) else {}
    fields = dict(f.split("=", 1) for f in m.group(3).split(","))
    return m.group(1), tags, fields, int(m.group(4))


def nearest_rank(values, p):
    """The ceil(p/100 * n)-th smallest value, with p read as the exact decimal it was written as
    (Fraction of its string): no floating-point step the code under test could share."""
    v = sorted(values)
    pf = Fraction(str(p))
    rank = -((-pf * len(v)) // 100)  # ceil in rationals
    rank = max(1, min(len(v), int(rank)))
    return v[rank - 1]


def body(twamp):
    with open(SCHEMA_PATH) as f:
        schema = json.load(f)
    resp = itlib.Responder(twamp)
    tmp = tempfile.TemporaryDirectory(prefix="twamp-outputs-")
    d = tmp.name
    try:
        # ---- all four outputs at once ---------------------------------------------------------
        pp, svg, prom = (os.path.join(d, n) for n in ("pp.csv", "chart.svg", "m.prom"))
        count = 150
        r = itlib.sender(twamp, resp, "-c", str(count), "-i", "20", "--json", "--per-packet", pp, "--svg", svg,
                         "--prometheus", prom, "--report-interval", "1", timeout=40)
        check(r.returncode == 0, "all outputs: exit 0 (stderr %r)" % r.stderr)
        lines = r.stdout.splitlines()
        objs = []
        for line in lines:
            try:
                objs.append(json.loads(line))
            except ValueError:
                check(False, "stdout is JSON Lines: %r" % line[:80])
        check(len(objs) >= 2, "interval lines then the report (%d objects)" % len(objs))
        if len(objs) < 2:
            return None
        report, ivl = objs[-1], objs[:-1]
        schema_check("final report", report, schema)
        for i, o in enumerate(ivl):
            schema_check("interval line %d" % i, o, schema, "interval")
        check(all(o.get("type") == "interval" for o in ivl), "interval lines say type=interval")
        check(report["sent"] == count and report["received"] == count and report["scheduled"] == count
              and report["skipped"] == 0, "counts: scheduled == sent == received == %d, skipped 0" % count)
        check(report["report_interval_s"] == 1, "report_interval_s 1")
        check(ivl == [dict(x, type="interval") for x in report["intervals"]],
              "the report keeps exactly the interval bins printed during the run")
        check(len(ivl) in (3, 4), "about 3 s of probes in 1 s bins (%d bins)" % len(ivl))
        check(sum(b["sent"] for b in ivl) == report["sent"], "interval sent adds up to the total")
        check(sum(b["received"] for b in ivl) == report["received"], "interval received adds up to the total")
        check([b["index"] for b in ivl] == list(range(len(ivl))), "interval indexes 0..n-1 in order")
        rt = report["roundtrip"]
        check(rt["min_us"] <= rt["p50_us"] <= rt["p90_us"] <= rt["p95_us"] <= rt["p99_us"] <= rt["p999_us"] <= rt["max_us"],
              "roundtrip: min <= p50 <= p90 <= p95 <= p99 <= p99.9 <= max")
        check(abs(rt["pdv_us"] - (rt["p999_us"] - rt["min_us"])) < 1e-6, "PDV = p99.9 - min")
        check(rt["ipdv"]["samples"] == count - 1, "IPDV over every consecutive pair (%d)" % rt["ipdv"]["samples"])

        # per-packet CSV
        with open(pp) as f:
            raw = f.read()
        check(raw.endswith("\n"), "CSV ends with a complete line")
        rows = list(csv.DictReader(raw.splitlines()))
        check(len(rows) == count, "CSV: one row per probe (%d)" % len(rows))
        ok = [x for x in rows if x["status"] in ("ok", "reordered")]
        check(len(ok) == report["received"], "CSV ok+reordered rows == received")
        check(sorted(int(x["sender_seq"]) for x in rows) == list(range(count)), "CSV: every sequence number once")
        rtts = [int(x["roundtrip_ns"]) for x in ok]
        consistent = all(int(x["roundtrip_ns"]) == (int(x["t4_ns"]) - int(x["t1_ns"])) - (int(x["t3_ns"]) - int(x["t2_ns"]))
                         and int(x["outbound_ns"]) == int(x["t2_ns"]) - int(x["t1_ns"])
                         and int(x["inbound_ns"]) == int(x["t4_ns"]) - int(x["t3_ns"]) for x in ok)
        check(consistent, "CSV: delays derive from T1..T4")
        check(all(int(x["t1_ns"]) > 1_600_000_000 * 10**9 for x in ok), "CSV: T1 in ns since the Unix epoch")
        check(abs(min(rtts) / 1e3 - rt["min_us"]) < 1e-6 and abs(max(rtts) / 1e3 - rt["max_us"]) < 1e-6,
              "CSV min/max roundtrip == JSON min_us/max_us")
        check(abs(sum(rtts) / len(rtts) / 1e3 - rt["avg_us"]) < 1e-3, "CSV mean == JSON avg_us")
        for p, key in (("50", "p50_us"), ("95", "p95_us"), ("99", "p99_us"), ("99.9", "p999_us")):
            exact = nearest_rank(rtts, p) / 1e3
            # The histogram's bound: a bucket is read within 1/256 of every value in it.
            check(abs(rt[key] - exact) <= exact / 256 + 1e-6,
                  "JSON %s within 0.39%% of the CSV's exact value (%.3f vs %.3f)" % (key, rt[key], exact))
        check(all(x["sender_ttl"] == "255" and x["reply_ttl"] == "255" for x in ok), "CSV: TTLs 255 on loopback")

        # Prometheus
        with open(prom) as f:
            text = f.read()
        try:
            samples = parse_prometheus(text)
            check(True, "Prometheus file parses strictly (%d samples)" % len(samples))
        except ValueError as e:
            check(False, "Prometheus file parses strictly: %s" % e)
            samples = {}
        check(prom_get(samples, "twamp_probes", state="sent") == count, "prom sent == JSON sent")
        check(prom_get(samples, "twamp_probes", state="lost") == report["lost"], "prom lost == JSON lost")
        q50 = prom_get(samples, "twamp_delay_seconds", direction="roundtrip", quantile="0.5")
        check(q50 is not None and abs(q50 * 1e6 - rt["p50_us"]) < 1e-3, "prom roundtrip median == JSON p50_us")
        cnt = prom_get(samples, "twamp_delay_seconds_count", direction="roundtrip")
        check(cnt == rt["samples"], "prom summary count == JSON samples")
        check(not [n for n in os.listdir(d) if ".tmp." in n], "no temporary file left behind")

        # SVG
        try:
            root = ET.parse(svg).getroot()
            check(root.tag == "{http://www.w3.org/2000/svg}svg", "SVG: well-formed XML, svg root")
            ns = "{http://www.w3.org/2000/svg}"
            medians = [e for e in root.iter(ns + "line") if e.get("stroke-width") == "3"]
            # one median stroke per interval with samples, plus 5 in the legend
            with_samples = sum(1 for b in ivl if b["roundtrip"]["samples"])
            check(len(medians) == with_samples + 5, "SVG: one median per interval (%d vs %d)"
                  % (len(medians) - 5, with_samples))
            texts = " ".join(e.text or "" for e in root.iter(ns + "text"))
            check("Round-trip time (" in texts and "Time since start (s)" in texts, "SVG: labelled axes with units")
        except ET.ParseError as e:
            check(False, "SVG: well-formed XML: %s" % e)

        # ---- Telegraf with intervals: every line parses ----------------------------------------
        r = itlib.sender(twamp, resp, "-c", "60", "-i", "20", "--telegraf", "--report-interval", "0.5",
                         "--percentiles", "50,99.9")
        check(r.returncode == 0, "telegraf: exit 0")
        parsed = [parse_influx(line) for line in r.stdout.splitlines()]
        check(parsed and all(parsed), "telegraf: every line is valid line protocol %r"
              % [l for l, p in zip(r.stdout.splitlines(), parsed) if not p][:2])
        parsed = [p for p in parsed if p]
        finals = [p for p in parsed if p[0] == "twamp"]
        inter = [p for p in parsed if p[0] == "twamp_interval"]
        check(len(finals) == 3 and len(inter) >= 6 and len(inter) % 3 == 0,
              "telegraf: 3 report lines, 3 per interval (%d, %d)" % (len(finals), len(inter)))
        check(all("p50" in p[2] and "p99_9" in p[2] for p in finals), "telegraf: percentile fields p50, p99_9")

        # ---- table with interval rows, then twampy's table intact -------------------------------
        r = itlib.sender(twamp, resp, "-c", "40", "-i", "25", "--report-interval", "0.5")
        out = r.stdout.splitlines()
        rule = [i for i, l in enumerate(out) if l == "=" * 79]
        check(r.returncode == 0 and out and out[0].startswith("  Interval"), "table: interval header first")
        check(rule and all(re.match(r"^  \d+(\.\d+)?-\d+(\.\d+)?s ", l) for l in out[1:rule[0]]),
              "table: one row per interval before the summary table")
        check(len(rule) == 2 and rule[1] - rule[0] == 8, "table: twampy's 9-line table follows unchanged")

        # ---- --extended --------------------------------------------------------------------------
        r = itlib.sender(twamp, resp, "-c", "50", "-i", "5", "--extended", "--percentiles", "50,99")
        check(r.returncode == 0 and "  Percentiles         p50         p99" in r.stdout
              and "IPDV" in r.stdout and "schedule: periodic" in r.stdout, "extended table")

        # ---- Poisson ------------------------------------------------------------------------------
        pp2 = os.path.join(d, "poisson.csv")
        r, j = itlib.sender_json(twamp, resp, "-c", "300", "-i", "4", "--distribution", "poisson", "--seed", "11",
                                 "--per-packet", pp2)
        sched = {k: v for k, v in j["schedule"].items() if not k.startswith(("achieved", "pacing"))} if j else None
        check(sched == {"distribution": "poisson", "interval_ms": 4, "seed": 11},
              "poisson: schedule reported with its seed (%s)" % sched)
        if j:
            check(j["scheduled"] == j["sent"] == 300 and j["skipped"] == 0, "poisson: scheduled == sent == 300")
            schema_check("poisson report", j, schema)
        with open(pp2) as f:
            t1 = sorted(int(x["t1_ns"]) for x in csv.DictReader(f))
        gaps = [(b - a) / 1e6 for a, b in zip(t1, t1[1:])]
        mean = sum(gaps) / len(gaps)
        sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
        check(2.8 < mean < 5.2, "poisson: mean gap near 4 ms (%.3f)" % mean)
        check(sd / mean > 0.6, "poisson: gaps spread like an exponential (cv %.2f; periodic ~0)" % (sd / mean))

        # ---- the CSV is complete when the run is interrupted ------------------------------------
        pp3 = os.path.join(d, "int.csv")
        err3 = tempfile.NamedTemporaryFile("w+", prefix="twamp-int-", suffix=".log")
        p = itlib.spawn([twamp, "sender", resp.addr, "127.0.0.1:0", "-c", "100000", "-i", "10", "--json",
                         "--per-packet", pp3, "--timeout", "1", "-v"], stdout=subprocess.PIPE, stderr=err3, text=True)
        # Interrupted mid-run: once the fifth reply is logged (-v logs each one).
        check(itlib.wait_for(r"(?s)(?:Reply from .*?){5}", itlib.file_reader(err3.name), 20.0, p) is not None,
              "SIGINT: the sender logs replies before the interrupt")
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
        try:
            j = json.loads(out)
        except ValueError:
            j = None
        check(j is not None and j["interrupted"] is True and j["scheduled"] < 100000, "SIGINT: interrupted report")
        with open(pp3) as f:
            raw = f.read()
        rows = list(csv.DictReader(raw.splitlines()))
        check(raw.endswith("\n") and j is not None and len(rows) == j["sent"],
              "SIGINT: the CSV has a complete row for every probe sent (%d rows)" % len(rows))

        # ---- usage errors ---------------------------------------------------------------------------
        target = [resp.addr, "127.0.0.1:0"]
        for args, flag in ((["--seed", "3"], "--seed"), (["--distribution", "uniform"], "--distribution"),
                           (["--percentiles", "50,101"], "--percentiles"), (["--percentiles", "5x"], "--percentiles"),
                           (["--extended", "--json"], "--extended"), (["--report-interval", "0.001"], "--report-interval")):
            r = itlib.run([twamp, "sender", *target, *args])
            check(r.returncode == 2 and flag in r.stderr, "usage error for %s (exit %d, %r)" % (args, r.returncode, r.stderr))
        r = itlib.run([twamp, "sender", *target, "-c", "3", "-i", "1", "--per-packet", os.path.join(d, "no/such/dir.csv")])
        check(r.returncode == 3 and "--per-packet" in r.stderr, "unwritable --per-packet: exit 3")
    finally:
        tmp.cleanup()
        check(resp.stop() == 0, "responder exits 0")
    return None


if __name__ == "__main__":
    itlib.main(body)
