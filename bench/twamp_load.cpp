// bench/twamp_load.cpp — a TWAMP load generator: N control connections × M test sessions each,
// P probes/s per session, for S seconds, against any TWAMP server (RFC 5357), on the library's
// controller and Session-Sender (twamp/asio/controller.hpp), all on one event loop.
//
// Reports how fast the sessions were set up, the probes sent / received / lost (late and
// duplicates too), the round trip p50/p99 over every session, the generator's CPU and memory
// (RSS per session) and, given --server-pid, the server's CPU, memory and descriptors. With
// --json the result is one JSON object on stdout. Exit 0 when every connection completed its
// sessions, 1 when any failed (the first error and the Accept codes of the refusals are
// reported), 2 on a bad flag.
//
//   twamp_load 127.0.0.1:862 --connections 100 --sessions 100 --rate 1 --duration 30
//
// See bench/README.md, "Load generator (session 3)".
#include "twamp/asio/controller.hpp"
#include "twamp/histogram.hpp"

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct load_options {
    std::string server = "127.0.0.1:862";
    unsigned connections = 1;
    unsigned sessions = 1;
    double rate = 1;                    // probes/s per session
    double duration = 10;               // seconds of test traffic
    std::optional<std::size_t> padding; // unset: the mode's default (27 open, 64 protected)
    double timeout = 2;                 // per-probe loss timeout, seconds
    double ramp = 0;                    // connections opened per second; 0 = all at once
    std::size_t batch = 1;              // receive batch per session (64 KiB each)
    double connect_timeout = 30;
    double control_timeout = 60; // wait for each control reply (Accept-Session, Start-Ack)
    double session_timeout = 2;  // the Timeout asked for (RFC 5357 §3.5: reflect after Stop)
    long server_pid = 0;
    bool json = false;
};

struct usage_error {
    std::string what;
};

const char* const kUsage =
    R"(usage: twamp_load [server-host[:port]] [flags]       (default 127.0.0.1:862)

Opens N TWAMP-Control connections with M test sessions each and sends P probes/s in every
session for S seconds; reports the set-up rate, probes sent/received/lost, round trip and CPU.

  --connections N      control connections (default 1)
  --sessions M         test sessions per connection (default 1)
  --rate P             probes per second per session (default 1)
  --duration S         seconds of test traffic; each session sends P*S probes (default 10)
  --padding N          probe padding, octets (default: 27 open mode, 64 protected)
  --timeout S          per-probe loss timeout, seconds (default 2)
  --ramp R             connections opened per second, 0 = all at once (default 0)
  --batch B            receive batch per session, 1-1024 (64 KiB each; default 1)
  --connect-timeout S  TCP connect timeout, seconds (default 30)
  --control-timeout S  wait for each control reply, seconds (default 60)
  --session-timeout S  Timeout asked for in Request-TW-Session, seconds (default 2)
  --server-pid PID     also report this process's CPU, RSS and descriptors (/proc)
  --json               one JSON object on stdout instead of the summary
  -h, --help           this text

Each session takes a UDP socket here (RLIMIT_NOFILE is raised to the hard limit) and about
0.9 MB (the Session-Sender's statistics histograms and its receive buffers).
Exit: 0 every connection completed, 1 some failed, 2 bad flag.
)";

