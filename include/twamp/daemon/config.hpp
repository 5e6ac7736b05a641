// twamp/daemon/config.hpp — the `twamp daemon` configuration: RFC 7951 JSON of the RFC 8913
// `ietf-twamp` module, a sibling `twamp-daemon:stamp` section for TWAMP Light and STAMP, and a
// small `twamp-daemon:daemon` section for what the models lack.
//
// load_config() reads the whole document and reports every problem with its instance path
// (`/ietf-twamp:twamp/client/ctrl-connection[name='pe1']/server-tcp-port: 70000 is out of
// range`): unknown members, wrong JSON types, values outside the YANG ranges, missing keys and
// mandatory leaves, duplicate list keys. RFC 7951 encodings are followed (uint64 and decimal64
// as strings, numbers also accepted; binary as base64; bits as a space-separated string).
//
// Read-only (config false) nodes of RFC 8913 — such as sent-packets, state, sid, the server's
// ctrl-connection list or the reflector's test-session list — are accepted, as they appear in
// the RFC's own examples (Appendix A), checked for shape, and not used: they are what a server
// reports, not what it is told.
//
// unsupported() lists, with the same paths, the configuration leaves this daemon does not act
// on, so `twamp daemon --check` refuses a file that asks for something the daemon would not do.
//
// This header uses nlohmann::json; the sans-I/O protocol headers do not.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace twamp::daemon {

inline constexpr std::uint32_t kRepeatForever = 4294967295u;

// A key of a key-chain (RFC 8913 key-chain list).
struct key_entry {
    std::string key_id;
    std::vector<std::uint8_t> secret;

    bool operator==(const key_entry&) const = default;
};

// ----- ietf-twamp:twamp/client ---------------------------------------------------------------

struct mode_preference {
    std::uint16_t priority = 0;
    std::uint32_t mode = 0; // twamp-modes bits (RFC 5357 / RFC 7717 numbering)

    bool operator==(const mode_preference&) const = default;
};

struct test_session_request {
    std::string name;
    std::optional<std::string> sender_ip;
    std::optional<std::uint16_t> sender_udp_port; // nullopt: autoallocate
    std::string reflector_ip;
    std::optional<std::uint16_t> reflector_udp_port;
    std::uint64_t timeout = 2; // seconds
    std::optional<std::uint32_t> padding_length;
    std::uint8_t test_packet_dscp = 0;
    std::uint64_t start_time = 0;
    std::uint32_t repeat = 0;
    std::uint32_t repeat_interval = 0; // seconds
    std::vector<std::uint16_t> pm_reg_list;

    bool operator==(const test_session_request&) const = default;
};

struct ctrl_connection {
    std::string name;
    std::optional<std::string> client_ip;
    std::string server_ip;
    std::uint16_t server_tcp_port = 862;
    std::uint8_t control_packet_dscp = 0;
    bool control_packet_dscp_given = false;
    std::optional<std::string> key_id;
    std::optional<std::uint8_t> max_count_exponent;
    std::vector<test_session_request> requests;

    bool operator==(const ctrl_connection&) const = default;
};

struct client_config {
    bool present = false;
    bool admin_state = true;
    std::vector<mode_preference> mode_preference_chain;
    std::vector<key_entry> key_chain;
    std::vector<ctrl_connection> connections;

    bool operator==(const client_config&) const = default;
};

// ----- ietf-twamp:twamp/server ---------------------------------------------------------------

struct server_config {
    bool present = false;
    bool admin_state = true;
    std::uint16_t server_tcp_port = 862;
    std::uint32_t servwait = 900;
    std::optional<std::uint8_t> control_packet_dscp;
    std::uint8_t count = 15;
    std::uint8_t max_count_exponent = 20;
    bool max_count_exponent_given = false;
    std::optional<std::uint32_t> modes;
    std::vector<key_entry> key_chain;

    bool operator==(const server_config&) const = default;
};

// ----- ietf-twamp:twamp/session-sender and session-reflector ---------------------------------

struct sender_test_session {
    std::string name;
    std::string fill_mode = "zero";
    std::uint32_t number_of_packets = 0;
    std::optional<double> periodic_interval; // seconds
    std::optional<double> lambda;            // seconds (mean gap of the Poisson schedule)
    std::optional<double> max_interval;      // seconds

    bool operator==(const sender_test_session&) const = default;
};

struct session_sender_config {
    bool present = false;
    bool admin_state = true;
    std::vector<sender_test_session> sessions;

    bool operator==(const session_sender_config&) const = default;
};

struct session_reflector_config {
    bool present = false;
    bool admin_state = true;
    std::uint32_t refwait = 900;

    bool operator==(const session_reflector_config&) const = default;
};

// ----- twamp-daemon:stamp: TWAMP Light and STAMP ---------------------------------------------

// A continuous TWAMP Light / STAMP Session-Sender. Leaves are named after RFC 8913's
// test-session-request and session-sender test-session; one run of number-of-packets probes is
// one report interval (one results line); `repeat` (default: forever) and `repeat-interval` as
// RFC 8913 defines them.
struct light_session {
    std::string name;
    std::string mode = "stamp"; // "stamp" or "twamp-light"
    std::optional<std::string> sender_ip;
    std::optional<std::uint16_t> sender_udp_port;
    std::string reflector_ip;
    std::uint16_t reflector_udp_port = 862;
    std::uint32_t number_of_packets = 100;
    std::optional<double> periodic_interval; // seconds; default 0.1 when lambda is absent
    std::optional<double> lambda;            // seconds
    std::optional<std::uint32_t> padding_length;
    std::uint8_t test_packet_dscp = 0;
    bool test_packet_dscp_given = false;
    double timeout = 2; // seconds: loss timeout of a probe
    std::uint32_t repeat = kRepeatForever;
    std::uint32_t repeat_interval = 0; // seconds
    std::uint16_t ssid = 0;            // STAMP Session-Sender Identifier (RFC 8972)
    std::optional<std::string> key_id; // authenticated STAMP: key from the daemon key file
    bool admin_state = true;

