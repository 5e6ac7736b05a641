// cli_common.hpp — what every sub-command of the twamp tool shares: exit codes, the CLI11 checks
// of single flags, the logger, the twampy-compatible debug and IP options, address arguments and
// signal handling.
//
// A sub-command reads top to bottom as parse (CLI11 fills a plain options struct and checks each
// flag alone), validate (check_*: the checks that span flags, naming the flag), build (*_from /
// *_of: the library's options structs), run.
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/udp.hpp"
#include "twamp/dscp.hpp"

#include <CLI/CLI.hpp>
#include <asio.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace twamp_cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitNoReply = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitRuntime = 3;

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A run-time failure (address, socket, file) whose message is the whole line for stderr.
struct run_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A number as the user would have typed it (no trailing zeros).
inline std::string num(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// ---------------------------------------------------------------------------------------------
// Checks of single flags, as CLI11 validators (`->check(...)`). CLI11 runs them while it parses
// and prints a failure as "twamp: --flag: <message>" (exit 2). Their descriptions are empty so
// that --help, and the man page and completion generated from it, stay as they are.

// A number flag: `ok(v)` must hold for the value as CLI11 converts it. A value that does not
// convert at all is left to CLI11's own conversion error.
template <class T, class Ok, class Message> CLI::Validator number_check(Ok ok, Message message)
{
    return CLI::Validator(
        [ok, message](std::string& s) -> std::string {
            T v{};
            if (!CLI::detail::lexical_cast(s, v) || ok(v)) return {};
            return message(v);
        },
        "");
}

template <class T> std::string shown(T v)
{
    if constexpr (std::is_floating_point_v<T>)
        return num(v);
    else
        return std::to_string(v);
}

// lo <= v <= hi, else "invalid value V (hint)".
template <class T> CLI::Validator in_range(T lo, T hi, const std::string& hint)
{
    return number_check<T>([lo, hi](T v) { return v >= lo && v <= hi; },
                           [hint](T v) { return "invalid value " + shown(v) + " (" + hint + ")"; });
}

// lo < v <= hi (a time that must be positive), else "invalid value V (hint)".
template <class T> CLI::Validator above(T lo, T hi, const std::string& hint)
{
    return number_check<T>([lo, hi](T v) { return v > lo && v <= hi; },
                           [hint](T v) { return "invalid value " + shown(v) + " (" + hint + ")"; });
}

// A count that must be at least one.
template <class T> CLI::Validator at_least_one()
{
    return number_check<T>([](T v) { return v >= 1; },
                           [](T) { return std::string("must be at least 1"); });
}

// A text flag: `ok(s)` must hold, else "<what> 's' (hint)".
inline CLI::Validator text_check(std::function<bool(const std::string&)> ok,
                                 const std::string& what, const std::string& hint)
{
    return CLI::Validator(
        [ok = std::move(ok), what, hint](std::string& s) -> std::string {
            if (ok(s)) return {};
            return what + " '" + s + "' (" + hint + ")";
        },
        "");
}

// One of a few names, else "<what> 's' (hint)".
inline CLI::Validator one_of(std::vector<std::string> names, const std::string& what,
                             const std::string& hint)
{
    return text_check(
        [names = std::move(names)](const std::string& s) {
            return std::find(names.begin(), names.end(), s) != names.end();
        },
        what, hint);
}

// The --tos octet: 0-255, decimal or 0x hex.
inline std::optional<int> parse_tos(const std::string& s)
{
    std::size_t pos = 0;
    long v = -1;
    try {
        v = std::stol(s, &pos, 0);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (pos != s.size() || v < 0 || v > 255) return std::nullopt;
    return static_cast<int>(v);
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
    template <class... A> void log(level l, const char* fmt, A... args)
    {
        if (l > level_) return;
        char stamp[32];
        const std::time_t t = std::time(nullptr);
        std::tm tm{};
        localtime_r(&t, &tm);
        std::strftime(stamp, sizeof stamp, "%y/%m/%d %H:%M:%S", &tm);
        static constexpr const char* names[] = {"", "WARNING", "INFO", "DEBUG"};
        std::fprintf(out_, "%s %-8s ", stamp, names[l]);
        if constexpr (sizeof...(A) == 0)
            std::fputs(fmt, out_);
        else
            std::fprintf(out_, fmt, args...);
        std::fputc('\n', out_);
        std::fflush(out_);
    }
    // A line of counters: every one printed with %llu, whatever its integer type.
    template <class... N> void counts(level l, const char* fmt, N... n)
    {
        log(l, fmt, static_cast<unsigned long long>(n)...);
    }
    level current() const { return level_; }

private:
    level level_ = warning;
    std::FILE* out_ = stderr;
};

inline logger g_log;

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

inline void add_debug_options(CLI::App* sc, common_options& o)
{
    sc->add_option("-l,--logfile", o.logfile, "Write the log to this file (default: stderr)");
    auto* q = sc->add_flag("-q,--quiet", o.quiet, "Disable logging");
    auto* v = sc->add_flag("-v,--verbose", o.verbose, "Enhanced logging");
    auto* d = sc->add_flag("-d,--debug", o.debug, "Extensive logging");
    q->excludes(v)->excludes(d);
    v->excludes(d);
}

inline void add_ttl_option(CLI::App* sc, common_options& o, const std::string& help)
{
    sc->add_option("--ttl", o.ttl, help)->capture_default_str()->check(in_range(1, 255, "1-255"));
}

inline void add_ip_options(CLI::App* sc, common_options& o)
{
    sc->add_option("--tos", o.tos, "IP TOS / traffic class octet (0-255, decimal or 0x..)")
        ->check(text_check([](const std::string& s) { return parse_tos(s).has_value(); },
                           "invalid value", "0-255, decimal or 0x hex"));
    sc->add_option("--dscp", o.dscp, "DSCP name (be, ef, af41, cs5, ...) or number 0-63")
        ->check(text_check([](const std::string& s) { return twamp::parse_dscp(s).has_value(); },
                           "invalid value", "a name such as ef, af41, cs5, be, or a number 0-63"));
    add_ttl_option(sc, o, "IP TTL / hop limit of test packets (1-255)");
    sc->add_option(
        "--padding", o.padding,
        "Padding octets after the base packet (default 27; -1 = IMIX 64/590/1514 in 7:4:1)");
    sc->add_flag("--do-not-fragment", o.do_not_fragment,
                 "Set don't-fragment (IPv4 DF, IPv6 DONTFRAG)");
}

inline void apply_logging(const common_options& o)
{
    logger::level l = logger::warning;
    if (o.quiet)
        l = logger::quiet;
    else if (o.debug)
        l = logger::debug;
    else if (o.verbose)
        l = logger::info;
    g_log.configure(l, o.logfile);
}

// The checks of the shared options that span two flags (each flag alone is checked by CLI11).
inline void check_common(const common_options& o)
{
    if (o.tos && o.dscp) throw usage_error("--tos and --dscp: give one of them, not both");
}

// The socket options of test packets; the flags are checked (by CLI11 and check_common).
inline twamp::net::socket_options socket_options_from(const common_options& o)
{
    twamp::net::socket_options s;
    if (o.dscp) s.tos = twamp::dscp_to_tos(*twamp::parse_dscp(*o.dscp));
    if (o.tos) s.tos = parse_tos(*o.tos);
    s.ttl = o.ttl;
    s.dont_fragment = o.do_not_fragment;
    return s;
}

inline twamp::net::host_port parse_endpoint_arg(const std::string& what, const std::string& s,
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
    template <class F> signal_guard(asio::io_context& io, F on_signal) : set_(io, SIGINT, SIGTERM)
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

} // namespace twamp_cli