std::string fmt(const char* f, double v)
{
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

template <class T> bool parse_number(std::string_view s, T& out)
{
    if (s.empty()) return false;
    if constexpr (std::is_floating_point_v<T>) {
        // std::from_chars for double is in libstdc++ 11+, but not in libc++ 14.
        std::string tmp(s);
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(tmp.c_str(), &end);
        if (errno != 0 || end != tmp.c_str() + tmp.size() || !std::isfinite(v)) return false;
        out = static_cast<T>(v);
        return true;
    } else {
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc{} && p == s.data() + s.size();
    }
}

template <class T>
void number_flag(const std::string& flag, std::string_view v, T lo, T hi, T& out, const char* what)
{
    T x{};
    if (!parse_number(v, x) || !(x >= lo) || !(x <= hi))
        throw usage_error{flag + ": '" + std::string(v) + "' is not " + what};
    out = x;
}

load_options parse_args(int argc, char** argv, bool& help)
{
    load_options o;
    bool have_server = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            help = true;
            return o;
        }
        if (a.empty() || a[0] != '-') {
            if (have_server)
                throw usage_error{"server-host:port: given twice ('" + o.server + "', '" + a +
                                  "')"};
            o.server = a;
            have_server = true;
            continue;
        }
        std::string flag = a;
        std::optional<std::string> value;
        if (const auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
            flag = a.substr(0, eq);
            value = a.substr(eq + 1);
        }
        if (flag == "--json") {
            if (value) throw usage_error{"--json: takes no value"};
            o.json = true;
            continue;
        }
        static const char* const with_value[] = {
            "--connections",     "--sessions",       "--rate",  "--duration",   "--padding",
            "--timeout",         "--ramp",           "--batch", "--server-pid", "--connect-timeout",
            "--control-timeout", "--session-timeout"};
        if (std::find_if(std::begin(with_value), std::end(with_value),
                         [&](const char* f) { return flag == f; }) == std::end(with_value))
            throw usage_error{"unknown flag '" + flag + "' (see --help)"};
        if (!value) {
            if (i + 1 >= argc) throw usage_error{flag + ": needs a value"};
            value = argv[++i];
        }
        const std::string& v = *value;
        if (flag == "--connections")
            number_flag(flag, v, 1u, 100000u, o.connections, "a count, 1-100000");
        else if (flag == "--sessions")
            number_flag(flag, v, 1u, 65535u, o.sessions, "a count, 1-65535");
        else if (flag == "--rate")
            number_flag(flag, v, 1e-3, 1e6, o.rate, "a rate, 0.001-1000000 probes/s");
        else if (flag == "--duration")
            number_flag(flag, v, 1e-3, 604800.0, o.duration, "a duration, 0.001-604800 s");
        else if (flag == "--padding") {
            std::size_t p = 0;
            number_flag<std::size_t>(flag, v, 0, 65000, p, "a padding, 0-65000 octets");
            o.padding = p;
        } else if (flag == "--timeout")
            number_flag(flag, v, 1e-3, 3600.0, o.timeout, "a timeout, 0.001-3600 s");
        else if (flag == "--ramp")
            number_flag(flag, v, 0.0, 1e6, o.ramp, "a rate, 0-1000000 connections/s");
        else if (flag == "--batch")
            number_flag<std::size_t>(flag, v, 1, 1024, o.batch, "a batch size, 1-1024");
        else if (flag == "--server-pid")
            number_flag(flag, v, 1L, long{std::numeric_limits<int>::max()}, o.server_pid,
                        "a process id");
        else if (flag == "--connect-timeout")
            number_flag(flag, v, 1e-3, 3600.0, o.connect_timeout, "a timeout, 0.001-3600 s");
        else if (flag == "--control-timeout")
            number_flag(flag, v, 0.0, 3600.0, o.control_timeout, "a timeout, 0-3600 s (0 = none)");
        else if (flag == "--session-timeout")
            number_flag(flag, v, 0.0, 3600.0, o.session_timeout, "a timeout, 0-3600 s");
    }
    const double count = std::round(o.rate * o.duration);
    if (count < 1)
        throw usage_error{"--duration: " + fmt("%g", o.duration) + " s at --rate " +
                          fmt("%g", o.rate) + " probes/s is less than one probe"};
    if (count > std::numeric_limits<std::uint32_t>::max())
        throw usage_error{"--duration: more than 2^32-1 probes per session"};
    if (std::uint64_t{o.connections} * o.sessions > 1000000)
        throw usage_error{"--sessions: more than 1000000 sessions in all (--connections × "
                          "--sessions)"};
    if (o.server_pid && !std::filesystem::exists("/proc/" + std::to_string(o.server_pid)))
        throw usage_error{"--server-pid: no process " + std::to_string(o.server_pid)};
    return o;
}