    bool operator==(const light_session&) const = default;
};

struct light_reflector {
    std::string name;
    std::string mode = "auto"; // "auto", "stamp" or "twamp-light"
    std::optional<std::string> reflector_ip;
    std::uint16_t reflector_udp_port = 862;
    bool stateless = false;
    std::optional<std::string> key_id; // authenticated STAMP only
    std::uint32_t max_sessions = 4096;
    bool admin_state = true;

    bool operator==(const light_reflector&) const = default;
};

struct stamp_config {
    bool sender_admin_state = true;
    std::vector<light_session> sessions;
    bool reflector_admin_state = true;
    std::uint32_t refwait = 900;
    std::vector<light_reflector> reflectors;

    bool operator==(const stamp_config&) const = default;
};

// ----- twamp-daemon:daemon -------------------------------------------------------------------

struct daemon_section {
    std::string server_listen;                // TWAMP server address ("" = every address)
    std::string metrics_listen;               // "host:port" of /metrics ("" = none)
    std::string results_file;                 // JSON lines ("" or "-" = stdout)
    std::string key_file;                     // pfs-format key file (KEYID HEXSECRET lines)
    std::vector<std::string> probe_allow;     // /probe targets; empty: /probe disabled
    std::uint32_t probe_max_count = 100;      // probes per /probe request at most
    std::uint32_t probe_min_interval_ms = 10; // shortest interval a /probe request may ask
    std::uint32_t probe_max_concurrent = 4;   // /probe requests running at once
    double probe_timeout = 1;                 // seconds: loss timeout of /probe tests
    double retry_initial = 1;                 // seconds: first back-off after a failed session
    double retry_max = 60;                    // seconds: back-off ceiling

    bool operator==(const daemon_section&) const = default;
};

struct config {
    client_config client;
    server_config server;
    session_sender_config session_sender;
    session_reflector_config session_reflector;
    stamp_config stamp;
    daemon_section daemon;
};

struct config_error {
    std::string path;
    std::string message;
    std::string text() const { return path + ": " + message; }
};

namespace detail {

inline std::string json_text(const nlohmann::json& v)
{
    std::string s = v.dump();
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

inline bool base64_decode(const std::string& in, std::vector<std::uint8_t>& out)
{
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    out.clear();
    if (in.size() % 4 != 0) return false;
    for (std::size_t i = 0; i < in.size(); i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = in[i + k];
            if (c == '=') {
                if (i + 4 != in.size() || k < 2) return false;
                v[k] = 0;
                ++pad;
            } else {
                if (pad) return false;
                v[k] = val(c);
                if (v[k] < 0) return false;
            }
        }
        const std::uint32_t w = (std::uint32_t(v[0]) << 18) | (std::uint32_t(v[1]) << 12) |
                                (std::uint32_t(v[2]) << 6) | std::uint32_t(v[3]);
        out.push_back(static_cast<std::uint8_t>(w >> 16));
        if (pad < 2) out.push_back(static_cast<std::uint8_t>(w >> 8));
        if (pad < 1) out.push_back(static_cast<std::uint8_t>(w));
    }
    return true;
}

// An inet:ip-address (no zone index).
inline bool valid_ip(const std::string& s)
{
    if (s.empty() || s.size() > 45) return false;
    if (s.find(':') == std::string::npos) {
        int parts = 0;
        std::size_t i = 0;
        while (i <= s.size()) {
            std::size_t j = s.find('.', i);
            if (j == std::string::npos) j = s.size();
            const std::string p = s.substr(i, j - i);
            if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos)
                return false;
            if (std::stoi(p) > 255) return false;
            ++parts;
            i = j + 1;
        }
        return parts == 4;
    }
    // IPv6: hex groups, at most one "::", optional trailing dotted quad.
    if (s.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) return false;
    const auto dc = s.find("::");
    if (dc != std::string::npos && s.find("::", dc + 1) != std::string::npos) return false;
    int groups = 0;
    std::size_t i = 0;
    const std::string body = s;
    while (i < body.size()) {
        std::size_t j = body.find(':', i);
        if (j == std::string::npos) j = body.size();
        const std::string g = body.substr(i, j - i);
        if (!g.empty()) {
            if (g.find('.') != std::string::npos) {
                if (j != body.size() || !valid_ip(g)) return false;
                groups += 2;
            } else {
                if (g.size() > 4) return false;
                ++groups;
            }
        }
        i = j + 1;
    }
    return dc != std::string::npos ? groups <= 7 : groups == 8;
}

// Walks the document, collecting errors with their paths.
class reader {
public:
    std::vector<config_error> errors;

    void error(const std::string& path, const std::string& msg) { errors.push_back({path, msg}); }

    // Checks that `v` is an object whose members are all in `config_keys` or `state_keys`.
    bool object(const nlohmann::json& v, const std::string& path,
                std::initializer_list<const char*> config_keys,
                std::initializer_list<const char*> state_keys = {})
    {
        if (!v.is_object()) {
            error(path, json_text(v) + " is not an object");
            return false;
        }
        for (auto it = v.begin(); it != v.end(); ++it) {
            bool known = false;
            for (const char* k : config_keys)
                known = known || it.key() == k;
            for (const char* k : state_keys)
                known = known || it.key() == k;
            if (!known) error(path + "/" + it.key(), "unknown member");
        }
        return true;
    }

