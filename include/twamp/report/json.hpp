// twamp/report/json.hpp — the session report as one JSON object, and one object per interval
// (schema: docs/report.schema.json, described in README.md). Durations are microseconds as
// floating point, never rounded; a delay key is null when its direction has no sample.
#pragma once

#include "twamp/intervals.hpp"
#include "twamp/report/info.hpp"
#include "twamp/stats.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace twamp::report {

// 2: percentiles, stddev, IPDV, PDV, clock state per one-way direction, schedule, intervals.
inline constexpr int kJsonSchemaVersion = 2;

namespace detail {
inline nlohmann::json us(double ns)
{
    return ns / 1e3;
}

inline nlohmann::json percentiles_json(const delay_stats& d, const std::vector<double>& pcts)
{
    nlohmann::json j = nlohmann::json::object();
    for (double p : pcts)
        j[percentile_label(p)] = d.count() ? us(d.percentile(p)) : nlohmann::json(nullptr);
    return j;
}

// The fixed percentile keys every direction carries.
template <class Get> void fixed_percentiles(nlohmann::json& j, bool have, Get get)
{
    static constexpr std::pair<const char*, double> keys[] = {
        {"p50_us", 50}, {"p90_us", 90}, {"p95_us", 95}, {"p99_us", 99}, {"p999_us", 99.9}};
    for (const auto& [k, p] : keys)
        j[k] = have ? us(get(p)) : nlohmann::json(nullptr);
}
} // namespace detail

inline nlohmann::json direction_json(const delay_stats& d, std::uint64_t lost, double loss_pct)
{
    nlohmann::json j;
    j["samples"] = d.count();
    if (d.count()) {
        j["min_us"] = static_cast<double>(d.min()) / 1e3;
        j["max_us"] = static_cast<double>(d.max()) / 1e3;
        j["avg_us"] = d.mean() / 1e3;
        j["jitter_us"] = d.jitter() / 1e3;
    } else {
        j["min_us"] = j["max_us"] = j["avg_us"] = j["jitter_us"] = nullptr;
    }
    j["lost"] = lost;
    j["loss_pct"] = loss_pct;
    j["negative"] = d.negative();
    return j;
}

// direction_json plus the distribution: percentiles, stddev, PDV, P95-P50 and IPDV.
inline nlohmann::json direction_json(const delay_stats& d, const delay_stats& ipdv,
                                     std::uint64_t lost, double loss_pct, const report_options& o)
{
    nlohmann::json j = direction_json(d, lost, loss_pct);
    const bool have = d.count() > 0;
    detail::fixed_percentiles(j, have, [&](double p) { return d.percentile(p); });
    j["percentiles_us"] = detail::percentiles_json(d, o.percentiles);
    j["stddev_us"] = have ? detail::us(d.stddev()) : nlohmann::json(nullptr);
    j["pdv_us"] = have ? detail::us(d.pdv()) : nlohmann::json(nullptr);
    j["p95_p50_us"] = have ? detail::us(d.p95_p50()) : nlohmann::json(nullptr);
    nlohmann::json v;
    v["samples"] = ipdv.count();
    const bool hv = ipdv.count() > 0;
    v["mean_us"] = hv ? detail::us(ipdv.mean()) : nlohmann::json(nullptr);
    v["min_us"] = hv ? detail::us(static_cast<double>(ipdv.min())) : nlohmann::json(nullptr);
    v["max_us"] = hv ? detail::us(static_cast<double>(ipdv.max())) : nlohmann::json(nullptr);
    detail::fixed_percentiles(v, hv, [&](double p) { return ipdv.percentile(p); });
    v["percentiles_us"] = detail::percentiles_json(ipdv, o.percentiles);
    j["ipdv"] = v;
    return j;
}

inline nlohmann::json summary_json(const delay_summary& d)
{
    nlohmann::json j;
    j["samples"] = d.count;
    const bool have = d.count > 0;
    auto v = [&](double ns) { return have ? detail::us(ns) : nlohmann::json(nullptr); };
    j["min_us"] = v(static_cast<double>(d.min));
    j["max_us"] = v(static_cast<double>(d.max));
    j["avg_us"] = v(d.mean);
    j["jitter_us"] = v(d.jitter);
    j["stddev_us"] = v(d.stddev);
    j["p5_us"] = v(d.p5);
    j["p50_us"] = v(d.p50);
    j["p90_us"] = v(d.p90);
    j["p95_us"] = v(d.p95);
    j["p99_us"] = v(d.p99);
    j["p999_us"] = v(d.p999);
    nlohmann::json p = nlohmann::json::object();
    for (const auto& [pct, ns] : d.percentiles)
        p[percentile_label(pct)] = v(ns);
    j["percentiles_us"] = p;
    return j;
}

