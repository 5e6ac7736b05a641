// control.cpp — the full TWAMP sub-commands: server, controller and controlclient.
//
//   twamp server [local-ip:port]                            TWAMP Server + Session-Reflector
//   twamp controller [remote-ip[:port]] [local-ip:port]     Control-Client + Session-Sender
//   twamp controlclient [sender-ip:port] [server-ip[:port]] Control-Client for another sender
//
// The remote port of `controller` and `controlclient` is the reflector port to ask for (as in
// twampy); the control connection goes to --control-port (default 862).
#include "control.hpp"

#include "cli_common.hpp"
#include "output.hpp"
#include "probe_options.hpp"

#include "twamp/asio/controller.hpp"
#include "twamp/asio/server.hpp"
#include "twamp/control_security.hpp"
#include "twamp/crypto_openssl.hpp"

#include <cstdio>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace twamp_cli {

namespace {

using security = twamp::control::keyed_security<twamp::openssl_crypto>;

std::shared_ptr<twamp::control::key_store> load_keys(const std::string& path)
{
    auto ks = std::make_shared<twamp::control::key_store>();
    std::string err;
    if (!ks->load(path, err)) throw usage_error("--key-file: " + err);
    return ks;
}

// The mode names of --modes and --auth-mode and their Modes bits (RFC 4656 §3.1; RFC 5938
// individual session control; RFC 6038 reflect octets and symmetrical size).
struct mode_name {
    const char* name;
    std::uint32_t bit;
};
namespace mode = twamp::control::mode;
constexpr mode_name kSecurityModes[] = {{"open", mode::unauthenticated},
                                        {"unauthenticated", mode::unauthenticated},
                                        {"authenticated", mode::authenticated},
                                        {"encrypted", mode::encrypted},
                                        {"mixed", mode::mixed}};
constexpr mode_name kFeatureModes[] = {{"individual", mode::individual_session_control},
                                       {"reflect-octets", mode::reflect_octets},
                                       {"symmetric", mode::symmetrical_size}};
constexpr std::uint32_t kKeyedModes = mode::authenticated | mode::encrypted | mode::mixed;

// The Modes bits of checked names (CLI11 let only known ones through).
std::uint32_t modes_of(const std::vector<std::string>& names)
{
    std::uint32_t m = 0;
    for (const auto& n : names) {
        for (const auto& e : kSecurityModes)
            if (n == e.name) m |= e.bit;
        for (const auto& e : kFeatureModes)
            if (n == e.name) m |= e.bit;
    }
    return m;
}

CLI::Validator mode_check(bool with_features, const std::string& hint)
{
    std::vector<std::string> names;
    for (const auto& e : kSecurityModes)
        names.emplace_back(e.name);
    if (with_features)
        for (const auto& e : kFeatureModes)
            names.emplace_back(e.name);
    return one_of(std::move(names), "unknown mode", hint);
}

// ---------------------------------------------------------------------------------------------
// server

struct server_cli_options {
    common_options common;
    std::string local = ":862";
    double servwait = 900;
    double refwait = 900;
    std::size_t max_connections = 1024;
    std::size_t max_sessions = 64;
    std::size_t max_test_sessions = twamp::net::kDefaultMaxTestSessions;
    std::size_t sessions_per_port = 1024;
    double max_timeout = 60;
    double max_key_derivations = 0; // per second; 0: 2^18 / --count
    std::vector<std::string> allow;
    std::string test_ports;
    std::vector<std::string> modes;
    std::string key_file;
    std::uint32_t count = 2048;
};

// --test-ports LO-HI, 1-65535.
std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_port_range(const std::string& s)
{
    const auto dash = s.find('-');
    std::uint16_t lo = 0, hi = 0;
    if (dash == std::string::npos || twamp::net::parse_port(s.substr(0, dash), lo) ||
        twamp::net::parse_port(s.substr(dash + 1), hi) || lo == 0 || hi < lo)
        return std::nullopt;
    return std::pair{lo, hi};
}

// The checks that span flags.
void check_server(const server_cli_options& o)
{
    if (o.modes.empty()) return;
    const auto m = modes_of(o.modes);
    if (!(m & mode::security_mask))
        throw usage_error(
            "--modes: name at least one security mode (open, authenticated, encrypted, mixed)");
    if (o.key_file.empty() && (m & kKeyedModes))
        throw usage_error("--modes: authenticated, encrypted and mixed need --key-file");
}

std::chrono::nanoseconds seconds(double s)
{
    return std::chrono::nanoseconds{static_cast<std::int64_t>(s * 1e9)};
}

twamp::net::server_options server_options_from(const server_cli_options& o, bool keyed)
{
    twamp::net::server_options so;
    so.control.servwait = seconds(o.servwait);
    so.refwait = seconds(o.refwait);
    so.max_connections = o.max_connections;
    so.control.max_sessions = o.max_sessions;
    so.max_timeout = seconds(o.max_timeout);
    so.max_test_sessions = o.max_test_sessions;
    so.sessions_per_port = o.sessions_per_port;
    so.key_derivations_per_second = o.max_key_derivations;
    so.control.count = o.count;
    // With a key file: every mode; without one: the open mode only.
    const std::uint32_t features =
        mode::individual_session_control | mode::reflect_octets | mode::symmetrical_size;
    so.control.modes =
        o.modes.empty()
            ? (keyed ? mode::unauthenticated | kKeyedModes : mode::unauthenticated) | features
            : modes_of(o.modes);
    for (const auto& a : o.allow)
        so.allow.push_back(*twamp::net::address_prefix::parse(a));
    if (const auto range = parse_port_range(o.test_ports)) {
        so.test_port_low = range->first;
        so.test_port_high = range->second;
    }
    so.test_socket = socket_options_from(o.common);
    if (g_log.current() >= logger::info)
        so.log = [](const std::string& s) { g_log.log(logger::info, "%s", s.c_str()); };
    return so;
}

using server_ptr = std::unique_ptr<twamp::net::twamp_server<security>>;

// Listens where asked; a wildcard address listens on IPv6 and IPv4, or IPv4 only without IPv6.
server_ptr open_server(asio::io_context& io, twamp::net::server_options so,
                       const server_cli_options& o, std::shared_ptr<twamp::control::key_store> keys)
{
    const auto hp = parse_endpoint_arg("local-ip:port", o.local, twamp::control::kControlPort);
    std::error_code ec;
    if (hp.host.empty()) {
        so.local = {asio::ip::address_v6::any(), hp.port};
    } else {
        asio::ip::tcp::resolver res(io);
        auto r = res.resolve(hp.host, std::to_string(hp.port), ec);
        if (ec || r.empty())
            throw run_failure("twamp server: cannot resolve '" + o.local + "': " + ec.message());
        so.local = r.begin()->endpoint();
    }
    auto make = [keys] { return keys ? security::server(keys) : security{}; };
    auto server = std::make_unique<twamp::net::twamp_server<security>>(io, so, make);
    ec = server->open();
    if (ec && hp.host.empty()) {
        so.local = {asio::ip::address_v4::any(), hp.port};
        server = std::make_unique<twamp::net::twamp_server<security>>(io, so, make);
        ec = server->open();
    }
    if (ec) throw run_failure("twamp server: cannot listen on " + o.local + ": " + ec.message());
    return server;
}

void log_server_start(const twamp::net::twamp_server<security>& server, const server_cli_options& o)
{
    const auto ep = server.local_endpoint();
    g_log.log(logger::info,
              "limits: %zu test sessions server-wide, %zu per connection, %zu per reflector "
              "port, Timeout at most %s s, %zu descriptors, %s key derivations per second",
              server.options().max_test_sessions, o.max_sessions,
              server.options().sessions_per_port, num(o.max_timeout).c_str(),
              twamp::net::descriptor_limit(),
              num(server.options().key_derivations_per_second).c_str());
    g_log.log(logger::info, "TWAMP server listening on [%s]:%u", ep.address().to_string().c_str(),
              unsigned(ep.port()));
}

void log_server_counters(const twamp::net::server_counters& c)
{
    g_log.counts(logger::info,
                 "server stopped: %llu connections (%llu refused), %llu sessions accepted, %llu "
                 "refused, %llu ended by REFWAIT, %llu test packets failed authentication",
                 c.connections, c.refused_connections, c.sessions_accepted, c.sessions_rejected,
                 c.sessions_ended_refwait, c.test_auth_failures);
    g_log.counts(logger::info,
                 "limits hit: %llu sessions refused for the server-wide budget, %llu for stopped "
                 "sessions still waiting out their Timeout, %llu third-party Sender Addresses, "
                 "%llu Timeouts capped, %llu connections refused for descriptors, %llu closed by "
                 "the flush grace, %llu key derivations run and %llu refused by the rate limit",
                 c.sessions_refused_budget, c.sessions_refused_lingering,
                 c.sessions_refused_third_party, c.timeouts_capped,
                 c.connections_refused_descriptors, c.flush_grace_closes, c.key_derivations,
                 c.key_derivations_refused);
    g_log.counts(logger::info,
                 "reflector ports: %llu opened, %llu sessions joined a port already open, %llu "
                 "test packets matched no session",
                 c.test_ports_opened, c.sessions_joined_port, c.test_packets_unmatched);
}

int run_server(const server_cli_options& o)
{
    apply_logging(o.common);
    check_server(o);
    std::shared_ptr<twamp::control::key_store> keys;
    if (!o.key_file.empty()) keys = load_keys(o.key_file);
    asio::io_context io;
    auto server = open_server(io, server_options_from(o, keys != nullptr), o, keys);
    log_server_start(*server, o);
    server->start();
    signal_guard sig(io, [&](int) {
        g_log.log(logger::info, "signal received: closing connections and sessions");
        server->stop();
        io.stop();
    });
    io.run();
    log_server_counters(server->counters_now());
    return kExitOk;
}

void add_server_options(CLI::App* sc, server_cli_options& o)
{
    add_debug_options(sc, o.common);
    add_ttl_option(sc, o.common, "TTL / hop limit of reflected packets");
    sc->add_option("local-ip:port", o.local, "Address to listen on")->capture_default_str();
    sc->add_option("--servwait", o.servwait,
                   "Close idle control connections after this long, seconds")
        ->capture_default_str()
        ->check(in_range(0.0, 604800.0, "seconds, 0-604800; 0 = never"));
    sc->add_option("--refwait", o.refwait, "End test sessions silent this long, seconds")
        ->capture_default_str()
        ->check(above(0.0, 604800.0, "seconds, 1-604800"));
    sc->add_option("--max-connections", o.max_connections, "Control connections at most")
        ->capture_default_str()
        ->check(at_least_one<std::size_t>());
    sc->add_option("--max-sessions", o.max_sessions,
                   "Test sessions per connection at most, stopped ones included until their "
                   "Timeout ends")
        ->capture_default_str()
        ->check(at_least_one<std::size_t>());
    sc->add_option("--max-test-sessions", o.max_test_sessions, "Test sessions server-wide at most")
        ->capture_default_str()
        ->check(at_least_one<std::size_t>());
    sc->add_option("--sessions-per-port", o.sessions_per_port,
                   "Test sessions one reflector port serves at most (1: a port per session)")
        ->capture_default_str()
        ->check(at_least_one<std::size_t>());
    sc->add_option("--max-timeout", o.max_timeout,
                   "Longest Timeout granted after Stop-Sessions, seconds; longer ones get this")
        ->capture_default_str()
        ->check(in_range(0.0, 604800.0, "seconds, 0-604800"));
    sc->add_option("--allow", o.allow, "Accept clients from this prefix only (repeatable)")
        ->check(text_check(
            [](const std::string& s) { return twamp::net::address_prefix::parse(s).has_value(); },
            "invalid prefix", "such as 10.0.0.0/8 or 2001:db8::/32"));
    sc->add_option("--test-ports", o.test_ports,
                   "Reflector port range LO-HI when the requested port is taken")
        ->check(text_check([](const std::string& s) { return parse_port_range(s).has_value(); },
                           "invalid range", "LO-HI, 1-65535"));
    sc->add_option("--modes", o.modes,
                   "Modes to offer: open, authenticated, encrypted, mixed, individual, "
                   "reflect-octets, symmetric")
        ->delimiter(',')
        ->check(mode_check(true, "open, authenticated, encrypted, mixed, individual, "
                                 "reflect-octets, symmetric"));
    sc->add_option("--key-file", o.key_file,
                   "Key file, lines of 'KEYID HEXSECRET' (perfSONAR pfs format)");
    // RFC 4656 §3.1: a power of 2, at least 1024. At most 65536: every protected set-up costs
    // the server one PBKDF2 run of this many iterations on the loop that reflects test packets.
    sc->add_option("--count", o.count,
                   "PBKDF2 iteration count offered in the greeting (1024-65536)")
        ->capture_default_str()
        ->check(number_check<std::uint32_t>(
            [](std::uint32_t v) { return v >= 1024 && v <= 65536 && (v & (v - 1)) == 0; },
            [](std::uint32_t v) {
                return "invalid value " + std::to_string(v) + " (a power of 2, 1024-65536)";
            }));
    sc->add_option("--max-key-derivations", o.max_key_derivations,
                   "PBKDF2 runs per second server-wide, a quarter per source address; beyond "
                   "it Accept 1 after 1 s (default 2^18 / --count)")
        ->check(in_range(0.0, 1e6, "per second; 0 = 2^18 / --count"));
}

// ---------------------------------------------------------------------------------------------
// controller and controlclient

struct controller_cli_options : test_cli_options {
    int control_port = twamp::control::kControlPort;
    unsigned sessions = 1;
    bool individual = false;
    bool reflect_octets = false;
    int reflect_length = 2;
    bool symmetric = false;
    bool zero_addresses = false;
    double session_timeout = 2;
    double connect_timeout = 10;
    double reply_timeout = 30;
    double duration = 0; // controlclient
    std::vector<std::string> auth_modes;
    std::string key_id;
    std::string key_file;
    double max_count = 32768;
};

// The checks that span flags, or a flag and the packet format; both sub-commands.
void check_controller(const controller_cli_options& o)
{
    check_common(o.common);
    check_padding(o.common.padding, twamp::test_format::twamp);
    if (o.reflect_octets && (o.reflect_length < 2 || o.reflect_length > 1024))
        throw usage_error("--reflect-length: invalid value " + std::to_string(o.reflect_length) +
                          " (2-1024)");
    if ((modes_of(o.auth_modes) & kKeyedModes) && (o.key_id.empty() || o.key_file.empty()))
        throw usage_error(
            "--auth-mode: authenticated, encrypted and mixed need --key-id and --key-file");
}

// The server's control address: the host of the positional argument, --control-port.
asio::ip::tcp::endpoint resolve_server(asio::io_context& io, const twamp::net::host_port& hp,
                                       int control_port)
{
    std::error_code ec;
    asio::ip::tcp::resolver res(io);
    auto r = res.resolve(hp.host.empty() ? "127.0.0.1" : hp.host, std::to_string(control_port), ec);
    if (ec || r.empty())
        throw std::runtime_error("cannot resolve '" + hp.host + "': " + ec.message());
    for (const auto& e : r)
        if (hp.family_hint == 0 || (hp.family_hint == 4) == e.endpoint().address().is_v4())
            return e.endpoint();
    return r.begin()->endpoint();
}

twamp::control::client_config client_config_of(const controller_cli_options& o)
{
    twamp::control::client_config c;
    c.reply_timeout = seconds(o.reply_timeout);
    c.security_modes = o.auth_modes.empty() ? mode::unauthenticated : modes_of(o.auth_modes);
    c.max_count = static_cast<std::uint32_t>(o.max_count);
    if (o.individual) c.features |= mode::individual_session_control;
    if (o.reflect_octets) c.features |= mode::reflect_octets;
    if (o.symmetric) c.features |= mode::symmetrical_size;
    c.required_features = c.features;
    return c;
}

// What both sub-commands ask the server for: the sessions, their timeouts and their probes.
twamp::net::controller_options controller_options_from(asio::io_context& io,
                                                       const controller_cli_options& o,
                                                       const twamp::net::host_port& server_hp)
{
    twamp::net::controller_options co;
    co.server = resolve_server(io, server_hp, o.control_port);
    co.requested_port = server_hp.port;
    co.sessions = o.sessions;
    co.individual = o.individual;
    co.symmetric = o.symmetric;
    co.zero_addresses = o.zero_addresses;
    co.session_timeout = seconds(o.session_timeout);
    co.connect_timeout = seconds(o.connect_timeout);
    co.control = client_config_of(o);
    if (o.reflect_octets) co.reflect_length = static_cast<std::uint16_t>(o.reflect_length);
    const int family = co.server.address().is_v4() ? 4 : 6;
    fill_sender_options(o.common, o.probes, twamp::test_format::twamp, family, co.test);
    const auto tos = co.test.sock.tos;
    co.dscp = static_cast<std::uint8_t>(tos ? (*tos >> 2) : 0);
    if (o.common.padding) // explicit padding (or IMIX); otherwise the agreed mode chooses 27 or 64
        for (auto sz : co.test.sizes)
            co.paddings.push_back(sz - twamp::kSenderUnauthLen);
    return co;
}

security make_client_security(const controller_cli_options& o)
{
    if (o.key_file.empty()) return security{};
    auto keys = load_keys(o.key_file);
    if (!o.key_id.empty() && !keys->find(o.key_id))
        throw usage_error("--key-id: '" + o.key_id + "' is not in the key file");
    return security::client(o.key_id, keys);
}

twamp::report::session_info session_info_of(const twamp::net::controller_session_result& s,
                                            const twamp::net::controller_result& r,
                                            const twamp::net::controller_options& co)
{
    twamp::report::session_info info;
    info.mode = "twamp";
    info.sender_address = twamp::net::display_address(s.local.address());
    info.sender_port = s.local.port();
    info.reflector_address = twamp::net::display_address(co.server.address());
    info.reflector_port = s.port;
    info.requested = co.test.count;
    info.scheduled = s.scheduled;
    info.skipped = s.skipped;
    info.distribution = "periodic"; // the controller sends on a periodic schedule
    info.interval_ns = co.test.interval.count();
    info.pacing_known = true;
    info.achieved_pps = s.achieved_pps;
    info.pacing_error_p50_ns = s.pacing_error_p50_ns;
    info.pacing_error_p99_ns = s.pacing_error_p99_ns;
    info.pacing_error_max_ns = s.pacing_error_max_ns;
    info.interrupted = r.interrupted;
    info.end_time_ns = twamp::net::realtime_now().count();
    return info;
}

int finish_controller(const twamp::net::controller_result& r, const controller_cli_options& o,
                      const twamp::net::controller_options& co)
{
    for (const auto& n : r.notices)
        g_log.log(logger::warning, "%s", n.c_str());
    if (!r.ok && !r.interrupted) std::fprintf(stderr, "twamp: %s\n", r.error.c_str());
    std::uint64_t received = 0;
    for (const auto& s : r.sessions) {
        if (s.stats.sent == 0 && !r.ok) continue; // never started
        emit_report(s.stats, session_info_of(s, r, co), o.output);
        report_no_reply(s.stats);
        received += s.stats.received;
    }
    if (!r.ok && !r.interrupted) return kExitRuntime;
    return received > 0 ? kExitOk : kExitNoReply;
}

// The controller's own test address, and the sizes that the RFC 6038 modes need.
void add_local_test_side(asio::io_context& io, const controller_cli_options& o,
                         const twamp::net::host_port& local_hp, twamp::net::controller_options& co)
{
    const int family = co.server.address().is_v4() ? 4 : 6;
    std::error_code ec;
    co.test.local = twamp::net::resolve_udp(io, local_hp, family, ec);
    if (ec)
        throw usage_error("local-ip:port: '" + o.near_end + "' does not fit the server's IPv" +
                          std::to_string(family));
    co.test.ephemeral_port_fallback = !o.near_end_given;
    if (o.symmetric && co.test.sizes.front() < twamp::kReflectorUnauthLen)
        throw usage_error("--symmetric: needs --padding of at least 27");
    if (!o.reflect_octets) return;
    const std::size_t pad_start =
        o.symmetric ? twamp::kReflectorUnauthLen : twamp::kSenderUnauthLen;
    const auto octets = static_cast<std::size_t>(o.reflect_length);
    for (auto sz : co.test.sizes)
        if (sz < pad_start + octets || sz < twamp::kReflectorUnauthLen + octets)
            throw usage_error("--reflect-octets: --padding too small to carry and return " +
                              std::to_string(o.reflect_length) + " octets");
}

int run_controller(const controller_cli_options& o)
{
    apply_logging(o.common);
    check_controller(o);
    check_output_options(o.output);
    const auto server_hp = parse_endpoint_arg("remote-ip:port", o.far_end, 20001);
    const auto local_hp = parse_endpoint_arg("local-ip:port", o.near_end, 20000);
    asio::io_context io;
    auto co = controller_options_from(io, o, server_hp);
    add_local_test_side(io, o, local_hp, co);

    twamp::net::controller<security> ctl(io, co, make_client_security(o));
    signal_guard sig(io, [&](int) { ctl.stop(); });
    int rc = kExitRuntime;
    ctl.start([&](const twamp::net::controller_result& r) {
        sig.cancel();
        rc = finish_controller(r, o, co);
        io.stop();
    });
    io.run();
    return rc;
}

// controlclient: the other sender's address, and how long to hold the sessions (seconds; 0 =
// until Ctrl-C).
double set_external_sender(asio::io_context& io, const controller_cli_options& o,
                           const twamp::net::host_port& sender_hp,
                           twamp::net::controller_options& co)
{
    const int family = co.server.address().is_v4() ? 4 : 6;
    co.run_senders = false;
    std::error_code ec;
    co.external_sender = twamp::net::resolve_udp(io, sender_hp, family, ec);
    if (ec)
        throw usage_error("twamp-sender-ip:port: cannot use '" + o.far_end +
                          "' with the server's IPv" + std::to_string(family));
    if (sender_hp.host.empty()) co.zero_addresses = true;
    // Without --duration: as long as the other sender needs for -c probes every -i ms, plus the
    // loss timeout; with neither, until Ctrl-C.
    double hold = o.duration;
    if (hold == 0 && o.probes.count_given)
        hold = static_cast<double>(o.probes.count) * o.probes.interval_ms / 1000.0 +
               o.probes.timeout_s;
    co.hold = seconds(hold);
    return hold;
}

void print_started(const twamp::net::controller_result& r, const twamp::net::controller_options& co,
                   double hold)
{
    for (const auto& s : r.sessions) {
        std::string sid;
        char b[3];
        for (auto x : s.sid) {
            std::snprintf(b, sizeof b, "%02x", x);
            sid += b;
        }
        std::printf("session started: send test packets to [%s]:%u (SID %s)\n",
                    co.server.address().to_string().c_str(), unsigned(s.port), sid.c_str());
    }
    if (co.hold.count() > 0)
        std::printf("holding the sessions for %s s\n", num(hold).c_str());
    else
        std::printf("holding the sessions until Ctrl-C\n");
    std::fflush(stdout);
}

int run_controlclient(const controller_cli_options& o)
{
    apply_logging(o.common);
    check_controller(o);
    // The other sender sends the probes: what we can pass on is the DSCP (Type-P) and the
    // padding (Padding Length); TTL and don't-fragment are that sender's own settings.
    if (o.common.ttl != 255 || o.common.do_not_fragment)
        throw usage_error("--ttl/--do-not-fragment: set them on the Session-Sender; controlclient "
                          "sends no test packets");
    const auto sender_hp = parse_endpoint_arg("twamp-sender-ip:port", o.far_end, 20000);
    const auto server_hp = parse_endpoint_arg("twamp-server-ip:port", o.near_end, 20001);
    asio::io_context io;
    auto co = controller_options_from(io, o, server_hp);
    const double hold = set_external_sender(io, o, sender_hp, co);

    twamp::net::controller<security> ctl(io, co, make_client_security(o));
    signal_guard sig(io, [&](int) { ctl.stop(); });
    ctl.on_started([&] { print_started(ctl.result(), co, hold); });
    int rc = kExitRuntime;
    ctl.start([&](const twamp::net::controller_result& r) {
        sig.cancel();
        rc = r.ok || r.interrupted ? kExitOk : kExitRuntime;
        if (!r.ok && !r.interrupted)
            std::fprintf(stderr, "twamp: %s\n", r.error.c_str());
        else
            std::printf("sessions stopped\n");
        io.stop();
    });
    io.run();
    return rc;
}

void add_session_options(CLI::App* sc, controller_cli_options& o)
{
    sc->add_option("--control-port", o.control_port, "TCP port of the TWAMP server")
        ->capture_default_str()
        ->check(in_range(1, 65535, "1-65535"));
    sc->add_option("--sessions", o.sessions, "Test sessions to run at once")
        ->capture_default_str()
        ->check(in_range(1U, 64U, "1-64"));
    sc->add_flag("--individual", o.individual,
                 "Start and stop sessions one by one (RFC 5938, mode 16)");
    sc->add_flag("--reflect-octets", o.reflect_octets,
                 "Ask the reflector to return octets (RFC 6038, mode 32)");
    sc->add_option("--reflect-length", o.reflect_length, "Octets to return with --reflect-octets")
        ->capture_default_str();
    sc->add_flag("--symmetric", o.symmetric, "Symmetrical Size test packets (RFC 6038, mode 64)");
    sc->add_flag("--zero-addresses", o.zero_addresses, "Send zero addresses (use from behind NAT)");
    sc->add_option("--session-timeout", o.session_timeout,
                   "Reflect this long after Stop-Sessions, seconds")
        ->capture_default_str()
        ->check(in_range(0.0, 3600.0, "seconds, 0-3600"));
    sc->add_option("--connect-timeout", o.connect_timeout,
                   "Give up connecting after this long, seconds")
        ->capture_default_str()
        ->check(above(0.0, 600.0, "seconds"));
    sc->add_option("--reply-timeout", o.reply_timeout,
                   "Give up when the server does not answer for this long, seconds")
        ->capture_default_str()
        ->check(above(0.0, 3600.0, "seconds, > 0"));
}

void add_security_options(CLI::App* sc, controller_cli_options& o)
{
    sc->add_option(
          "--auth-mode", o.auth_modes,
          "Security modes to accept, strongest used: open, authenticated, encrypted, mixed")
        ->delimiter(',')
        ->check(mode_check(false, "open, authenticated, encrypted, mixed"));
    sc->add_option("--key-id", o.key_id, "KeyID to authenticate with (from --key-file)");
    sc->add_option("--key-file", o.key_file,
                   "Key file, lines of 'KEYID HEXSECRET' (perfSONAR pfs format)");
    sc->add_option("--max-count", o.max_count, "Refuse a server PBKDF2 Count above this")
        ->capture_default_str()
        ->check(in_range(1024.0, 4294967295.0, "1024-4294967295"));
}

void add_controller_options(CLI::App* sc, controller_cli_options& o)
{
    add_debug_options(sc, o.common);
    add_ip_options(sc, o.common);
    sc->add_option("remote-ip:port", o.far_end,
                   "Server address; the port is the reflector port to ask for")
        ->capture_default_str();
    add_near_end(sc, o, "local-ip:port",
                 "Local test address (a busy default port falls back to an ephemeral one)");
    add_probe_options(sc, o.probes, /*show_count_default=*/false);
    add_session_options(sc, o);
    add_security_options(sc, o);
    add_output_options(sc, o.output);
}

void add_controlclient_options(CLI::App* sc, controller_cli_options& o)
{
    o.far_end = "127.0.0.1:20000";
    o.near_end = "127.0.0.1:20001";
    add_debug_options(sc, o.common);
    add_ip_options(sc, o.common);
    sc->add_option("twamp-sender-ip:port", o.far_end, "The Session-Sender that will send")
        ->capture_default_str();
    sc->add_option("twamp-server-ip:port", o.near_end,
                   "Server address; the port is the reflector port to ask for")
        ->capture_default_str();
    add_probe_options(sc, o.probes, /*show_count_default=*/false);
    sc->add_option("--duration", o.duration,
                   "Keep the sessions this long, seconds (0: -c x -i, or until Ctrl-C)")
        ->check(number_check<double>([](double v) { return !(v < 0); },
                                     [](double) { return std::string("must not be negative"); }));
    add_session_options(sc, o);
    add_security_options(sc, o);
}

} // namespace

std::vector<subcommand> register_control(CLI::App& app)
{
    auto sv = std::make_shared<server_cli_options>();
    auto* server = app.add_subcommand("server", "TWAMP Server and Session-Reflector (RFC 5357)");
    add_server_options(server, *sv);

    auto co = std::make_shared<controller_cli_options>();
    auto* controller = app.add_subcommand("controller", "TWAMP Control-Client and Session-Sender");
    add_controller_options(controller, *co);

    auto cc = std::make_shared<controller_cli_options>();
    auto* controlclient =
        app.add_subcommand("controlclient", "TWAMP Control-Client for another Session-Sender");
    add_controlclient_options(controlclient, *cc);
    return {{server, [sv] { return run_server(*sv); }},
            {controller, [co] { return run_controller(*co); }},
            {controlclient, [cc] { return run_controlclient(*cc); }}};
}

} // namespace twamp_cli