    template <class T>
    std::optional<T> uint(const nlohmann::json& obj, const char* key, const std::string& path,
                          std::uint64_t lo, std::uint64_t hi, bool string_form = false)
    {
        auto it = obj.find(key);
        if (it == obj.end()) return std::nullopt;
        const std::string p = path + "/" + key;
        std::uint64_t v = 0;
        if (it->is_number_unsigned()) {
            v = it->template get<std::uint64_t>();
        } else if (it->is_number_integer() && it->template get<std::int64_t>() >= 0) {
            v = static_cast<std::uint64_t>(it->template get<std::int64_t>()); // "-0"
        } else if (it->is_number_integer()) {
            error(p, json_text(*it) + " is out of range");
            return std::nullopt;
        } else if (string_form && it->is_string()) {
            const std::string s = it->template get<std::string>();
            if (s.empty() || s.size() > 20 ||
                s.find_first_not_of("0123456789") != std::string::npos) {
                error(p, json_text(*it) + " is not an unsigned integer");
                return std::nullopt;
            }
            try {
                v = std::stoull(s);
            } catch (const std::exception&) {
                error(p, json_text(*it) + " is out of range");
                return std::nullopt;
            }
        } else {
            error(p, json_text(*it) + " is not an unsigned integer");
            return std::nullopt;
        }
        if (v < lo || v > hi) {
            error(p, json_text(*it) + " is out of range");
            return std::nullopt;
        }
        return static_cast<T>(v);
    }

    // decimal64 (RFC 7951: a string; a JSON number is accepted too), seconds.
    std::optional<double> decimal(const nlohmann::json& obj, const char* key,
                                  const std::string& path, double lo, double hi,
                                  int fraction_digits = 5)
    {
        auto it = obj.find(key);
        if (it == obj.end()) return std::nullopt;
        const std::string p = path + "/" + key;
        double v = 0;
        if (it->is_number()) {
            v = it->template get<double>();
        } else if (it->is_string()) {
            const std::string s = it->template get<std::string>();
            std::size_t used = 0;
            const auto dot = s.find('.');
            bool ok = !s.empty() && s.find_first_not_of("0123456789.-") == std::string::npos;
            if (ok && dot != std::string::npos &&
                s.size() - dot - 1 > static_cast<std::size_t>(fraction_digits))
                ok = false;
            if (ok) {
                try {
                    v = std::stod(s, &used);
                } catch (const std::exception&) {
                    ok = false;
                }
            }
            if (!ok || used != s.size()) {
                error(p, json_text(*it) + " is not a decimal64 with " +
                             std::to_string(fraction_digits) + " fraction digits");
                return std::nullopt;
            }
        } else {
            error(p, json_text(*it) + " is not a decimal number");
            return std::nullopt;
        }
        if (!std::isfinite(v) || v < lo || v > hi) {
            error(p, json_text(*it) + " is out of range");
            return std::nullopt;
        }
        return v;
    }

    std::optional<bool> boolean(const nlohmann::json& obj, const char* key, const std::string& path)
    {
        auto it = obj.find(key);
        if (it == obj.end()) return std::nullopt;
        if (!it->is_boolean()) {
            error(path + "/" + key, json_text(*it) + " is not a boolean");
            return std::nullopt;
        }
        return it->template get<bool>();
    }

    std::optional<std::string> string(const nlohmann::json& obj, const char* key,
                                      const std::string& path, std::size_t min_len = 0,
                                      std::size_t max_len = 4096)
    {
        auto it = obj.find(key);
        if (it == obj.end()) return std::nullopt;
        const std::string p = path + "/" + key;
        if (!it->is_string()) {
            error(p, json_text(*it) + " is not a string");
            return std::nullopt;
        }
        std::string s = it->template get<std::string>();
        if (s.size() < min_len || s.size() > max_len) {
            error(p, json_text(*it) + " has a length outside " + std::to_string(min_len) + ".." +
                         std::to_string(max_len));
            return std::nullopt;
        }
        return s;
    }

    std::optional<std::string> ip(const nlohmann::json& obj, const char* key,
                                  const std::string& path)
    {
        auto s = string(obj, key, path);
        if (s && !valid_ip(*s)) {
            error(path + "/" + key, json_text(*s) + " is not an IP address");
            return std::nullopt;
        }
        return s;
    }

    std::optional<std::string> enumeration(const nlohmann::json& obj, const char* key,
                                           const std::string& path,
                                           std::initializer_list<const char*> values)
    {
        auto s = string(obj, key, path);
        if (!s) return s;
        for (const char* v : values)
            if (*s == v) return s;
        std::string list;
        for (const char* v : values)
            list += (list.empty() ? "" : ", ") + std::string(v);
        error(path + "/" + key, json_text(*s) + " is not one of " + list);
        return std::nullopt;
    }

    // twamp-modes bits: a space-separated list of bit names.
    std::optional<std::uint32_t> modes(const nlohmann::json& obj, const char* key,
                                       const std::string& path)
    {
        auto s = string(obj, key, path);
        if (!s) return std::nullopt;
        static const std::pair<const char*, std::uint32_t> bits[] = {
            {"unauthenticated", 1},
            {"authenticated", 2},
            {"encrypted", 4},
            {"unauth-test-encrypt-control", 8},
            {"individual-session-control", 16},
            {"reflect-octets", 32},
            {"symmetrical-size", 64},
            {"IKEv2Derived", 128}};
        std::uint32_t m = 0;
        std::istringstream in(*s);
        std::string w;
        while (in >> w) {
            bool found = false;
            for (const auto& [name, bit] : bits)
                if (w == name) {
                    m |= bit;
                    found = true;
                }
            if (!found) {
                error(path + "/" + key, "'" + w + "' is not a twamp-modes bit");
                return std::nullopt;
            }
        }
        return m;
    }

