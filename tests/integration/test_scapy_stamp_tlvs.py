#!/usr/bin/python3
"""integration_scapy_stamp_tlvs: scapy's STAMP layers (scapy.contrib.stamp) send requests with each
RFC 8972 / RFC 9503 TLV, their values laid out here by hand from the RFC figures; `twamp
responder` must fill and flag them as RFC 8972 §4 says, and the reply must really leave with the
DSCP the Class of Service TLV asked for (read with IP_RECVTOS).

Checked per TLV: Location (ports and IPv4 addresses as seen, EUI-64 zero), Timestamp Information
(sync source matching the reply's S bit, software timestamps), Class of Service (DSCP2/ECN as
sent, RP 0, the reply's DS field = DSCP1), Direct Measurement (S_TxC kept, R_RxC/R_TxC counting
per session), Access Report (echoed; a bad ID gets U), Follow-Up Telemetry (the previous reply's
sequence number and its T3 exactly), Destination Node Address (ours: U clear; another: U),
Return Path (Control Code 0: no reply at all; SR-MPLS: U), a malformed CoS (M; the TLV after it
copied untouched), an unknown type (U), and U sent by the sender cleared on understood TLVs.

Skips (exit 77) when scapy is not importable.
Usage: test_scapy_stamp_tlvs.py /path/to/twamp
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile

import itlib
from itlib import check

import stamp_layers as sl

U, M, I = 0x80, 0x40, 0x20
TOS_SENT = 0x4A  # DSCP AF21 (18) and ECN ECT(0) (2) on our requests


def request(seq, tlvs, ssid=7):
    return sl.request(seq, ssid, tlvs)


def tlv(t, value, flags=U):
    """An RFC 8972 TLV as a sender writes it (U set, RFC 8972 §4)."""
    return sl.STAMPTestTLV(flags=flags, type=t, len=len(value), value=value)


class Peer:
    """A UDP socket on 127.0.0.1 that sends with TOS 0x4A and reads the reply's DS field."""

    def __init__(self, resp):
        self.dst = ("127.0.0.1", resp.port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, TOS_SENT)
        self.s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(2.0)
        self.port = self.s.getsockname()[1]
        self.sent, self.replies = [], []

    def exchange(self, data, timeout=2.0):
        """Returns (reply octets, reply TOS) or (None, None) when nothing comes in `timeout`."""
        self.s.settimeout(timeout)
        self.sent.append(data)
        self.s.sendto(data, self.dst)
        try:
            reply, anc, _flags, src = self.s.recvmsg(70000, socket.CMSG_SPACE(4))
        except socket.timeout:
            return None, None
        assert src == self.dst, "reply from %s" % (src,)
        self.replies.append(reply)
        tos = None
        for level, kind, payload in anc:
            if level == socket.IPPROTO_IP and kind == socket.IP_TOS and payload:
                tos = payload[0]
        return reply, tos

    def close(self):
        self.s.close()


def tlvs_of(reply):
    return sl.Reflected(reply).tlv_objects


