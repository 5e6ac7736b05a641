// tlv_options.hpp — `sender --stamp --tlv SPEC`: the STAMP extension TLVs each probe carries
// (RFC 8972 §4.2–4.7, RFC 9503), parsed into twamp::stamp_tlv_request.
//
//   location                 Location: the reflector reports the ports and addresses it saw
//   timestamp-info           Timestamp Information: its clock source and timestamping methods
//   cos=DSCP                 Class of Service: the DSCP wanted on the reply (name or 0-63)
//   direct-measurement       Direct Measurement: sender / reflector packet counters
//   access=ID:CODE           Access Report: 3gpp|non3gpp (1|2), available|unavailable (1|2)
//   follow-up                Follow-Up Telemetry: the previous reply's send time
//   dest-node=ADDR           Destination Node Address (RFC 9503; needs --ssid)
//   return-path=no-reply|same-link   Return Path Control Code (RFC 9503)
//   return-address=ADDR      Return Path: reply to this address instead
//   mpls=LABEL[,LABEL...]    Return Path: an SR-MPLS label stack (labels 0-1048575)
//   srv6=ADDR[,ADDR...]      Return Path: an SRv6 segment list
//   micro-session=ID[:RID]   Micro-session ID (RFC 9534): this sender's LAG member-link ID, and
//                            the reflector's when known (0-65535)
//   reflected-control=LEN[,COUNT[,INTERVAL_US]]   Reflected Test Packet Control
//                            (draft-ietf-ippm-asymmetrical-pkts): replies of LEN octets (0: as
//                            usual), COUNT of them (default 1), INTERVAL_US apart (default 0)
#pragma once

#include "cli_common.hpp"

#include "twamp/asio/address.hpp"
#include "twamp/dscp.hpp"
#include "twamp/stamp_tlvs.hpp"

#include <asio.hpp>

#include <string>
#include <utility>
#include <vector>