    // A list: a JSON array of objects keyed by `key`; returns the elements with their paths.
    std::vector<std::pair<const nlohmann::json*, std::string>>
    list(const nlohmann::json& obj, const char* name, const std::string& path, const char* key,
         bool key_is_string = true)
    {
        std::vector<std::pair<const nlohmann::json*, std::string>> out;
        auto it = obj.find(name);
        if (it == obj.end()) return out;
        const std::string p = path + "/" + name;
        if (!it->is_array()) {
            error(p, json_text(*it) + " is not a list (JSON array)");
            return out;
        }
        std::set<std::string> seen;
        for (std::size_t i = 0; i < it->size(); ++i) {
            const auto& e = (*it)[i];
            if (!e.is_object()) {
                error(p + "[" + std::to_string(i + 1) + "]", json_text(e) + " is not an object");
                continue;
            }
            auto k = e.find(key);
            if (k == e.end()) {
                error(p + "[" + std::to_string(i + 1) + "]",
                      std::string("missing key '") + key + "'");
                continue;
            }
            std::string kv;
            if (key_is_string && k->is_string())
                kv = k->get<std::string>();
            else if (!key_is_string && k->is_number_unsigned())
                kv = std::to_string(k->get<std::uint64_t>());
            else if (!key_is_string && k->is_string())
                kv = k->get<std::string>();
            else {
                error(p + "[" + std::to_string(i + 1) + "]/" + key,
                      json_text(*k) + " is not a valid key");
                continue;
            }
            const std::string ep = p + "[" + key + "='" + kv + "']";
            if (key_is_string && kv.empty()) {
                error(ep + "/" + key, "must not be empty");
                continue;
            }
            if (!seen.insert(kv).second) {
                error(ep, "duplicate list entry");
                continue;
            }
            out.emplace_back(&e, ep);
        }
        return out;
    }

    void require(const nlohmann::json& obj, const char* key, const std::string& path)
    {
        if (!obj.contains(key)) error(path + "/" + key, "mandatory leaf is missing");
    }

    std::vector<key_entry> key_chain(const nlohmann::json& obj, const std::string& path)
    {
        std::vector<key_entry> out;
        for (const auto& [e, p] : list(obj, "key-chain", path, "key-id")) {
            object(*e, p, {"key-id", "secret-key"});
            key_entry k;
            if (auto id = string(*e, "key-id", p, 1, 80)) k.key_id = *id;
            if (auto s = string(*e, "secret-key", p)) {
                if (!base64_decode(*s, k.secret))
                    error(p + "/secret-key", "is not base64 (RFC 7951 binary)");
                else if (k.secret.empty())
                    error(p + "/secret-key", "must not be empty");
            } else if (!e->contains("secret-key")) {
                error(p + "/secret-key", "mandatory here: the key has no secret");
            }
            out.push_back(std::move(k));
        }
        return out;
    }

    // Read-only counters that appear in RFC 8913's examples: checked for type only.
    void state_counters(const nlohmann::json& obj, const std::string& path)
    {
        for (const char* k : {"sent-packets", "rcv-packets", "last-sent-seq", "last-rcv-seq"})
            (void)uint<std::uint32_t>(obj, k, path, 0, 0xFFFFFFFFu);
    }
};

inline void load_client(reader& r, const nlohmann::json& j, const std::string& path,
                        client_config& c)
{
    c.present = true;
    if (!r.object(j, path,
                  {"admin-state", "mode-preference-chain", "key-chain", "ctrl-connection"}))
        return;
    if (auto v = r.boolean(j, "admin-state", path)) c.admin_state = *v;
    for (const auto& [e, p] : r.list(j, "mode-preference-chain", path, "priority", false)) {
        r.object(*e, p, {"priority", "mode"});
        mode_preference m;
        if (auto v = r.uint<std::uint16_t>(*e, "priority", p, 0, 65535, true)) m.priority = *v;
        if (auto v = r.modes(*e, "mode", p)) m.mode = *v;
        c.mode_preference_chain.push_back(m);
    }
    c.key_chain = r.key_chain(j, path);
    for (const auto& [e, p] : r.list(j, "ctrl-connection", path, "name")) {
        r.object(*e, p,
                 {"name", "client-ip", "server-ip", "server-tcp-port", "control-packet-dscp",
                  "key-id", "max-count-exponent", "test-session-request"},
                 {"client-tcp-port", "server-start-time", "repeat-count", "state", "selected-mode",
                  "token", "client-iv"});
        ctrl_connection cc;
        cc.name = (*e)["name"].get<std::string>();
        cc.client_ip = r.ip(*e, "client-ip", p);
        r.require(*e, "server-ip", p);
        if (auto v = r.ip(*e, "server-ip", p)) cc.server_ip = *v;
        if (auto v = r.uint<std::uint16_t>(*e, "server-tcp-port", p, 0, 65535))
            cc.server_tcp_port = *v;
        if (auto v = r.uint<std::uint8_t>(*e, "control-packet-dscp", p, 0, 63)) {
            cc.control_packet_dscp = *v;
            cc.control_packet_dscp_given = true;
        }
        cc.key_id = r.string(*e, "key-id", p, 1, 80);
        cc.max_count_exponent = r.uint<std::uint8_t>(*e, "max-count-exponent", p, 10, 31);
        (void)r.uint<std::uint16_t>(*e, "client-tcp-port", p, 0, 65535);
        (void)r.uint<std::uint64_t>(*e, "server-start-time", p, 0, ~0ull, true);
        (void)r.uint<std::uint64_t>(*e, "repeat-count", p, 0, ~0ull, true);
        (void)r.enumeration(*e, "state", p, {"active", "idle"});
        (void)r.modes(*e, "selected-mode", p);
        for (const auto& [t, tp] : r.list(*e, "test-session-request", p, "name")) {
            r.object(*t, tp,
                     {"name", "sender-ip", "sender-udp-port", "reflector-ip", "reflector-udp-port",
                      "timeout", "padding-length", "test-packet-dscp", "start-time", "repeat",
                      "repeat-interval", "pm-reg-list"},
                     {"state", "sid"});
            test_session_request q;
            q.name = (*t)["name"].get<std::string>();
            q.sender_ip = r.ip(*t, "sender-ip", tp);
            if (auto it = t->find("sender-udp-port"); it != t->end()) {
                if (it->is_string() && it->get<std::string>() == "autoallocate")
                    q.sender_udp_port.reset();
                else
                    q.sender_udp_port =
                        r.uint<std::uint16_t>(*t, "sender-udp-port", tp, 49152, 65535);
            }
            r.require(*t, "reflector-ip", tp);
            if (auto v = r.ip(*t, "reflector-ip", tp)) q.reflector_ip = *v;
            if (auto v = r.uint<std::uint16_t>(*t, "reflector-udp-port", tp, 862, 65535)) {
                if (*v != 862 && *v < 49152)
                    r.error(tp + "/reflector-udp-port",
                            std::to_string(*v) + " is out of range (862 | 49152..65535)");
                else
                    q.reflector_udp_port = *v;
            }
            if (auto v = r.uint<std::uint64_t>(*t, "timeout", tp, 0, ~0ull, true)) q.timeout = *v;
            q.padding_length = r.uint<std::uint32_t>(*t, "padding-length", tp, 64, 4096);
            if (auto v = r.uint<std::uint8_t>(*t, "test-packet-dscp", tp, 0, 63))
                q.test_packet_dscp = *v;
            if (auto v = r.uint<std::uint64_t>(*t, "start-time", tp, 0, ~0ull, true))
                q.start_time = *v;
            if (auto v = r.uint<std::uint32_t>(*t, "repeat", tp, 0, 0xFFFFFFFFu)) q.repeat = *v;
            if (auto v = r.uint<std::uint32_t>(*t, "repeat-interval", tp, 0, 0xFFFFFFFFu))
                q.repeat_interval = *v;
            for (const auto& [pm, pmp] : r.list(*t, "pm-reg-list", tp, "pm-index", false)) {
                r.object(*pm, pmp, {"pm-index"});
                if (auto v = r.uint<std::uint16_t>(*pm, "pm-index", pmp, 0, 65535))
                    q.pm_reg_list.push_back(*v);
            }
            (void)r.enumeration(*t, "state", tp,
                                {"accepted", "failed", "internal-error", "not-supported",
                                 "permanent-resource-limit", "temp-resource-limit"});
            (void)r.string(*t, "sid", tp);
            cc.requests.push_back(std::move(q));
        }
        c.connections.push_back(std::move(cc));
    }
}