std::chrono::nanoseconds to_ns(double s)
{
    return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(s * 1e9))};
}

// ---- process measurements (/proc, getrusage)

double cpu_seconds_self()
{
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto s = [](const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) * 1e-6; };
    return s(ru.ru_utime) + s(ru.ru_stime);
}

// A "Vm...:" line of /proc/PID/status, kB; -1 when unreadable.
long proc_status_kb(const std::string& pid, const char* key)
{
    std::ifstream f("/proc/" + pid + "/status");
    std::string line;
    const std::string k = std::string(key) + ":";
    while (std::getline(f, line))
        if (line.rfind(k, 0) == 0) return std::strtol(line.c_str() + k.size(), nullptr, 10);
    return -1;
}

// utime + stime of /proc/PID/stat, seconds; -1 when unreadable.
double proc_cpu_seconds(long pid)
{
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto rp = s.rfind(')');
    if (rp == std::string::npos) return -1;
    std::istringstream in(s.substr(rp + 2));
    std::string field;
    unsigned long long ut = 0, st = 0;
    // Fields after the name start at 3 (state); utime and stime are 14 and 15.
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) ut = std::strtoull(field.c_str(), nullptr, 10);
        if (i == 15) st = std::strtoull(field.c_str(), nullptr, 10);
    }
    const long hz = ::sysconf(_SC_CLK_TCK);
    return hz > 0 ? double(ut + st) / double(hz) : -1;
}

long proc_fd_count(long pid)
{
    std::error_code ec;
    long n = 0;
    for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
         !ec && it != end; it.increment(ec))
        ++n;
    return ec ? -1 : n;
}

// RLIMIT_NOFILE up to the hard limit: the generator needs a socket per session.
rlim_t raise_nofile()
{
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
        (void)::getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

// ---- the run

using controller_t = twamp::net::controller<>;

struct connection_state {
    std::unique_ptr<controller_t> ctl;
    std::chrono::steady_clock::time_point started{};
    std::int64_t started_wall_ns = 0;
    // Earliest start of the test traffic seen in a reply: T1 - seq × interval (the senders start
    // right when Start-Ack arrives, and the first probe goes at once).
    std::optional<std::int64_t> test_start_wall_ns;
    bool done = false;
};

struct totals {
    unsigned connections_ok = 0, connections_failed = 0, connections_started = 0;
    std::uint64_t sessions_accepted = 0, sessions_started = 0;
    std::uint64_t scheduled = 0, sent = 0, received = 0, lost = 0, late = 0, duplicates = 0;
    std::uint64_t reordered = 0, send_errors = 0, icmp_unreachable = 0, skipped = 0;
    std::map<int, unsigned> accept_codes; // Accept value -> failed connections
    std::string first_error;
    twamp::log_histogram rtt;
    std::vector<double> setup_latency_s; // per connection that started its test
    std::optional<std::int64_t> last_setup_wall_ns;
};

double percentile_of(std::vector<double> v, double p)
{
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * double(v.size())));
    return v[std::min(v.size() - 1, rank ? rank - 1 : 0)];
}

void add_result(totals& t, const twamp::net::controller_result& r, const connection_state& c)
{
    if (r.ok)
        ++t.connections_ok;
    else {
        ++t.connections_failed;
        if (t.first_error.empty()) t.first_error = r.error;
        if (r.accept) ++t.accept_codes[static_cast<int>(*r.accept)];
    }
    bool started = false;
    for (const auto& s : r.sessions) {
        if (s.port != 0) ++t.sessions_accepted;
        if (s.scheduled > 0) {
            ++t.sessions_started;
            started = true;
        }
        t.scheduled += s.scheduled;
        t.skipped += s.skipped;
        t.sent += s.stats.sent;
        t.received += s.stats.received;
        t.lost += s.stats.lost();
        t.late += s.stats.late;
        t.duplicates += s.stats.duplicates;
        t.reordered += s.stats.reordered;
        t.send_errors += s.stats.send_errors;
        t.icmp_unreachable += s.stats.icmp_unreachable;
        t.rtt.merge(s.stats.roundtrip.histogram());
    }
    if (started) ++t.connections_started;
    if (started && c.test_start_wall_ns) {
        t.setup_latency_s.push_back(double(*c.test_start_wall_ns - c.started_wall_ns) * 1e-9);
        if (!t.last_setup_wall_ns || *c.test_start_wall_ns > *t.last_setup_wall_ns)
            t.last_setup_wall_ns = c.test_start_wall_ns;
    }
}

