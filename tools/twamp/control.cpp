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

// ---------------------------------------------------------------------------------------------
// server

struct server_cli_options {
    common_options common;
    std::string local = ":862";
    double servwait = 900;
    double refwait = 900;
    std::size_t max_connections = 1024;
    std::size_t max_sessions = 64;
    std::size_t max_test_sessions = 0; // 0: from the descriptor limit
    double max_timeout = 60;
    double max_key_derivations = 0; // per second; 0: 2^18 / --count
    std::vector<std::string> allow;
    std::string test_ports;
    std::vector<std::string> modes;
    std::string key_file;
    std::uint32_t count = 2048;
};

std::uint32_t parse_modes(const std::vector<std::string>& names, std::uint32_t dflt)
{
    using namespace twamp::control;
    if (names.empty()) return dflt;
    std::uint32_t m = 0;
    for (const auto& n : names) {
        if (n == "open" || n == "unauthenticated")
            m |= mode::unauthenticated;
        else if (n == "authenticated")
            m |= mode::authenticated;
        else if (n == "encrypted")
            m |= mode::encrypted;
        else if (n == "mixed")
            m |= mode::mixed;
        else if (n == "individual")
            m |= mode::individual_session_control;
        else if (n == "reflect-octets")
            m |= mode::reflect_octets;
        else if (n == "symmetric")
            m |= mode::symmetrical_size;
        else
            throw usage_error(
                "--modes: unknown mode '" + n +
                "' (open, authenticated, encrypted, mixed, individual, reflect-octets, symmetric)");
    }
    if (!(m & mode::security_mask))
        throw usage_error(
            "--modes: name at least one security mode (open, authenticated, encrypted, mixed)");
    return m;
}