inline void load_server(reader& r, const nlohmann::json& j, const std::string& path,
                        server_config& s)
{
    s.present = true;
    if (!r.object(j, path,
                  {"admin-state", "server-tcp-port", "servwait", "control-packet-dscp", "count",
                   "max-count-exponent", "modes", "key-chain"},
                  {"ctrl-connection"}))
        return;
    if (auto v = r.boolean(j, "admin-state", path)) s.admin_state = *v;
    if (auto v = r.uint<std::uint16_t>(j, "server-tcp-port", path, 0, 65535))
        s.server_tcp_port = *v;
    if (auto v = r.uint<std::uint32_t>(j, "servwait", path, 1, 604800)) s.servwait = *v;
    s.control_packet_dscp = r.uint<std::uint8_t>(j, "control-packet-dscp", path, 0, 63);
    if (auto v = r.uint<std::uint8_t>(j, "count", path, 10, 31)) s.count = *v;
    if (auto v = r.uint<std::uint8_t>(j, "max-count-exponent", path, 10, 31)) {
        s.max_count_exponent = *v;
        s.max_count_exponent_given = true;
    }
    s.modes = r.modes(j, "modes", path);
    s.key_chain = r.key_chain(j, path);
    // config false: what the server reports about its connections.
    if (auto it = j.find("ctrl-connection"); it != j.end()) {
        const std::string lp = path + "/ctrl-connection";
        if (!it->is_array()) {
            r.error(lp, detail::json_text(*it) + " is not a list (JSON array)");
        } else {
            for (std::size_t i = 0; i < it->size(); ++i) {
                const auto& e = (*it)[i];
                const std::string p = lp + "[" + std::to_string(i + 1) + "]";
                if (!r.object(e, p, {},
                              {"client-ip", "client-tcp-port", "server-ip", "server-tcp-port",
                               "state", "control-packet-dscp", "selected-mode", "key-id", "count",
                               "max-count-exponent", "salt", "server-iv", "challenge"}))
                    continue;
                (void)r.ip(e, "client-ip", p);
                (void)r.ip(e, "server-ip", p);
                (void)r.uint<std::uint16_t>(e, "client-tcp-port", p, 0, 65535);
                (void)r.uint<std::uint16_t>(e, "server-tcp-port", p, 0, 65535);
                (void)r.enumeration(e, "state", p, {"active", "servwait"});
                (void)r.uint<std::uint8_t>(e, "control-packet-dscp", p, 0, 63);
                (void)r.modes(e, "selected-mode", p);
                (void)r.string(e, "key-id", p, 1, 80);
                (void)r.uint<std::uint8_t>(e, "count", p, 10, 31);
                (void)r.uint<std::uint8_t>(e, "max-count-exponent", p, 10, 31);
            }
        }
    }
}