namespace twamp_cli {

#define TWAMP_CLI_TLV_LIST                                                                         \
    "location, timestamp-info, cos=DSCP, direct-measurement, access=ID:CODE, follow-up, "          \
    "dest-node=ADDR, return-path=no-reply|same-link, return-address=ADDR, mpls=LABEL[,...], "      \
    "srv6=ADDR[,...], micro-session=ID[:RID], reflected-control=LEN[,COUNT[,INTERVAL_US]]"
inline constexpr const char* kTlvList = TWAMP_CLI_TLV_LIST;
inline constexpr const char* kTlvHelp =
    "STAMP extension TLV each probe carries (repeatable): " TWAMP_CLI_TLV_LIST;
#undef TWAMP_CLI_TLV_LIST

namespace detail {

inline twamp::tlv_address tlv_address_of(const std::string& spec, const std::string& text)
{
    std::error_code ec;
    const auto a = asio::ip::make_address(text, ec);
    if (ec) throw usage_error("--tlv " + spec + ": '" + text + "' is not an IP address");
    return twamp::net::to_tlv_address(a);
}

inline std::vector<std::string> split_commas(const std::string& s)
{
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == ',') {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

inline unsigned long number_in(const std::string& spec, const std::string& text, unsigned long max)
{
    std::size_t used = 0;
    unsigned long v = 0;
    try {
        v = std::stoul(text, &used, 0);
    } catch (const std::exception&) {
        used = 0;
    }
    if (text.empty() || used != text.size() || v > max || text[0] == '-')
        throw usage_error("--tlv " + spec + ": '" + text + "' is not a number 0-" +
                          std::to_string(max));
    return v;
}

inline twamp::stamp_tlv_request::return_path_request& return_path(twamp::stamp_tlv_request& r)
{
    if (!r.return_path) r.return_path = twamp::stamp_tlv_request::return_path_request{};
    return *r.return_path;
}

} // namespace detail

// Adds one --tlv SPEC to `r`; a bad or repeated SPEC is a usage error naming --tlv.
inline void add_tlv_spec(const std::string& spec, twamp::stamp_tlv_request& r)
{
    const auto eq = spec.find('=');
    const std::string key = spec.substr(0, eq);
    const std::string val = eq == std::string::npos ? std::string{} : spec.substr(eq + 1);
    const bool has_value = eq != std::string::npos;
    auto once = [&](bool already) {
        if (already) throw usage_error("--tlv " + key + ": given twice");
    };
    auto no_value = [&] {
        if (has_value) throw usage_error("--tlv " + key + ": takes no value");
    };
    auto need_value = [&] {
        if (!has_value || val.empty()) throw usage_error("--tlv " + key + ": needs =VALUE");
    };
    // The TLVs that take no value: the reflector fills them in.
    static constexpr std::pair<const char*, bool twamp::stamp_tlv_request::*> flags[] = {
        {"location", &twamp::stamp_tlv_request::location},
        {"timestamp-info", &twamp::stamp_tlv_request::timestamp_info},
        {"direct-measurement", &twamp::stamp_tlv_request::direct_measurement},
        {"follow-up", &twamp::stamp_tlv_request::follow_up}};
    for (const auto& [name, member] : flags) {
        if (key != name) continue;
        no_value();
        once(r.*member);
        r.*member = true;
        return;
    }
    if (key == "cos") {
        need_value();
        once(r.cos_dscp1.has_value());
        const auto d = twamp::parse_dscp(val);
        if (!d) throw usage_error("--tlv cos: '" + val + "' is not a DSCP (name or 0-63)");
        r.cos_dscp1 = static_cast<std::uint8_t>(*d);
    } else if (key == "access") {
        need_value();
        once(r.access.has_value());
        const auto colon = val.find(':');
        if (colon == std::string::npos)
            throw usage_error("--tlv access: wants ID:CODE, e.g. non3gpp:available");
        const std::string id = val.substr(0, colon), code = val.substr(colon + 1);
        twamp::stamp_tlv_request::access_report a;
        a.id = id == "3gpp"      ? 1
               : id == "non3gpp" ? 2
                                 : static_cast<std::uint8_t>(detail::number_in("access", id, 15));
        a.return_code = code == "available" ? 1
                        : code == "unavailable"
                            ? 2
                            : static_cast<std::uint8_t>(detail::number_in("access", code, 255));
        r.access = a;
    } else if (key == "dest-node") {
        need_value();
        once(r.destination_node.has_value());
        r.destination_node = detail::tlv_address_of(key, val);
    } else if (key == "return-path") {
        need_value();
        auto& rp = detail::return_path(r);
        once(rp.control_code.has_value());
        if (val == "no-reply")
            rp.control_code = 0;
        else if (val == "same-link")
            rp.control_code = twamp::stamp_tlv::return_path::reply_same_link;
        else
            throw usage_error("--tlv return-path: '" + val + "' (no-reply or same-link)");
    } else if (key == "return-address") {
        need_value();
        auto& rp = detail::return_path(r);
        once(rp.return_address.has_value());
        rp.return_address = detail::tlv_address_of(key, val);
    } else if (key == "mpls") {
        need_value();
        auto& rp = detail::return_path(r);
        once(!rp.mpls_labels.empty());
        const auto labels = detail::split_commas(val);
        for (std::size_t i = 0; i < labels.size(); ++i) {
            const auto label = detail::number_in(key, labels[i], 0xFFFFF);
            // Label, TC 0, S on the last entry, TTL 255 (RFC 3032 §2.1).
            const std::uint32_t s = i + 1 == labels.size() ? 1u : 0u;
            rp.mpls_labels.push_back(static_cast<std::uint32_t>(label) << 12 | s << 8 | 255u);
        }
    } else if (key == "srv6") {
        need_value();
        auto& rp = detail::return_path(r);
        once(!rp.srv6_segments.empty());
        for (const auto& seg : detail::split_commas(val)) {
            const auto a = detail::tlv_address_of(key, seg);
            if (!a.v6) throw usage_error("--tlv srv6: '" + seg + "' is not an IPv6 address");
            rp.srv6_segments.push_back(a.octets);
        }
    } else if (key == "micro-session") {
        need_value();
        once(r.micro_session.has_value());
        const auto colon = val.find(':');
        twamp::stamp_tlv_request::micro_session_request m;
        m.sender_id =
            static_cast<std::uint16_t>(detail::number_in(key, val.substr(0, colon), 0xFFFF));
        if (colon != std::string::npos)
            m.reflector_id =
                static_cast<std::uint16_t>(detail::number_in(key, val.substr(colon + 1), 0xFFFF));
        r.micro_session = m;
    } else if (key == "reflected-control") {
        need_value();
        once(r.reflected_control.has_value());
        const auto parts = detail::split_commas(val);
        if (parts.size() > 3)
            throw usage_error("--tlv reflected-control: wants LEN[,COUNT[,INTERVAL_US]]");
        twamp::reflected_control_request rc;
        rc.length = static_cast<std::uint16_t>(detail::number_in(key, parts[0], 0xFFFF));
        if (parts.size() > 1)
            rc.count = static_cast<std::uint16_t>(detail::number_in(key, parts[1], 0xFFFF));
        if (parts.size() > 2) // on the wire in nanoseconds, 32 bits
            rc.interval_ns =
                static_cast<std::uint32_t>(detail::number_in(key, parts[2], 4'294'967) * 1000);
        r.reflected_control = rc;
    } else {
        throw usage_error("--tlv: unknown TLV '" + key + "' (" + kTlvList + ")");
    }
    if (r.return_path) {
        const auto& rp = *r.return_path;
        if (rp.control_code &&
            (rp.return_address || !rp.mpls_labels.empty() || !rp.srv6_segments.empty()))
            throw usage_error("--tlv return-path: a Control Code goes alone (RFC 9503 §4.1)");
        if (!rp.mpls_labels.empty() && !rp.srv6_segments.empty())
            throw usage_error("--tlv mpls, srv6: one segment list at most (RFC 9503 §4.1.3)");
    }
}

} // namespace twamp_cli

namespace twamp_cli {

// One SPEC on its own, at parse time: "--tlv: cos: 'x' is not a DSCP ...". What needs all of
// them (repeats, Return Path combinations) is checked by tlv_request_of() in the sender's checks.
inline CLI::Validator tlv_spec_check()
{
    return CLI::Validator(
        [](std::string& spec) -> std::string {
            twamp::stamp_tlv_request r;
            try {
                add_tlv_spec(spec, r);
            } catch (const usage_error& e) {
                std::string m = e.what();
                for (const char* prefix : {"--tlv: ", "--tlv "})
                    if (m.rfind(prefix, 0) == 0) return m.substr(std::string(prefix).size());
                return m;
            }
            return {};
        },
        "");
}

// Every --tlv SPEC, in order, as one request.
inline twamp::stamp_tlv_request tlv_request_of(const std::vector<std::string>& specs)
{
    twamp::stamp_tlv_request r;
    for (const auto& s : specs)
        add_tlv_spec(s, r);
    return r;
}

} // namespace twamp_cli
