// twamp — the command-line front end: twampy-compatible sub-commands over the twamp library.
//
//   twamp responder [local-ip:port]                 TWAMP Light / STAMP Session-Reflector
//   twamp sender [remote-ip:port] [local-ip:port]   TWAMP Light / STAMP Session-Sender
//   twamp dscptable                                 DSCP names, values and TOS octets
//
// Exit status: 0 success; 1 the sender got no reply at all; 2 bad command line; 3 a run-time
// error (address, socket). Ctrl-C (SIGINT) or SIGTERM stop a sender early (it still prints what
// it measured; a second signal ends it without waiting for outstanding replies) and stop a
// responder cleanly.
#include "twamp/asio/address.hpp"
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/sender.hpp"
#include "twamp/dscp.hpp"
#include "twamp/imix.hpp"
#include "twamp/report/influx.hpp"
#include "twamp/report/json.hpp"
#include "twamp/report/table.hpp"
#include "twamp/version.hpp"

#include <CLI/CLI.hpp>
#include <asio.hpp>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitNoReply = 1;
constexpr int kExitUsage = 2;
constexpr int kExitRuntime = 3;

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A number as the user would have typed it (no trailing zeros).
std::string num(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// -q / -v / -d and -l: a small logger. Logs go to stderr unless -l names a file, so that the
// report on stdout stays machine-readable.
class logger {
public:
    enum level { quiet = 0, warning = 1, info = 2, debug = 3 };
    void configure(level l, const std::string& file)
    {
        level_ = l;
        if (!file.empty() && file != "-") {
            out_ = std::fopen(file.c_str(), "a");
            if (!out_) throw usage_error("--logfile: cannot open '" + file + "' for writing");
        }
    }
    ~logger()
    {
        if (out_ && out_ != stderr) std::fclose(out_);
    }
    template <class... A>
    void log(level l, const char* fmt, A... args)
    {
        if (l > level_) return;
        char stamp[32];
        const std::time_t t = std::time(nullptr);
        std::tm tm{};
        localtime_r(&t, &tm);
        std::strftime(stamp, sizeof stamp, "%y/%m/%d %H:%M:%S", &tm);
        static constexpr const char* names[] = {"", "WARNING", "INFO", "DEBUG"};
        std::fprintf(out_, "%s %-8s ", stamp, names[l]);
        if constexpr (sizeof...(A) == 0) std::fputs(fmt, out_);
        else std::fprintf(out_, fmt, args...);
        std::fputc('\n', out_);
        std::fflush(out_);
    }
    level current() const { return level_; }

private:
    level level_ = warning;
    std::FILE* out_ = stderr;
};

logger g_log;

// Options every test sub-command shares (twampy's "IP socket options" and "Debug Options").
struct common_options {
    std::string logfile;
    bool quiet = false, verbose = false, debug = false;
    std::optional<std::string> tos;
    std::optional<std::string> dscp;
    int ttl = 255;
    std::optional<int> padding;
    bool do_not_fragment = false;
};

void add_debug_options(CLI::App* sc, common_options& o)
{
    sc->add_option("-l,--logfile", o.logfile, "Write the log to this file (default: stderr)");
    auto* q = sc->add_flag("-q,--quiet", o.quiet, "Disable logging");
    auto* v = sc->add_flag("-v,--verbose", o.verbose, "Enhanced logging");
    auto* d = sc->add_flag("-d,--debug", o.debug, "Extensive logging");
    q->excludes(v)->excludes(d);
    v->excludes(d);
}

void add_ip_options(CLI::App* sc, common_options& o)
{
    sc->add_option("--tos", o.tos, "IP TOS / traffic class octet (0-255, decimal or 0x..)");
    sc->add_option("--dscp", o.dscp, "DSCP name (be, ef, af41, cs5, ...) or number 0-63");
    sc->add_option("--ttl", o.ttl, "IP TTL / hop limit of test packets (1-255)")->capture_default_str();
    sc->add_option("--padding", o.padding,
                   "Padding octets after the base packet (default 27; -1 = IMIX 64/590/1514 in 7:4:1)");
    sc->add_flag("--do-not-fragment", o.do_not_fragment, "Set don't-fragment (IPv4 DF, IPv6 DONTFRAG)");
}

void apply_logging(const common_options& o)
{
    logger::level l = logger::warning;
    if (o.quiet) l = logger::quiet;
    else if (o.debug) l = logger::debug;
    else if (o.verbose) l = logger::info;
    g_log.configure(l, o.logfile);
}

std::optional<int> resolve_tos(const common_options& o)
{
    if (o.tos && o.dscp) throw usage_error("--tos and --dscp: give one of them, not both");
    if (o.dscp) {
        auto d = twamp::parse_dscp(*o.dscp);
        if (!d)
            throw usage_error("--dscp: invalid value '" + *o.dscp +
                              "' (a name such as ef, af41, cs5, be, or a number 0-63)");
        return twamp::dscp_to_tos(*d);
    }
    if (o.tos) {
        const std::string& s = *o.tos;
        std::size_t pos = 0;
        long v = -1;
        try {
            v = std::stol(s, &pos, 0);
        } catch (const std::exception&) {
            pos = 0;
        }
        if (pos != s.size() || v < 0 || v > 255)
            throw usage_error("--tos: invalid value '" + s + "' (0-255, decimal or 0x hex)");
        return static_cast<int>(v);
    }
    return std::nullopt;
}

twamp::net::socket_options socket_options_from(const common_options& o)
{
    if (o.ttl < 1 || o.ttl > 255)
        throw usage_error("--ttl: invalid value " + std::to_string(o.ttl) + " (1-255)");
    twamp::net::socket_options s;
    s.tos = resolve_tos(o);
    s.ttl = o.ttl;
    s.dont_fragment = o.do_not_fragment;
    return s;
}

twamp::net::host_port parse_endpoint_arg(const std::string& what, const std::string& s,
                                         std::uint16_t default_port)
{
    twamp::net::host_port hp;
    if (twamp::net::parse_host_port(s, default_port, hp))
        throw usage_error(what + ": cannot parse '" + s +
                          "' (host, host:port, [v6], [v6]:port, a bare IPv6 address or :port)");
    return hp;
}

// Installs SIGINT/SIGTERM handling for the lifetime of a run.
class signal_guard {
public:
    template <class F>
    signal_guard(asio::io_context& io, F on_signal) : set_(io, SIGINT, SIGTERM)
    {
        arm(std::function<void(int)>(std::move(on_signal)));
    }
    void cancel()
    {
        std::error_code ec;
        set_.cancel(ec);
    }

private:
    void arm(std::function<void(int)> f)
    {
        set_.async_wait([this, f](const std::error_code& ec, int sig) {
            if (ec) return;
            f(sig);
            arm(f);
        });
    }
    asio::signal_set set_;
};

// ----------------------------------------------------------------------------------------------

struct responder_options {
    common_options common;
    std::string near_end = ":20001";
    int timer = 0;
    double refwait = 900;
    bool stateless = false;
    bool stamp = false;
    std::string format = "auto";
    std::size_t max_sessions = 4096;
    bool strict_size = false;
};

int run_responder(const responder_options& o)
{
    apply_logging(o.common);
    auto hp = parse_endpoint_arg("local-ip:port", o.near_end, 20001);
    twamp::net::reflector_options ro;
    ro.sock = socket_options_from(o.common);
    if (o.common.padding) {
        if (*o.common.padding < 0)
            throw usage_error("--padding: IMIX (-1) is a sender option; the responder mirrors sizes");
        ro.core.min_reply_len = twamp::kReflectorUnauthLen + static_cast<std::size_t>(*o.common.padding);
        if (ro.core.min_reply_len > twamp::kMaxTestPacketLen)
            throw usage_error("--padding: " + std::to_string(*o.common.padding) + " is too large");
    }
    if (o.refwait <= 0) throw usage_error("--refwait: must be > 0 seconds");
    const double refwait = o.timer > 0 ? o.timer : o.refwait;
    ro.core.refwait = std::chrono::nanoseconds{static_cast<std::int64_t>(refwait * 1e9)};
    ro.core.stateless = o.stateless;
    ro.core.max_sessions = o.max_sessions;
    ro.core.strict_size = o.strict_size;
    std::string fmt = o.stamp ? "stamp" : o.format;
    if (fmt == "auto") ro.core.format = twamp::reflector_format::automatic;
    else if (fmt == "twamp") ro.core.format = twamp::reflector_format::twamp;
    else if (fmt == "stamp") ro.core.format = twamp::reflector_format::stamp;
    else throw usage_error("--format: invalid value '" + fmt + "' (auto, twamp or stamp)");
    if (o.max_sessions < 1) throw usage_error("--max-sessions: must be at least 1");

    asio::io_context io;
    std::error_code ec;
    ro.local = twamp::net::resolve_udp(io, hp, 0, ec);
    if (ec) {
        std::fprintf(stderr, "twamp responder: cannot resolve '%s': %s\n", o.near_end.c_str(),
                     ec.message().c_str());
        return kExitRuntime;
    }
    auto refl_ptr = std::make_unique<twamp::net::udp_reflector>(io, ro);
    ec = refl_ptr->open();
    if (ec && hp.host.empty() && ro.local.address().is_v6()) {
        // No IPv6 on this host: fall back to IPv4 only.
        ro.local = {asio::ip::address_v4::any(), hp.port};
        refl_ptr = std::make_unique<twamp::net::udp_reflector>(io, ro);
        ec = refl_ptr->open();
    }
    auto& refl = *refl_ptr;
    if (ec) {
        std::fprintf(stderr, "twamp responder: cannot bind %s: %s\n", o.near_end.c_str(),
                     ec.message().c_str());
        return kExitRuntime;
    }
    const auto ep = refl.local_endpoint();
    g_log.log(logger::info, "Wait to receive test packets on [%s]:%u",
              ep.address().to_string().c_str(), unsigned(ep.port()));
    refl.start();
    signal_guard sig(io, [&](int) {
        g_log.log(logger::info, "signal received: stopping the reflector");
        refl.stop();
        io.stop();
    });
    io.run();
    const auto& c = refl.session().counters();
    g_log.log(logger::info,
              "reflector stopped: received %llu, reflected %llu, malformed %llu, oversize %llu, "
              "sessions %llu (expired %llu, table full %llu)",
              static_cast<unsigned long long>(c.received), static_cast<unsigned long long>(c.reflected),
              static_cast<unsigned long long>(c.malformed),
              static_cast<unsigned long long>(refl.io_counters().oversize),
              static_cast<unsigned long long>(c.sessions_created),
              static_cast<unsigned long long>(c.sessions_expired),
              static_cast<unsigned long long>(c.table_full));
    return kExitOk;
}

// ----------------------------------------------------------------------------------------------

struct sender_cli_options {
    common_options common;
    std::string far_end = "127.0.0.1:20001";
    std::string near_end = ":20000";
    double interval_ms = 100;
    long long count = 100;
    double timeout_s = 5;
    bool stamp = false;
    int ssid = 0;
    bool json = false;
    bool telegraf = false;
};

int run_sender(const sender_cli_options& o)
{
    apply_logging(o.common);
    if (o.json && o.telegraf) throw usage_error("--json and --telegraf: choose one output format");
    if (!(o.interval_ms > 0) || o.interval_ms > 3.6e6)
        throw usage_error("--interval: invalid value " + num(o.interval_ms) +
                          " (milliseconds, > 0)");
    if (o.count < 1 || o.count > 0xFFFFFFFFLL)
        throw usage_error("--count: invalid value " + std::to_string(o.count) + " (1-4294967295)");
    if (!(o.timeout_s > 0) || o.timeout_s > 3600)
        throw usage_error("--timeout: invalid value " + num(o.timeout_s) + " (seconds, > 0, at most 3600)");
    if (o.ssid < 0 || o.ssid > 65535) throw usage_error("--ssid: invalid value " + std::to_string(o.ssid) + " (0-65535)");
    if (o.ssid != 0 && !o.stamp) throw usage_error("--ssid: only with --stamp");

    const auto remote_hp = parse_endpoint_arg("remote-ip:port", o.far_end, 20001);
    auto local_hp = parse_endpoint_arg("local-ip:port", o.near_end, 20000);

    twamp::net::sender_options so;
    so.sock = socket_options_from(o.common);
    so.count = static_cast<std::uint32_t>(o.count);
    so.interval = std::chrono::nanoseconds{static_cast<std::int64_t>(o.interval_ms * 1e6)};
    so.core.format = o.stamp ? twamp::test_format::stamp : twamp::test_format::twamp;
    so.core.ssid = static_cast<std::uint16_t>(o.ssid);
    so.core.timeout = std::chrono::nanoseconds{static_cast<std::int64_t>(o.timeout_s * 1e9)};

    asio::io_context io;
    std::error_code ec;
    const int fam = remote_hp.family_hint ? remote_hp.family_hint : local_hp.family_hint;
    so.remote = twamp::net::resolve_udp(io, remote_hp, fam, ec);
    if (ec) {
        std::fprintf(stderr, "twamp sender: cannot resolve '%s': %s\n", o.far_end.c_str(), ec.message().c_str());
        return kExitRuntime;
    }
    const int remote_family = so.remote.address().is_v4() ? 4 : 6;
    so.local = twamp::net::resolve_udp(io, local_hp, remote_family, ec);
    if (ec || so.local.address().is_v4() != so.remote.address().is_v4()) {
        std::fprintf(stderr, "twamp sender: local address '%s' does not fit the remote's IPv%d\n",
                     o.near_end.c_str(), remote_family);
        return kExitRuntime;
    }
    const auto base = twamp::sender_base_len(so.core.format);
    if (o.common.padding && *o.common.padding == -1) {
        so.sizes = twamp::imix_sizes(remote_family, so.core.format);
    } else {
        int pad = o.common.padding ? *o.common.padding : (o.stamp ? 0 : 27);
        if (pad < 0 || static_cast<std::size_t>(pad) > twamp::kMaxTestPacketLen - base)
            throw usage_error("--padding: invalid value " + std::to_string(pad) + " (-1, or 0-" +
                              std::to_string(twamp::kMaxTestPacketLen - base) + ")");
        if (o.stamp && pad > 0 && pad < 4)
            throw usage_error("--padding: with --stamp, padding travels in a TLV and is 0 or at least 4");
        so.sizes = {base + static_cast<std::size_t>(pad)};
    }

    twamp::net::udp_sender sender(io, so);
    if ((ec = sender.open())) {
        std::fprintf(stderr, "twamp sender: cannot bind %s: %s\n", o.near_end.c_str(), ec.message().c_str());
        return kExitRuntime;
    }
    const auto local = sender.local_endpoint();
    if (g_log.current() >= logger::info) {
        sender.on_reply([&](const twamp::reply_result& r) {
            const auto& m = r.sample;
            if (r.status == twamp::reply_status::sample)
                g_log.log(logger::info,
                          "Reply from %s [rseq=%u sseq=%u rtt=%.3fms outbound=%.3fms inbound=%.3fms]",
                          so.remote.address().to_string().c_str(), m.reflector_seq, m.sender_seq,
                          m.roundtrip_ns / 1e6, m.outbound_ns / 1e6, m.inbound_ns / 1e6);
            else
                g_log.log(logger::info, "Reply from %s dropped [sseq=%u status=%d]",
                          so.remote.address().to_string().c_str(), m.sender_seq, int(r.status));
        });
    }
    g_log.log(logger::info, "Sending %u probes to [%s]:%u from [%s]:%u every %.3f ms", so.count,
              so.remote.address().to_string().c_str(), unsigned(so.remote.port()),
              local.address().to_string().c_str(), unsigned(local.port()), o.interval_ms);

    signal_guard sig(io, [&](int) {
        sender.mark_interrupted();
        sender.stop();
    });
    sender.start([&] {
        sig.cancel();
        io.stop();
    });
    io.run();

    const auto& st = sender.stats();
    twamp::report::session_info info;
    info.mode = o.stamp ? "stamp" : "twamp-light";
    info.ssid = so.core.ssid;
    info.sender_address = twamp::net::display_address(local.address());
    info.sender_port = local.port();
    info.reflector_address = twamp::net::display_address(so.remote.address());
    info.reflector_port = so.remote.port();
    info.scheduled = so.count;
    info.interrupted = sender.interrupted();
    info.end_time_ns = twamp::net::realtime_now().count();

    std::string out;
    if (o.json) out = twamp::report::to_json(st, info).dump(2) + "\n";
    else if (o.telegraf) out = twamp::report::influx(st, info);
    else out = twamp::report::table(st, info);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return st.received > 0 ? kExitOk : kExitNoReply;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"twamp " TWAMP_VERSION_STRING
                 " — TWAMP Light and STAMP active measurement (RFC 5357, RFC 8762)"};
    app.set_version_flag("-V,--version", std::string("twamp ") + TWAMP_VERSION_STRING);
    app.require_subcommand(1);

    responder_options ropt;
    auto* responder = app.add_subcommand("responder", "TWAMP Light / STAMP Session-Reflector");
    responder->alias("reflector");
    add_debug_options(responder, ropt.common);
    add_ip_options(responder, ropt.common);
    responder->add_option("local-ip:port", ropt.near_end, "Address to listen on")->capture_default_str();
    responder->add_option("--timer", ropt.timer, "twampy's session reset timer, seconds (sets --refwait)");
    responder->add_option("--refwait", ropt.refwait, "Drop sessions idle this long, seconds")->capture_default_str();
    responder->add_flag("--stateless", ropt.stateless, "Echo the sender's sequence numbers (RFC 8762 stateless)");
    responder->add_flag("--stamp", ropt.stamp, "Answer every request as STAMP (same as --format stamp)");
    responder->add_option("--format", ropt.format, "auto, twamp or stamp")->capture_default_str();
    responder->add_option("--max-sessions", ropt.max_sessions, "Per-sender state kept at most")->capture_default_str();
    responder->add_flag("--strict-size", ropt.strict_size, "Drop requests shorter than their reply");

    sender_cli_options sopt;
    auto* sender = app.add_subcommand("sender", "TWAMP Light / STAMP Session-Sender");
    add_debug_options(sender, sopt.common);
    add_ip_options(sender, sopt.common);
    sender->add_option("remote-ip:port", sopt.far_end, "Reflector address")->capture_default_str();
    sender->add_option("local-ip:port", sopt.near_end, "Local address")->capture_default_str();
    sender->add_option("-i,--interval", sopt.interval_ms, "Interval between probes, ms (fractions allowed)")
        ->capture_default_str();
    sender->add_option("-c,--count", sopt.count, "Number of probes")->capture_default_str();
    sender->add_option("--timeout", sopt.timeout_s, "Per-probe loss timeout, seconds")->capture_default_str();
    sender->add_flag("--stamp", sopt.stamp, "Send STAMP (RFC 8762) instead of TWAMP Light");
    sender->add_option("--ssid", sopt.ssid, "STAMP Session-Sender Identifier (RFC 8972)");
    sender->add_flag("--json", sopt.json, "Print the report as JSON");
    sender->add_flag("--telegraf", sopt.telegraf, "Print InfluxDB line protocol (for Telegraf)");

    auto* dscptable = app.add_subcommand("dscptable", "Print the DSCP table");
    common_options dopt;
    add_debug_options(dscptable, dopt);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "twamp: %s\n", e.what());
        return kExitUsage;
    }

    try {
        if (*responder) return run_responder(ropt);
        if (*sender) return run_sender(sopt);
        if (*dscptable) {
            std::fputs(twamp::dscp_table().c_str(), stdout);
            return kExitOk;
        }
    } catch (const usage_error& e) {
        std::fprintf(stderr, "twamp: %s\n", e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "twamp: %s\n", e.what());
        return kExitRuntime;
    }
    return kExitUsage;
}