inline void load_session_sender(reader& r, const nlohmann::json& j, const std::string& path,
                                session_sender_config& s)
{
    s.present = true;
    if (!r.object(j, path, {"admin-state", "test-session"})) return;
    if (auto v = r.boolean(j, "admin-state", path)) s.admin_state = *v;
    for (const auto& [e, p] : r.list(j, "test-session", path, "name")) {
        r.object(*e, p,
                 {"name", "fill-mode", "number-of-packets", "periodic-interval", "lambda",
                  "max-interval"},
                 {"ctrl-connection-name", "state", "sent-packets", "rcv-packets", "last-sent-seq",
                  "last-rcv-seq"});
        sender_test_session t;
        t.name = (*e)["name"].get<std::string>();
        if (auto v = r.enumeration(*e, "fill-mode", p, {"zero", "random"})) t.fill_mode = *v;
        r.require(*e, "number-of-packets", p);
        if (auto v = r.uint<std::uint32_t>(*e, "number-of-packets", p, 0, 0xFFFFFFFFu))
            t.number_of_packets = *v;
        t.periodic_interval = r.decimal(*e, "periodic-interval", p, 0, 92233720368547.0);
        t.lambda = r.decimal(*e, "lambda", p, 0, 92233720368547.0);
        t.max_interval = r.decimal(*e, "max-interval", p, 0, 92233720368547.0);
        if (t.periodic_interval && (t.lambda || t.max_interval))
            r.error(p, "periodic-interval and lambda/max-interval are cases of one choice "
                       "(packet-distribution): give one");
        if (t.max_interval && !t.lambda) r.error(p + "/max-interval", "needs lambda");
        (void)r.string(*e, "ctrl-connection-name", p);
        (void)r.enumeration(*e, "state", p, {"active", "failure"});
        r.state_counters(*e, p);
        s.sessions.push_back(std::move(t));
    }
}

inline void load_session_reflector(reader& r, const nlohmann::json& j, const std::string& path,
                                   session_reflector_config& s)
{
    s.present = true;
    if (!r.object(j, path, {"admin-state", "refwait"}, {"test-session"})) return;
    if (auto v = r.boolean(j, "admin-state", path)) s.admin_state = *v;
    if (auto v = r.uint<std::uint32_t>(j, "refwait", path, 1, 604800)) s.refwait = *v;
    if (auto it = j.find("test-session"); it != j.end()) {
        const std::string lp = path + "/test-session";
        if (!it->is_array()) {
            r.error(lp, detail::json_text(*it) + " is not a list (JSON array)");
            return;
        }
        for (std::size_t i = 0; i < it->size(); ++i) {
            const auto& e = (*it)[i];
            const std::string p = lp + "[" + std::to_string(i + 1) + "]";
            if (!r.object(e, p, {},
                          {"sid", "sender-ip", "sender-udp-port", "reflector-ip",
                           "reflector-udp-port", "parent-connection-client-ip",
                           "parent-connection-client-tcp-port", "parent-connection-server-ip",
                           "parent-connection-server-tcp-port", "test-packet-dscp", "sent-packets",
                           "rcv-packets", "last-sent-seq", "last-rcv-seq"}))
                continue;
            (void)r.string(e, "sid", p);
            (void)r.ip(e, "sender-ip", p);
            (void)r.uint<std::uint16_t>(e, "sender-udp-port", p, 49152, 65535);
            (void)r.ip(e, "reflector-ip", p);
            (void)r.uint<std::uint16_t>(e, "reflector-udp-port", p, 862, 65535);
            (void)r.ip(e, "parent-connection-client-ip", p);
            (void)r.uint<std::uint16_t>(e, "parent-connection-client-tcp-port", p, 0, 65535);
            (void)r.ip(e, "parent-connection-server-ip", p);
            (void)r.uint<std::uint16_t>(e, "parent-connection-server-tcp-port", p, 0, 65535);
            (void)r.uint<std::uint8_t>(e, "test-packet-dscp", p, 0, 63);
            r.state_counters(e, p);
        }
    }
}