def body(twamp):
    if not sl.AVAILABLE:
        print("SKIP: scapy.contrib.stamp not importable: %s" % sl.IMPORT_ERROR)
        return itlib.SKIP
    resp = itlib.Responder(twamp, extra=["--format", "stamp"])
    peer = Peer(resp)
    try:
        # Location with the generic Source MAC, Destination IP and Source IP sub-TLVs.
        loc = (bytes(4) + struct.pack("!BBH", 0, 1, 8) + bytes(8) + struct.pack("!BBH", 0, 4, 16) + bytes(16)
               + struct.pack("!BBH", 0, 7, 16) + bytes(16))
        reply, _ = peer.exchange(request(1, [tlv(2, loc)]))
        check(reply is not None, "Location: a reply")
        (t,) = tlvs_of(reply)
        v = bytes(t.value)
        check(int(t.flags) == 0 and t.type == 2 and t.len == len(loc), "Location: U/M/I clear, length kept (flags 0x%02x)" % int(t.flags))
        dport, sport = struct.unpack("!HH", v[0:4])
        check(dport == resp.port and sport == peer.port,
              "Location: ports as seen (%d->%d, want %d->%d)" % (sport, dport, peer.port, resp.port))
        check(v[4:8] == struct.pack("!BBH", 0, 3, 8) and v[8:16] == bytes(8),
              "Location: MAC answered with a zero EUI-64 sub-TLV (%s)" % v[4:16].hex())
        check(v[16:20] == struct.pack("!BBH", 0, 5, 16) and v[20:24] == socket.inet_aton("127.0.0.1"),
              "Location: Destination IPv4 sub-TLV 127.0.0.1 (%s)" % v[16:36].hex())
        check(v[36:40] == struct.pack("!BBH", 0, 8, 16) and v[40:44] == socket.inet_aton("127.0.0.1"),
              "Location: Source IPv4 sub-TLV 127.0.0.1 (%s)" % v[36:56].hex())

        # Timestamp Information.
        reply, _ = peer.exchange(request(2, [tlv(3, bytes(4))]))
        (t,) = tlvs_of(reply)
        synced = sl.Reflected(reply).err_estimate.S == 1
        want = bytes([1 if synced else 5, 2, 1 if synced else 5, 2])
        check(int(t.flags) == 0 and bytes(t.value) == want,
              "Timestamp Information: %s (want %s)" % (bytes(t.value).hex(), want.hex()))

        # Class of Service: DSCP1 = EF (46); we send AF21 + ECT(0).
        reply, tos = peer.exchange(request(3, [tlv(4, bytes([46 << 2, 0, 0, 0]))]))
        (t,) = tlvs_of(reply)
        v = bytes(t.value)
        dscp1, dscp2, ecn, rp = v[0] >> 2, (v[0] & 3) << 4 | v[1] >> 4, (v[1] >> 2) & 3, v[1] & 3
        check(int(t.flags) == 0 and (dscp1, dscp2, ecn, rp) == (46, 18, 2, 0),
              "Class of Service: DSCP1 46, DSCP2 18, ECN 2, RP 0 (got %d %d %d %d)" % (dscp1, dscp2, ecn, rp))
        check(tos is not None and tos >> 2 == 46, "Class of Service: the reply left with DSCP 46 (TOS %r)" % tos)

        # Direct Measurement, twice in one session: the reflector's counters go 1,1 then 2,2 on
        # a new SSID (a new session).
        counts = []
        for seq in (10, 11):
            reply, _ = peer.exchange(request(seq, [tlv(5, struct.pack("!III", seq, 0, 0))], ssid=21))
            (t,) = tlvs_of(reply)
            counts.append(struct.unpack("!III", bytes(t.value)))
        check(counts == [(10, 1, 1), (11, 2, 2)], "Direct Measurement: S_TxC kept, R_RxC/R_TxC count (%s)" % counts)

        # Access Report: echoed; ID 3 is not a valid access network: U.
        reply, _ = peer.exchange(request(12, [tlv(6, bytes([0x20, 1, 0, 0])), tlv(6, bytes([0x30, 1, 0, 0]))]))
        good, bad = tlvs_of(reply)
        check(int(good.flags) == 0 and bytes(good.value) == bytes([0x20, 1, 0, 0]), "Access Report: echoed, U clear")
        check(int(bad.flags) == U, "Access Report with ID 3: U (flags 0x%02x)" % int(bad.flags))

        # Follow-Up Telemetry: reply n+1 reports reply n's sequence number and T3.
        reply1, _ = peer.exchange(request(13, [tlv(7, bytes(16))], ssid=30))
        reply2, _ = peer.exchange(request(14, [tlv(7, bytes(16))], ssid=30))
        r1 = sl.Reflected(reply1)
        (t1,) = r1.tlv_objects
        (t2,) = tlvs_of(reply2)
        check(bytes(t1.value) == bytes(16), "Follow-Up: zero on a session's first reply (%s)" % bytes(t1.value).hex())
        seq, ts, mode = struct.unpack("!IQB", bytes(t2.value)[:13])
        # The send time is the reply's T3, or the kernel's send stamp of that reply where the
        # transport reads one (SO_TIMESTAMPING): taken after T3 was written, so never before it.
        check(seq == r1.seq and ts >= struct.unpack("!Q", reply1[4:12])[0] and mode == 2,
              "Follow-Up: previous seq %d and T3 %x, SW local (got %d %x %d)"
              % (r1.seq, struct.unpack("!Q", reply1[4:12])[0], seq, ts, mode))

        # Destination Node Address: ours (the address the request came to), then another.
        reply, _ = peer.exchange(request(15, [tlv(9, socket.inet_aton("127.0.0.1")),
                                              tlv(9, socket.inet_aton("192.0.2.1"))]))
        ours, other = tlvs_of(reply)
        check(int(ours.flags) == 0 and int(other.flags) == U,
              "Destination Node Address: ours U clear, 192.0.2.1 U (0x%02x, 0x%02x)" % (int(ours.flags), int(other.flags)))

        # Return Path: an SR-MPLS label stack cannot be pushed by a host: U; Control Code 0: no
        # reply at all (nothing within 0.5 s), the session still answers afterwards.
        reply, _ = peer.exchange(request(16, [tlv(10, struct.pack("!BBHI", 0, 3, 4, 0x00010140))]))
        (t,) = tlvs_of(reply)
        check(int(t.flags) == U and bytes(t.value)[0] == U, "Return Path SR-MPLS: U on the TLV and the sub-TLV")
        reply, _ = peer.exchange(request(17, [tlv(10, struct.pack("!BBHI", 0, 1, 4, 0))]), timeout=0.5)
        check(reply is None, "Return Path Control Code 0: no reply")
        reply, _ = peer.exchange(request(18, []))
        check(reply is not None, "after a no-reply request the reflector still answers")

        # A malformed CoS (Length 3) gets M; the Timestamp Information after it is copied as sent.
        req = request(19, [tlv(4, bytes(3)), tlv(3, bytes(4))])
        reply, _ = peer.exchange(req)
        check(reply[44] == M and reply[51:] == req[51:],
              "malformed CoS: M, the rest copied untouched (flags 0x%02x)" % reply[44])

        # An unknown type: U and value kept; U sent on Extra Padding is cleared.
        reply, _ = peer.exchange(request(20, [tlv(1, bytes(8)), tlv(200, b"scapy!", flags=0)]))
        pad, unk = tlvs_of(reply)
        check(int(pad.flags) == 0 and int(unk.flags) == U and bytes(unk.value) == b"scapy!",
              "Extra Padding U cleared, unknown type U (0x%02x, 0x%02x)" % (int(pad.flags), int(unk.flags)))

        # RFC 9534 Micro-session ID (11) and the Reflected Test Packet Control TLV (12): scapy 2.5's
        # contrib.stamp has no layer for either, so scapy builds them as generic TLVs from raw
        # value octets. Without configuration both are unsupported here: U, values as sent.
        ms = struct.pack("!HH", 0x1234, 0)
        rc = struct.pack("!HHI", 200, 2, 1000)
        reply, _ = peer.exchange(request(21, [tlv(11, ms), tlv(12, rc)]))
        t11, t12 = tlvs_of(reply)
        check(int(t11.flags) == U and bytes(t11.value) == ms and int(t12.flags) == U
              and bytes(t12.value) == rc and len(reply) == 44 + 8 + 12,
              "Micro-session ID and Reflected Test Packet Control unconfigured: U, one plain reply")
        lag_and_asymmetry(twamp)

        policy_flags(twamp, loc)
        our_sender(twamp, resp)
        scapy_reads_our_probes(twamp)
        if not tshark_check(peer, resp):
            print("SKIP: tshark is not installed (tools/install-deps.sh installs it)")
            return itlib.SKIP
    finally:
        peer.close()
        check(resp.stop() == 0, "responder exits 0 on SIGINT")