struct peer_sample {
    long rss_base_kb = -1, rss_peak_kb = -1, fd_base = -1, fd_peak = -1;
    double cpu_start = -1, cpu_end = -1;
};

// What every connection asks for: M sessions of P × S probes, 1/P apart.
twamp::net::controller_options controller_options_of(const load_options& o,
                                                     const asio::ip::tcp::endpoint& server,
                                                     std::uint32_t count)
{
    twamp::net::controller_options co;
    co.server = server;
    co.connect_timeout = to_ns(o.connect_timeout);
    co.control.reply_timeout = to_ns(o.control_timeout);
    co.sessions = o.sessions;
    co.session_timeout = to_ns(o.session_timeout);
    co.test.local = {server.address().is_v4() ? asio::ip::address(asio::ip::address_v4::any())
                                              : asio::ip::address(asio::ip::address_v6::any()),
                     0};
    co.test.count = count;
    co.test.interval = to_ns(1.0 / o.rate);
    co.test.core.timeout = to_ns(o.timeout);
    co.test.batch = o.batch;
    if (o.padding) co.paddings = {*o.padding};
    return co;
}

int run(const load_options& o)
{
    const rlim_t nofile = raise_nofile();
    const std::uint64_t needed = std::uint64_t{o.connections} * (o.sessions + 1) + 16;
    if (nofile < needed)
        std::fprintf(stderr,
                     "twamp_load: warning: %llu descriptors allowed, about %llu needed (a socket "
                     "per session and per connection): raise the hard limit (ulimit -Hn)\n",
                     (unsigned long long)nofile, (unsigned long long)needed);
    asio::io_context io;

    twamp::net::host_port hp;
    if (twamp::net::parse_host_port(o.server, 862, hp) || hp.host.empty())
        throw usage_error{"server-host:port: '" + o.server + "' is not host[:port]"};
    asio::ip::tcp::endpoint server;
    {
        std::error_code ec;
        asio::ip::tcp::resolver res(io);
        auto r = res.resolve(hp.host, std::to_string(hp.port), ec);
        if (ec || r.empty())
            throw usage_error{"server-host:port: cannot resolve '" + hp.host +
                              "': " + (ec ? ec.message() : "no address")};
        server = r.begin()->endpoint();
        for (const auto& e : r)
            if (hp.family_hint == 0 || (hp.family_hint == 4) == e.endpoint().address().is_v4()) {
                server = e.endpoint();
                break;
            }
    }

    const auto count = static_cast<std::uint32_t>(std::llround(o.rate * o.duration));
    const twamp::net::controller_options co = controller_options_of(o, server, count);
    const std::int64_t interval_ns = co.test.interval.count();

    const std::string self = "self";
    const std::string server_pid = std::to_string(o.server_pid);
    peer_sample gen, srv;
    gen.rss_base_kb = proc_status_kb(self, "VmRSS");
    gen.fd_base = proc_fd_count(::getpid());
    if (o.server_pid) {
        srv.rss_base_kb = srv.rss_peak_kb = proc_status_kb(server_pid, "VmRSS");
        srv.fd_base = srv.fd_peak = proc_fd_count(o.server_pid);
        srv.cpu_start = proc_cpu_seconds(o.server_pid);
    }
    const double cpu0 = cpu_seconds_self();
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t wall0 = twamp::net::realtime_now().count();

    std::vector<connection_state> conns(o.connections);
    totals tot;
    unsigned finished = 0;
    bool interrupted = false;

    asio::steady_timer ramp_timer(io), sample_timer(io);
    asio::signal_set signals(io, SIGINT, SIGTERM);

    auto sample = [&] {
        long fds = proc_fd_count(::getpid());
        gen.fd_peak = std::max(gen.fd_peak, fds);
        if (o.server_pid) {
            srv.rss_peak_kb = std::max(srv.rss_peak_kb, proc_status_kb(server_pid, "VmRSS"));
            srv.fd_peak = std::max(srv.fd_peak, proc_fd_count(o.server_pid));
        }
    };
    std::function<void()> arm_sample = [&] {
        sample_timer.expires_after(std::chrono::milliseconds{250});
        sample_timer.async_wait([&](const std::error_code& ec) {
            // A wait that expired just before the last connection cancelled it still comes
            // here without an error: it must not arm again.
            if (ec || finished == o.connections) return;
            sample();
            arm_sample();
        });
    };
    arm_sample();

    auto start_one = [&](unsigned i) {
        auto& c = conns[i];
        c.ctl = std::make_unique<controller_t>(io, co);
        c.ctl->on_reply([&c, interval_ns](const twamp::reply_result& r) {
            if (r.status != twamp::reply_status::sample && r.status != twamp::reply_status::late)
                return;
            if (r.sample.t1.count() == 0) return;
            const std::int64_t t =
                r.sample.t1.count() - std::int64_t{r.sample.sender_seq} * interval_ns;
            if (!c.test_start_wall_ns || t < *c.test_start_wall_ns) c.test_start_wall_ns = t;
        });
        c.started = std::chrono::steady_clock::now();
        c.started_wall_ns = twamp::net::realtime_now().count();
        c.ctl->start([&, i](const twamp::net::controller_result& r) {
            auto& cc = conns[i];
            cc.done = true;
            add_result(tot, r, cc);
            // Free the connection's senders and result (about 0.9 MB per session: histograms)
            // once it is over, so the peak is not every sender plus every result. The controller
            // has cancelled its timers and closed its sockets: their aborted completions are
            // queued already, ahead of this (one thread, FIFO), and still find it alive; the
            // second hop leaves room for what those completions post themselves.
            asio::post(io, [&, i] { asio::post(io, [&, i] { conns[i].ctl.reset(); }); });
            if (++finished == o.connections) {
                sample();
                sample_timer.cancel();
                ramp_timer.cancel();
                signals.cancel();
            }
        });
    };

    unsigned next = 0;
    std::function<void()> ramp_step = [&] {
        if (interrupted) return;
        // Open every connection whose time has come (catching up after a stall).
        const auto now = std::chrono::steady_clock::now();
        while (next < o.connections && (o.ramp <= 0 || t0 + to_ns(double(next) / o.ramp) <= now))
            start_one(next++);
        if (next >= o.connections) return;
        ramp_timer.expires_at(t0 + to_ns(double(next) / o.ramp));
        ramp_timer.async_wait([&](const std::error_code& ec) {
            if (!ec) ramp_step();
        });
    };

    signals.async_wait([&](const std::error_code& ec, int) {
        if (ec) return;
        interrupted = true;
        ramp_timer.cancel();
        // The connections never opened count as failed.
        for (; next < o.connections; ++next) {
            conns[next].done = true;
            ++tot.connections_failed;
            if (++finished == o.connections) {
                sample_timer.cancel();
                signals.cancel();
            }
        }
        for (auto& c : conns)
            if (c.ctl && !c.done) c.ctl->stop();
        if (tot.first_error.empty()) tot.first_error = "interrupted";
    });

    ramp_step();
    io.run();

    const auto t1 = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(t1 - t0).count();
    const double cpu = cpu_seconds_self() - cpu0;
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    gen.rss_peak_kb = proc_status_kb(self, "VmHWM");
    if (gen.rss_peak_kb < 0) gen.rss_peak_kb = ru.ru_maxrss;
    if (o.server_pid) srv.cpu_end = proc_cpu_seconds(o.server_pid);

    const std::uint64_t requested = std::uint64_t{o.connections} * o.sessions;
    const double setup_span =
        tot.last_setup_wall_ns ? double(*tot.last_setup_wall_ns - wall0) * 1e-9 : 0;
    const double setup_rate = setup_span > 0 ? double(tot.sessions_started) / setup_span : 0;
    const double loss = tot.sent ? double(tot.lost) / double(tot.sent) : 0;
    const double gen_kb_per_session =
        requested ? double(gen.rss_peak_kb - gen.rss_base_kb) / double(requested) : 0;
    const bool have_server = o.server_pid && srv.cpu_start >= 0 && srv.cpu_end >= 0;
    const double srv_cpu = have_server ? srv.cpu_end - srv.cpu_start : 0;
    const double srv_kb_per_session =
        tot.sessions_started && srv.rss_peak_kb >= 0
            ? double(srv.rss_peak_kb - srv.rss_base_kb) / double(tot.sessions_started)
            : 0;
    const bool ok = tot.connections_failed == 0 && !interrupted;

    if (o.json) {
        nlohmann::json j;
        j["server"] = o.server;
        j["connections"] = o.connections;
        j["sessions_per_connection"] = o.sessions;
        j["rate_pps"] = o.rate;
        j["duration_s"] = o.duration;
        j["count_per_session"] = count;
        j["timeout_s"] = o.timeout;
        j["ramp_per_s"] = o.ramp;
        if (o.padding) j["padding"] = *o.padding;
        j["ok"] = ok;
        j["interrupted"] = interrupted;
        j["elapsed_s"] = elapsed;
        j["connections_ok"] = tot.connections_ok;
        j["connections_failed"] = tot.connections_failed;
        nlohmann::json codes = nlohmann::json::object();
        for (auto [code, n] : tot.accept_codes)
            codes[std::to_string(code)] = n;
        j["failed_accept_codes"] = codes;
        j["first_error"] =
            tot.first_error.empty() ? nlohmann::json() : nlohmann::json(tot.first_error);
        j["sessions"] = {{"requested", requested},
                         {"accepted", tot.sessions_accepted},
                         {"set_up", tot.sessions_started}};
        j["setup"] = {{"connections_timed", tot.setup_latency_s.size()},
                      {"all_set_up_after_s", setup_span},
                      {"sessions_per_s", setup_rate},
                      {"latency_p50_s", percentile_of(tot.setup_latency_s, 50)},
                      {"latency_p99_s", percentile_of(tot.setup_latency_s, 99)},
                      {"latency_max_s", percentile_of(tot.setup_latency_s, 100)}};
        j["probes"] = {{"scheduled", tot.scheduled}, {"sent", tot.sent},
                       {"received", tot.received},   {"lost", tot.lost},
                       {"late", tot.late},           {"duplicates", tot.duplicates},
                       {"reordered", tot.reordered}, {"send_errors", tot.send_errors},
                       {"skipped", tot.skipped},     {"icmp_unreachable", tot.icmp_unreachable},
                       {"loss_ratio", loss}};
        j["rtt_ns"] = {{"samples", tot.rtt.count()},
                       {"min", tot.rtt.min()},
                       {"p50", tot.rtt.percentile(50)},
                       {"p99", tot.rtt.percentile(99)},
                       {"max", tot.rtt.max()}};
        j["generator"] = {{"cpu_s", cpu},
                          {"cpu_user_s", double(ru.ru_utime.tv_sec) + ru.ru_utime.tv_usec * 1e-6},
                          {"cpu_sys_s", double(ru.ru_stime.tv_sec) + ru.ru_stime.tv_usec * 1e-6},
                          {"cpu_percent", elapsed > 0 ? 100 * cpu / elapsed : 0},
                          {"rss_base_kb", gen.rss_base_kb},
                          {"rss_peak_kb", gen.rss_peak_kb},
                          {"rss_kb_per_session", gen_kb_per_session},
                          {"fd_peak", gen.fd_peak},
                          {"nofile", static_cast<std::uint64_t>(nofile)}};
        if (o.server_pid)
            j["server_process"] = {{"pid", o.server_pid},
                                   {"cpu_s", have_server ? nlohmann::json(srv_cpu) : nullptr},
                                   {"cpu_percent", have_server && elapsed > 0
                                                       ? nlohmann::json(100 * srv_cpu / elapsed)
                                                       : nullptr},
                                   {"rss_base_kb", srv.rss_base_kb},
                                   {"rss_peak_kb", srv.rss_peak_kb},
                                   {"rss_kb_per_session", srv_kb_per_session},
                                   {"fd_base", srv.fd_base},
                                   {"fd_peak", srv.fd_peak}};
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("twamp_load: %u connections x %u sessions, %g probes/s each for %g s "
                    "(%u probes per session) against %s\n",
                    o.connections, o.sessions, o.rate, o.duration, count, o.server.c_str());
        std::printf("  connections: %u ok, %u failed", tot.connections_ok, tot.connections_failed);
        for (auto [code, n] : tot.accept_codes)
            std::printf(
                ", %u with Accept %d (%s)", n, code,
                twamp::net::accept_code_text(static_cast<twamp::control::accept_code>(code)));
        std::printf("\n");
        std::printf("  sessions:    %llu requested, %llu accepted, %llu set up (test started); "
                    "all set up after %.3f s: %.0f sessions/s; per connection p50 %.3f s, "
                    "max %.3f s\n",
                    (unsigned long long)requested, (unsigned long long)tot.sessions_accepted,
                    (unsigned long long)tot.sessions_started, setup_span, setup_rate,
                    percentile_of(tot.setup_latency_s, 50),
                    percentile_of(tot.setup_latency_s, 100));
        std::printf("  probes:      %llu sent, %llu received, %llu lost (%.4f %%), %llu late, "
                    "%llu duplicates, %llu send errors\n",
                    (unsigned long long)tot.sent, (unsigned long long)tot.received,
                    (unsigned long long)tot.lost, 100 * loss, (unsigned long long)tot.late,
                    (unsigned long long)tot.duplicates, (unsigned long long)tot.send_errors);
        if (tot.rtt.count())
            std::printf("  round trip:  p50 %.1f us, p99 %.1f us, max %.1f us\n",
                        tot.rtt.percentile(50) / 1e3, tot.rtt.percentile(99) / 1e3,
                        double(tot.rtt.max()) / 1e3);
        std::printf("  generator:   CPU %.2f s (%.1f %% of one core over %.2f s), RSS %ld kB peak "
                    "(%.0f kB per session), %ld descriptors peak\n",
                    cpu, elapsed > 0 ? 100 * cpu / elapsed : 0, elapsed, gen.rss_peak_kb,
                    gen_kb_per_session, gen.fd_peak);
        if (o.server_pid)
            std::printf(
                "  server:      CPU %s s (%s %%), RSS %ld -> %ld kB peak (%.1f kB per "
                "session), descriptors %ld -> %ld peak\n",
                have_server ? fmt("%.2f", srv_cpu).c_str() : "?",
                have_server && elapsed > 0 ? fmt("%.1f", 100 * srv_cpu / elapsed).c_str() : "?",
                srv.rss_base_kb, srv.rss_peak_kb, srv_kb_per_session, srv.fd_base, srv.fd_peak);
    }
    if (!tot.first_error.empty())
        std::fprintf(stderr, "twamp_load: %u of %u connections failed; first error: %s\n",
                     tot.connections_failed, o.connections, tot.first_error.c_str());
    return ok ? kExitOk : kExitFailed;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        bool help = false;
        const auto o = parse_args(argc, argv, help);
        if (help) {
            std::fputs(kUsage, stdout);
            return kExitOk;
        }
        return run(o);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "twamp_load: %s\n", e.what.c_str());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "twamp_load: %s\n", e.what());
        return kExitFailed;
    }
}