inline void load_stamp(reader& r, const nlohmann::json& j, const std::string& path, stamp_config& s)
{
    if (!r.object(j, path, {"session-sender", "session-reflector"})) return;
    if (auto it = j.find("session-sender"); it != j.end()) {
        const std::string sp = path + "/session-sender";
        if (r.object(*it, sp, {"admin-state", "test-session"})) {
            if (auto v = r.boolean(*it, "admin-state", sp)) s.sender_admin_state = *v;
            for (const auto& [e, p] : r.list(*it, "test-session", sp, "name")) {
                r.object(*e, p,
                         {"name", "admin-state", "mode", "sender-ip", "sender-udp-port",
                          "reflector-ip", "reflector-udp-port", "number-of-packets",
                          "periodic-interval", "lambda", "padding-length", "test-packet-dscp",
                          "timeout", "repeat", "repeat-interval", "ssid", "key-id"});
                light_session t;
                t.name = (*e)["name"].get<std::string>();
                if (auto v = r.boolean(*e, "admin-state", p)) t.admin_state = *v;
                if (auto v = r.enumeration(*e, "mode", p, {"stamp", "twamp-light"})) t.mode = *v;
                t.sender_ip = r.ip(*e, "sender-ip", p);
                t.sender_udp_port = r.uint<std::uint16_t>(*e, "sender-udp-port", p, 1, 65535);
                r.require(*e, "reflector-ip", p);
                if (auto v = r.ip(*e, "reflector-ip", p)) t.reflector_ip = *v;
                if (auto v = r.uint<std::uint16_t>(*e, "reflector-udp-port", p, 1, 65535))
                    t.reflector_udp_port = *v;
                if (auto v = r.uint<std::uint32_t>(*e, "number-of-packets", p, 1, 1000000))
                    t.number_of_packets = *v;
                t.periodic_interval = r.decimal(*e, "periodic-interval", p, 0.00001, 3600);
                t.lambda = r.decimal(*e, "lambda", p, 0.00001, 3600);
                if (t.periodic_interval && t.lambda)
                    r.error(p, "periodic-interval and lambda are cases of one choice: give one");
                t.padding_length = r.uint<std::uint32_t>(*e, "padding-length", p, 0, 9000);
                if (auto v = r.uint<std::uint8_t>(*e, "test-packet-dscp", p, 0, 63)) {
                    t.test_packet_dscp = *v;
                    t.test_packet_dscp_given = true;
                }
                if (auto v = r.decimal(*e, "timeout", p, 0.001, 3600)) t.timeout = *v;
                if (auto v = r.uint<std::uint32_t>(*e, "repeat", p, 0, 0xFFFFFFFFu)) t.repeat = *v;
                if (auto v = r.uint<std::uint32_t>(*e, "repeat-interval", p, 0, 0xFFFFFFFFu))
                    t.repeat_interval = *v;
                if (auto v = r.uint<std::uint16_t>(*e, "ssid", p, 0, 65535)) t.ssid = *v;
                t.key_id = r.string(*e, "key-id", p, 1, 80);
                if (t.mode != "stamp" && (t.ssid || t.key_id))
                    r.error(p, "ssid and key-id are STAMP leaves (mode stamp)");
                if (t.mode == "stamp" && t.padding_length && *t.padding_length > 0 &&
                    *t.padding_length < 4)
                    r.error(p + "/padding-length",
                            "with STAMP, padding travels in a TLV and is 0 or at least 4");
                s.sessions.push_back(std::move(t));
            }
        }
    }
    if (auto it = j.find("session-reflector"); it != j.end()) {
        const std::string sp = path + "/session-reflector";
        if (r.object(*it, sp, {"admin-state", "refwait", "reflector"})) {
            if (auto v = r.boolean(*it, "admin-state", sp)) s.reflector_admin_state = *v;
            if (auto v = r.uint<std::uint32_t>(*it, "refwait", sp, 1, 604800)) s.refwait = *v;
            for (const auto& [e, p] : r.list(*it, "reflector", sp, "name")) {
                r.object(*e, p,
                         {"name", "admin-state", "mode", "reflector-ip", "reflector-udp-port",
                          "stateless", "key-id", "max-sessions"});
                light_reflector t;
                t.name = (*e)["name"].get<std::string>();
                if (auto v = r.boolean(*e, "admin-state", p)) t.admin_state = *v;
                if (auto v = r.enumeration(*e, "mode", p, {"auto", "stamp", "twamp-light"}))
                    t.mode = *v;
                t.reflector_ip = r.ip(*e, "reflector-ip", p);
                if (auto v = r.uint<std::uint16_t>(*e, "reflector-udp-port", p, 0, 65535))
                    t.reflector_udp_port = *v;
                if (auto v = r.boolean(*e, "stateless", p)) t.stateless = *v;
                t.key_id = r.string(*e, "key-id", p, 1, 80);
                if (auto v = r.uint<std::uint32_t>(*e, "max-sessions", p, 1, 1000000))
                    t.max_sessions = *v;
                s.reflectors.push_back(std::move(t));
            }
        }
    }
}

inline void load_daemon(reader& r, const nlohmann::json& j, const std::string& path,
                        daemon_section& d)
{
    if (!r.object(j, path,
                  {"server-listen", "metrics-listen", "results-file", "key-file", "probe-allow",
                   "probe-max-count", "probe-min-interval-ms", "probe-max-concurrent",
                   "probe-timeout", "retry-initial", "retry-max"}))
        return;
    if (auto v = r.string(j, "server-listen", path)) {
        if (!valid_ip(*v) && !v->empty())
            r.error(path + "/server-listen", json_text(*v) + " is not an IP address");
        else
            d.server_listen = *v;
    }
    if (auto v = r.string(j, "metrics-listen", path)) {
        const auto colon = v->rfind(':');
        if (colon == std::string::npos || colon + 1 == v->size() ||
            v->substr(colon + 1).find_first_not_of("0123456789") != std::string::npos ||
            v->size() - colon - 1 > 5 || std::stoul(v->substr(colon + 1)) > 65535)
            r.error(path + "/metrics-listen", json_text(*v) + " is not HOST:PORT");
        else
            d.metrics_listen = *v;
    }
    if (auto v = r.string(j, "results-file", path)) d.results_file = *v;
    if (auto v = r.string(j, "key-file", path, 1)) d.key_file = *v;
    if (auto it = j.find("probe-allow"); it != j.end()) {
        const std::string p = path + "/probe-allow";
        if (!it->is_array()) {
            r.error(p, json_text(*it) + " is not a leaf-list (JSON array)");
        } else {
            for (const auto& e : *it) {
                if (!e.is_string()) {
                    r.error(p, json_text(e) + " is not a string");
                    continue;
                }
                const std::string s = e.get<std::string>();
                const auto slash = s.find('/');
                const std::string a = s.substr(0, slash);
                bool ok = valid_ip(a);
                if (ok && slash != std::string::npos) {
                    const std::string l = s.substr(slash + 1);
                    const unsigned max = a.find(':') == std::string::npos ? 32 : 128;
                    ok = !l.empty() && l.size() <= 3 &&
                         l.find_first_not_of("0123456789") == std::string::npos &&
                         std::stoul(l) <= max;
                }
                if (!ok)
                    r.error(p, json_text(e) + " is not an address prefix (such as 10.0.0.0/8)");
                else
                    d.probe_allow.push_back(s);
            }
        }
    }
    if (auto v = r.uint<std::uint32_t>(j, "probe-max-count", path, 1, 10000))
        d.probe_max_count = *v;
    if (auto v = r.uint<std::uint32_t>(j, "probe-min-interval-ms", path, 1, 10000))
        d.probe_min_interval_ms = *v;
    if (auto v = r.uint<std::uint32_t>(j, "probe-max-concurrent", path, 1, 64))
        d.probe_max_concurrent = *v;
    if (auto v = r.decimal(j, "probe-timeout", path, 0.01, 10)) d.probe_timeout = *v;
    if (auto v = r.decimal(j, "retry-initial", path, 0.01, 3600)) d.retry_initial = *v;
    if (auto v = r.decimal(j, "retry-max", path, 0.01, 86400)) d.retry_max = *v;
    if (d.retry_max < d.retry_initial) r.error(path + "/retry-max", "is below retry-initial");
}

} // namespace detail