// One interval; `start_s`/`end_s` count from the start of the session.
// What the reflected STAMP extension TLVs said (session_stats::tlv); null when none came back.
inline nlohmann::json tlvs_json(const stamp_tlv_stats& t)
{
    if (t.replies == 0) return nullptr;
    nlohmann::json j{{"replies", t.replies},
                     {"unrecognised", t.unrecognised},
                     {"malformed", t.malformed},
                     {"integrity_failed", t.integrity_failed}};
    auto addr = [](const std::optional<tlv_address>& a) {
        return a ? nlohmann::json(to_string(*a)) : nlohmann::json(nullptr);
    };
    // An optional TLV value as an object, or null.
    auto field = [](const auto& v, auto&& make) {
        return v ? nlohmann::json(make(*v)) : nlohmann::json(nullptr);
    };
    j["location"] = field(t.location, [&](const stamp_tlv_report::location_info& l) {
        return nlohmann::json{{"source", addr(l.source)},
                              {"source_port", l.source_port},
                              {"destination", addr(l.destination)},
                              {"destination_port", l.destination_port},
                              {"changes", t.location_changes}};
    });
    j["timestamp_info"] = field(t.timestamps, [](const stamp_tlv_report::timestamp_info& x) {
        return nlohmann::json{{"sync_in", x.sync_in},
                              {"method_in", x.method_in},
                              {"sync_out", x.sync_out},
                              {"method_out", x.method_out}};
    });
    j["class_of_service"] = field(t.cos, [&](const stamp_tlv_report::cos_info& c) {
        return nlohmann::json{{"dscp_requested", c.dscp1},
                              {"dscp_at_reflector", c.dscp2},
                              {"ecn_at_reflector", c.ecn},
                              {"reverse_refused", t.cos_reverse_refused}};
    });
    j["direct_measurement"] = field(t.direct, [](const stamp_tlv_report::direct_info& d) {
        return nlohmann::json{{"sender_tx", d.sender_tx},
                              {"reflector_rx", d.reflector_rx},
                              {"reflector_tx", d.reflector_tx}};
    });
    j["access_report"] = field(t.access, [](const stamp_tlv_report::access_info& a) {
        return nlohmann::json{{"id", a.id}, {"return_code", a.return_code}};
    });
    j["follow_up"] = field(t.follow_up, [&](const stamp_tlv_report::follow_up_info& f) {
        return nlohmann::json{
            {"with_timestamp", t.follow_ups}, {"last_seq", f.seq}, {"last_method", f.method}};
    });
    j["destination_node"] = addr(t.destination_node);
    j["micro_session"] = field(t.micro_session, [&](const stamp_tlv_report::micro_session_info& m) {
        return nlohmann::json{{"sender_id", m.sender_id},
                              {"reflector_id", m.reflector_id},
                              {"mismatches", t.micro_session_mismatch}};
    });
    j["reflected_control"] =
        field(t.reflected_control, [&](const stamp_tlv_report::reflected_control_info& r) {
            return nlohmann::json{{"length", r.length},
                                  {"count", r.count},
                                  {"interval_ns", r.interval_ns},
                                  {"exact", r.exact},
                                  {"clamped", t.reflected_control_clamped}};
        });
    return j;
}

// Where T1-T4 came from: per timestamp, the in-time samples per source, and the kernel's send
// time against the user-space read (T1); null when the report does not know.
inline nlohmann::json timestamps_json(const session_info& info)
{
    if (!info.timestamps_known) return nullptr;
    nlohmann::json sources;
    static constexpr const char* names[4] = {"t1", "t2", "t3", "t4"};
    for (std::size_t t = 0; t < 4; ++t) {
        nlohmann::json per;
        for (std::size_t k = 0; k < kTimestampSources; ++k)
            per[to_string(static_cast<timestamp_source>(k))] = info.timestamp_sources.n[t][k];
        sources[names[t]] = per;
    }
    nlohmann::json diff = nullptr;
    if (info.t1_kernel_stamps)
        diff = {{"samples", info.t1_kernel_stamps},
                {"p50_ns", info.t1_kernel_minus_user_p50_ns},
                {"p99_ns", info.t1_kernel_minus_user_p99_ns},
                {"max_ns", info.t1_kernel_minus_user_max_ns}};
    return {{"requested", info.timestamping_requested},
            {"t1_enabled", info.timestamping_enabled},
            {"note", info.timestamping_note.empty() ? nlohmann::json(nullptr)
                                                    : nlohmann::json(info.timestamping_note)},
            {"sources", sources},
            {"t1_kernel_minus_user", diff},
            {"t1_stamps_after_reply", info.t1_stamps_after_reply},
            {"t1_stamps_missing", info.t1_stamps_missing}};
}