def lag_and_asymmetry(twamp):
    """A responder with a member-link ID and the Reflected Test Packet Control TLV enabled."""
    resp = itlib.Responder(twamp, extra=["--format", "stamp", "--tlv-micro-session-id", "5",
                                         "--tlv-reflected-control",
                                         "--tlv-reflected-control-max-octets", "300"])
    peer = Peer(resp)
    try:
        reply, _ = peer.exchange(request(1, [tlv(11, struct.pack("!HH", 0x1234, 0))]))
        (t,) = tlvs_of(reply)
        check(int(t.flags) == 0 and bytes(t.value) == struct.pack("!HH", 0x1234, 5),
              "Micro-session ID: Sender ID kept, Reflector ID 5 (%s)" % bytes(t.value).hex())
        reply, _ = peer.exchange(request(2, [tlv(11, struct.pack("!HH", 0x1234, 6))]), timeout=0.5)
        check(reply is None, "Micro-session ID naming member 6: discarded")
        # 200 octets asked: the reply is padded with an Extra Padding TLV that scapy decodes.
        reply, _ = peer.exchange(request(3, [tlv(12, struct.pack("!HHI", 200, 1, 0))]))
        t12, pad = tlvs_of(reply)
        check(len(reply) == 200 and int(t12.flags) == 0 and pad.type == 1 and pad.len == 200 - 56 - 4,
              "Reflected Test Packet Control: one reply of 200 octets (%d)" % len(reply))
        # 1000 octets asked, 300 allowed: 300 and C.
        reply, _ = peer.exchange(request(4, [tlv(12, struct.pack("!HHI", 1000, 1, 0))]))
        check(len(reply) == 300 and reply[44] == 0x10,
              "Reflected Test Packet Control over the cap: 300 octets, C (%d, 0x%02x)" % (len(reply), reply[44]))
    finally:
        peer.close()
        check(resp.stop() == 0, "LAG/asymmetry responder exits 0")


