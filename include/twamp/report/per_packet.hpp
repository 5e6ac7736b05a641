// twamp/report/per_packet.hpp — one CSV row per probe (--per-packet): sequence numbers, T1–T4 as
// integer ns since the Unix epoch, the derived delays (ns, sign kept), TTLs and the probe's status.
//
// Rows are formatted here (pure functions, no I/O); the tool writes them as replies come, so the
// file is complete up to the last packet whatever ends the run. Status:
//   ok         an in-time reply, in order
//   reordered  an in-time reply that came after a probe with a higher number (RFC 4737)
//   late       a reply after the loss timeout (T2/T3 and delays given when the probe was tracked)
//   duplicate  a further reply for an answered probe (delays empty)
//   lost       no reply within the loss timeout (written when that timeout passes; T1 only)
// Empty cells mean "unknown". A lost probe may later get a `late` row as well.
#pragma once

#include "twamp/sender_session.hpp"

#include <cstdint>
#include <cstdio>
#include <string>

namespace twamp::report {

inline constexpr const char* kPerPacketHeader =
    "sender_seq,reflector_seq,status,t1_ns,t2_ns,t3_ns,t4_ns,outbound_ns,inbound_ns,roundtrip_ns,"
    "sender_ttl,reply_ttl,reorder_extent\n";

// The row for a handled reply; empty for statuses that are not about one of our probes
// (malformed, unknown sequence, SSID mismatch).
inline std::string per_packet_row(const reply_result& r)
{
    const reply_sample& m = r.sample;
    const char* status = nullptr;
    bool timed = false;
    switch (r.status) {
    case reply_status::sample:
        status = r.reorder_extent ? "reordered" : "ok";
        timed = true;
        break;
    case reply_status::late:
        status = "late";
        timed = m.t4.count() != 0 && m.t1.count() != 0;
        break;
    case reply_status::duplicate:
        status = "duplicate";
        break;
    default:
        return {};
    }
    char buf[320];
    if (timed) {
        std::snprintf(buf, sizeof buf, "%u,%u,%s,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%s,%s,%llu\n",
                      m.sender_seq, m.reflector_seq, status, static_cast<long long>(m.t1.count()),
                      static_cast<long long>(m.t2.count()), static_cast<long long>(m.t3.count()),
                      static_cast<long long>(m.t4.count()), static_cast<long long>(m.outbound_ns),
                      static_cast<long long>(m.inbound_ns), static_cast<long long>(m.roundtrip_ns),
                      m.sender_ttl ? std::to_string(m.sender_ttl).c_str() : "",
                      m.reply_ttl ? std::to_string(m.reply_ttl).c_str() : "",
                      static_cast<unsigned long long>(r.reorder_extent));
    } else {
        std::snprintf(buf, sizeof buf, "%u,%u,%s,,,,,,,,,,\n", m.sender_seq, m.reflector_seq,
                      status);
    }
    return buf;
}

inline std::string per_packet_lost_row(std::uint32_t seq, nanoseconds t1)
{
    char buf[96];
    std::snprintf(buf, sizeof buf, "%u,,lost,%lld,,,,,,,,,\n", seq,
                  static_cast<long long>(t1.count()));
    return buf;
}

} // namespace twamp::report
