// twamp/report/json.hpp — the session report as one JSON object (schema in README.md and
// docs/report.schema.json). Durations are microseconds as floating point, never rounded.
#pragma once

#include "twamp/report/info.hpp"
#include "twamp/stats.hpp"

#include <nlohmann/json.hpp>

namespace twamp::report {

inline constexpr int kJsonSchemaVersion = 1;

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

inline nlohmann::json to_json(const session_stats& s, const session_info& info)
{
    nlohmann::json j;
    j["schema_version"] = kJsonSchemaVersion;
    j["mode"] = info.mode;
    if (info.mode == "stamp") j["ssid"] = info.ssid;
    j["sender"] = {{"address", info.sender_address}, {"port", info.sender_port}};
    j["reflector"] = {{"address", info.reflector_address}, {"port", info.reflector_port}};
    j["scheduled"] = info.scheduled;
    j["sent"] = s.sent;
    j["received"] = s.received;
    j["lost"] = s.lost();
    j["loss_pct"] = s.loss_pct();
    j["late"] = s.late;
    j["duplicates"] = s.duplicates;
    j["reordered"] = s.reordered;
    j["interrupted"] = info.interrupted;
    j["errors"] = {{"send", s.send_errors},
                   {"malformed", s.malformed},
                   {"unexpected_source", s.unexpected_source},
                   {"unknown_sequence", s.unknown_sequence},
                   {"short_replies", s.short_replies},
                   {"ssid_mismatch", s.ssid_mismatch},
                   {"invalid_error_estimate", s.invalid_error_estimate}};
    j["outbound"] = direction_json(s.outbound, s.outbound_lost(), s.outbound_loss_pct());
    j["inbound"] = direction_json(s.inbound, s.inbound_lost(), s.inbound_loss_pct());
    j["roundtrip"] = direction_json(s.roundtrip, s.lost(), s.loss_pct());
    auto hops = [](const range_u8& r) {
        return r.count ? nlohmann::json{{"min", r.min}, {"max", r.max}} : nlohmann::json(nullptr);
    };
    j["hops"] = {{"forward", hops(s.forward_hops)}, {"backward", hops(s.backward_hops)}};
    j["clock"] = {{"sender_synchronized", s.sender_synchronized},
                  {"reflector_synchronized", s.received ? s.reflector_synchronized : false},
                  {"sender_error_us", s.sender_error_s * 1e6},
                  {"reflector_error_us", s.reflector_error_s * 1e6}};
    return j;
}

} // namespace twamp::report