def policy_flags(twamp, loc):
    """--tlv-permit-dscp and --tlv-hide-location: the responder's TLV policy."""
    resp = itlib.Responder(twamp, extra=["--format", "stamp", "--tlv-permit-dscp", "af21,cs1",
                                         "--tlv-hide-location"])
    peer = Peer(resp)
    try:
        reply, tos = peer.exchange(request(1, [tlv(4, bytes([46 << 2, 0, 0, 0]))]))
        v = bytes(tlvs_of(reply)[0].value)
        check(v[1] & 3 == 1 and tos is not None and tos >> 2 == 18,
              "--tlv-permit-dscp af21,cs1: EF refused (RP 1), the reply keeps AF21 (TOS %r)" % tos)
        reply, tos = peer.exchange(request(2, [tlv(4, bytes([8 << 2, 0, 0, 0]))]))
        v = bytes(tlvs_of(reply)[0].value)
        check(v[1] & 3 == 0 and tos is not None and tos >> 2 == 8,
              "--tlv-permit-dscp af21,cs1: CS1 granted (TOS %r)" % tos)
        reply, _ = peer.exchange(request(3, [tlv(2, loc)]))
        t = tlvs_of(reply)[0]
        v = bytes(t.value)
        check(int(t.flags) == 0 and v[0:4] == bytes(4) and v[20:24] == bytes(4) and v[40:44] == bytes(4),
              "--tlv-hide-location: ports and addresses reported as zeros (%s)" % v.hex())
    finally:
        peer.close()
        check(resp.stop() == 0, "policy responder exits 0")
    bad = itlib.run([twamp, "responder", "127.0.0.1:0", "--tlv-permit-dscp", "ef,bogus"], timeout=10)
    check(bad.returncode == 2 and "--tlv-permit-dscp" in bad.stderr,
          "--tlv-permit-dscp ef,bogus: exit 2 naming the flag (%r)" % bad.stderr.strip())


