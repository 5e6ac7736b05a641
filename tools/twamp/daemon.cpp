// daemon.cpp — `twamp daemon --config FILE`: the TWAMP server, TWAMP Light / STAMP reflectors
// and any number of sender sessions in one process and one event loop, configured by RFC 7951
// JSON of the RFC 8913 `ietf-twamp` module (see twamp/daemon/config.hpp), with a Prometheus
// endpoint, a JSON-lines results archive, SIGHUP reload and a clean SIGTERM stop.
//
// The daemon composes the library's parts: twamp::net::twamp_server, udp_reflector, udp_sender
// and controller. A continuous sender is a chain of finite runs: each run of number-of-packets
// probes is one report interval and one results line; the next run starts `repeat-interval`
// seconds later from the same local port (RFC 8913 repeat / repeat-interval). A run that got no
// reply at all (or whose control connection failed) marks the session down and the next one
// waits a back-off that doubles up to retry-max; the other sessions are not affected.
//
// Metrics of a session live as long as its configuration is unchanged: a reload keeps them;
// reflector and server counters are fed as deltas of the library's counters, so they never go
// back when a reflector or the server is replaced.
#include "daemon.hpp"

#include "cli_common.hpp"

#include "twamp/asio/controller.hpp"
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/sender.hpp"
#include "twamp/asio/server.hpp"
#include "twamp/control_security.hpp"
#include "twamp/crypto_openssl.hpp"
#include "twamp/daemon/config.hpp"
#include "twamp/report/json.hpp"

#include <CivetServer.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>