int run_server(const server_cli_options& o)
{
    apply_logging(o.common);
    auto hp = parse_endpoint_arg("local-ip:port", o.local, twamp::control::kControlPort);
    twamp::net::server_options so;
    if (!(o.servwait >= 0) || o.servwait > 604800)
        throw usage_error("--servwait: invalid value " + num(o.servwait) +
                          " (seconds, 0-604800; 0 = never)");
    if (!(o.refwait > 0) || o.refwait > 604800)
        throw usage_error("--refwait: invalid value " + num(o.refwait) + " (seconds, 1-604800)");
    if (o.max_connections < 1) throw usage_error("--max-connections: must be at least 1");
    if (o.max_sessions < 1) throw usage_error("--max-sessions: must be at least 1");
    so.control.servwait = std::chrono::nanoseconds{static_cast<std::int64_t>(o.servwait * 1e9)};
    so.refwait = std::chrono::nanoseconds{static_cast<std::int64_t>(o.refwait * 1e9)};
    so.max_connections = o.max_connections;
    so.control.max_sessions = o.max_sessions;
    if (!(o.max_timeout >= 0) || o.max_timeout > 604800)
        throw usage_error("--max-timeout: invalid value " + num(o.max_timeout) +
                          " (seconds, 0-604800)");
    so.max_timeout = std::chrono::nanoseconds{static_cast<std::int64_t>(o.max_timeout * 1e9)};
    so.max_test_sessions = o.max_test_sessions;
    // RFC 4656 §3.1: a power of 2, at least 1024. At most 65536: every protected set-up costs
    // the server one PBKDF2 run of this many iterations on the loop that reflects test packets.
    if (o.count < 1024 || o.count > 65536 || (o.count & (o.count - 1)) != 0)
        throw usage_error("--count: invalid value " + std::to_string(o.count) +
                          " (a power of 2, 1024-65536)");
    if (!(o.max_key_derivations >= 0) || o.max_key_derivations > 1e6)
        throw usage_error("--max-key-derivations: invalid value " + num(o.max_key_derivations) +
                          " (per second; 0 = 2^18 / --count)");
    so.key_derivations_per_second = o.max_key_derivations;
    so.control.count = o.count;
    using namespace twamp::control;
    const std::uint32_t features =
        mode::individual_session_control | mode::reflect_octets | mode::symmetrical_size;
    std::shared_ptr<key_store> keys;
    if (!o.key_file.empty()) keys = load_keys(o.key_file);
    // With a key file: every mode; without one: the open mode only.
    const std::uint32_t security_default =
        keys ? (mode::unauthenticated | mode::authenticated | mode::encrypted | mode::mixed)
             : mode::unauthenticated;
    so.control.modes = parse_modes(o.modes, security_default | features);
    if (!keys && (so.control.modes & (mode::authenticated | mode::encrypted | mode::mixed)))
        throw usage_error("--modes: authenticated, encrypted and mixed need --key-file");
    for (const auto& a : o.allow) {
        auto p = twamp::net::address_prefix::parse(a);
        if (!p)
            throw usage_error("--allow: invalid prefix '" + a +
                              "' (such as 10.0.0.0/8 or 2001:db8::/32)");
        so.allow.push_back(*p);
    }
    if (!o.test_ports.empty()) {
        const auto dash = o.test_ports.find('-');
        std::uint16_t lo = 0, hi = 0;
        if (dash == std::string::npos || twamp::net::parse_port(o.test_ports.substr(0, dash), lo) ||
            twamp::net::parse_port(o.test_ports.substr(dash + 1), hi) || lo == 0 || hi < lo)
            throw usage_error("--test-ports: invalid range '" + o.test_ports +
                              "' (LO-HI, 1-65535)");
        so.test_port_low = lo;
        so.test_port_high = hi;
    }
    so.test_socket = socket_options_from(o.common);
    if (g_log.current() >= logger::info)
        so.log = [](const std::string& s) { g_log.log(logger::info, "%s", s.c_str()); };

    asio::io_context io;
    std::error_code ec;
    if (hp.host.empty()) {
        so.local = {asio::ip::address_v6::any(), hp.port};
    } else {
        asio::ip::tcp::resolver res(io);
        auto r = res.resolve(hp.host, std::to_string(hp.port), ec);
        if (ec || r.empty()) {
            std::fprintf(stderr, "twamp server: cannot resolve '%s': %s\n", o.local.c_str(),
                         ec.message().c_str());
            return kExitRuntime;
        }
        so.local = r.begin()->endpoint();
    }
    auto make = [&] { return keys ? security::server(keys) : security{}; };
    auto server = std::make_unique<twamp::net::twamp_server<security>>(io, so, make);
    ec = server->open();
    if (ec && hp.host.empty()) {
        so.local = {asio::ip::address_v4::any(), hp.port}; // no IPv6 on this host
        server = std::make_unique<twamp::net::twamp_server<security>>(io, so, make);
        ec = server->open();
    }
    if (ec) {
        std::fprintf(stderr, "twamp server: cannot listen on %s: %s\n", o.local.c_str(),
                     ec.message().c_str());
        return kExitRuntime;
    }
    const auto ep = server->local_endpoint();
    g_log.log(logger::info,
              "limits: %zu test sessions server-wide, %zu per connection, Timeout at most %s s, "
              "%zu descriptors, %s key derivations per second",
              server->options().max_test_sessions, o.max_sessions, num(o.max_timeout).c_str(),
              twamp::net::descriptor_limit(),
              num(server->options().key_derivations_per_second).c_str());
    g_log.log(logger::info, "TWAMP server listening on [%s]:%u", ep.address().to_string().c_str(),
              unsigned(ep.port()));
    server->start();
    signal_guard sig(io, [&](int) {
        g_log.log(logger::info, "signal received: closing connections and sessions");
        server->stop();
        io.stop();
    });
    io.run();
    const auto& c = server->counters();
    g_log.log(
        logger::info,
        "server stopped: %llu connections (%llu refused), %llu sessions accepted, %llu refused, "
        "%llu ended by REFWAIT, %llu test packets failed authentication",
        static_cast<unsigned long long>(c.connections),
        static_cast<unsigned long long>(c.refused_connections),
        static_cast<unsigned long long>(c.sessions_accepted),
        static_cast<unsigned long long>(c.sessions_rejected),
        static_cast<unsigned long long>(c.sessions_ended_refwait),
        static_cast<unsigned long long>(c.test_auth_failures));
    g_log.log(logger::info,
              "limits hit: %llu sessions refused for the server-wide budget, %llu for stopped "
              "sessions still waiting out their Timeout, %llu third-party Sender Addresses, %llu "
              "Timeouts capped, %llu connections refused for descriptors, %llu closed by the "
              "flush grace, %llu key derivations run and %llu refused by the rate limit",
              static_cast<unsigned long long>(c.sessions_refused_budget),
              static_cast<unsigned long long>(c.sessions_refused_lingering),
              static_cast<unsigned long long>(c.sessions_refused_third_party),
              static_cast<unsigned long long>(c.timeouts_capped),
              static_cast<unsigned long long>(c.connections_refused_descriptors),
              static_cast<unsigned long long>(c.flush_grace_closes),
              static_cast<unsigned long long>(c.key_derivations),
              static_cast<unsigned long long>(c.key_derivations_refused));
    return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// controller and controlclient

struct controller_cli_options {
    common_options common;
    std::string far_end = "127.0.0.1:20001";
    std::string near_end = ":20000";
    bool near_end_given = false; // false: twampy's default port, with a fallback when busy
    int control_port = twamp::control::kControlPort;
    probe_cli_options probes;
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
    output_options output;
};

twamp::net::controller_options controller_options_from(asio::io_context& io,
                                                       const controller_cli_options& o,
                                                       const twamp::net::host_port& server_hp)
{
    twamp::net::controller_options co;
    if (o.control_port < 1 || o.control_port > 65535)
        throw usage_error("--control-port: invalid value " + std::to_string(o.control_port) +
                          " (1-65535)");
    if (o.sessions < 1 || o.sessions > 64)
        throw usage_error("--sessions: invalid value " + std::to_string(o.sessions) + " (1-64)");
    if (!(o.session_timeout >= 0) || o.session_timeout > 3600)
        throw usage_error("--session-timeout: invalid value " + num(o.session_timeout) +
                          " (seconds, 0-3600)");
    if (!(o.connect_timeout > 0) || o.connect_timeout > 600)
        throw usage_error("--connect-timeout: invalid value " + num(o.connect_timeout) +
                          " (seconds)");
    if (o.reflect_octets && (o.reflect_length < 2 || o.reflect_length > 1024))
        throw usage_error("--reflect-length: invalid value " + std::to_string(o.reflect_length) +
                          " (2-1024)");

    std::error_code ec;
    asio::ip::tcp::resolver res(io);
    auto r = res.resolve(server_hp.host.empty() ? "127.0.0.1" : server_hp.host,
                         std::to_string(o.control_port), ec);
    if (ec || r.empty())
        throw std::runtime_error("cannot resolve '" + server_hp.host + "': " + ec.message());
    co.server = r.begin()->endpoint();
    for (const auto& e : r)
        if (server_hp.family_hint == 0 ||
            (server_hp.family_hint == 4) == e.endpoint().address().is_v4()) {
            co.server = e.endpoint();
            break;
        }
    co.requested_port = server_hp.port;
    co.sessions = o.sessions;
    co.individual = o.individual;
    co.symmetric = o.symmetric;
    co.zero_addresses = o.zero_addresses;
    co.session_timeout =
        std::chrono::nanoseconds{static_cast<std::int64_t>(o.session_timeout * 1e9)};
    co.connect_timeout =
        std::chrono::nanoseconds{static_cast<std::int64_t>(o.connect_timeout * 1e9)};
    if (!(o.reply_timeout > 0) || o.reply_timeout > 3600)
        throw usage_error("--reply-timeout: invalid value " + num(o.reply_timeout) +
                          " (seconds, > 0)");
    co.control.reply_timeout =
        std::chrono::nanoseconds{static_cast<std::int64_t>(o.reply_timeout * 1e9)};
    using namespace twamp::control;
    co.control.security_modes = 0;
    for (const auto& m : o.auth_modes.empty() ? std::vector<std::string>{"open"} : o.auth_modes) {
        if (m == "open" || m == "unauthenticated")
            co.control.security_modes |= mode::unauthenticated;
        else if (m == "authenticated")
            co.control.security_modes |= mode::authenticated;
        else if (m == "encrypted")
            co.control.security_modes |= mode::encrypted;
        else if (m == "mixed")
            co.control.security_modes |= mode::mixed;
        else
            throw usage_error("--auth-mode: unknown mode '" + m +
                              "' (open, authenticated, encrypted, mixed)");
    }
    const bool keyed =
        co.control.security_modes & (mode::authenticated | mode::encrypted | mode::mixed);
    if (keyed && (o.key_id.empty() || o.key_file.empty()))
        throw usage_error(
            "--auth-mode: authenticated, encrypted and mixed need --key-id and --key-file");
    if (!(o.max_count >= 1024) || o.max_count > 4294967295.0)
        throw usage_error("--max-count: invalid value " + num(o.max_count) + " (1024-4294967295)");
    co.control.max_count = static_cast<std::uint32_t>(o.max_count);
    if (o.individual) co.control.features |= mode::individual_session_control;
    if (o.reflect_octets) co.control.features |= mode::reflect_octets;
    if (o.symmetric) co.control.features |= mode::symmetrical_size;
    co.control.required_features = co.control.features;
    if (o.reflect_octets) co.reflect_length = static_cast<std::uint16_t>(o.reflect_length);
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

int finish_controller(const twamp::net::controller_result& r, bool print_reports,
                      const controller_cli_options& o, const twamp::net::controller_options& co)
{
    for (const auto& n : r.notices)
        g_log.log(logger::warning, "%s", n.c_str());
    if (!r.ok && !r.interrupted) std::fprintf(stderr, "twamp: %s\n", r.error.c_str());
    if (!print_reports) return r.ok ? kExitOk : kExitRuntime;
    std::uint64_t received = 0;
    for (std::size_t i = 0; i < r.sessions.size(); ++i) {
        const auto& s = r.sessions[i];
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
        if (s.stats.sent == 0 && !r.ok) continue; // never started
        emit_report(s.stats, info, o.output);
        report_no_reply(s.stats);
        received += s.stats.received;
    }
    if (!r.ok && !r.interrupted) return kExitRuntime;
    return received > 0 ? kExitOk : kExitNoReply;
}

int run_controller(const controller_cli_options& o)
{
    apply_logging(o.common);
    check_output_options(o.output);
    auto server_hp = parse_endpoint_arg("remote-ip:port", o.far_end, 20001);
    auto local_hp = parse_endpoint_arg("local-ip:port", o.near_end, 20000);
    asio::io_context io;
    auto co = controller_options_from(io, o, server_hp);
    const int family = co.server.address().is_v4() ? 4 : 6;
    std::error_code ec;
    co.test.local = twamp::net::resolve_udp(io, local_hp, family, ec);
    if (ec)
        throw usage_error("local-ip:port: '" + o.near_end + "' does not fit the server's IPv" +
                          std::to_string(family));
    co.test.ephemeral_port_fallback = !o.near_end_given;
    fill_sender_options(o.common, o.probes, twamp::test_format::twamp, family, co.test);
    if (o.common.padding) // explicit padding (or IMIX); otherwise the agreed mode chooses 27 or 64
        for (auto sz : co.test.sizes)
            co.paddings.push_back(sz - twamp::kSenderUnauthLen);
    const auto tos = co.test.sock.tos;
    co.dscp = static_cast<std::uint8_t>(tos ? (*tos >> 2) : 0);
    if (o.symmetric && co.test.sizes.front() < twamp::kReflectorUnauthLen)
        throw usage_error("--symmetric: needs --padding of at least 27");
    if (o.reflect_octets) {
        const std::size_t pad_start =
            o.symmetric ? twamp::kReflectorUnauthLen : twamp::kSenderUnauthLen;
        for (auto sz : co.test.sizes)
            if (sz < pad_start + static_cast<std::size_t>(o.reflect_length) ||
                sz < twamp::kReflectorUnauthLen + static_cast<std::size_t>(o.reflect_length))
                throw usage_error("--reflect-octets: --padding too small to carry and return " +
                                  std::to_string(o.reflect_length) + " octets");
    }

    twamp::net::controller<security> ctl(io, co, make_client_security(o));
    signal_guard sig(io, [&](int) { ctl.stop(); });
    int rc = kExitRuntime;
    ctl.start([&](const twamp::net::controller_result& r) {
        sig.cancel();
        rc = finish_controller(r, true, o, co);
        io.stop();
    });
    io.run();
    return rc;
}

int run_controlclient(const controller_cli_options& o)
{
    apply_logging(o.common);
    auto sender_hp = parse_endpoint_arg("twamp-sender-ip:port", o.far_end, 20000);
    auto server_hp = parse_endpoint_arg("twamp-server-ip:port", o.near_end, 20001);
    asio::io_context io;
    auto co = controller_options_from(io, o, server_hp);
    const int family = co.server.address().is_v4() ? 4 : 6;
    fill_sender_options(o.common, o.probes, twamp::test_format::twamp, family, co.test);
    const auto tos = co.test.sock.tos;
    co.dscp = static_cast<std::uint8_t>(tos ? (*tos >> 2) : 0);
    co.run_senders = false;
    // The other sender sends the probes: what we can pass on is the DSCP (Type-P) and the
    // padding (Padding Length); TTL and don't-fragment are that sender's own settings.
    if (o.common.ttl != 255 || o.common.do_not_fragment)
        throw usage_error("--ttl/--do-not-fragment: set them on the Session-Sender; controlclient "
                          "sends no test packets");
    if (o.common.padding)
        for (auto sz : co.test.sizes)
            co.paddings.push_back(sz - twamp::kSenderUnauthLen);
    std::error_code ec;
    co.external_sender = twamp::net::resolve_udp(io, sender_hp, family, ec);
    if (ec)
        throw usage_error("twamp-sender-ip:port: cannot use '" + o.far_end +
                          "' with the server's IPv" + std::to_string(family));
    if (sender_hp.host.empty()) co.zero_addresses = true;
    if (o.duration < 0) throw usage_error("--duration: must not be negative");
    // Without --duration: as long as the other sender needs for -c probes every -i ms, plus the
    // loss timeout; with neither, until Ctrl-C.
    double hold = o.duration;
    if (hold == 0 && o.probes.count_given)
        hold = static_cast<double>(o.probes.count) * o.probes.interval_ms / 1000.0 +
               o.probes.timeout_s;
    co.hold = std::chrono::nanoseconds{static_cast<std::int64_t>(hold * 1e9)};

    twamp::net::controller<security> ctl(io, co, make_client_security(o));
    signal_guard sig(io, [&](int) { ctl.stop(); });
    ctl.on_started([&] {
        for (const auto& s : ctl.result().sessions) {
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
    });
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

void add_controller_options(CLI::App* sc, controller_cli_options& o, bool with_output)
{
    sc->add_option("--control-port", o.control_port, "TCP port of the TWAMP server")
        ->capture_default_str();
    sc->add_option("--sessions", o.sessions, "Test sessions to run at once")->capture_default_str();
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
        ->capture_default_str();
    sc->add_option("--connect-timeout", o.connect_timeout,
                   "Give up connecting after this long, seconds")
        ->capture_default_str();
    sc->add_option("--reply-timeout", o.reply_timeout,
                   "Give up when the server does not answer for this long, seconds")
        ->capture_default_str();
    sc->add_option(
          "--auth-mode", o.auth_modes,
          "Security modes to accept, strongest used: open, authenticated, encrypted, mixed")
        ->delimiter(',');
    sc->add_option("--key-id", o.key_id, "KeyID to authenticate with (from --key-file)");
    sc->add_option("--key-file", o.key_file,
                   "Key file, lines of 'KEYID HEXSECRET' (perfSONAR pfs format)");
    sc->add_option("--max-count", o.max_count, "Refuse a server PBKDF2 Count above this")
        ->capture_default_str();
    if (with_output) add_output_options(sc, o.output);
}

} // namespace

std::vector<subcommand> register_control(CLI::App& app)
{
    std::vector<subcommand> out;

    auto sv = std::make_shared<server_cli_options>();
    auto* server = app.add_subcommand("server", "TWAMP Server and Session-Reflector (RFC 5357)");
    add_debug_options(server, sv->common);
    server->add_option("--ttl", sv->common.ttl, "TTL / hop limit of reflected packets")
        ->capture_default_str();
    server->add_option("local-ip:port", sv->local, "Address to listen on")->capture_default_str();
    server
        ->add_option("--servwait", sv->servwait,
                     "Close idle control connections after this long, seconds")
        ->capture_default_str();
    server->add_option("--refwait", sv->refwait, "End test sessions silent this long, seconds")
        ->capture_default_str();
    server->add_option("--max-connections", sv->max_connections, "Control connections at most")
        ->capture_default_str();
    server
        ->add_option("--max-sessions", sv->max_sessions,
                     "Test sessions per connection at most, stopped ones included until their "
                     "Timeout ends")
        ->capture_default_str();
    server->add_option("--max-test-sessions", sv->max_test_sessions,
                       "Test sessions server-wide at most (default: 3/4 of the descriptor limit)");
    server
        ->add_option("--max-timeout", sv->max_timeout,
                     "Longest Timeout granted after Stop-Sessions, seconds; longer ones get this")
        ->capture_default_str();
    server->add_option("--allow", sv->allow, "Accept clients from this prefix only (repeatable)");
    server->add_option("--test-ports", sv->test_ports,
                       "Reflector port range LO-HI when the requested port is taken");
    server
        ->add_option("--modes", sv->modes,
                     "Modes to offer: open, authenticated, encrypted, mixed, individual, "
                     "reflect-octets, symmetric")
        ->delimiter(',');
    server->add_option("--key-file", sv->key_file,
                       "Key file, lines of 'KEYID HEXSECRET' (perfSONAR pfs format)");
    server
        ->add_option("--count", sv->count,
                     "PBKDF2 iteration count offered in the greeting (1024-65536)")
        ->capture_default_str();
    server->add_option("--max-key-derivations", sv->max_key_derivations,
                       "PBKDF2 runs per second server-wide, a quarter per source address; beyond "
                       "it Accept 1 after 1 s (default 2^18 / --count)");
    out.push_back({server, [sv] { return run_server(*sv); }});

    auto co = std::make_shared<controller_cli_options>();
    auto* controller = app.add_subcommand("controller", "TWAMP Control-Client and Session-Sender");
    add_debug_options(controller, co->common);
    add_ip_options(controller, co->common);
    controller
        ->add_option("remote-ip:port", co->far_end,
                     "Server address; the port is the reflector port to ask for")
        ->capture_default_str();
    auto* near = controller
                     ->add_option("local-ip:port", co->near_end,
                                  "Local test address (a busy default port falls back to an "
                                  "ephemeral one)")
                     ->capture_default_str();
    add_probe_options(controller, co->probes);
    add_controller_options(controller, *co, true);
    out.push_back({controller, [co, near] {
                       co->near_end_given = near->count() > 0;
                       return run_controller(*co);
                   }});

    auto cc = std::make_shared<controller_cli_options>();
    cc->far_end = "127.0.0.1:20000";
    cc->near_end = "127.0.0.1:20001";
    auto* controlclient =
        app.add_subcommand("controlclient", "TWAMP Control-Client for another Session-Sender");
    add_debug_options(controlclient, cc->common);
    add_ip_options(controlclient, cc->common);
    controlclient
        ->add_option("twamp-sender-ip:port", cc->far_end, "The Session-Sender that will send")
        ->capture_default_str();
    controlclient
        ->add_option("twamp-server-ip:port", cc->near_end,
                     "Server address; the port is the reflector port to ask for")
        ->capture_default_str();
    add_probe_options(controlclient, cc->probes);
    controlclient->add_option("--duration", cc->duration,
                              "Keep the sessions this long, seconds (0: -c x -i, or until Ctrl-C)");
    add_controller_options(controlclient, *cc, false);
    out.push_back({controlclient, [cc] { return run_controlclient(*cc); }});
    return out;
}

} // namespace twamp_cli