def our_sender(twamp, resp):
    """`twamp sender --tlv ...` against the responder: the JSON report carries what came back."""
    argv = [twamp, "sender", "--stamp", "--ssid", "5", "-c", "20", "-i", "5", "--json",
            "--tlv", "location", "--tlv", "timestamp-info", "--tlv", "cos=ef",
            "--tlv", "direct-measurement", "--tlv", "follow-up", "--tlv", "access=3gpp:unavailable",
            "127.0.0.1:%d" % resp.port, "127.0.0.1:0"]
    r = itlib.run(argv, timeout=30)
    check(r.returncode == 0, "sender --tlv: exit 0 (%d: %s)" % (r.returncode, r.stderr.strip()[:300]))
    if r.returncode != 0:
        return
    j = json.loads(r.stdout)
    t = j.get("tlvs") or {}
    check(j["received"] == 20 and t.get("replies") == 20 and t.get("unrecognised") == 0 and t.get("malformed") == 0,
          "sender --tlv: 20 replies read, nothing unrecognised or malformed (%s)" % {k: t.get(k) for k in ("replies", "unrecognised", "malformed")})
    loc = t.get("location") or {}
    check(loc.get("source") == "127.0.0.1" and loc.get("source_port") == j["sender"]["port"]
          and loc.get("destination") == "127.0.0.1" and loc.get("destination_port") == resp.port
          and loc.get("changes") == 0, "sender --tlv: Location is our address and port as the reflector saw them (%s)" % loc)
    cos = t.get("class_of_service") or {}
    check(cos.get("dscp_requested") == 46 and cos.get("dscp_at_reflector") == 0 and cos.get("reverse_refused") == 0,
          "sender --tlv: Class of Service EF requested, DSCP 0 arrived, granted (%s)" % cos)
    dm = t.get("direct_measurement") or {}
    check(dm == {"sender_tx": 20, "reflector_rx": 20, "reflector_tx": 20},
          "sender --tlv: Direct Measurement counters of the last probe 20/20/20 (%s)" % dm)
    fu = t.get("follow_up") or {}
    check(fu.get("with_timestamp") == 19 and fu.get("last_method") == 2,
          "sender --tlv: 19 Follow-Up send times (the first reply has none) (%s)" % fu)
    check(t.get("access_report") == {"id": 1, "return_code": 2}, "sender --tlv: Access Report echoed (%s)" % t.get("access_report"))
    ts = t.get("timestamp_info") or {}
    check(ts.get("method_in") == 2 and ts.get("method_out") == 2, "sender --tlv: Timestamp Information, SW local (%s)" % ts)
    bad = itlib.run([twamp, "sender", "--stamp", "--tlv", "cos=bogus", "127.0.0.1:9"], timeout=10)
    check(bad.returncode == 2 and "--tlv" in bad.stderr, "sender --tlv cos=bogus: exit 2 naming --tlv (%r)" % bad.stderr.strip())
    bad = itlib.run([twamp, "sender", "--tlv", "location", "127.0.0.1:9"], timeout=10)
    check(bad.returncode == 2 and "--tlv" in bad.stderr and "--stamp" in bad.stderr,
          "sender --tlv without --stamp: exit 2 (%r)" % bad.stderr.strip())


