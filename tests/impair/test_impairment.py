#!/usr/bin/env python3
"""twamp sender measurements against an impairment relay that records what it did.

    twamp sender ──► impair_relay ──► twamp responder (stateful, the default)
                 ◄──              ◄──

One seeded run (about 3 s of traffic) with, per direction (forward = sender → reflector):

    forward : 20 ms fixed + uniform [0, 2] ms jitter (the jitter is larger than the 1 ms gap
              between probes, so probes also reorder naturally), 3 % drop, 1 % held 10 ms extra
              (reorder), 0.3 % held 700 ms extra (late: beyond the sender's 0.5 s timeout)
    backward: 5 ms fixed, 3 % drop, 5 % duplicated (the copy 1 ms after the original), 1 % held
              10 ms extra (reorder), 0.6 % held 700 ms extra (late)

The relay draws its decisions per sequence number from a seeded std::mt19937_64, so the same seed
gives the same drops, duplicates, holds and jitter whatever the timing; seed 5 is one whose run
covers every case below (forward and backward loss, duplicates of in-time and of late replies,
late replies from both directions, holds and natural reordering) with no packet near a timing
boundary (see `model()`: every release is at least 50 ms away from the sender's timeout and from
the end of its session). The test checks that the relay's record matches `impair_relay --plan`
(reproducibility) and that the cases are covered, so a change of parameters that loses a case
fails loudly instead of silently testing less.

What is exact and why (the sender's rules are in include/twamp/sender_session.hpp and stats.hpp):

  * The relay logs every transmission in the order it made it; loopback UDP keeps that order and
    loses nothing at this rate, so the reflector sees the forward transmissions in the relay's
    order (and numbers them 0, 1, 2... — checked: reply k echoes the k-th forwarded probe), and the
    sender sees the backward transmissions in the relay's order. Replaying the sender's rules over
    that order gives every count exactly: a reply is late when it left the relay more than
    --timeout after its probe reached the relay (T4 - T1 differs from that by microseconds; every
    reply is >= 50 ms away from the boundary), the first copy of a reply decides in-time vs late,
    every further copy is a duplicate (also of a late reply; also when it arrives after the
    original), copies after the end of the session (last probe + timeout) are not seen,
    reordered = in-time first copies whose sender seq is below the highest seen so far (RFC 4737;
    duplicates and late replies excluded).
  * Loss split: with a stateful reflector inbound lost = (highest - lowest reflector seq seen + 1)
    - distinct replies (capped at the missing count), outbound = missing - inbound. Forward drops
    never get a reflector seq, backward drops leave a gap in them; as long as the first and the
    last reflector seq get through (true for this seed, checked) that is outbound lost == the
    relay's forward drops and inbound lost == its backward drops, exactly.
  * Hop counts: the relay forwards with the received TTL - 1, so both directions read 1 hop.
  * roundtrip = (T4 - T1) - (T3 - T2) = outbound + inbound sample by sample, so its average is the
    sum of the two averages (to rounding) and its minimum at least the sum of the minima.

Timing (tolerances; all times are the same host's clocks):

  A measured one-way delay (outbound T2 - T1) decomposes as
      (T1 read -> kernel arrival at the relay)            hop a: a syscall and loopback, 2-10 us
    + (kernel arrival -> the relay's send)                residence = injected delay + lateness
    + (relay send -> kernel receive timestamp at T2)      hop b: 2-10 us
  and inbound (T4 - T3) likewise. The relay records its residence per datagram: it schedules from
  the kernel's arrival timestamp (SO_TIMESTAMPNS), never sends early (checked), and notes the send
  time; T2 and T4 are kernel timestamps. So measured >= residence >= injected: causality. T1..T4
  use CLOCK_REALTIME and the relay CLOCK_MONOTONIC; NTP slews both alike, so only a clock step
  could break that. EPS_US = 20 us covers clock-read order and the 1 us rounding of the log.

  Upper bounds. The relay's lateness (timerfd wake-up, 1 ns timer slack) is ~10 us at the median,
  but with both CPUs loaded (parallel compiles, load average ~5, or `yes` on the other CPU) about
  10 % of releases wait 0.4-2 ms and 1 % 3-9 ms for the CPU. Rather than bounding that noise, the
  checks compare with what the relay did, which leaves only the two hops:
    - avg - relay residence avg in [-EPS, TOL_HOP_AVG_US = 200]: the hops cost 4-6 us on average
      (per-reply p99 20-50 us, max 80-220 us seen under load); 200 us leaves 30x margin while
      still catching a systematic error such as a T3 taken too early or a timestamp off by a tick;
    - avg - injected avg in [-EPS, relay's mean lateness over the same samples + TOL_HOP_AVG_US];
    - max - relay residence max in [-EPS, TOL_HOP_MAX_US = 10000]: one preemption inside the few
      microseconds between a clock read and its send (a CFS slice under load is a few ms);
    - min - injected min in [-EPS, TOL_MIN_US = 500]: the minimum is over hundreds of samples whose
      injected delay is within 0.1 ms of the smallest (~1800 draws of a 2 ms uniform jitter;
      inbound: every in-time reply gets exactly 5 ms), so one of them has an ordinary overhead;
    - p50 (when the report has percentiles: "percentiles_us" or pNN_us keys) in [injected median
      - EPS, residence median + TOL_P50_US = 200], widened by 0.5 % of the value since
      histogram.hpp reads a percentile as its bucket's midpoint (within 1/256 of the true value):
      each sample dominates its injected delay, so each order statistic does too; other
      percentiles: that lower bound, and min <= pNN <= max in order. Without percentile keys
      (older schema) this is noted and the min/avg/max checks still run;
    - RFC 3550 jitter: J is a positive-weighted average of |D_i - D_i-1| and ||a + b| - |a|| <= |b|,
      so |J_measured - J_injected| <= the same average of |ovh_i - ovh_i-1| over the per-reply log
      (+ 2 us rounding): an exact bound, not a guess;
    - nominal: forward jitter draws have mean 1 ms +- 4 sigma (sigma = J / sqrt(12 n)), so
      outbound avg ~ 20 ms + 1 ms + holds within [-EPS - 4 sigma, lateness + TOL_HOP_AVG + 4 sigma];
      inbound min ~ 5 ms within [-EPS, TOL_MIN_US];
    - max_reorder_extent (when reported): exact, RFC 4737 replayed over the relay's order;
    - relay self-check: release lateness p50 <= 2 ms. Idle it is 8-20 us (p90 30-50 us); with
      `yes` on top of parallel compiles (load average 6-7 on 2 CPUs) the median reached 0.8 ms,
      as the relay then waits for a CPU like everyone else. p90/p99/max are printed, not bounded:
      the checks above do not depend on them, because they compare with the relay's actual
      residence, and every timing boundary is judged on actual send times.

Usage: test_impairment.py TWAMP IMPAIR_RELAY   (exit 0 pass, 1 fail, 77 skip)
"""
import bisect
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from itlib import check, cleanup, finish, spawn, stop  # noqa: E402

