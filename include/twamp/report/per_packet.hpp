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
//
// With STAMP TLVs requested (--stamp --tlv ...), the overloads taking the stamp_tlv_request add
// columns for what came back, per requested TLV (tlv_columns()); a TLV the reflector did not
// process (U), or a reply whose TLVs were discarded (I) or cut short (M), leaves them empty. With
// none requested the header and rows are exactly the ones above.
#pragma once

#include "twamp/sender_session.hpp"
#include "twamp/stamp_tlvs.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

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
    case reply_status::extra:
        status = "extra";
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

// ---- STAMP TLV columns

namespace detail {

inline std::string num(unsigned long long v)
{
    return std::to_string(v);
}

// The columns of one requested TLV: names, and the cells of a report (empty when the reply did
// not carry it processed).
template <class F> void tlv_columns_each(const stamp_tlv_request& q, F&& f)
{
    using rep = stamp_tlv_report;
    f(!q.empty(), "tlv_unrecognised,tlv_malformed,tlv_integrity_failed",
      [](const rep& r) -> std::vector<std::string> {
          return {num(r.unrecognised), r.malformed ? "1" : "0", r.integrity_failed ? "1" : "0"};
      });
    f(q.location, "loc_src_port,loc_dst_port,loc_source,loc_destination",
      [](const rep& r) -> std::vector<std::string> {
          if (!r.location) return {"", "", "", ""};
          const auto& l = *r.location;
          return {num(l.source_port), num(l.destination_port), l.source ? to_string(*l.source) : "",
                  l.destination ? to_string(*l.destination) : ""};
      });
    f(q.timestamp_info, "ts_sync_in,ts_method_in,ts_sync_out,ts_method_out",
      [](const rep& r) -> std::vector<std::string> {
          if (!r.timestamps) return {"", "", "", ""};
          const auto& t = *r.timestamps;
          return {num(t.sync_in), num(t.method_in), num(t.sync_out), num(t.method_out)};
      });
    f(q.cos_dscp1.has_value(), "cos_dscp1,cos_dscp2,cos_ecn,cos_rp",
      [](const rep& r) -> std::vector<std::string> {
          if (!r.cos) return {"", "", "", ""};
          return {num(r.cos->dscp1), num(r.cos->dscp2), num(r.cos->ecn), num(r.cos->rp)};
      });
    f(q.direct_measurement, "dm_sender_tx,dm_reflector_rx,dm_reflector_tx",
      [](const rep& r) -> std::vector<std::string> {
          if (!r.direct) return {"", "", ""};
          return {num(r.direct->sender_tx), num(r.direct->reflector_rx),
                  num(r.direct->reflector_tx)};
      });
    f(q.access.has_value(), "access_id,access_return_code",
      [](const rep& r) -> std::vector<std::string> {
          if (!r.access) return {"", ""};
          return {num(r.access->id), num(r.access->return_code)};
      });
    f(q.follow_up, "fu_seq,fu_timestamp", [](const rep& r) -> std::vector<std::string> {
        if (!r.follow_up) return {"", ""};
        return {num(r.follow_up->seq), num(r.follow_up->timestamp)};
    });
    f(q.destination_node.has_value(), "dest_node", [](const rep& r) -> std::vector<std::string> {
        return {r.destination_node ? to_string(*r.destination_node) : ""};
    });
    f(q.return_path.has_value(), "rp_control_code,rp_return_address",
      [](const rep& r) -> std::vector<std::string> {
          if (!r.return_path) return {"", ""};
          const auto& p = *r.return_path;
          return {p.control_code ? num(*p.control_code) : "",
                  p.return_address ? to_string(*p.return_address) : ""};
      });
    f(q.micro_session.has_value(), "ms_sender_id,ms_reflector_id",
      [](const rep& r) -> std::vector<std::string> {
          if (!r.micro_session) return {"", ""};
          return {num(r.micro_session->sender_id), num(r.micro_session->reflector_id)};
      });
    f(q.reflected_control.has_value(), "rc_length,rc_count,rc_interval_ns,rc_exact",
      [](const rep& r) -> std::vector<std::string> {
          if (!r.reflected_control) return {"", "", "", ""};
          const auto& c = *r.reflected_control;
          return {num(c.length), num(c.count), num(c.interval_ns), c.exact ? "1" : "0"};
      });
}

// Appends the TLV cells to a row that ends in '\n'.
inline std::string with_tlv_cells(std::string row, const stamp_tlv_request& q,
                                  const stamp_tlv_report* r)
{
    if (row.empty() || q.empty()) return row;
    row.pop_back();
    tlv_columns_each(q, [&](bool on, const char* names, auto cells) {
        if (!on) return;
        if (r) {
            for (const auto& c : cells(*r))
                row += ',' + c;
        } else {
            for (const char* p = names; *p; ++p)
                if (*p == ',') row += ',';
            row += ',';
        }
    });
    row += '\n';
    return row;
}

} // namespace detail

// The header for a run asking for `q`: kPerPacketHeader when it asks for no TLV.
inline std::string per_packet_header(const stamp_tlv_request& q)
{
    std::string h = kPerPacketHeader;
    if (q.empty()) return h;
    h.pop_back();
    detail::tlv_columns_each(q, [&](bool on, const char* names, auto) {
        if (on) h += std::string(",") + names;
    });
    h += '\n';
    return h;
}

inline std::string per_packet_row(const reply_result& r, const stamp_tlv_request& q)
{
    return detail::with_tlv_cells(per_packet_row(r), q, r.tlvs ? &*r.tlvs : nullptr);
}

inline std::string per_packet_lost_row(std::uint32_t seq, nanoseconds t1,
                                       const stamp_tlv_request& q)
{
    return detail::with_tlv_cells(per_packet_lost_row(seq, t1), q, nullptr);
}

} // namespace twamp::report