def scapy_reads_our_probes(twamp):
    """scapy decodes every TLV our sender writes: types, lengths and the U flag RFC 8972 §4 asks
    of a sender, zeros where the reflector fills in."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(5.0)
    port = sink.getsockname()[1]
    argv = [twamp, "sender", "--stamp", "--ssid", "9", "-c", "1", "--timeout", "0.2", "--padding", "8",
            "--tlv", "location", "--tlv", "timestamp-info", "--tlv", "cos=af41", "--tlv", "direct-measurement",
            "--tlv", "access=non3gpp:available", "--tlv", "follow-up", "--tlv", "dest-node=192.0.2.9",
            "--tlv", "return-address=198.51.100.1", "--tlv", "mpls=16,17",
            "--tlv", "micro-session=4660:7", "--tlv", "reflected-control=300,3,250",
            "127.0.0.1:%d" % port, "127.0.0.1:0"]
    proc = itlib.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        data, _ = sink.recvfrom(70000)
    except socket.timeout:
        data = None
    finally:
        itlib.stop(proc)
        sink.close()
    check(data is not None, "our probe reached the scapy side")
    if data is None:
        return
    p = sl.Probe(data)
    got = [(int(t.flags), int(t.type), int(t.len)) for t in p.tlv_objects]
    want = [(U, 2, 56), (U, 3, 4), (U, 4, 4), (U, 5, 12), (U, 6, 4), (U, 7, 16), (U, 9, 4), (U, 10, 20),
            (U, 11, 4), (U, 12, 8), (0, 1, 4)]
    check(got == want, "scapy decodes our TLVs: %s (want %s)" % (got, want))
    check(p.ssid == 9, "scapy: SSID 9 (got %d)" % p.ssid)
    vals = {int(t.type): bytes(t.value) for t in p.tlv_objects}
    if got == want:
        check(vals[4] == bytes([34 << 2, 0, 0, 0]), "scapy: CoS DSCP1 AF41 (34), the rest zero (%s)" % vals[4].hex())
        check(vals[5] == struct.pack("!III", 1, 0, 0), "scapy: Direct Measurement S_TxC 1 (%s)" % vals[5].hex())
        check(vals[6] == bytes([0x20, 1, 0, 0]), "scapy: Access Report non-3GPP, available (%s)" % vals[6].hex())
        check(vals[7] == bytes(16) and vals[3] == bytes(4), "scapy: Follow-Up and Timestamp Information zero")
        check(vals[9] == socket.inet_aton("192.0.2.9"), "scapy: Destination Node Address 192.0.2.9")
        check(vals[10] == struct.pack("!BBH", 0, 2, 4) + socket.inet_aton("198.51.100.1")
              + struct.pack("!BBHII", 0, 3, 8, 16 << 12 | 255, 17 << 12 | 1 << 8 | 255),
              "scapy: Return Path with the address and the label stack 16, 17 (S on the last) (%s)" % vals[10].hex())
        # scapy 2.5 has no layer for types 11 and 12: the generic TLV's value octets are read here.
        check(vals[11] == struct.pack("!HH", 4660, 7), "scapy: Micro-session ID 4660, reflector 7 (%s)" % vals[11].hex())
        check(vals[12] == struct.pack("!HHI", 300, 3, 250000),
              "scapy: Reflected Test Packet Control 300 octets, 3 replies, 250 us (%s)" % vals[12].hex())


def tshark_check(peer, resp):
    """tshark 4.0 has no STAMP dissector and dissects no TLV: it reads STAMP as TWAMP-Test with
    the TLVs as Packet Padding. Every request and reply above, written to a pcap, must decode so
    with no malformed-packet mark, the padding being exactly the octets after the base."""
    if shutil.which("tshark") is None:
        return False
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap
    frames = [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=peer.port, dport=resp.port) / d
              for d in peer.sent]
    frames += [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=resp.port, dport=peer.port) / d
               for d in peer.replies]
    with tempfile.TemporaryDirectory() as tmp:
        pcap = os.path.join(tmp, "stamp-tlvs.pcap")
        wrpcap(pcap, frames)
        out = subprocess.run(
            ["tshark", "-r", pcap, "-d", "udp.port==%d,twamp.test" % resp.port, "-T", "fields",
             "-E", "separator=;", "-e", "frame.number", "-e", "_ws.malformed", "-e", "twamp.test.padding"],
            capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "tshark reads the pcap (%s)" % out.stderr.strip()[:200])
    lines = [l.split(";") for l in out.stdout.splitlines() if l.strip()]
    check(len(lines) == len(frames), "tshark: %d frames (want %d)" % (len(lines), len(frames)))
    payloads = peer.sent + peer.replies
    for (num, malformed, padding), data in zip(lines, payloads):
        check(malformed == "", "tshark: frame %s not malformed" % num)
        # Requests: the sender base is 14 octets to TWAMP-Test, so everything after it is
        # "padding"; replies: 41. Either way the TLV octets are inside.
        tlv_octets = data[44:].hex()
        check(tlv_octets in padding.replace(":", ""), "tshark: frame %s carries the TLVs as padding" % num)
    return True


if __name__ == "__main__":
    itlib.main(body)