inline constexpr const char* kTwampRoot = "ietf-twamp:twamp";
inline constexpr const char* kStampRoot = "twamp-daemon:stamp";
inline constexpr const char* kDaemonRoot = "twamp-daemon:daemon";

// Loads a parsed document. Returns the errors (empty: `out` is the configuration).
inline std::vector<config_error> load_config(const nlohmann::json& doc, config& out)
{
    detail::reader r;
    out = config{};
    if (!r.object(doc, "", {kTwampRoot, kStampRoot, kDaemonRoot})) return r.errors;
    if (auto it = doc.find(kTwampRoot); it != doc.end()) {
        const std::string p = std::string("/") + kTwampRoot;
        if (r.object(*it, p, {"client", "server", "session-sender", "session-reflector"})) {
            if (auto c = it->find("client"); c != it->end())
                detail::load_client(r, *c, p + "/client", out.client);
            if (auto c = it->find("server"); c != it->end())
                detail::load_server(r, *c, p + "/server", out.server);
            if (auto c = it->find("session-sender"); c != it->end())
                detail::load_session_sender(r, *c, p + "/session-sender", out.session_sender);
            if (auto c = it->find("session-reflector"); c != it->end())
                detail::load_session_reflector(r, *c, p + "/session-reflector",
                                               out.session_reflector);
        }
    }
    if (auto it = doc.find(kStampRoot); it != doc.end())
        detail::load_stamp(r, *it, std::string("/") + kStampRoot, out.stamp);
    if (auto it = doc.find(kDaemonRoot); it != doc.end())
        detail::load_daemon(r, *it, std::string("/") + kDaemonRoot, out.daemon);

    // Names label metrics and results: unique across every kind of sender session.
    std::set<std::string> names;
    for (const auto& c : out.client.connections)
        for (const auto& q : c.requests)
            if (!names.insert(q.name).second)
                r.error(std::string("/") + kTwampRoot + "/client/ctrl-connection[name='" + c.name +
                            "']/test-session-request[name='" + q.name + "']",
                        "test session name used twice");
    for (const auto& s : out.stamp.sessions)
        if (!names.insert(s.name).second)
            r.error(std::string("/") + kStampRoot + "/session-sender/test-session[name='" + s.name +
                        "']",
                    "test session name already used by a TWAMP test-session-request");
    return r.errors;
}

// Parses JSON text, then loads it.
inline std::vector<config_error> load_config_text(const std::string& text, config& out)
{
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        // Syntax errors, and numbers the parser cannot hold (1e400 is out of a double's range).
        return {{"/", std::string("not valid JSON: ") + e.what()}};
    }
    return load_config(doc, out);
}

inline std::vector<config_error> load_config_file(const std::string& file, config& out)
{
    std::ifstream in(file, std::ios::binary);
    if (!in) return {{file, "cannot open the file"}};
    std::ostringstream ss;
    ss << in.rdbuf();
    return load_config_text(ss.str(), out);
}

// Configuration leaves this daemon does not act on, with their paths.
inline std::vector<config_error> unsupported(const config& c)
{
    std::vector<config_error> e;
    const std::string t = std::string("/") + kTwampRoot;
    auto ns = [&](const std::string& path, const std::string& why) {
        e.push_back({path, "not supported: " + why});
    };
    for (const auto& cc : c.client.connections) {
        const std::string p = t + "/client/ctrl-connection[name='" + cc.name + "']";
        if (cc.client_ip)
            ns(p + "/client-ip",
               "the control connection's source address is chosen by the routing table");
        if (cc.control_packet_dscp_given && cc.control_packet_dscp != 0)
            ns(p + "/control-packet-dscp",
               "control packets carry the test sessions' DSCP (test-packet-dscp)");
        for (const auto& q : cc.requests) {
            const std::string qp = p + "/test-session-request[name='" + q.name + "']";
            if (q.start_time != 0) ns(qp + "/start-time", "sessions start as soon as possible (0)");
            if (!q.pm_reg_list.empty())
                ns(qp + "/pm-reg-list", "every metric of the report is always measured");
        }
    }
    for (std::size_t i = 0; i < c.client.mode_preference_chain.size(); ++i) {
        const auto& m = c.client.mode_preference_chain[i];
        if (m.mode & ~std::uint32_t{0x7F})
            ns(t + "/client/mode-preference-chain[priority='" + std::to_string(m.priority) +
                   "']/mode",
               "IKEv2Derived");
    }
    if (c.session_reflector.present && !c.session_reflector.admin_state)
        ns(t + "/session-reflector/admin-state",
           "the server always reflects the sessions it accepts; set server/admin-state false "
           "to stop offering TWAMP");
    if (c.server.control_packet_dscp)
        ns(t + "/server/control-packet-dscp",
           "the server answers with the DS field of the client's connection");
    if (c.server.max_count_exponent_given)
        ns(t + "/server/max-count-exponent", "a Server offers `count`; it has no maximum");
    if (c.server.modes && (*c.server.modes & 128)) ns(t + "/server/modes", "IKEv2Derived");
    for (const auto& s : c.session_sender.sessions) {
        const std::string p = t + "/session-sender/test-session[name='" + s.name + "']";
        if (s.fill_mode != "zero") ns(p + "/fill-mode", "padding is always zero-filled");
        if (s.max_interval) ns(p + "/max-interval", "the Poisson schedule is not truncated");
    }
    if (!c.daemon.probe_allow.empty() && c.daemon.metrics_listen.empty())
        ns(std::string("/") + kDaemonRoot + "/probe-allow", "/probe needs metrics-listen");
    return e;
}

} // namespace twamp::daemon