namespace twamp_cli {

namespace {

namespace dc = twamp::daemon;
using security = twamp::control::keyed_security<twamp::openssl_crypto>;
using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

// ----------------------------------------------------------------------------------------------
// systemd readiness (sd_notify protocol: a datagram to $NOTIFY_SOCKET); a no-op elsewhere.

void sd_notify_text(const char* text)
{
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(path);
    if (len >= sizeof sa.sun_path) return;
    std::memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0'; // abstract namespace
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    (void)::sendto(fd, text, std::strlen(text), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
    ::close(fd);
}

// ----------------------------------------------------------------------------------------------
// metrics

// 1 µs to 10 s, eight buckets per decade (ratio 10^(1/8) ≈ 1.33): a quantile read from them is
// within about 17 % of the true value anywhere in that range.
std::vector<double> delay_buckets()
{
    std::vector<double> b;
    for (int i = 0; i <= 7 * 8; ++i) {
        const double v = 1e-6 * std::pow(10.0, i / 8.0);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3g", v);
        b.push_back(std::strtod(buf, nullptr));
    }
    return b;
}

// The exposition's families: members of `metrics`, registered from the tables below it.
struct metrics {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
    // Sender sessions.
    prometheus::Family<Counter>*sent, *received, *lost, *tests, *failures;
    prometheus::Family<Histogram>* delay;
    prometheus::Family<Gauge>* up;
    // Reflectors and the TWAMP server.
    prometheus::Family<Counter>*reflected, *refl_sessions, *refusals, *auth_failures, *connections;
    prometheus::Family<Gauge>*open_connections, *open_sessions;
    // The daemon itself.
    prometheus::Family<Gauge>* configured;
    const std::vector<double> buckets = delay_buckets();

    metrics();
};

template <class T> struct family_spec {
    prometheus::Family<T>* metrics::*member;
    const char* name;
    const char* help;
};

constexpr family_spec<Counter> kCounters[] = {
    {&metrics::sent, "twamp_sender_probes_sent_total", "Test packets sent by a sender session"},
    {&metrics::received, "twamp_sender_replies_received_total",
     "Distinct test packets answered within the loss timeout"},
    {&metrics::lost, "twamp_sender_probes_lost_total",
     "Test packets without an in-time reply; direction outbound/inbound where the "
     "reflector's sequence numbers tell them apart, roundtrip always"},
    {&metrics::tests, "twamp_sender_tests_total", "Finished test runs (report intervals)"},
    {&metrics::failures, "twamp_sender_failures_total",
     "Runs that could not start or whose control connection failed"},
    {&metrics::reflected, "twamp_reflector_packets_reflected_total",
     "Test packets reflected (TWAMP server: sessions that have ended)"},
    {&metrics::refl_sessions, "twamp_reflector_sessions_total",
     "Sessions created: per-sender state of a reflector, accepted TWAMP sessions"},
    {&metrics::refusals, "twamp_reflector_refusals_total",
     "Packets, connections or sessions refused, by reason"},
    {&metrics::auth_failures, "twamp_reflector_auth_failures_total",
     "Protected test packets that failed authentication"},
    {&metrics::connections, "twamp_server_connections_total", "TWAMP-Control connections accepted"},
};

constexpr family_spec<Gauge> kGauges[] = {
    {&metrics::up, "twamp_session_up",
     "1 when the session's last run got replies, 0 when its peer is down"},
    {&metrics::open_connections, "twamp_server_connections", "TWAMP-Control connections open now"},
    {&metrics::open_sessions, "twamp_server_sessions", "TWAMP test sessions open now"},
    {&metrics::configured, "twamp_daemon_config_reloads",
     "Configuration loads: result=ok or error"},
};

constexpr family_spec<Histogram> kHistograms[] = {
    {&metrics::delay, "twamp_delay_seconds",
     "Delay of answered test packets per direction (outbound T2-T1, inbound T4-T3, "
     "roundtrip (T4-T1)-(T3-T2))"},
};

template <class T, class Builder, std::size_t N>
void register_families(metrics& m, Builder build, const family_spec<T> (&specs)[N])
{
    for (const auto& f : specs)
        m.*f.member = &build().Name(f.name).Help(f.help).Register(*m.registry);
}

metrics::metrics()
{
    register_families(*this, prometheus::BuildCounter, kCounters);
    register_families(*this, prometheus::BuildGauge, kGauges);
    register_families(*this, prometheus::BuildHistogram, kHistograms);
}

// A counter fed from a library counter that may restart from 0 (a replaced reflector).
struct delta_feed {
    std::uint64_t last = 0;
    void feed(Counter& c, std::uint64_t now)
    {
        if (now > last) c.Increment(static_cast<double>(now - last));
        last = now;
    }
};

// The series of one sender session; removed with the session.
struct session_series {
    metrics& m;
    Counter& sent;
    Counter& received;
    Counter& lost_rt;
    Counter* lost_out = nullptr; // created once the reflector's sequence numbers split the loss
    Counter* lost_in = nullptr;
    Counter& tests;
    Counter& failures;
    Histogram* h_out = nullptr;
    Histogram* h_in = nullptr;
    Histogram* h_rt = nullptr;
    Gauge& up;
    prometheus::Labels labels;
    std::uint64_t next_interval = 0; // the results file's `interval` of the next finished run

    // `per_reply`: the session sees every reply (every kind does: Light / STAMP senders and the
    // TWAMP controller's senders), so it feeds the histograms.
    session_series(metrics& mm, const prometheus::Labels& l, bool per_reply)
        : m(mm), sent(m.sent->Add(l)), received(m.received->Add(l)),
          lost_rt(m.lost->Add(with(l, "direction", "roundtrip"))), tests(m.tests->Add(l)),
          failures(m.failures->Add(l)), up(m.up->Add(l)), labels(l)
    {
        if (!per_reply) return;
        h_out = &m.delay->Add(with(l, "direction", "outbound"), m.buckets);
        h_in = &m.delay->Add(with(l, "direction", "inbound"), m.buckets);
        h_rt = &m.delay->Add(with(l, "direction", "roundtrip"), m.buckets);
    }
    session_series(const session_series&) = delete;
    session_series& operator=(const session_series&) = delete;
    ~session_series()
    {
        m.sent->Remove(&sent);
        m.received->Remove(&received);
        m.lost->Remove(&lost_rt);
        if (lost_out) {
            m.lost->Remove(lost_out);
            m.lost->Remove(lost_in);
        }
        m.tests->Remove(&tests);
        m.failures->Remove(&failures);
        if (h_out) {
            m.delay->Remove(h_out);
            m.delay->Remove(h_in);
            m.delay->Remove(h_rt);
        }
        m.up->Remove(&up);
    }
    static prometheus::Labels with(prometheus::Labels l, const char* k, const char* v)
    {
        l[k] = v;
        return l;
    }
    void sample(const twamp::reply_result& r)
    {
        if (r.status != twamp::reply_status::sample || !h_rt) return;
        const auto& s = r.sample;
        h_rt->Observe(static_cast<double>(s.roundtrip_ns) / 1e9);
        h_out->Observe(static_cast<double>(s.outbound_ns) / 1e9);
        h_in->Observe(static_cast<double>(s.inbound_ns) / 1e9);
    }
    // The end of a run: received and lost (live probes are counted as they leave).
    void run_done(const twamp::session_stats& st)
    {
        received.Increment(static_cast<double>(st.received));
        lost_rt.Increment(static_cast<double>(st.lost()));
        if (st.have_reflector_seq) {
            if (!lost_out) {
                lost_out = &m.lost->Add(with(labels, "direction", "outbound"));
                lost_in = &m.lost->Add(with(labels, "direction", "inbound"));
            }
            lost_out->Increment(static_cast<double>(st.outbound_lost()));
            lost_in->Increment(static_cast<double>(st.inbound_lost()));
        }
        tests.Increment();
    }
};

// The series of a label set are shared: a session whose configuration changes on reload but
// keeps its labels hands its counters to its successor (the old one still archives its last
// run into them), and they are removed when the last holder is gone.
class series_pool {
public:
    explicit series_pool(metrics& m) : m_(m) {}
    std::shared_ptr<session_series> get(const prometheus::Labels& l, bool per_reply)
    {
        std::string key;
        for (const auto& [k, v] : l)
            key += k + "=" + v + '\x1f';
        for (auto it = pool_.begin(); it != pool_.end();)
            it = it->second.expired() ? pool_.erase(it) : std::next(it);
        if (auto p = pool_[key].lock()) return p;
        auto p = std::make_shared<session_series>(m_, l, per_reply);
        pool_[key] = p;
        return p;
    }

private:
    metrics& m_;
    std::map<std::string, std::weak_ptr<session_series>> pool_;
};

// ----------------------------------------------------------------------------------------------
// results archive: one JSON object per line, flushed per line

class results_sink {
public:
    ~results_sink() { close(); }
    std::string open(const std::string& path)
    {
        close();
        path_ = path;
        if (path.empty() || path == "-") {
            f_ = stdout;
            return {};
        }
        f_ = std::fopen(path.c_str(), "a");
        if (!f_) {
            f_ = nullptr;
            return "cannot open '" + path + "' for appending: " + std::strerror(errno);
        }
        return {};
    }
    const std::string& path() const noexcept { return path_; }
    void write(const nlohmann::json& j)
    {
        if (!f_) return;
        const std::string line = j.dump() + "\n";
        if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
            g_log.log(logger::warning, "results file: write error: %s", std::strerror(errno));
    }
    void close()
    {
        if (f_ && f_ != stdout) std::fclose(f_);
        if (f_ == stdout) std::fflush(stdout);
        f_ = nullptr;
    }

private:
    std::FILE* f_ = nullptr;
    std::string path_;
};

// ----------------------------------------------------------------------------------------------
// keys: the daemon key file (pfs format) and the key-chains of the configuration

struct key_source {
    std::shared_ptr<twamp::control::key_store> keys = std::make_shared<twamp::control::key_store>();
    std::shared_ptr<twamp::control::key_store> server_keys =
        std::make_shared<twamp::control::key_store>();
};

// Builds the key stores; returns errors with paths.
std::vector<dc::config_error> build_keys(const dc::config& c, key_source& ks)
{
    std::vector<dc::config_error> errs;
    const std::string kf = std::string("/") + dc::kDaemonRoot + "/key-file";
    twamp::control::key_store file_keys;
    if (!c.daemon.key_file.empty()) {
        std::string err;
        if (!file_keys.load(c.daemon.key_file, err)) errs.push_back({kf, err});
    }
    for (const auto& [id, secret] : file_keys.keys()) {
        ks.keys->add(id, secret);
        ks.server_keys->add(id, secret);
    }
    for (const auto& k : c.client.key_chain)
        ks.keys->add(k.key_id, k.secret);
    for (const auto& k : c.server.key_chain)
        ks.server_keys->add(k.key_id, k.secret);
    return errs;
}

const std::vector<std::uint8_t>* stamp_key(const key_source& ks, const std::string& id)
{
    if (const auto* k = ks.keys->find(id)) return k;
    return ks.server_keys->find(id);
}

std::string hostport_text(const std::string& ip, unsigned port)
{
    return (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

// The TWAMP sessions of the client container joined with their session-sender entries.
struct twamp_session_cfg {
    dc::ctrl_connection conn; // without the other requests
    dc::test_session_request req;
    dc::sender_test_session sched;
    std::vector<dc::mode_preference> chain;
    bool operator==(const twamp_session_cfg&) const = default;
};

std::uint32_t chain_modes(const std::vector<dc::mode_preference>& chain)
{
    std::uint32_t m = 0;
    for (const auto& p : chain)
        m |= p.mode;
    return m ? m : twamp::control::mode::unauthenticated;
}

using errors = std::vector<dc::config_error>;
const std::string kTwampPath = std::string("/") + dc::kTwampRoot;
const std::string kStampPath = std::string("/") + dc::kStampRoot;
constexpr std::uint32_t kKeyedModes = twamp::control::mode::authenticated |
                                      twamp::control::mode::encrypted | twamp::control::mode::mixed;

// The preference chain, highest priority first, must be ordered as the library chooses: the
// strongest mode both sides offer (encrypted, authenticated, mixed, unauthenticated).
void check_mode_chain(const dc::config& c, errors& errs)
{
    using namespace twamp::control;
    auto chain = c.client.mode_preference_chain;
    std::stable_sort(chain.begin(), chain.end(),
                     [](const auto& a, const auto& b) { return a.priority < b.priority; });
    auto rank = [](std::uint32_t m) {
        if (m & mode::encrypted) return 0;
        if (m & mode::authenticated) return 1;
        if (m & mode::mixed) return 2;
        return 3;
    };
    for (std::size_t i = 0; i < chain.size(); ++i) {
        const std::string p = kTwampPath + "/client/mode-preference-chain[priority='" +
                              std::to_string(chain[i].priority) + "']/mode";
        const std::uint32_t sec = chain[i].mode & mode::security_mask;
        if (chain[i].mode & ~mode::security_mask & 0x7F)
            errs.push_back({p, "not supported: only security modes belong in the chain; "
                               "features are not requested"});
        if (sec == 0 || (sec & (sec - 1)) != 0)
            errs.push_back({p, "not supported: name exactly one security mode per entry"});
        else if (i > 0 && rank(sec) < rank(chain[i - 1].mode & mode::security_mask))
            errs.push_back({p, "not supported: the client prefers the strongest mode, so "
                               "order the chain strongest first"});
    }
}

// Each control connection's key, and its requests' reflector and schedule.
void check_client_connections(const dc::config& c, const key_source& ks, errors& errs)
{
    const bool keyed_client = chain_modes(c.client.mode_preference_chain) & kKeyedModes;
    for (const auto& cc : c.client.connections) {
        const std::string p = kTwampPath + "/client/ctrl-connection[name='" + cc.name + "']";
        if (cc.key_id && !ks.keys->find(*cc.key_id))
            errs.push_back({p + "/key-id", "'" + *cc.key_id +
                                               "' is in neither the client key-chain nor the "
                                               "key file"});
        if (keyed_client && !cc.key_id)
            errs.push_back({p + "/key-id", "the mode-preference-chain names a keyed mode: a "
                                           "key-id is needed"});
        for (const auto& q : cc.requests) {
            const std::string qp = p + "/test-session-request[name='" + q.name + "']";
            if (q.reflector_ip != cc.server_ip)
                errs.push_back(
                    {qp + "/reflector-ip",
                     "not supported: the reflector is the server (" + cc.server_ip + ")"});
            bool found = false;
            for (const auto& ts : c.session_sender.sessions)
                found = found || ts.name == q.name;
            if (!found)
                errs.push_back({qp, "needs its schedule: " + kTwampPath +
                                        "/session-sender/test-session[name='" + q.name +
                                        "'] is missing"});
        }
    }
}

// Each TWAMP schedule: its request, its packet count and its interval.
void check_sender_schedules(const dc::config& c, errors& errs)
{
    for (const auto& ts : c.session_sender.sessions) {
        bool found = false;
        for (const auto& cc : c.client.connections)
            for (const auto& q : cc.requests)
                found = found || q.name == ts.name;
        const std::string p = kTwampPath + "/session-sender/test-session[name='" + ts.name + "']";
        if (!found) errs.push_back({p, "no client test-session-request of that name"});
        if (ts.number_of_packets == 0)
            errs.push_back({p + "/number-of-packets", "0 is out of range (at least 1)"});
        if (!ts.periodic_interval && !ts.lambda)
            errs.push_back({p, "give periodic-interval or lambda"});
        const double iv = ts.periodic_interval ? *ts.periodic_interval : ts.lambda.value_or(1);
        if (!(iv >= 0.00001) || iv > 3600)
            errs.push_back({p, "the interval must be 0.00001 to 3600 seconds"});
    }
}

void check_server_modes(const dc::config& c, const key_source& ks, errors& errs)
{
    if (!c.server.present) return;
    const bool keyed_server = c.server.modes && (*c.server.modes & kKeyedModes);
    if (keyed_server && ks.server_keys->keys().empty())
        errs.push_back({kTwampPath + "/server/modes",
                        "keyed modes need a server key-chain or a key "
                        "file"});
    if (c.server.modes && !(*c.server.modes & twamp::control::mode::security_mask))
        errs.push_back({kTwampPath + "/server/modes", "name at least one security mode"});
}

// The keys of authenticated STAMP sessions and reflectors.
void check_stamp_keys(const dc::config& c, const key_source& ks, errors& errs)
{
    for (const auto& ls : c.stamp.sessions)
        if (ls.key_id && !stamp_key(ks, *ls.key_id))
            errs.push_back(
                {kStampPath + "/session-sender/test-session[name='" + ls.name + "']/key-id",
                 "'" + *ls.key_id + "' is not in any key-chain or the key file"});
    for (const auto& lr : c.stamp.reflectors) {
        const std::string p = kStampPath + "/session-reflector/reflector[name='" + lr.name + "']";
        if (lr.key_id && !stamp_key(ks, *lr.key_id))
            errs.push_back(
                {p + "/key-id", "'" + *lr.key_id + "' is not in any key-chain or the key file"});
        if (lr.key_id && lr.mode == "twamp-light")
            errs.push_back({p + "/key-id", "authenticated reflection is STAMP only"});
    }
}

// Everything that would stop the daemon from running the configuration as written.
errors check_runnable(const dc::config& c, key_source& ks)
{
    auto errs = dc::unsupported(c);
    for (auto& e : build_keys(c, ks))
        errs.push_back(e);
    check_mode_chain(c, errs);
    check_client_connections(c, ks, errs);
    check_sender_schedules(c, errs);
    check_server_modes(c, ks, errs);
    check_stamp_keys(c, ks, errs);
    return errs;
}

std::vector<twamp_session_cfg> twamp_sessions(const dc::config& c)
{
    std::vector<twamp_session_cfg> out;
    if (!c.client.present || !c.client.admin_state || !c.session_sender.admin_state) return out;
    for (const auto& cc : c.client.connections)
        for (const auto& q : cc.requests)
            for (const auto& ts : c.session_sender.sessions)
                if (ts.name == q.name) {
                    twamp_session_cfg s;
                    s.conn = cc;
                    s.conn.requests.clear();
                    s.req = q;
                    s.sched = ts;
                    s.chain = c.client.mode_preference_chain;
                    out.push_back(std::move(s));
                }
    return out;
}

// ----------------------------------------------------------------------------------------------
// sender sessions

class daemon_state;

class session_runner {
public:
    virtual ~session_runner() = default;
    virtual void start() = 0;
    // First call: stop after the current run's outstanding replies (it is still archived);
    // second call: at once. `done` runs (posted) when the session is idle.
    virtual void stop(std::function<void()> done) = 0;
};

// Objects of the library that own sockets and timers are not destroyed while the loop runs
// handlers they may still have queued: they are finished, then kept here for a while.
class graveyard {
public:
    void bury(std::shared_ptr<void> p)
    {
        if (p) dead_.push_back({std::chrono::steady_clock::now(), std::move(p)});
    }
    void sweep()
    {
        const auto cut = std::chrono::steady_clock::now() - std::chrono::milliseconds{500};
        while (!dead_.empty() && dead_.front().first < cut)
            dead_.erase(dead_.begin());
    }

private:
    std::vector<std::pair<std::chrono::steady_clock::time_point, std::shared_ptr<void>>> dead_;
};

struct run_context {
    asio::io_context& io;
    metrics& m;
    results_sink& results;
    const dc::daemon_section& d;
    graveyard& dead;
    series_pool& series;
};

// Back-off after a failed run: retry-initial, doubled each time, at most retry-max.
struct backoff {
    double next = 0;
    std::chrono::nanoseconds failed(const dc::daemon_section& d)
    {
        next = next == 0 ? d.retry_initial : std::min(next * 2, d.retry_max);
        return std::chrono::nanoseconds{static_cast<std::int64_t>(next * 1e9)};
    }
    void reset() { next = 0; }
};

nlohmann::json result_line(const twamp::session_stats& st, const twamp::report::session_info& info,
                           const std::string& session, std::uint64_t interval)
{
    auto j = twamp::report::to_json(st, info);
    j["session"] = session;
    j["interval"] = interval;
    return j;
}

// A chain of finite runs with a wait between them (RFC 8913 repeat / repeat-interval), and the
// two-step stop of session_runner. A subclass starts a run in run() and calls after_run() when
// it has ended.
class run_chain : public session_runner {
public:
    void start() final { run(); }

    void stop(std::function<void()> done) final
    {
        if (stopping_) {
            interrupt(/*again=*/true); // the second call ends the run at once
            return;
        }
        stopping_ = true;
        on_stopped_ = std::move(done);
        if (interrupt(/*again=*/false)) return;
        timer_.cancel();
        asio::post(ctx_.io, [f = std::move(on_stopped_)] { f(); });
    }

protected:
    explicit run_chain(run_context ctx) : ctx_(ctx), timer_(ctx.io) {}

    virtual void run() = 0;
    // Ends the run in progress early (`again`: at once); false when no run is in progress.
    virtual bool interrupt(bool again) = 0;

    enum class next { stopped, done, waiting };
    // After a run that got replies (`up`) or none: the stop's callback when stopping; the end
    // after `repeat` more runs; else the next run repeat-interval later, after a back-off that
    // doubles while the peer is down.
    next after_run(bool up, std::uint32_t repeat, std::uint32_t repeat_interval)
    {
        if (stopping_) {
            if (on_stopped_) asio::post(ctx_.io, std::move(on_stopped_));
            return next::stopped;
        }
        ++runs_;
        if (repeat != dc::kRepeatForever && runs_ > repeat) return next::done;
        if (up) {
            backoff_.reset();
            wait(std::chrono::seconds{repeat_interval});
        } else {
            wait(std::max<std::chrono::nanoseconds>(backoff_.failed(ctx_.d),
                                                    std::chrono::seconds{repeat_interval}));
        }
        return next::waiting;
    }
    // A run that could not start: try again after the back-off.
    void retry_later() { wait(backoff_.failed(ctx_.d)); }
    bool stopping() const { return stopping_; }
    std::uint32_t runs() const { return runs_; }

    run_context ctx_;

private:
    void wait(std::chrono::nanoseconds d)
    {
        timer_.expires_after(d);
        timer_.async_wait([this](const std::error_code& ec) {
            if (!ec) run();
        });
    }

    asio::steady_timer timer_;
    std::uint32_t runs_ = 0;
    backoff backoff_;
    bool stopping_ = false;
    std::function<void()> on_stopped_;
};

class light_runner final : public run_chain {
public:
    light_runner(run_context ctx, dc::light_session cfg, const key_source& keys)
        : run_chain(ctx), cfg_(std::move(cfg)),
          series_(ctx.series.get(
              {{"session", cfg_.name},
               {"mode", cfg_.mode},
               {"reflector", hostport_text(cfg_.reflector_ip, cfg_.reflector_udp_port)}},
              true)),
          rng_(std::random_device{}())
    {
        if (cfg_.key_id)
            if (const auto* k = stamp_key(keys, *cfg_.key_id)) key_ = *k;
    }
    ~light_runner() override { std::fill(key_.begin(), key_.end(), 0); }

private:
    bool interrupt(bool again) override
    {
        if (!sender_) return false;
        if (!again) sender_->mark_interrupted();
        sender_->stop();
        return true;
    }

    twamp::net::sender_options sender_options()
    {
        twamp::net::sender_options so;
        std::error_code ec;
        const auto raddr = asio::ip::make_address(cfg_.reflector_ip, ec);
        so.remote = {raddr, cfg_.reflector_udp_port};
        asio::ip::address laddr = raddr.is_v4() ? asio::ip::address(asio::ip::address_v4::any())
                                                : asio::ip::address(asio::ip::address_v6::any());
        if (cfg_.sender_ip) laddr = asio::ip::make_address(*cfg_.sender_ip, ec);
        so.local = {laddr, cfg_.sender_udp_port ? *cfg_.sender_udp_port : port_};
        const bool stamp = cfg_.mode == "stamp";
        so.core.format = stamp ? twamp::test_format::stamp : twamp::test_format::twamp;
        so.core.ssid = cfg_.ssid;
        so.core.timeout = std::chrono::nanoseconds{static_cast<std::int64_t>(cfg_.timeout * 1e9)};
        so.count = cfg_.number_of_packets;
        const double iv = cfg_.lambda ? *cfg_.lambda : cfg_.periodic_interval.value_or(0.1);
        so.interval = std::chrono::nanoseconds{static_cast<std::int64_t>(iv * 1e9)};
        so.distribution = cfg_.lambda ? twamp::net::send_distribution::poisson
                                      : twamp::net::send_distribution::periodic;
        so.seed = rng_();
        so.batch = 8; // receive buffers: 8 x 64 KiB per session is plenty for a probe stream
        if (cfg_.test_packet_dscp_given) so.sock.tos = cfg_.test_packet_dscp << 2;
        const std::size_t pad = cfg_.padding_length ? *cfg_.padding_length : (stamp ? 0 : 27);
        std::size_t size = twamp::sender_base_len(so.core.format) + pad;
        if (!key_.empty()) size += twamp::kStampAuthLen - twamp::kStampBaseLen;
        so.sizes = {std::min(size, twamp::kMaxTestPacketLen)};
        return so;
    }

    void run() override
    {
        if (stopping()) return;
        const auto so = sender_options();
        sender_ = std::make_unique<twamp::net::udp_sender>(ctx_.io, so);
        if (!key_.empty())
            sender_->set_guard(
                std::make_unique<twamp::net::stamp_auth_guard<twamp::openssl_crypto>>(key_));
        if (const auto ec = sender_->open()) {
            g_log.log(logger::warning, "session %s: cannot bind [%s]:%u: %s", cfg_.name.c_str(),
                      so.local.address().to_string().c_str(), unsigned(so.local.port()),
                      ec.message().c_str());
            sender_.reset();
            // A fixed port still held by the previous run's socket, or an address not (yet) on
            // this host: retry later, and let the kernel choose when the port was ours.
            if (!cfg_.sender_udp_port) port_ = 0;
            series_->failures.Increment();
            series_->up.Set(0);
            retry_later();
            return;
        }
        port_ = sender_->local_endpoint().port();
        set_info(so);
        sender_->on_sent([this](std::uint32_t, twamp::nanoseconds) { series_->sent.Increment(); });
        sender_->on_reply([this](const twamp::reply_result& r) { series_->sample(r); });
        sender_->start([this] { asio::post(ctx_.io, [this] { finished(); }); });
    }

    void set_info(const twamp::net::sender_options& so)
    {
        info_ = {};
        info_.mode = so.core.format == twamp::test_format::stamp ? "stamp" : "twamp-light";
        info_.ssid = cfg_.ssid;
        const auto local = sender_->local_endpoint();
        info_.sender_address = twamp::net::display_address(local.address());
        info_.sender_port = local.port();
        info_.reflector_address = twamp::net::display_address(so.remote.address());
        info_.reflector_port = so.remote.port();
        info_.requested = so.count;
        info_.distribution = cfg_.lambda ? "poisson" : "periodic";
        info_.interval_ns = so.interval.count();
        info_.seed = so.seed;
    }

    void finished()
    {
        if (!sender_) return;
        const auto st = sender_->stats();
        info_.scheduled = sender_->scheduled();
        info_.skipped = sender_->skipped();
        info_.interrupted = sender_->interrupted();
        info_.end_time_ns = twamp::net::realtime_now().count();
        // finished() is posted after the sender's finish(), which cancelled its socket wait and
        // timers: their handlers are already queued before this one, so the sender can go now
        // and free its port for the next run.
        sender_.reset();
        ctx_.results.write(result_line(st, info_, cfg_.name, series_->next_interval++));
        series_->run_done(st);
        const bool up = st.received > 0;
        series_->up.Set(up ? 1 : 0);
        const auto n = after_run(up, cfg_.repeat, cfg_.repeat_interval);
        if (n == next::done)
            g_log.log(logger::info, "session %s: %u run(s) done", cfg_.name.c_str(), runs());
        else if (n == next::waiting && !up)
            g_log.log(logger::info, "session %s: no reply from %s", cfg_.name.c_str(),
                      hostport_text(cfg_.reflector_ip, cfg_.reflector_udp_port).c_str());
    }

    dc::light_session cfg_;
    std::shared_ptr<session_series> series_;
    std::mt19937_64 rng_;
    std::vector<std::uint8_t> key_;
    std::unique_ptr<twamp::net::udp_sender> sender_;
    twamp::report::session_info info_;
    std::uint16_t port_ = 0;
};

// A TWAMP session: one control connection per run (RFC 8913: each repeat negotiates a new
// instance of the test session), the controller's own Session-Sender.
class twamp_runner final : public run_chain {
public:
    twamp_runner(run_context ctx, twamp_session_cfg cfg, const key_source& keys)
        : run_chain(ctx), cfg_(std::move(cfg)), keys_(keys.keys),
          series_(ctx.series.get(
              {{"session", cfg_.req.name},
               {"mode", "twamp"},
               {"reflector", hostport_text(cfg_.conn.server_ip, cfg_.conn.server_tcp_port)}},
              true))
    {
    }

private:
    bool interrupt(bool) override
    {
        if (!ctl_) return false;
        ctl_->stop(); // ends the test early and sends Stop-Sessions
        return true;
    }

    void run() override
    {
        if (stopping()) return;
        using namespace twamp::control;
        twamp::net::controller_options co;
        std::error_code ec;
        const auto saddr = asio::ip::make_address(cfg_.conn.server_ip, ec);
        co.server = {saddr, cfg_.conn.server_tcp_port};
        co.requested_port = cfg_.req.reflector_udp_port.value_or(0);
        co.sessions = 1;
        co.session_timeout = std::chrono::seconds{cfg_.req.timeout};
        co.dscp = cfg_.req.test_packet_dscp;
        co.control.security_modes = chain_modes(cfg_.chain) & mode::security_mask;
        if (cfg_.conn.max_count_exponent)
            co.control.max_count = std::uint32_t{1} << *cfg_.conn.max_count_exponent;
        auto& so = co.test;
        asio::ip::address laddr = saddr.is_v4() ? asio::ip::address(asio::ip::address_v4::any())
                                                : asio::ip::address(asio::ip::address_v6::any());
        if (cfg_.req.sender_ip) laddr = asio::ip::make_address(*cfg_.req.sender_ip, ec);
        so.local = {laddr, cfg_.req.sender_udp_port.value_or(0)};
        so.count = cfg_.sched.number_of_packets;
        const double iv = cfg_.sched.lambda ? *cfg_.sched.lambda : *cfg_.sched.periodic_interval;
        so.interval = std::chrono::nanoseconds{static_cast<std::int64_t>(iv * 1e9)};
        so.distribution = cfg_.sched.lambda ? twamp::net::send_distribution::poisson
                                            : twamp::net::send_distribution::periodic;
        so.seed = std::random_device{}();
        so.core.format = twamp::test_format::twamp;
        // Per-probe loss timeout: the session's Timeout (reflecting after Stop), at least 1 s.
        so.core.timeout = std::chrono::seconds{std::max<std::uint64_t>(cfg_.req.timeout, 1)};
        if (co.dscp) so.sock.tos = co.dscp << 2;
        so.sizes = {twamp::kSenderUnauthLen + cfg_.req.padding_length.value_or(27)};
        if (cfg_.req.padding_length) co.paddings = {*cfg_.req.padding_length};
        interval_ns_ = so.interval.count();
        count_ = so.count;
        security sec;
        if (cfg_.conn.key_id) sec = security::client(*cfg_.conn.key_id, keys_);
        ctl_ = std::make_unique<twamp::net::controller<security>>(ctx_.io, co, std::move(sec));
        ctl_->on_reply([series = series_](const twamp::reply_result& r) { series->sample(r); });
        ctl_->start([this](const twamp::net::controller_result& r) {
            result_ = r;
            asio::post(ctx_.io, [this] { finished(); });
        });
    }

    void finished()
    {
        if (!ctl_) return;
        ctx_.dead.bury(std::shared_ptr<twamp::net::controller<security>>(std::move(ctl_)));
        const auto& r = result_;
        bool up = false;
        for (const auto& s : r.sessions) {
            if (s.stats.sent == 0 && !r.ok) continue; // never started
            twamp::report::session_info info;
            info.mode = "twamp";
            info.sender_address = twamp::net::display_address(s.local.address());
            info.sender_port = s.local.port();
            info.reflector_address = cfg_.conn.server_ip;
            info.reflector_port = s.port;
            info.requested = count_;
            info.scheduled = static_cast<std::uint32_t>(s.stats.sent);
            info.interval_ns = interval_ns_;
            info.distribution = cfg_.sched.lambda ? "poisson" : "periodic";
            info.interrupted = r.interrupted;
            info.end_time_ns = twamp::net::realtime_now().count();
            ctx_.results.write(result_line(s.stats, info, cfg_.req.name, series_->next_interval++));
            series_->sent.Increment(static_cast<double>(s.stats.sent));
            series_->run_done(s.stats);
            up = up || s.stats.received > 0;
        }
        if (!r.ok && !r.interrupted) {
            g_log.log(logger::warning, "session %s: %s", cfg_.req.name.c_str(), r.error.c_str());
            series_->failures.Increment();
        }
        series_->up.Set(up ? 1 : 0);
        after_run(up, cfg_.req.repeat, cfg_.req.repeat_interval);
    }

    twamp_session_cfg cfg_;
    std::shared_ptr<const twamp::control::key_store> keys_;
    std::shared_ptr<session_series> series_;
    std::unique_ptr<twamp::net::controller<security>> ctl_;
    twamp::net::controller_result result_;
    std::int64_t interval_ns_ = 0;
    std::uint32_t count_ = 0;
};

// ----------------------------------------------------------------------------------------------
// reflectors and the server, with their counters

struct reflector_instance {
    dc::light_reflector cfg;
    std::uint32_t refwait = 0;
    std::unique_ptr<twamp::net::udp_reflector> refl;
};

// Counters of one reflector name: they outlive its instances (a reload that changes the
// reflector keeps counting from where it was).
struct reflector_series {
    Counter* reflected = nullptr;
    Counter* sessions = nullptr;
    Counter* malformed = nullptr;
    Counter* table_full = nullptr;
    Counter* not_accepted = nullptr;
    Counter* oversize = nullptr;
    Counter* auth = nullptr;
    struct feeds {
        delta_feed reflected, sessions, malformed, table_full, not_accepted, oversize, auth;
    } f;
};

// ----------------------------------------------------------------------------------------------
// The HTTP endpoint (civetweb, the server prometheus-cpp's pull exposer is built on): /metrics,
// and /probe?target=HOST:PORT&mode=stamp|light|twamp&count=N&interval_ms=M, which runs one short
// test on the calling worker thread (its own event loop) and answers that test's metrics, so a
// Prometheus job with service discovery drives a mesh (blackbox-exporter style).

struct probe_limits {
    std::vector<twamp::net::address_prefix> allow; // empty: /probe is disabled
    std::uint32_t max_count = 100;
    std::uint32_t min_interval_ms = 10;
    std::uint32_t max_concurrent = 4;
    double timeout_s = 1;
};

void http_reply(mg_connection* c, int status, const char* reason, const std::string& type,
                const std::string& body)
{
    mg_printf(c,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n",
              status, reason, type.c_str(), body.size());
    mg_write(c, body.data(), body.size());
}

constexpr const char* kTextFormat = "text/plain; version=0.0.4; charset=utf-8";

class metrics_handler final : public CivetHandler {
public:
    explicit metrics_handler(std::shared_ptr<prometheus::Registry> r) : registry_(std::move(r)) {}
    bool handleGet(CivetServer*, mg_connection* c) override
    {
        http_reply(c, 200, "OK", kTextFormat,
                   prometheus::TextSerializer().Serialize(registry_->Collect()));
        return true;
    }

private:
    std::shared_ptr<prometheus::Registry> registry_;
};

struct probe_result {
    bool ok = false;
    std::string error;
    twamp::session_stats stats;
};

probe_result run_probe(const asio::ip::address& addr, std::uint16_t port, const std::string& mode,
                       std::uint32_t count, std::uint32_t interval_ms, double timeout_s)
{
    probe_result out;
    asio::io_context io;
    twamp::net::sender_options so;
    so.count = count;
    so.interval = std::chrono::milliseconds{interval_ms};
    so.core.timeout = std::chrono::nanoseconds{static_cast<std::int64_t>(timeout_s * 1e9)};
    so.local = {addr.is_v4() ? asio::ip::address(asio::ip::address_v4::any())
                             : asio::ip::address(asio::ip::address_v6::any()),
                0};
    so.batch = 8;
    if (mode == "twamp") {
        twamp::net::controller_options co;
        co.server = {addr, port};
        co.connect_timeout = std::chrono::seconds{5};
        co.control.reply_timeout = std::chrono::seconds{5};
        co.session_timeout = std::chrono::seconds{1};
        so.core.format = twamp::test_format::twamp;
        so.sizes = {twamp::kSenderUnauthLen + 27};
        co.test = so;
        twamp::net::controller<security> ctl(io, co, security{});
        ctl.start([&](const twamp::net::controller_result& r) {
            out.ok = r.ok;
            out.error = r.error;
            if (!r.sessions.empty()) out.stats = r.sessions.front().stats;
            io.stop();
        });
        io.run();
        return out;
    }
    so.remote = {addr, port};
    so.core.format = mode == "stamp" ? twamp::test_format::stamp : twamp::test_format::twamp;
    so.sizes = {twamp::sender_base_len(so.core.format) + (mode == "stamp" ? 0 : 27)};
    twamp::net::udp_sender sender(io, so);
    if (auto ec = sender.open()) {
        out.error = "cannot open a socket: " + ec.message();
        return out;
    }
    sender.start([&] { io.stop(); });
    io.run();
    out.ok = true;
    out.stats = sender.stats();
    return out;
}

class probe_handler final : public CivetHandler {
public:
    void set_limits(probe_limits l)
    {
        std::lock_guard<std::mutex> g(mu_);
        limits_ = std::move(l);
    }

    bool handleGet(CivetServer*, mg_connection* c) override
    {
        const auto lim = limits();
        if (lim.allow.empty())
            return reply_text(c, 403, "Forbidden",
                              "/probe is disabled: list target prefixes in twamp-daemon:daemon/"
                              "probe-allow");
        probe_request q;
        if (const auto err = parse_request(c, lim, q))
            return reply_text(c, 400, "Bad Request", *err);
        asio::ip::address addr;
        if (const auto err = resolve_target(q.hp, addr))
            return reply_text(c, 400, "Bad Request", *err);
        bool allowed = false;
        for (const auto& p : lim.allow)
            allowed = allowed || p.contains(addr);
        if (!allowed)
            return reply_text(c, 403, "Forbidden",
                              "target " + addr.to_string() + " is not in probe-allow");
        if (running_.fetch_add(1) >= lim.max_concurrent) {
            running_.fetch_sub(1);
            return reply_text(c, 503, "Service Unavailable",
                              "too many probes at once (probe-max-concurrent)");
        }
        const auto t0 = std::chrono::steady_clock::now();
        probe_result pr;
        try {
            pr = run_probe(addr, q.hp.port, q.mode, q.count, q.interval_ms, lim.timeout_s);
        } catch (const std::exception& e) {
            pr.error = e.what();
        }
        running_.fetch_sub(1);
        const double took =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        http_reply(c, 200, "OK", kTextFormat, render(pr, q.mode, q.target, took));
        return true;
    }

private:
    struct probe_request {
        std::string target, mode = "stamp";
        std::uint32_t count = 0, interval_ms = 0;
        twamp::net::host_port hp;
    };

    probe_limits limits()
    {
        std::lock_guard<std::mutex> g(mu_);
        return limits_;
    }

    static bool reply_text(mg_connection* c, int status, const char* reason,
                           const std::string& text)
    {
        http_reply(c, status, reason, "text/plain", text + "\n");
        return true;
    }

    // The query's target, mode, count and interval_ms, checked against the limits; the message of
    // a 400 when one is wrong.
    static std::optional<std::string> parse_request(mg_connection* c, const probe_limits& lim,
                                                    probe_request& q)
    {
        std::string count_s = "10", interval_s = "100";
        CivetServer::getParam(c, "target", q.target);
        CivetServer::getParam(c, "mode", q.mode);
        CivetServer::getParam(c, "count", count_s);
        CivetServer::getParam(c, "interval_ms", interval_s);
        if (q.mode == "light") q.mode = "twamp-light";
        if (q.mode != "stamp" && q.mode != "twamp-light" && q.mode != "twamp")
            return "mode: stamp, light or twamp";
        auto number = [](const std::string& v, std::uint32_t& out) {
            if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
                return false;
            out = static_cast<std::uint32_t>(std::stoul(v));
            return true;
        };
        if (!number(count_s, q.count) || q.count < 1 || q.count > lim.max_count)
            return "count: 1 to " + std::to_string(lim.max_count);
        if (!number(interval_s, q.interval_ms) || q.interval_ms < lim.min_interval_ms ||
            q.interval_ms > 10000)
            return "interval_ms: " + std::to_string(lim.min_interval_ms) + " to 10000";
        if (q.target.empty() || twamp::net::parse_host_port(q.target, 862, q.hp) ||
            q.hp.host.empty())
            return "target: HOST:PORT";
        return std::nullopt;
    }

    static std::optional<std::string> resolve_target(const twamp::net::host_port& hp,
                                                     asio::ip::address& addr)
    {
        asio::io_context rio;
        asio::ip::udp::resolver res(rio);
        std::error_code ec;
        auto r = res.resolve(hp.host, std::to_string(hp.port), ec);
        if (ec || r.empty()) return "target: cannot resolve '" + hp.host + "'";
        addr = r.begin()->endpoint().address();
        return std::nullopt;
    }

    static std::string render(const probe_result& pr, const std::string& mode,
                              const std::string& target, double took)
    {
        prometheus::Registry reg;
        const prometheus::Labels l{{"mode", mode}, {"reflector", target}};
        auto gauge = [&](const char* name, const char* help) -> prometheus::Family<Gauge>& {
            return prometheus::BuildGauge().Name(name).Help(help).Register(reg);
        };
        const auto& st = pr.stats;
        gauge("twamp_probe_success", "1 when the test ran and got at least one reply")
            .Add(l)
            .Set(pr.ok && st.received > 0 ? 1 : 0);
        gauge("twamp_probe_duration_seconds", "How long the test took").Add(l).Set(took);
        gauge("twamp_probe_sent", "Test packets sent").Add(l).Set(static_cast<double>(st.sent));
        gauge("twamp_probe_received", "Test packets answered within the loss timeout")
            .Add(l)
            .Set(static_cast<double>(st.received));
        auto& lost = gauge("twamp_probe_lost", "Test packets without an in-time reply");
        auto with = [&](const char* k, const char* v) {
            auto x = l;
            x[k] = v;
            return x;
        };
        lost.Add(with("direction", "roundtrip")).Set(static_cast<double>(st.lost()));
        if (st.have_reflector_seq) {
            lost.Add(with("direction", "outbound")).Set(static_cast<double>(st.outbound_lost()));
            lost.Add(with("direction", "inbound")).Set(static_cast<double>(st.inbound_lost()));
        }
        auto& d = gauge("twamp_probe_delay_seconds", "Delay of the answered test packets");
        const std::pair<const char*, const twamp::delay_stats*> dirs[] = {
            {"outbound", &st.outbound}, {"inbound", &st.inbound}, {"roundtrip", &st.roundtrip}};
        if (st.received > 0)
            for (const auto& [dir, ds] : dirs) {
                auto x = with("direction", dir);
                x["stat"] = "min";
                d.Add(x).Set(static_cast<double>(ds->min()) / 1e9);
                x["stat"] = "mean";
                d.Add(x).Set(ds->mean() / 1e9);
                x["stat"] = "max";
                d.Add(x).Set(static_cast<double>(ds->max()) / 1e9);
            }
        std::string text = prometheus::TextSerializer().Serialize(reg.Collect());
        if (!pr.error.empty()) {
            std::string e = pr.error;
            for (auto& ch : e)
                if (ch == '\n') ch = ' ';
            text = "# probe error: " + e + "\n" + text;
        }
        return text;
    }

    std::mutex mu_;
    probe_limits limits_;
    std::atomic<std::uint32_t> running_{0};
};

class http_endpoint {
public:
    http_endpoint(const std::string& listen, std::shared_ptr<prometheus::Registry> registry)
        : metrics_(std::move(registry))
    {
        // civetweb wants [v6]:port or v4:port; "host:port" with a name is resolved by us.
        const std::vector<std::string> opts = {"listening_ports", listen, "num_threads", "8"};
        server_ = std::make_unique<CivetServer>(opts);
        server_->addHandler("/metrics", metrics_);
        server_->addHandler("/probe", probe_);
        address_ = listen;
    }
    ~http_endpoint()
    {
        if (server_) {
            server_->removeHandler("/metrics");
            server_->removeHandler("/probe");
            server_->close();
        }
    }
    const std::string& address() const noexcept { return address_; }
    void set_probe_limits(probe_limits l) { probe_.set_limits(std::move(l)); }

private:
    metrics_handler metrics_;
    probe_handler probe_;
    std::unique_ptr<CivetServer> server_;
    std::string address_;
};

probe_limits probe_limits_of(const dc::daemon_section& d)
{
    probe_limits l;
    for (const auto& a : d.probe_allow)
        if (auto p = twamp::net::address_prefix::parse(a)) l.allow.push_back(*p);
    l.max_count = d.probe_max_count;
    l.min_interval_ms = d.probe_min_interval_ms;
    l.max_concurrent = d.probe_max_concurrent;
    l.timeout_s = d.probe_timeout;
    return l;
}

class daemon_state {
public:
    daemon_state(asio::io_context& io, std::string path)
        : io_(io), path_(std::move(path)), poll_(io)
    {
    }

    // Applies a configuration. `initial`: a failure to bind is fatal (returns false).
    bool apply(const dc::config& next, const key_source& keys, bool initial)
    {
        if (!apply_outputs(next.daemon, initial)) return false;
        cfg_ = next;
        const run_context ctx{io_, m_, results_, cfg_.daemon, dead_, pool_};
        bool ok = apply_server(next, keys);
        ok = apply_reflectors(next, keys) && ok;
        apply_sessions(next, keys, ctx);
        if (initial) arm_poll();
        return ok;
    }

    // SIGTERM: every session stops after its outstanding replies; then everything closes.
    void shutdown(std::function<void()> done)
    {
        if (shutting_down_) {
            for (auto& [n, r] : light_)
                r.second->stop({});
            for (auto& [n, r] : twamp_)
                r.second->stop({});
            for (auto& r : retiring_)
                r->stop({});
            return;
        }
        shutting_down_ = true;
        on_shutdown_ = std::move(done);
        for (auto& [n, r] : light_)
            retire(std::move(r.second));
        for (auto& [n, r] : twamp_)
            retire(std::move(r.second));
        light_.clear();
        twamp_.clear();
        maybe_done();
    }

    void final_poll()
    {
        poll_all();
        for (auto& [n, r] : reflectors_)
            r.refl->stop();
        if (server_) server_->stop();
        poll_.cancel();
        results_.close();
    }

    metrics& m() { return m_; }

private:
    // The daemon section: results file and metrics endpoint. False when `initial` and one of
    // them cannot be opened.
    bool apply_outputs(const dc::daemon_section& d, bool initial)
    {
        // Opened again on every reload, so a rotated file (logrotate without copytruncate) is
        // followed.
        const auto err = results_.open(d.results_file);
        if (!err.empty()) {
            g_log.log(logger::warning, "results-file: %s", err.c_str());
            if (initial) return false;
        }
        const std::string cur = http_ ? http_->address() : std::string();
        if (d.metrics_listen != cur) {
            http_.reset();
            if (!d.metrics_listen.empty()) {
                try {
                    http_ = std::make_unique<http_endpoint>(d.metrics_listen, m_.registry);
                    std::fprintf(stderr, "twamp daemon: metrics on http://%s/metrics\n",
                                 d.metrics_listen.c_str());
                } catch (const std::exception& e) {
                    g_log.log(logger::warning, "metrics-listen %s: %s", d.metrics_listen.c_str(),
                              e.what());
                    if (initial) return false;
                }
            }
        }
        if (http_) http_->set_probe_limits(probe_limits_of(d));
        return true;
    }

    // The server: replaced when its configuration changes.
    bool apply_server(const dc::config& next, const key_source& keys)
    {
        const bool want_server = next.server.present && next.server.admin_state;
        const bool server_changed = !(server_cfg_ == next.server) ||
                                    server_listen_ != next.daemon.server_listen ||
                                    server_refwait_ != next.session_reflector.refwait ||
                                    server_keys_ != keys.server_keys->keys();
        if (server_ && (!want_server || server_changed)) {
            poll_server();
            server_->stop();
            dead_.bury(std::shared_ptr<twamp::net::twamp_server<security>>(std::move(server_)));
            server_feeds_ = {};
        }
        if (want_server && !server_) return start_server(next, keys);
        return true;
    }

    // Light / STAMP reflectors by name: changed ones are replaced.
    bool apply_reflectors(const dc::config& next, const key_source& keys)
    {
        std::map<std::string, dc::light_reflector> want_refl;
        if (next.stamp.reflector_admin_state)
            for (const auto& r : next.stamp.reflectors)
                if (r.admin_state) want_refl[r.name] = r;
        for (auto it = reflectors_.begin(); it != reflectors_.end();) {
            auto w = want_refl.find(it->first);
            if (w == want_refl.end() || !(w->second == it->second.cfg) ||
                it->second.refwait != next.stamp.refwait) {
                poll_reflector(it->first, it->second);
                it->second.refl->stop();
                dead_.bury(std::shared_ptr<twamp::net::udp_reflector>(std::move(it->second.refl)));
                refl_series_[it->first].f = {};
                it = reflectors_.erase(it);
            } else {
                ++it;
            }
        }
        bool ok = true;
        for (const auto& [name, rc] : want_refl)
            if (!reflectors_.count(name) && !start_reflector(rc, next.stamp.refwait, keys))
                ok = false;
        return ok;
    }

    // Retires the running sessions for which `changed(name, configuration)` holds.
    template <class Running, class Changed> void retire_if(Running& running, Changed changed)
    {
        for (auto it = running.begin(); it != running.end();) {
            if (changed(it->first, it->second.first)) {
                retire(std::move(it->second.second));
                it = running.erase(it);
            } else {
                ++it;
            }
        }
    }

    // Starts the wanted sessions that are not running.
    template <class Runner, class Running, class Wanted>
    void start_missing(Running& running, const Wanted& wanted, const run_context& ctx,
                       const key_source& keys)
    {
        for (const auto& [name, s] : wanted) {
            if (running.count(name)) continue;
            auto r = std::make_unique<Runner>(ctx, s, keys);
            r->start();
            running[name] = {s, std::move(r)};
        }
    }

    // Sender sessions by name: unchanged ones keep running with their series.
    void apply_sessions(const dc::config& next, const key_source& keys, const run_context& ctx)
    {
        std::map<std::string, dc::light_session> want_light;
        if (next.stamp.sender_admin_state)
            for (const auto& s : next.stamp.sessions)
                if (s.admin_state) want_light[s.name] = s;
        std::map<std::string, twamp_session_cfg> want_twamp;
        for (const auto& s : twamp_sessions(next))
            want_twamp[s.req.name] = s;
        retire_if(light_, [&](const std::string& name, const dc::light_session& s) {
            const auto w = want_light.find(name);
            if (w != want_light.end() && w->second == s && !light_keys_changed(s, keys))
                return false;
            light_key_.erase(name);
            return true;
        });
        const bool twamp_keys_changed = !(twamp_keys_ == keys.keys->keys());
        retire_if(twamp_, [&](const std::string& name, const twamp_session_cfg& s) {
            const auto w = want_twamp.find(name);
            return w == want_twamp.end() || !(w->second == s) || twamp_keys_changed;
        });
        start_missing<light_runner>(light_, want_light, ctx, keys);
        for (const auto& [name, s] : want_light)
            if (!light_key_.count(name))
                light_key_[name] =
                    s.key_id ? key_bytes(keys, *s.key_id) : std::vector<std::uint8_t>{};
        twamp_keys_ = keys.keys->keys();
        start_missing<twamp_runner>(twamp_, want_twamp, ctx, keys);
    }

    static std::vector<std::uint8_t> key_bytes(const key_source& ks, const std::string& id)
    {
        const auto* k = stamp_key(ks, id);
        return k ? *k : std::vector<std::uint8_t>{};
    }
    bool light_keys_changed(const dc::light_session& s, const key_source& ks)
    {
        if (!s.key_id) return false;
        return light_key_[s.name] != key_bytes(ks, *s.key_id);
    }

    void retire(std::unique_ptr<session_runner> r)
    {
        auto* raw = r.get();
        retiring_.push_back(std::move(r));
        raw->stop([this, raw] {
            for (auto it = retiring_.begin(); it != retiring_.end(); ++it)
                if (it->get() == raw) {
                    retiring_.erase(it); // idle: its sender or controller is gone already
                    break;
                }
            maybe_done();
        });
    }

    void maybe_done()
    {
        if (shutting_down_ && retiring_.empty() && on_shutdown_) {
            auto f = std::move(on_shutdown_);
            f();
        }
    }

    static twamp::net::server_options server_options_of(const dc::config& c, bool have_keys)
    {
        using namespace twamp::control;
        twamp::net::server_options so;
        std::error_code ec;
        asio::ip::address addr = asio::ip::address_v6::any();
        if (!c.daemon.server_listen.empty())
            addr = asio::ip::make_address(c.daemon.server_listen, ec);
        so.local = {addr, c.server.server_tcp_port};
        so.control.servwait = std::chrono::seconds{c.server.servwait};
        so.refwait = std::chrono::seconds{c.session_reflector.refwait};
        so.control.count = std::uint32_t{1} << c.server.count;
        const std::uint32_t features =
            mode::individual_session_control | mode::reflect_octets | mode::symmetrical_size;
        so.control.modes = c.server.modes
                               ? *c.server.modes
                               : ((have_keys ? (mode::unauthenticated | mode::authenticated |
                                                mode::encrypted | mode::mixed)
                                             : mode::unauthenticated) |
                                  features);
        if (g_log.current() >= logger::info)
            so.log = [](const std::string& s) { g_log.log(logger::info, "server: %s", s.c_str()); };
        return so;
    }

    bool start_server(const dc::config& c, const key_source& keys)
    {
        const bool have_keys = !keys.server_keys->keys().empty();
        auto so = server_options_of(c, have_keys);
        std::error_code ec;
        auto ks = keys.server_keys;
        auto make = [ks, have_keys] { return have_keys ? security::server(ks) : security{}; };
        auto srv = std::make_unique<twamp::net::twamp_server<security>>(io_, so, make);
        ec = srv->open();
        if (ec && c.daemon.server_listen.empty()) {
            so.local = {asio::ip::address_v4::any(), c.server.server_tcp_port};
            srv = std::make_unique<twamp::net::twamp_server<security>>(io_, so, make);
            ec = srv->open();
        }
        if (ec) {
            g_log.log(logger::warning, "TWAMP server: cannot listen on %s: %s",
                      hostport_text(so.local.address().to_string(), so.local.port()).c_str(),
                      ec.message().c_str());
            return false;
        }
        const auto ep = srv->local_endpoint();
        std::fprintf(stderr, "twamp daemon: TWAMP server listening on %s\n",
                     hostport_text(ep.address().to_string(), ep.port()).c_str());
        srv->start();
        server_ = std::move(srv);
        server_cfg_ = c.server;
        server_listen_ = c.daemon.server_listen;
        server_refwait_ = c.session_reflector.refwait;
        server_keys_ = keys.server_keys->keys();
        add_server_series();
        return true;
    }

    // The server's counters, once: they outlive the server instances.
    void add_server_series()
    {
        if (!server_counters_) {
            const prometheus::Labels l{{"reflector", "twamp-server"}, {"mode", "twamp"}};
            auto refusal = [&](const char* reason) {
                auto x = l;
                x["reason"] = reason;
                return &m_.refusals->Add(x);
            };
            server_counters_.emplace(server_counter_set{
                &m_.reflected->Add(l), &m_.refl_sessions->Add(l), &m_.connections->Add(l),
                refusal("connection_limit_or_allow"), refusal("session_rejected"),
                refusal("accept_error"), &m_.auth_failures->Add(l), &m_.open_connections->Add(l),
                &m_.open_sessions->Add(l)});
        }
    }

    static twamp::net::reflector_options reflector_options_of(const dc::light_reflector& rc,
                                                              std::uint32_t refwait)
    {
        twamp::net::reflector_options ro;
        std::error_code ec;
        asio::ip::address addr = asio::ip::address_v6::any();
        if (rc.reflector_ip) addr = asio::ip::make_address(*rc.reflector_ip, ec);
        ro.local = {addr, rc.reflector_udp_port};
        ro.core.refwait = std::chrono::seconds{refwait};
        ro.core.stateless = rc.stateless;
        ro.core.max_sessions = rc.max_sessions;
        ro.core.format = rc.mode == "stamp"         ? twamp::reflector_format::stamp
                         : rc.mode == "twamp-light" ? twamp::reflector_format::twamp
                                                    : twamp::reflector_format::automatic;
        return ro;
    }

    bool start_reflector(const dc::light_reflector& rc, std::uint32_t refwait,
                         const key_source& keys)
    {
        auto ro = reflector_options_of(rc, refwait);
        auto r = std::make_unique<twamp::net::udp_reflector>(io_, ro);
        auto ec = r->open();
        if (ec && !rc.reflector_ip) {
            ro.local = {asio::ip::address_v4::any(), rc.reflector_udp_port};
            r = std::make_unique<twamp::net::udp_reflector>(io_, ro);
            ec = r->open();
        }
        if (ec) {
            g_log.log(logger::warning, "reflector %s: cannot bind %s: %s", rc.name.c_str(),
                      hostport_text(ro.local.address().to_string(), ro.local.port()).c_str(),
                      ec.message().c_str());
            return false;
        }
        if (rc.key_id)
            r->set_guard(std::make_unique<twamp::net::stamp_auth_guard<twamp::openssl_crypto>>(
                key_bytes(keys, *rc.key_id)));
        const auto ep = r->local_endpoint();
        std::fprintf(stderr, "twamp daemon: reflector %s (%s) listening on %s\n", rc.name.c_str(),
                     rc.mode.c_str(), hostport_text(ep.address().to_string(), ep.port()).c_str());
        r->start();
        add_reflector_series(rc);
        reflectors_[rc.name] = reflector_instance{rc, refwait, std::move(r)};
        return true;
    }

    // A reflector name's counters, once: they outlive its instances.
    void add_reflector_series(const dc::light_reflector& rc)
    {
        auto& s = refl_series_[rc.name];
        if (!s.reflected) {
            const prometheus::Labels l{{"reflector", rc.name}, {"mode", rc.mode}};
            auto refusal = [&](const char* reason) {
                auto x = l;
                x["reason"] = reason;
                return &m_.refusals->Add(x);
            };
            s.reflected = &m_.reflected->Add(l);
            s.sessions = &m_.refl_sessions->Add(l);
            s.malformed = refusal("malformed");
            s.table_full = refusal("session_table_full");
            s.not_accepted = refusal("not_accepted");
            s.oversize = refusal("oversize");
            s.auth = &m_.auth_failures->Add(l);
        }
    }

    void poll_reflector(const std::string& name, reflector_instance& ri)
    {
        auto& s = refl_series_[name];
        const auto& c = ri.refl->session().counters();
        const auto& io = ri.refl->io_counters();
        s.f.reflected.feed(*s.reflected, c.reflected);
        s.f.sessions.feed(*s.sessions, c.sessions_created);
        s.f.malformed.feed(*s.malformed, c.malformed + c.too_short_strict);
        s.f.table_full.feed(*s.table_full, c.table_full);
        s.f.not_accepted.feed(*s.not_accepted, io.not_accepted);
        s.f.oversize.feed(*s.oversize, io.oversize);
        s.f.auth.feed(*s.auth, io.auth_failures);
    }

    void poll_server()
    {
        if (!server_ || !server_counters_) return;
        const auto& c = server_->counters();
        auto& s = *server_counters_;
        server_feeds_.reflected.feed(*s.reflected, c.packets_reflected);
        server_feeds_.sessions.feed(*s.sessions, c.sessions_accepted);
        server_feeds_.connections.feed(*s.connections, c.connections);
        server_feeds_.refused.feed(*s.refused, c.refused_connections);
        server_feeds_.rejected.feed(*s.rejected, c.sessions_rejected);
        server_feeds_.accept_errors.feed(*s.accept_errors, c.accept_errors);
        server_feeds_.auth.feed(*s.auth, c.test_auth_failures);
        s.open_connections->Set(static_cast<double>(server_->connection_count()));
        s.open_sessions->Set(static_cast<double>(server_->session_count()));
    }

    void poll_all()
    {
        for (auto& [n, r] : reflectors_)
            poll_reflector(n, r);
        poll_server();
    }

    void arm_poll()
    {
        poll_.expires_after(std::chrono::milliseconds{200});
        poll_.async_wait([this](const std::error_code& ec) {
            if (ec) return;
            poll_all();
            dead_.sweep();
            arm_poll();
        });
    }

    struct server_counter_set {
        Counter* reflected;
        Counter* sessions;
        Counter* connections;
        Counter* refused;
        Counter* rejected;
        Counter* accept_errors;
        Counter* auth;
        Gauge* open_connections;
        Gauge* open_sessions;
    };
    struct server_feed_set {
        delta_feed reflected, sessions, connections, refused, rejected, accept_errors, auth;
    };

    asio::io_context& io_;
    std::string path_;
    metrics m_;
    std::unique_ptr<http_endpoint> http_; // after m_: stopped before the registry goes
    series_pool pool_{m_};
    results_sink results_;
    dc::config cfg_;
    asio::steady_timer poll_;
    graveyard dead_; // destroyed after the runners, reflectors and server below
    std::unique_ptr<twamp::net::twamp_server<security>> server_;
    dc::server_config server_cfg_;
    std::string server_listen_;
    std::uint32_t server_refwait_ = 0;
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> server_keys_;
    std::optional<server_counter_set> server_counters_;
    server_feed_set server_feeds_;
    std::map<std::string, reflector_instance> reflectors_;
    std::map<std::string, reflector_series> refl_series_;
    std::map<std::string, std::pair<dc::light_session, std::unique_ptr<session_runner>>> light_;
    std::map<std::string, std::vector<std::uint8_t>> light_key_;
    std::map<std::string, std::pair<twamp_session_cfg, std::unique_ptr<session_runner>>> twamp_;
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> twamp_keys_;
    std::vector<std::unique_ptr<session_runner>> retiring_;
    bool shutting_down_ = false;
    std::function<void()> on_shutdown_;
};

// ----------------------------------------------------------------------------------------------

struct daemon_cli_options {
    common_options common;
    std::string config_file;
    bool check = false;
};

// Loads and checks; prints every problem. Returns true when the file can run.
bool load_checked(const std::string& file, dc::config& cfg, key_source& keys)
{
    auto errs = dc::load_config_file(file, cfg);
    if (errs.empty()) errs = check_runnable(cfg, keys);
    for (const auto& e : errs)
        std::fprintf(stderr, "twamp daemon: %s: %s\n", file.c_str(), e.text().c_str());
    return errs.empty();
}

// systemd's reload notification: RELOADING=1 with the monotonic time it began.
void sd_notify_reloading()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const std::string reloading =
        "RELOADING=1\nMONOTONIC_USEC=" +
        std::to_string(std::uint64_t(ts.tv_sec) * 1000000u + std::uint64_t(ts.tv_nsec) / 1000u);
    sd_notify_text(reloading.c_str());
}

// SIGHUP: reads the configuration file again and applies it; a bad one leaves the running one in
// place. Counted in twamp_daemon_config_reloads.
class hup_reloader {
public:
    hup_reloader(asio::io_context& io, daemon_state& d, std::string file)
        : hup_(io, SIGHUP), d_(d), file_(std::move(file)),
          ok_(d.m().configured->Add({{"result", "ok"}})),
          err_(d.m().configured->Add({{"result", "error"}}))
    {
    }
    void loaded() { ok_.Increment(); }
    void arm()
    {
        hup_.async_wait([this](const std::error_code& ec, int) {
            if (ec) return;
            reload();
            arm();
        });
    }

private:
    void reload()
    {
        sd_notify_reloading();
        dc::config next;
        key_source keys;
        if (!load_checked(file_, next, keys)) {
            err_.Increment();
            std::fprintf(stderr, "twamp daemon: reload failed; the old configuration keeps "
                                 "running\n");
        } else {
            d_.apply(next, keys, false);
            ok_.Increment();
            std::fprintf(stderr, "twamp daemon: reloaded\n");
        }
        sd_notify_text("READY=1");
    }

    asio::signal_set hup_;
    daemon_state& d_;
    const std::string file_;
    Gauge& ok_;
    Gauge& err_;
};

int run_daemon(const daemon_cli_options& o)
{
    apply_logging(o.common);
    dc::config cfg;
    key_source keys;
    if (!load_checked(o.config_file, cfg, keys)) return kExitUsage;
    if (o.check) {
        std::printf("%s: configuration OK\n", o.config_file.c_str());
        return kExitOk;
    }

    asio::io_context io;
    daemon_state d(io, o.config_file);
    // Signal handling is in place before anything starts, so a SIGHUP or SIGTERM right after
    // READY (or during start-up) is handled, never the default action.
    hup_reloader hup(io, d, o.config_file);
    signal_guard sig(io, [&](int) {
        std::fprintf(stderr, "twamp daemon: stopping\n");
        sd_notify_text("STOPPING=1");
        d.shutdown([&] {
            // The signal handlers stay installed until the process ends: a late signal is
            // ignored rather than killing the process with its default action.
            d.final_poll();
            io.stop();
        });
    });

    if (!d.apply(cfg, keys, true)) {
        d.final_poll();
        return kExitRuntime;
    }
    hup.loaded();
    hup.arm();
    std::fprintf(stderr, "twamp daemon: ready (%zu TWAMP, %zu Light/STAMP sessions)\n",
                 twamp_sessions(cfg).size(), cfg.stamp.sessions.size());
    sd_notify_text("READY=1");
    io.run();
    std::fprintf(stderr, "twamp daemon: stopped\n");
    return kExitOk;
}

} // namespace

std::vector<subcommand> register_daemon(CLI::App& app)
{
    auto o = std::make_shared<daemon_cli_options>();
    auto* sc = app.add_subcommand(
        "daemon", "Run the server, reflectors and sender sessions of a configuration file "
                  "(RFC 8913 ietf-twamp JSON) as a service");
    add_debug_options(sc, o->common);
    sc->add_option("--config", o->config_file, "Configuration file (RFC 7951 JSON)")->required();
    sc->add_flag("--check", o->check, "Validate the configuration and exit (0 valid, 2 not)");
    return {{sc, [o] { return run_daemon(*o); }}};
}

} // namespace twamp_cli
