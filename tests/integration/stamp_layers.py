"""scapy's STAMP layers (scapy.contrib.stamp, written independently of this project) as the
integration tests use them: an independent peer that builds and decodes STAMP packets.

scapy 2.5's layers size their TLV list from the UDP header (`pkt.parent.len`), which is not
there when a payload is dissected on its own, so any packet with TLVs fails to dissect.
`Reflected` and `Probe` keep every field and let the TLV list run to the end of the data.
`AVAILABLE` is False (and `IMPORT_ERROR` says why) when scapy cannot be imported.
"""
import time

NTP_EPOCH = 2208988800

try:
    from scapy.contrib.stamp import (ErrorEstimate, STAMPSessionReflectorTestUnauthenticated,
                                     STAMPSessionSenderTestUnauthenticated, STAMPTestTLV)
    from scapy.fields import PacketListField
    AVAILABLE, IMPORT_ERROR = True, None
except ImportError as e:
    AVAILABLE, IMPORT_ERROR = False, e

if AVAILABLE:
    class Reflected(STAMPSessionReflectorTestUnauthenticated):
        name = "STAMP Session-Reflector Test (TLVs to the end)"
        fields_desc = STAMPSessionReflectorTestUnauthenticated.fields_desc[:-1] + [
            PacketListField("tlv_objects", [], STAMPTestTLV)]

    class Probe(STAMPSessionSenderTestUnauthenticated):
        name = "STAMP Session-Sender Test (TLVs to the end)"
        fields_desc = STAMPSessionSenderTestUnauthenticated.fields_desc[:-1] + [
            PacketListField("tlv_objects", [], STAMPTestTLV)]


def request(seq, ssid=7, tlvs=(), err=None):
    """Wire octets of a STAMP Session-Sender test packet built by scapy, stamped now."""
    if err is None:
        err = ErrorEstimate(S=0, Z=0, scale=0, multiplier=1)
    p = STAMPSessionSenderTestUnauthenticated(seq=seq, ts=time.time() + NTP_EPOCH, err_estimate=err,
                                              ssid=ssid, tlv_objects=list(tlvs))
    return bytes(p)