inline nlohmann::json interval_json(const interval_summary& b, std::int64_t period_ns)
{
    nlohmann::json j;
    j["index"] = b.index;
    j["start_s"] = static_cast<double>(b.index) * static_cast<double>(period_ns) / 1e9;
    j["end_s"] = static_cast<double>(b.index + 1) * static_cast<double>(period_ns) / 1e9;
    j["start_time_ns"] = b.start_ns;
    j["sent"] = b.sent;
    j["received"] = b.received;
    j["lost"] = b.lost();
    j["loss_pct"] = b.loss_pct();
    j["late"] = b.late;
    j["duplicates"] = b.duplicates;
    j["reordered"] = b.reordered;
    j["closed_early"] = b.closed_early;
    j["outbound"] = summary_json(b.outbound);
    j["inbound"] = summary_json(b.inbound);
    j["roundtrip"] = summary_json(b.roundtrip);
    return j;
}

inline nlohmann::json to_json(const session_stats& s, const session_info& info,
                              const report_options& o = {},
                              const std::vector<interval_summary>& intervals = {})
{
    nlohmann::json j;
    j["schema_version"] = kJsonSchemaVersion;
    j["mode"] = info.mode;
    if (info.mode == "stamp") j["ssid"] = info.ssid;
    j["sender"] = {{"address", info.sender_address}, {"port", info.sender_port}};
    j["reflector"] = {{"address", info.reflector_address}, {"port", info.reflector_port}};
    j["scheduled"] = info.scheduled;
    j["requested"] = info.requested ? info.requested : info.scheduled;
    j["sent"] = s.sent;
    j["skipped"] = info.skipped;
    j["received"] = s.received;
    j["lost"] = s.lost();
    j["loss_pct"] = s.loss_pct();
    j["lost_unknown_direction"] = s.unknown_direction_lost();
    j["late"] = s.late;
    j["duplicates"] = s.duplicates;
    j["extra_replies"] = s.extra_replies;
    j["reordered"] = s.reordered;
    j["reordered_ratio"] = s.reordered_ratio();
    j["max_reorder_extent"] = s.max_reorder_extent;
    j["interrupted"] = info.interrupted;
    j["schedule"] = {{"distribution", info.distribution},
                     {"interval_ms", static_cast<double>(info.interval_ns) / 1e6},
                     {"seed", info.distribution == "poisson" ? nlohmann::json(info.seed)
                                                             : nlohmann::json(nullptr)}};
    if (info.pacing_known) {
        j["schedule"]["achieved_pps"] = info.achieved_pps;
        j["schedule"]["pacing_error_p50_us"] = info.pacing_error_p50_ns / 1e3;
        j["schedule"]["pacing_error_p99_us"] = info.pacing_error_p99_ns / 1e3;
        j["schedule"]["pacing_error_max_us"] = info.pacing_error_max_ns / 1e3;
    }
    j["errors"] = {{"send", s.send_errors},
                   {"malformed", s.malformed},
                   {"unexpected_source", s.unexpected_source},
                   {"unknown_sequence", s.unknown_sequence},
                   {"short_replies", s.short_replies},
                   {"ssid_mismatch", s.ssid_mismatch},
                   {"invalid_error_estimate", s.invalid_error_estimate},
                   {"reflected_octets_mismatch", s.reflected_octets_mismatch},
                   {"auth_failures", s.auth_failures},
                   {"icmp_unreachable", s.icmp_unreachable}};
    j["outbound"] =
        direction_json(s.outbound, s.ipdv.outbound, s.outbound_lost(), s.outbound_loss_pct(), o);
    j["inbound"] =
        direction_json(s.inbound, s.ipdv.inbound, s.inbound_lost(), s.inbound_loss_pct(), o);
    j["roundtrip"] = direction_json(s.roundtrip, s.ipdv.roundtrip, s.lost(), s.loss_pct(), o);
    for (const char* dir : {"outbound", "inbound"}) {
        j[dir]["synchronized"] = s.one_way_synchronized();
        j[dir]["error_bound_us"] = s.one_way_error_bound_s() * 1e6;
    }
    auto hops = [](const range_u8& r) {
        return r.count ? nlohmann::json{{"min", r.min}, {"max", r.max}} : nlohmann::json(nullptr);
    };
    j["hops"] = {{"forward", hops(s.forward_hops)}, {"backward", hops(s.backward_hops)}};
    j["clock"] = {{"sender_synchronized", s.sender_synchronized},
                  {"reflector_synchronized", s.received ? s.reflector_synchronized : false},
                  {"sender_error_us", s.sender_error_s * 1e6},
                  {"reflector_error_us", s.reflector_error_s * 1e6}};
    j["tlvs"] = tlvs_json(s.tlv);
    j["timestamps"] = timestamps_json(info);
    j["report_interval_s"] =
        info.report_interval_ns ? nlohmann::json(static_cast<double>(info.report_interval_ns) / 1e9)
                                : nlohmann::json(nullptr);
    nlohmann::json iv = nlohmann::json::array();
    for (const auto& b : intervals)
        iv.push_back(interval_json(b, info.report_interval_ns));
    j["intervals"] = iv;
    return j;
}

} // namespace twamp::report
