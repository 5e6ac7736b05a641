#!/usr/bin/python3
"""integration_scapy_stamp: scapy's STAMP layers (scapy.contrib.stamp, written independently of
this project) act as the Session-Sender; `twamp responder` must answer as RFC 8762 / RFC 8972 say.

Checked: SSID echoed; sender sequence number, timestamp, error estimate and TTL copied; reply as
long as the request; TLVs reflected, with U set on an unknown type and not on Extra Padding;
stateful reflector numbering 0,1,2... per (sender address, port, SSID); stateless echoing.

Skips (exit 77) when scapy is not importable.
Usage: test_scapy_stamp.py /path/to/twamp
"""
import socket
import struct
import time

import itlib
from itlib import check

import stamp_layers as sl
from stamp_layers import NTP_EPOCH

TTL = 77           # the test socket's IP TTL, which the reflector must report as Sender TTL
U_FLAG = 0x80      # RFC 8972 4.1: U is the most significant bit of the TLV flags octet
EXTRA_PADDING = 1  # RFC 8972 4.2
UNKNOWN_TYPE = 200


def request(seq, ssid=7, tlvs=()):
    """A scapy-built request with a recognisable sender error estimate (checked as copied)."""
    return sl.request(seq, ssid, tlvs, sl.ErrorEstimate(S=1, Z=0, scale=7, multiplier=42))


def decode_reply(data):
    return sl.Reflected(data)


class Peer:
    """A plain UDP socket on 127.0.0.1: one STAMP session (its address and port)."""

    def __init__(self, resp):
        self.dst = ("127.0.0.1", resp.port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(2.0)
        self.port = self.s.getsockname()[1]

    def exchange(self, data):
        self.s.sendto(data, self.dst)
        reply, src = self.s.recvfrom(70000)
        assert src == self.dst, "reply from %s" % (src,)
        return reply

    def close(self):
        self.s.close()


def check_copied(name, req, reply, peer):
    r = decode_reply(reply)
    check(len(reply) == len(req), "%s: reply length %d == request length %d" % (name, len(reply), len(req)))
    check(r.ssid == struct.unpack("!H", req[14:16])[0], "%s: SSID echoed (%d)" % (name, r.ssid))
    check(r.seq_sender == struct.unpack("!I", req[0:4])[0], "%s: sender sequence number copied" % name)
    check(reply[28:36] == req[4:12], "%s: sender timestamp copied" % name)
    check(reply[36:38] == req[12:14] and r.err_estimate_sender.S == 1 and r.err_estimate_sender.scale == 7
          and r.err_estimate_sender.multiplier == 42, "%s: sender error estimate copied" % name)
    check(r.ttl_sender == TTL, "%s: Sender TTL %d == our IP TTL %d" % (name, r.ttl_sender, TTL))
    check(r.mbz1 == 0 and r.mbz2 == 0, "%s: MBZ octets zero" % name)
    rx = r.fields["ts_rx"] / 2**32 - NTP_EPOCH
    check(abs(rx - time.time()) < 5, "%s: receive timestamp is now (NTP format)" % name)
    return r


def body(twamp):
    if not sl.AVAILABLE:
        print("SKIP: scapy.contrib.stamp not importable: %s" % sl.IMPORT_ERROR)
        return itlib.SKIP
    stateful = itlib.Responder(twamp, extra=["--format", "stamp"])
    auto = itlib.Responder(twamp, extra=["--format", "auto"])
    stateless = itlib.Responder(twamp, extra=["--format", "stamp", "--stateless"])
    peers = []
    try:
        for resp, label in ((stateful, "stamp"), (auto, "auto")):
            a, b = Peer(resp), Peer(resp)
            peers += [a, b]
            # Base packets: everything the reflector copies, and its own numbering. Two sessions
            # interleaved (two source ports) each count from 0; the sender's numbers start at 100
            # so that echoing them instead would show.
            seqs_a, seqs_b = [], []
            for i in range(5):
                for peer, seqs in ((a, seqs_a), (b, seqs_b)):
                    req = request(100 + i)
                    r = check_copied("%s base #%d port %d" % (label, i, peer.port), req, peer.exchange(req), peer)
                    seqs.append(r.seq)
            check(seqs_a == [0, 1, 2, 3, 4] and seqs_b == [0, 1, 2, 3, 4],
                  "%s: reflector numbers each session 0,1,2,... (%s, %s)" % (label, seqs_a, seqs_b))
            # Another SSID from the same address and port is another session (RFC 8972 3).
            req = request(500, ssid=8)
            r = check_copied("%s ssid 8" % label, req, a.exchange(req), a)
            check(r.seq == 0, "%s: a new SSID starts a new session at 0 (got %d)" % (label, r.seq))

            # RFC 8972 TLVs: Extra Padding is known and comes back as is, the unknown type comes
            # back with U set; both keep their values and offsets.
            tlvs = [sl.STAMPTestTLV(flags=0, type=EXTRA_PADDING, len=16, value=b"\x00" * 16),
                    sl.STAMPTestTLV(flags=0, type=UNKNOWN_TYPE, len=6, value=b"scapy!")]
            req = request(105, tlvs=tlvs)
            reply = a.exchange(req)
            r = check_copied("%s tlvs" % label, req, reply, a)
            check(r.seq == 5, "%s tlvs: session numbering goes on (got %d)" % (label, r.seq))
            got = r.tlv_objects
            check(len(got) == 2, "%s tlvs: two TLVs reflected (got %d)" % (label, len(got)))
            if len(got) == 2:
                pad, unk = got
                check(pad.type == EXTRA_PADDING and int(pad.flags) & U_FLAG == 0 and pad.value == b"\x00" * 16,
                      "%s tlvs: Extra Padding reflected without U (flags 0x%02x)" % (label, int(pad.flags)))
                check(unk.type == UNKNOWN_TYPE and int(unk.flags) == U_FLAG and unk.value == b"scapy!",
                      "%s tlvs: unknown type reflected with only U set (flags 0x%02x)" % (label, int(unk.flags)))
            check(reply[44:] == bytes([0]) + req[45:48 + 16] + bytes([U_FLAG]) + req[48 + 16 + 1:],
                  "%s tlvs: TLV octets identical apart from the U flag" % label)

            # A TLV whose Length runs past the end of the packet comes back with M (malformed).
            bad = sl.STAMPTestTLV(flags=0, type=UNKNOWN_TYPE, len=100, value=b"")
            req = request(106, tlvs=[bad]) + b"\x00" * 8
            reply = a.exchange(req)
            check(len(reply) == len(req) and reply[44] & 0x40 and reply[45:] == req[45:],
                  "%s: TLV overrunning the packet reflected with M set (flags 0x%02x)" % (label, reply[44]))

        # Stateless: the reflector's sequence number is the sender's.
        c = Peer(stateless)
        peers.append(c)
        seqs = []
        for s in (100, 101, 7, 4000000000):
            req = request(s)
            seqs.append(check_copied("stateless seq %d" % s, req, c.exchange(req), c).seq)
        check(seqs == [100, 101, 7, 4000000000], "stateless: sender sequence numbers echoed (%s)" % seqs)
    finally:
        for p in peers:
            p.close()
        for resp in (stateful, auto, stateless):
            check(resp.stop() == 0, "responder %s exits 0 on SIGINT" % resp.addr)


if __name__ == "__main__":
    itlib.main(body)