SKIP = 77
SEED = 5
COUNT = 2000
INTERVAL_MS = 1.0
TIMEOUT_S = 0.5
FWD = {"delay": 20, "jitter": 2, "drop": 0.03, "dup": 0, "dup-gap": 0, "reorder": 0.01,
       "reorder-ms": 10, "late": 0.003, "late-ms": 700}
BWD = {"delay": 5, "jitter": 0, "drop": 0.03, "dup": 0.05, "dup-gap": 1, "reorder": 0.01,
       "reorder-ms": 10, "late": 0.006, "late-ms": 700}
MARGIN_NS = 50e6  # no release may be this close to a timing boundary (see model())

EPS_US = 20.0
TOL_HOP_AVG_US = 200.0
TOL_HOP_MAX_US = 10000.0
TOL_MIN_US = 500.0
TOL_P50_US = 200.0
RELAY_P50_LATENESS_US = 2000.0

def relay_flags():
    out = []
    for prefix, cfg in (("fwd", FWD), ("bwd", BWD)):
        for k, v in cfg.items():
            out += ["--%s-%s" % (prefix, k), str(v)]
    return out


def start_responder(twamp, tmp):
    """`twamp responder` on port 0 of the loopback: it binds a port the kernel picks and logs
    it ("Wait to receive test packets on [addr]:port"), so no port is probed and released."""
    log = os.path.join(tmp, "responder.log")
    with open(log, "w") as f:
        p = spawn([twamp, "responder", "127.0.0.1:0", "-v"], stdout=subprocess.DEVNULL, stderr=f)
    rx = re.compile(r"Wait to receive test packets on \[[^\]]*\]:(\d+)")
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        with open(log) as f:
            m = rx.search(f.read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
        time.sleep(0.02)
    stop(p, signal.SIGTERM)
    raise RuntimeError("the responder did not start")


def start_relay(relay, target_port, record):
    p = spawn([relay, "--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % target_port,
               "--seed", str(SEED), "--record", record, "--duration", "30", *relay_flags()],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([p.stdout], [], [], 5.0)
    line = p.stdout.readline() if ready else ""
    m = re.search(r"listening 127\.0\.0\.1:(\d+)", line)
    if not m:
        raise RuntimeError("the relay did not start: %r %s" % (line, p.stderr.read()
                                                              if p.poll() is not None else ""))
    return p, int(m.group(1))


REPLY_RE = re.compile(r"Reply from \S+ \[rseq=(\d+) sseq=(\d+) rtt=(-?[\d.]+)ms "
                      r"outbound=(-?[\d.]+)ms inbound=(-?[\d.]+)ms\]")
DROPPED_RE = re.compile(r"Reply from \S+ dropped \[sseq=(\d+) status=(\d+)\]")
STATUS_LATE, STATUS_DUPLICATE = 1, 2  # twamp::reply_status


def parse_sender_log(path):
    """The sender's -v log: per-reply lines in the order it handled them (None if no such line)."""
    samples, others = [], []
    with open(path) as f:
        for line in f:
            m = REPLY_RE.search(line)
            if m:
                samples.append((int(m.group(2)), int(m.group(1)), float(m.group(4)) * 1e3,
                                float(m.group(5)) * 1e3, float(m.group(3)) * 1e3))
                continue
            m = DROPPED_RE.search(line)
            if m:
                others.append((int(m.group(1)), int(m.group(2))))
    if not samples:
        return None
    return samples, others


def quantiles(values, pct):
    """(low, high) of the pct-th percentile over the usual definitions (nearest rank and linear).

    The ranks are exact: pct is read as the decimal it is written as (99.9 is 999/10, not the
    binary double nearest to it) and the ranks are computed in integers, so p99.9 of 1000 samples
    is rank 999 exactly, never 1000 through a rounding error. This is another derivation than the
    code under test uses (floating-point arithmetic on the histogram)."""
    v = sorted(values)
    n = len(v)
    p = Fraction(str(pct))
    # Nearest rank: the smallest rank r with r / n >= p / 100, i.e. ceil(p * n / 100), at least 1.
    num, den = p.numerator * n, p.denominator * 100
    rank = max(1, -(-num // den))
    nearest = v[min(n, rank) - 1]
    # Linear interpolation between ranks at position p * (n - 1) / 100 (0-based).
    pos = p * (n - 1) / 100
    below = pos.numerator // pos.denominator
    above = -(-pos.numerator // pos.denominator)
    lo, hi = v[below], v[above]
    linear = lo + (hi - lo) * float(pos - below)
    return min(nearest, linear, lo), max(nearest, linear, hi)


FIXED_PERCENTILE_KEYS = {"p5_us": 5.0, "p50_us": 50.0, "p90_us": 90.0, "p95_us": 95.0,
                         "p99_us": 99.0, "p999_us": 99.9}


def report_percentiles(direction):
    """{percent: us} from a report direction: its "percentiles_us" object ({"50": ..}) and the
    fixed pNN_us keys (p999 = 99.9); {} when the report has none."""
    out = {}
    for k, v in (direction.get("percentiles_us") or {}).items():
        if v is not None:
            out[float(k)] = v
    for k, q in FIXED_PERCENTILE_KEYS.items():
        if direction.get(k) is not None:
            if q in out:
                check(abs(out[q] - direction[k]) < 1e-6, "%s = percentiles_us[%g]" % (k, q))
            out[q] = direction[k]
    return out


def ewma_jitter(values):
    """RFC 3550 §6.4.1 jitter over a series, starting from 0 (as twamp::delay_stats)."""
    j = 0.0
    for a, b in zip(values, values[1:]):
        j += (abs(b - a) - j) / 16.0
    return j


def model(rec):
    """What the sender must report, replayed from the relay's record (see the module docstring)."""
    fwd, bwd = rec["forward"], rec["backward"]
    fpk, bpk = fwd["packets"], bwd["packets"]
    by_seq = {}
    for p in fpk:
        by_seq.setdefault(p["seq"], p)
    t1 = {s: p["rx_ns"] for s, p in by_seq.items()}
    timeout_ns = TIMEOUT_S * 1e9
    end_ns = t1[COUNT - 1] + timeout_ns  # the sender stops at last probe + timeout
    # Forward transmissions in order: reflector sequence number k is the k-th.
    fwd_emitted = [fpk[s["packet"]] for s in fwd["sends"] if s["error"] == 0]
    fwd_send = {fpk[s["packet"]]["seq"]: s for s in fwd["sends"] if s["copy"] == 0}
    ambiguous = []
    seen, rseqs_seen = set(), []
    exp = {"received": 0, "late": 0, "duplicates": 0, "reordered": 0, "late_dups": 0,
           "late_fwd_hold": 0, "late_bwd_hold": 0}
    order, late_set, dups, inj = [], set(), {}, {}
    next_expected = 0
    in_order_seqs, in_order_pos = [], []
    exp["max_reorder_extent"] = 0
    for s in bwd["sends"]:
        if s["error"]:
            continue
        p = bpk[s["packet"]]
        sseq, t = p["sender_seq"], s["sent_ns"]
        if abs(t - end_ns) < MARGIN_NS:
            ambiguous.append(("end", sseq, (t - end_ns) / 1e6))
        if t > end_ns:
            continue
        if sseq in seen:
            exp["duplicates"] += 1
            dups[sseq] = dups.get(sseq, 0) + 1
            if sseq in late_set:
                exp["late_dups"] += 1
            continue
        seen.add(sseq)
        rseqs_seen.append(p["seq"])
        elapsed = t - t1[sseq]
        if abs(elapsed - timeout_ns) < MARGIN_NS:
            ambiguous.append(("timeout", sseq, (elapsed - timeout_ns) / 1e6))
        if elapsed > timeout_ns:
            exp["late"] += 1
            late_set.add(sseq)
            if by_seq[sseq]["hold"] == "late":
                exp["late_fwd_hold"] += 1
            if p["hold"] == "late":
                exp["late_bwd_hold"] += 1
            continue
        exp["received"] += 1
        position = exp["received"]  # arrival position among in-time first copies, from 1
        if sseq < next_expected:
            exp["reordered"] += 1
            # RFC 4737 extent: i - j, j = position of the earliest arrival with a larger seq
            # (necessarily an in-order one; those have increasing seqs and positions).
            k = bisect.bisect_right(in_order_seqs, sseq)
            exp["max_reorder_extent"] = max(exp["max_reorder_extent"],
                                            position - in_order_pos[k])
        else:
            next_expected = sseq + 1
            in_order_seqs.append(sseq)
            in_order_pos.append(position)
        order.append((sseq, p["seq"]))
        # Per in-time sample (us): the scheduled delay (fixed + jitter + hold) and the time the
        # datagram actually spent in the relay (kernel arrival to send: scheduled + lateness).
        fs = fwd_send[sseq]
        inj[sseq] = {"fwd": by_seq[sseq]["delay_ns"] / 1e3, "bwd": p["delay_ns"] / 1e3,
                     "fwd_actual": (fs["sent_ns"] - by_seq[sseq]["rx_ns"]) / 1e3,
                     "bwd_actual": (t - p["rx_ns"]) / 1e3}
    distinct = exp["received"] + exp["late"]
    missing = COUNT - distinct
    span = (max(rseqs_seen) - min(rseqs_seen) + 1) if rseqs_seen else 0
    inbound = min(max(span - distinct, 0), missing)
    exp.update(distinct=distinct, missing=missing, inbound_lost=inbound,
               outbound_lost=missing - inbound, lost=COUNT - exp["received"],
               rseq_min=min(rseqs_seen), rseq_max=max(rseqs_seen))
    return {"exp": exp, "order": order, "late_set": late_set, "dups": dups, "inj": inj,
            "ambiguous": ambiguous, "fwd_emitted": fwd_emitted, "by_seq": by_seq,
            "end_ns": end_ns}


def check_relay(rec, plan, m):
    fwd, bwd = rec["forward"], rec["backward"]
    fpk, bpk = fwd["packets"], bwd["packets"]
    for name, d in (("forward", fwd), ("backward", bwd)):
        check(d["send_errors"] == 0 and d["foreign"] == 0 and d["overflow"] == 0
              and not d["record_truncated"],
              "relay %s: no send error, foreign datagram, overflow or truncation" % name)
        late = [(s["sent_ns"] - s["due_ns"]) / 1e3 for s in d["sends"]]
        check(min(late) >= 0, "relay %s: never released early (min lateness %.1f us)"
              % (name, min(late)))
        lo50, _ = quantiles(late, 50)
        lo90, _ = quantiles(late, 90)
        lo99, _ = quantiles(late, 99)
        check(lo50 <= RELAY_P50_LATENESS_US,
              "relay %s: release lateness p50 %.1f us <= %g (p90 %.1f, p99 %.1f, max %.1f us)"
              % (name, lo50, RELAY_P50_LATENESS_US, lo90, lo99, max(late)))
    check(len(fpk) == COUNT and sorted(p["seq"] for p in fpk) == list(range(COUNT)),
          "relay saw every probe once (%d)" % len(fpk))

    # Reproducibility: the decisions in the record are those of --plan (keyed by sequence number).
    same = all(plan["forward"][p["seq"]]["delay_ns"] == p["delay_ns"]
               and plan["forward"][p["seq"]]["drop"] == (p["fate"] == "drop")
               and plan["forward"][p["seq"]]["hold"] == p["hold"] for p in fpk)
    same = same and all(plan["backward"][p["sender_seq"]]["delay_ns"] == p["delay_ns"]
                        and plan["backward"][p["sender_seq"]]["dup"] == p["dup"]
                        and plan["backward"][p["sender_seq"]]["drop"] == (p["fate"] == "drop")
                        for p in bpk)
    check(same, "relay decisions are reproducible: record == --plan for seed %d" % SEED)

    # Injected delays are what was configured.
    def parts(cfg, p):
        hold = {"none": 0, "reorder": cfg["reorder-ms"], "late": cfg["late-ms"]}[p["hold"]] * 1e6
        return p["delay_ns"] - hold - cfg["delay"] * 1e6, p["jitter_ns"]
    ok = True
    for cfg, pk in ((FWD, fpk), (BWD, bpk)):
        for p in pk:
            if p["fate"] != "forward":
                continue
            rest, jit = parts(cfg, p)
            ok = ok and rest == jit and 0 <= jit <= cfg["jitter"] * 1e6
    check(ok, "relay delays = fixed + jitter in [0, J] + hold, for every packet")
    jit = [p["jitter_ns"] / 1e6 for p in fpk if p["fate"] == "forward"]
    mean_j, sigma = sum(jit) / len(jit), FWD["jitter"] / math.sqrt(12 * len(jit))
    check(abs(mean_j - FWD["jitter"] / 2) <= 4 * sigma,
          "relay forward jitter mean %.4f ms = %.1f +- 4 sigma (%.4f)"
          % (mean_j, FWD["jitter"] / 2, 4 * sigma))

    # The stateful reflector numbers the forward transmissions in the order the relay made them.
    mapping = all(p["seq"] < len(m["fwd_emitted"]) and
                  m["fwd_emitted"][p["seq"]]["seq"] == p["sender_seq"] for p in bpk)
    answered = {p["seq"] for p in bpk}
    due = [k for k, s in enumerate(fwd["sends"]) if s["sent_ns"] < m["end_ns"]]
    check(mapping and all(k in answered for k in due),
          "reflector seq k answers the relay's k-th forwarded probe (%d replies)" % len(bpk))

    # Coverage: every case this test is about happens in the run.
    e = m["exp"]
    cov = {"forward drops": fwd["dropped"], "backward drops": bwd["dropped"],
           "in-time duplicates": e["duplicates"] - e["late_dups"],
           "duplicates of late replies": e["late_dups"],
           "late from a forward hold": e["late_fwd_hold"],
           "late from a backward hold": e["late_bwd_hold"],
           "forward holds": fwd["held_reorder"], "backward holds": bwd["held_reorder"],
           "reordered": e["reordered"]}
    check(all(v >= 1 for v in cov.values()), "run covers every case: %s" % cov)
    natural = sum(1 for a, b in zip(m["fwd_emitted"], m["fwd_emitted"][1:])
                  if b["seq"] < a["seq"] and a["hold"] == "none" and b["hold"] == "none")
    check(natural >= 1, "forward jitter > probe gap reordered probes naturally (%d)" % natural)
    check(not m["ambiguous"], "no reply within %d ms of a timing boundary %s"
          % (MARGIN_NS / 1e6, m["ambiguous"][:5]))


def check_counts(rep, rec, m):
    e = m["exp"]
    for key in ("received", "late", "duplicates", "reordered", "lost"):
        check(rep[key] == e[key], "%s = %s (expected %d, exact)" % (key, rep[key], e[key]))
    if "max_reorder_extent" in rep:
        check(rep["max_reorder_extent"] == e["max_reorder_extent"],
              "max_reorder_extent = %s (expected %d, exact: RFC 4737 over the arrival order)"
              % (rep["max_reorder_extent"], e["max_reorder_extent"]))
    if "reordered_ratio" in rep:
        check(abs(rep["reordered_ratio"] - e["reordered"] / e["received"]) < 1e-9,
              "reordered_ratio = reordered / received")
    check(rep["sent"] == COUNT and rep["scheduled"] == COUNT and not rep["interrupted"],
          "sent = scheduled = %d, not interrupted" % COUNT)
    check(rep["outbound"]["lost"] == e["outbound_lost"] and rep["inbound"]["lost"] == e["inbound_lost"]
          and rep["roundtrip"]["lost"] == e["lost"],
          "loss split outbound %s / inbound %s / roundtrip %s (expected %d / %d / %d, exact)"
          % (rep["outbound"]["lost"], rep["inbound"]["lost"], rep["roundtrip"]["lost"],
             e["outbound_lost"], e["inbound_lost"], e["lost"]))
    # With the first and last reflector seqs through, the split is the relay's drops.
    if e["rseq_min"] == 0 and e["rseq_max"] == len(m["fwd_emitted"]) - 1:
        check(rep["outbound"]["lost"] == rec["forward"]["dropped"]
              and rep["inbound"]["lost"] == rec["backward"]["dropped"],
              "outbound lost == relay forward drops (%d), inbound lost == backward drops (%d)"
              % (rec["forward"]["dropped"], rec["backward"]["dropped"]))
    else:
        check(False, "seed %d: first/last reflector seq lost; pick another seed" % SEED)
    for d in ("outbound", "inbound", "roundtrip"):
        check(rep[d]["samples"] == e["received"] and rep[d]["negative"] == 0,
              "%s samples = received, no negative delay" % d)
    errs = rep["errors"]
    check(all(v == 0 for v in errs.values()), "no error counted: %s" % errs)
    check(rep["hops"] == {"forward": {"min": 1, "max": 1}, "backward": {"min": 1, "max": 1}},
          "one hop each way (the relay forwards with TTL - 1): %s" % rep["hops"])


def check_delays(rep, m):
    inj = m["inj"]
    sched = {"outbound": [v["fwd"] for v in inj.values()],
             "inbound": [v["bwd"] for v in inj.values()],
             "roundtrip": [v["fwd"] + v["bwd"] for v in inj.values()]}
    actual = {"outbound": [v["fwd_actual"] for v in inj.values()],
              "inbound": [v["bwd_actual"] for v in inj.values()],
              "roundtrip": [v["fwd_actual"] + v["bwd_actual"] for v in inj.values()]}

    def within(name, got, want, lo, hi):
        d = got - want
        return check(lo <= d <= hi, "%s %.1f us - %.1f us = %+.1f us in [%.0f, %.0f]"
                     % (name, got, want, d, lo, hi))

    def mean(v):
        return sum(v) / len(v)

    pct_seen = False
    for d in ("outbound", "inbound", "roundtrip"):
        r, sv, av = rep[d], sched[d], actual[d]
        lateness = mean(av) - mean(sv)  # the relay's own mean release lateness (and conversion)
        # Against what the relay actually did: only loopback hops remain (tight, load-proof).
        within(d + " avg - relay residence avg", r["avg_us"], mean(av), -EPS_US, TOL_HOP_AVG_US)
        within(d + " max - relay residence max", r["max_us"], max(av), -EPS_US, TOL_HOP_MAX_US)
        # Against what it was told to do: plus its measured lateness.
        within(d + " avg - injected avg", r["avg_us"], mean(sv), -EPS_US,
               lateness + TOL_HOP_AVG_US)
        within(d + " min - injected min", r["min_us"], min(sv), -EPS_US, TOL_MIN_US)
        pcts = report_percentiles(r)
        prev = r["min_us"]
        for q in sorted(pcts):
            pct_seen = True
            got = pcts[q]
            lo, _ = quantiles(sv, q)
            _, hi = quantiles(av, q)
            res = max(1.0, 0.005 * abs(got))
            if q == 50:
                check(lo - EPS_US - res <= got <= hi + TOL_P50_US + res,
                      "%s p50 %.1f us in [injected median %.1f - %g, residence median %.1f + %g] "
                      "(+-0.5%% resolution)" % (d, got, lo, EPS_US, hi, TOL_P50_US))
            else:
                check(got >= lo - EPS_US - res, "%s p%g %.1f us >= injected quantile %.1f us "
                      "(domination)" % (d, q, got, lo))
            check(prev - res <= got <= r["max_us"] + res, "%s p%g within min..max, ordered" % (d, q))
            prev = got
    check(pct_seen, "the report has percentiles (pNN_us / percentiles_us) to check against the relay")

    # Nominal: outbound ~ 20 ms + mean jitter (+ the holds among the in-time samples).
    n = len(sched["outbound"])
    holds = sum(FWD["reorder-ms"] * 1e3 for s in inj if m["by_seq"][s]["hold"] == "reorder")
    nominal = FWD["delay"] * 1e3 + FWD["jitter"] * 1e3 / 2 + holds / n
    four_sigma = 4 * FWD["jitter"] * 1e3 / math.sqrt(12 * n)
    lateness = mean(actual["outbound"]) - mean(sched["outbound"])
    within("outbound avg - nominal (20 ms + 1 ms mean jitter + holds)", rep["outbound"]["avg_us"],
           nominal, -EPS_US - four_sigma, lateness + TOL_HOP_AVG_US + four_sigma)
    within("inbound min - nominal 5 ms", rep["inbound"]["min_us"], BWD["delay"] * 1e3,
           -EPS_US, TOL_MIN_US)
    # roundtrip = outbound + inbound per sample (exact identity, up to float rounding).
    o, i, rt = rep["outbound"], rep["inbound"], rep["roundtrip"]
    check(abs(rt["avg_us"] - (o["avg_us"] + i["avg_us"])) < 0.01
          and rt["min_us"] >= o["min_us"] + i["min_us"] - 0.01
          and rt["max_us"] <= o["max_us"] + i["max_us"] + 0.01,
          "roundtrip avg = outbound avg + inbound avg; min/max bounded by the sums")


def check_per_reply(rep, log, m):
    samples, others = log
    check([(s[0], s[1]) for s in samples] == m["order"],
          "in-time replies handled in the order and with the reflector seqs the relay sent (%d)"
          % len(samples))
    check({s for s, st in others if st == STATUS_LATE} == m["late_set"]
          and sum(1 for _, st in others if st == STATUS_LATE) == len(m["late_set"]),
          "late replies are exactly the ones the relay held past the timeout %s"
          % sorted(m["late_set"])[:12])
    dups = {}
    for s, st in others:
        if st == STATUS_DUPLICATE:
            dups[s] = dups.get(s, 0) + 1
    check(dups == m["dups"], "duplicates per sequence number are the relay's extra copies")
    check(all(st in (STATUS_LATE, STATUS_DUPLICATE) for _, st in others),
          "no other reply status")
    inj = m["inj"]
    for name, col, key in (("outbound", 2, "fwd"), ("inbound", 3, "bwd")):
        for what, k in (("injected delay", key), ("relay residence", key + "_actual")):
            v = sorted(s[col] - inj[s[0]][k] for s in samples)
            check(v[0] >= -EPS_US, "%s - %s per reply >= -%g us (causality): min %.1f p50 %.1f "
                  "p90 %.1f p99 %.1f max %.1f us" % (name, what, EPS_US, v[0], v[len(v) // 2],
                                                      v[int(len(v) * 0.9)],
                                                      v[int(len(v) * 0.99)], v[-1]))
    # RFC 3550 jitter: exact bound from the per-reply overheads (see the docstring), in the order
    # the sender handled the replies; +2 us for the log's rounding.
    for name, col, key in (("outbound", 2, "fwd"), ("inbound", 3, "bwd")):
        got = [s[col] for s in samples]
        want = [inj[s[0]][key] for s in samples]
        ovh = [a - b for a, b in zip(got, want)]
        bound = ewma_jitter(ovh) + 2.0
        jw = ewma_jitter(want)
        check(abs(rep[name]["jitter_us"] - jw) <= bound,
              "%s jitter %.1f us vs injected %.1f us: |diff| <= %.1f us (bound from overheads)"
              % (name, rep[name]["jitter_us"], jw, bound))


def main():
    if len(sys.argv) != 3:
        print("usage: test_impairment.py TWAMP IMPAIR_RELAY")
        return 2
    twamp, relay = sys.argv[1], sys.argv[2]
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    except OSError:
        print("no IPv4 sockets: skipped")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="twamp-impair-")
    started = time.monotonic()
    try:
        record = os.path.join(tmp, "relay.json")
        sender_log = os.path.join(tmp, "sender.log")
        resp, rport = start_responder(twamp, tmp)
        rel, xport = start_relay(relay, rport, record)
        r = subprocess.run([twamp, "sender", "127.0.0.1:%d" % xport, "127.0.0.1:0",
                            "-c", str(COUNT), "-i", str(INTERVAL_MS), "--timeout", str(TIMEOUT_S),
                            "--json", "-v", "-l", sender_log],
                           capture_output=True, text=True, timeout=20)
        rc_relay = stop(rel)
        stop(resp, signal.SIGINT)
        check(r.returncode == 0, "sender exit status 0 (got %d; stderr %r)"
              % (r.returncode, r.stderr[-500:]))
        check(rc_relay == 0 and os.path.exists(record), "relay stopped by SIGTERM and wrote its record")
        rep = json.loads(r.stdout)
        with open(record) as f:
            rec = json.load(f)
        plan = json.loads(subprocess.run([relay, "--plan", str(COUNT), "--seed", str(SEED),
                                          *relay_flags()], capture_output=True, text=True,
                                         timeout=20).stdout)
        m = model(rec)
        print("expected from the relay's record: %s" % m["exp"])
        print("sender report: %s" % {k: rep[k] for k in ("sent", "received", "lost", "late",
                                                         "duplicates", "reordered")})
        check_relay(rec, plan, m)
        check_counts(rep, rec, m)
        check_delays(rep, m)
        log = parse_sender_log(sender_log)
        check(log is not None, "the sender's -v log has per-reply lines (\"Reply from ...\")")
        if log is not None:
            check_per_reply(rep, log, m)
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print("elapsed %.1f s" % (time.monotonic() - started))
    return finish()


if __name__ == "__main__":
    sys.exit(main())
