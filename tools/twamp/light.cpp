// light.cpp — the TWAMP Light / STAMP sub-commands: responder (alias reflector) and sender.
#include "light.hpp"

#include "cli_common.hpp"
#include "output.hpp"

#include "twamp/asio/reflector.hpp"
#include "twamp/asio/sender.hpp"
#include "twamp/control_security.hpp"
#include "twamp/crypto_openssl.hpp"
#include "twamp/imix.hpp"

#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

namespace twamp_cli {

namespace {
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
    bool allow_amplification = false;
    std::string threads = "1";
    std::string key_file;
    std::string key_id;
};

// Authenticated STAMP (RFC 8762 §4.2.2/§4.3.2): the pre-shared key from a pfs-format key file,
// chosen by --key-id (the file's first key without it). Secrets never reach a message.
std::vector<std::uint8_t> stamp_key(const std::string& file, const std::string& id)
{
    twamp::control::key_store ks;
    std::string err;
    if (!ks.load(file, err)) throw usage_error("--key-file: " + err);
    if (id.empty()) return ks.keys().front().second;
    const auto* k = ks.find(id);
    if (!k) throw usage_error("--key-id: '" + id + "' is not in the key file");
    return *k;
}

int run_responder(const responder_options& o)
{
    apply_logging(o.common);
    auto hp = parse_endpoint_arg("local-ip:port", o.near_end, 20001);
    twamp::net::reflector_options ro;
    ro.sock = socket_options_from(o.common);
    if (o.common.padding) {
        if (*o.common.padding < 0)
            throw usage_error(
                "--padding: IMIX (-1) is a sender option; the responder mirrors sizes");
        ro.core.min_reply_len =
            twamp::kReflectorUnauthLen + static_cast<std::size_t>(*o.common.padding);
        if (ro.core.min_reply_len > twamp::kMaxTestPacketLen)
            throw usage_error("--padding: " + std::to_string(*o.common.padding) + " is too large");
    }
    if (o.refwait <= 0) throw usage_error("--refwait: must be > 0 seconds");
    const double refwait = o.timer > 0 ? o.timer : o.refwait;
    ro.core.refwait = std::chrono::nanoseconds{static_cast<std::int64_t>(refwait * 1e9)};
    ro.core.stateless = o.stateless;
    ro.core.max_sessions = o.max_sessions;
    // A reply padded beyond its request is an amplifier for spoofed sources: --padding implies
    // --strict-size (requests shorter than their padded reply are dropped) unless the operator
    // opts out with --allow-amplification.
    ro.core.strict_size = o.strict_size || (o.common.padding && !o.allow_amplification);
    if (o.common.padding && !o.strict_size && o.allow_amplification)
        g_log.log(logger::info,
                  "--padding %d with --allow-amplification: short requests get padded replies",
                  *o.common.padding);
    else if (o.common.padding && !o.strict_size)
        g_log.log(logger::info,
                  "--padding %d implies --strict-size: requests shorter than %zu octets are "
                  "dropped (--allow-amplification to answer them)",
                  *o.common.padding, ro.core.min_reply_len);
    std::string fmt = o.stamp ? "stamp" : o.format;
    if (fmt == "auto")
        ro.core.format = twamp::reflector_format::automatic;
    else if (fmt == "twamp")
        ro.core.format = twamp::reflector_format::twamp;
    else if (fmt == "stamp")
        ro.core.format = twamp::reflector_format::stamp;
    else
        throw usage_error("--format: invalid value '" + fmt + "' (auto, twamp or stamp)");
    if (o.max_sessions < 1) throw usage_error("--max-sessions: must be at least 1");
    unsigned threads = 1;
    if (o.threads == "auto") {
        threads = std::max(1U, std::thread::hardware_concurrency());
    } else {
        try {
            std::size_t used = 0;
            const long v = std::stol(o.threads, &used);
            if (used != o.threads.size() || v < 1 || v > 256) throw std::invalid_argument("range");
            threads = static_cast<unsigned>(v);
        } catch (const std::exception&) {
            throw usage_error("--threads: invalid value '" + o.threads + "' (1-256 or auto)");
        }
    }
    // One socket and one event loop per thread on the same port (SO_REUSEPORT): the kernel keeps
    // each flow on one socket, so a stateful session's sequence numbers stay in one thread.
    if (threads > 1) ro.sock.reuse_port = true;

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
    if (!o.key_file.empty()) {
        // Authenticated STAMP only: every request must carry a valid HMAC.
        refl.set_guard(std::make_unique<twamp::net::stamp_auth_guard<twamp::openssl_crypto>>(
            stamp_key(o.key_file, o.key_id)));
    } else if (!o.key_id.empty()) {
        throw usage_error("--key-id: needs --key-file");
    }
    if (ec) {
        std::fprintf(stderr, "twamp responder: cannot bind %s: %s\n", o.near_end.c_str(),
                     ec.message().c_str());
        return kExitRuntime;
    }
    const auto ep = refl.local_endpoint();
    // The other threads' reflectors join the port the first one got.
    std::vector<std::unique_ptr<asio::io_context>> extra_io;
    std::vector<std::unique_ptr<twamp::net::udp_reflector>> refls;
    refls.push_back(std::move(refl_ptr));
    for (unsigned t = 1; t < threads; ++t) {
        extra_io.push_back(std::make_unique<asio::io_context>(1));
        auto r = ro;
        r.local = ep;
        refls.push_back(std::make_unique<twamp::net::udp_reflector>(*extra_io.back(), r));
        if ((ec = refls.back()->open())) {
            std::fprintf(stderr, "twamp responder: thread %u cannot bind [%s]:%u: %s\n", t + 1,
                         ep.address().to_string().c_str(), unsigned(ep.port()),
                         ec.message().c_str());
            return kExitRuntime;
        }
        if (!o.key_file.empty())
            refls.back()->set_guard(
                std::make_unique<twamp::net::stamp_auth_guard<twamp::openssl_crypto>>(
                    stamp_key(o.key_file, o.key_id)));
    }
    g_log.log(logger::info, "Wait to receive test packets on [%s]:%u (%u thread%s)",
              ep.address().to_string().c_str(), unsigned(ep.port()), threads,
              threads > 1 ? "s" : "");
    for (auto& r : refls)
        r->start();
    signal_guard sig(io, [&](int) {
        g_log.log(logger::info, "signal received: stopping the reflector");
        refl.stop();
        io.stop();
        for (std::size_t t = 0; t < extra_io.size(); ++t) {
            auto* r = refls[t + 1].get();
            auto* x = extra_io[t].get();
            asio::post(*x, [r, x] {
                r->stop();
                x->stop();
            });
        }
    });
    std::vector<std::thread> workers;
    for (auto& x : extra_io)
        workers.emplace_back([&ctx = *x] { ctx.run(); });
    io.run();
    for (auto& w : workers)
        w.join();
    twamp::reflector_counters total{};
    std::uint64_t oversize = 0, auth_failures = 0;
    for (std::size_t t = 0; t < refls.size(); ++t) {
        const auto& c = refls[t]->session().counters();
        if (threads > 1)
            g_log.log(logger::info,
                      "thread %zu: received %llu, reflected %llu, malformed %llu, sessions %llu",
                      t + 1, static_cast<unsigned long long>(c.received),
                      static_cast<unsigned long long>(c.reflected),
                      static_cast<unsigned long long>(c.malformed),
                      static_cast<unsigned long long>(c.sessions_created));
        total.received += c.received;
        total.reflected += c.reflected;
        total.malformed += c.malformed;
        total.sessions_created += c.sessions_created;
        total.sessions_expired += c.sessions_expired;
        total.table_full += c.table_full;
        oversize += refls[t]->io_counters().oversize;
        auth_failures += refls[t]->io_counters().auth_failures;
    }
    g_log.log(logger::info,
              "reflector stopped: received %llu, reflected %llu, malformed %llu, oversize %llu, "
              "sessions %llu (expired %llu, table full %llu)",
              static_cast<unsigned long long>(total.received),
              static_cast<unsigned long long>(total.reflected),
              static_cast<unsigned long long>(total.malformed),
              static_cast<unsigned long long>(oversize),
              static_cast<unsigned long long>(total.sessions_created),
              static_cast<unsigned long long>(total.sessions_expired),
              static_cast<unsigned long long>(total.table_full));
    if (!o.key_file.empty())
        g_log.log(logger::info, "authentication failures: %llu",
                  static_cast<unsigned long long>(auth_failures));
    return kExitOk;
}

// ----------------------------------------------------------------------------------------------

struct sender_cli_options {
    common_options common;
    std::string far_end = "127.0.0.1:20001";
    std::string near_end = ":20000";
    bool near_end_given = false; // false: twampy's default port, with a fallback when busy
    double interval_ms = 100;
    long long count = 100;
    double timeout_s = 5;
    bool stamp = false;
    int ssid = 0;
    std::string distribution = "periodic";
    std::optional<std::uint64_t> seed;
    std::string key_file;
    std::string key_id;
    output_options output;
};

// Bins for the chart when --svg is given without --report-interval: about 60 over the run.
std::chrono::nanoseconds interval_period(const sender_cli_options& o)
{
    if (o.output.report_interval_s > 0)
        return std::chrono::nanoseconds{
            static_cast<std::int64_t>(o.output.report_interval_s * 1e9)};
    const double run_ns = static_cast<double>(o.count) * o.interval_ms * 1e6;
    const double p = std::max({run_ns / 60, o.interval_ms * 1e6, 1e7});
    return std::chrono::nanoseconds{static_cast<std::int64_t>(p)};
}

int run_sender(const sender_cli_options& o)
{
    apply_logging(o.common);
    check_output_options(o.output);
    if (!(o.interval_ms > 0) || o.interval_ms > 3.6e6)
        throw usage_error("--interval: invalid value " + num(o.interval_ms) +
                          " (milliseconds, > 0)");
    if (o.count < 1 || o.count > 0xFFFFFFFFLL)
        throw usage_error("--count: invalid value " + std::to_string(o.count) + " (1-4294967295)");
    if (!(o.timeout_s > 0) || o.timeout_s > 3600)
        throw usage_error("--timeout: invalid value " + num(o.timeout_s) +
                          " (seconds, > 0, at most 3600)");
    if (o.ssid < 0 || o.ssid > 65535)
        throw usage_error("--ssid: invalid value " + std::to_string(o.ssid) + " (0-65535)");
    if (o.ssid != 0 && !o.stamp) throw usage_error("--ssid: only with --stamp");
    if (o.distribution != "periodic" && o.distribution != "poisson")
        throw usage_error("--distribution: invalid value '" + o.distribution +
                          "' (periodic or poisson)");
    if (o.seed && o.distribution != "poisson")
        throw usage_error("--seed: only with --distribution poisson");

    const auto remote_hp = parse_endpoint_arg("remote-ip:port", o.far_end, 20001);
    auto local_hp = parse_endpoint_arg("local-ip:port", o.near_end, 20000);

    twamp::net::sender_options so;
    so.sock = socket_options_from(o.common);
    so.count = static_cast<std::uint32_t>(o.count);
    so.interval = std::chrono::nanoseconds{static_cast<std::int64_t>(o.interval_ms * 1e6)};
    so.core.format = o.stamp ? twamp::test_format::stamp : twamp::test_format::twamp;
    so.core.ssid = static_cast<std::uint16_t>(o.ssid);
    so.core.timeout = std::chrono::nanoseconds{static_cast<std::int64_t>(o.timeout_s * 1e9)};
    so.distribution = o.distribution == "poisson" ? twamp::net::send_distribution::poisson
                                                  : twamp::net::send_distribution::periodic;
    so.seed =
        o.seed ? *o.seed : (std::uint64_t{std::random_device{}()} << 32 | std::random_device{}());

    asio::io_context io;
    std::error_code ec;
    const int fam = remote_hp.family_hint ? remote_hp.family_hint : local_hp.family_hint;
    so.remote = twamp::net::resolve_udp(io, remote_hp, fam, ec);
    if (ec) {
        std::fprintf(stderr, "twamp sender: cannot resolve '%s': %s\n", o.far_end.c_str(),
                     ec.message().c_str());
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
            throw usage_error(
                "--padding: with --stamp, padding travels in a TLV and is 0 or at least 4");
        so.sizes = {base + static_cast<std::size_t>(pad)};
    }

    const bool stamp_auth = !o.key_file.empty();
    if (stamp_auth && !o.stamp)
        throw usage_error("--key-file: the sender authenticates STAMP only (add --stamp)");
    if (!stamp_auth && !o.key_id.empty()) throw usage_error("--key-id: needs --key-file");
    if (stamp_auth) {
        // Authenticated STAMP probes are 112 octets plus the same extra octets (as a TLV).
        for (auto& sz : so.sizes)
            sz += twamp::kStampAuthLen - twamp::kStampBaseLen;
    }
    so.ephemeral_port_fallback = !o.near_end_given;
    twamp::net::udp_sender sender(io, so);
    if (stamp_auth)
        sender.set_guard(std::make_unique<twamp::net::stamp_auth_guard<twamp::openssl_crypto>>(
            stamp_key(o.key_file, o.key_id)));
    if ((ec = sender.open())) {
        std::fprintf(stderr, "twamp sender: cannot bind %s: %s\n", o.near_end.c_str(),
                     ec.message().c_str());
        return kExitRuntime;
    }
    const auto local = sender.local_endpoint();
    if (sender.busy_port())
        g_log.log(logger::warning, "local port %u is in use: sending from port %u instead",
                  unsigned(sender.busy_port()), unsigned(local.port()));

    twamp::report::session_info info;
    info.mode = o.stamp ? "stamp" : "twamp-light";
    info.ssid = so.core.ssid;
    // Bound to the wildcard: report the address the probes leave from.
    info.sender_address = twamp::net::display_address(
        local.address().is_unspecified() ? twamp::net::source_address_for(so.remote)
                                         : local.address());
    info.sender_port = local.port();
    info.reflector_address = twamp::net::display_address(so.remote.address());
    info.reflector_port = so.remote.port();
    info.requested = so.count;
    info.distribution = o.distribution;
    info.interval_ns = so.interval.count();
    info.seed = so.seed;

    // Live outputs: the per-packet CSV and the interval bins (for --report-interval and --svg).
    per_packet_writer per_packet;
    if (!o.output.per_packet.empty()) {
        const auto err = per_packet.open(o.output.per_packet);
        if (!err.empty()) {
            std::fprintf(stderr, "twamp sender: --per-packet: %s\n", err.c_str());
            return kExitRuntime;
        }
    }
    std::optional<twamp::interval_recorder> intervals;
    const bool print_intervals = o.output.report_interval_s > 0;
    if (print_intervals || !o.output.svg.empty()) {
        intervals.emplace(interval_period(o), so.core.timeout,
                          report_options_of(o.output).percentiles);
        info.report_interval_ns = intervals->period().count();
    }
    auto interval_sink = [&](const twamp::interval_summary& b) {
        if (print_intervals) emit_interval(b, info, o.output, info.report_interval_ns);
    };
    const bool log_replies = g_log.current() >= logger::info;
    if (log_replies || per_packet.is_open() || intervals) {
        sender.on_reply([&, log_replies](const twamp::reply_result& r) {
            const auto& m = r.sample;
            if (log_replies) {
                if (r.status == twamp::reply_status::sample)
                    g_log.log(
                        logger::info,
                        "Reply from %s [rseq=%u sseq=%u rtt=%.3fms outbound=%.3fms inbound=%.3fms]",
                        so.remote.address().to_string().c_str(), m.reflector_seq, m.sender_seq,
                        m.roundtrip_ns / 1e6, m.outbound_ns / 1e6, m.inbound_ns / 1e6);
                else
                    g_log.log(logger::info, "Reply from %s dropped [sseq=%u status=%d]",
                              so.remote.address().to_string().c_str(), m.sender_seq, int(r.status));
            }
            per_packet.reply(r);
            if (intervals) {
                intervals->on_reply(r);
                intervals->poll(twamp::net::realtime_now(), interval_sink);
            }
        });
    }
    if (per_packet.is_open())
        sender.on_lost([&](std::uint32_t seq, twamp::nanoseconds t1) { per_packet.lost(seq, t1); });
    if (intervals) {
        sender.on_sent([&](std::uint32_t seq, twamp::nanoseconds t1) {
            intervals->on_sent(seq, t1, interval_sink);
        });
        const auto tick = std::clamp<std::chrono::nanoseconds>(
            intervals->period() / 10, std::chrono::milliseconds{10}, std::chrono::seconds{1});
        sender.on_tick(tick, [&](twamp::nanoseconds now) { intervals->poll(now, interval_sink); });
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
    if (intervals) intervals->finish(interval_sink);
    info.scheduled = sender.scheduled();
    info.skipped = sender.skipped();
    info.interrupted = sender.interrupted();
    info.end_time_ns = twamp::net::realtime_now().count();
    info.pacing_known = true;
    info.achieved_pps = sender.achieved_rate();
    info.pacing_error_p50_ns = sender.pacing_error().percentile(50);
    info.pacing_error_p99_ns = sender.pacing_error().percentile(99);
    info.pacing_error_max_ns = static_cast<double>(sender.pacing_error().max());

    static const std::vector<twamp::interval_summary> no_intervals;
    const bool files_ok =
        emit_report(st, info, o.output, intervals ? intervals->closed() : no_intervals);
    if (per_packet.failed()) std::fprintf(stderr, "twamp sender: --per-packet: write error\n");
    report_no_reply(st);
    if (!files_ok || per_packet.failed()) return kExitRuntime;
    return st.received > 0 ? kExitOk : kExitNoReply;
}

} // namespace

std::vector<subcommand> register_light(CLI::App& app)
{
    std::vector<subcommand> out;
    auto ropt = std::make_shared<responder_options>();
    auto* responder = app.add_subcommand("responder", "TWAMP Light / STAMP Session-Reflector");
    responder->alias("reflector");
    add_debug_options(responder, ropt->common);
    add_ip_options(responder, ropt->common);
    responder->add_option("local-ip:port", ropt->near_end, "Address to listen on")
        ->capture_default_str();
    responder->add_option("--timer", ropt->timer,
                          "twampy's session reset timer, seconds (sets --refwait)");
    responder->add_option("--refwait", ropt->refwait, "Drop sessions idle this long, seconds")
        ->capture_default_str();
    responder->add_flag("--stateless", ropt->stateless,
                        "Echo the sender's sequence numbers (RFC 8762 stateless)");
    responder->add_flag("--stamp", ropt->stamp,
                        "Answer every request as STAMP (same as --format stamp)");
    responder->add_option("--format", ropt->format, "auto, twamp or stamp")->capture_default_str();
    responder->add_option("--max-sessions", ropt->max_sessions, "Per-sender state kept at most")
        ->capture_default_str();
    responder->add_flag("--strict-size", ropt->strict_size,
                        "Drop requests shorter than their reply (implied by --padding)");
    responder
        ->add_option("--threads", ropt->threads,
                     "Reflect on N threads (or auto = one per core), one socket each on the "
                     "same port (SO_REUSEPORT); a flow always stays on one thread")
        ->capture_default_str();
    responder->add_flag("--allow-amplification", ropt->allow_amplification,
                        "With --padding, answer short requests with larger padded replies");
    responder->add_option("--key-file", ropt->key_file,
                          "Authenticated STAMP: key file of 'KEYID HEXSECRET' lines (pfs format)");
    responder->add_option("--key-id", ropt->key_id,
                          "Authenticated STAMP: which key (default: the first)");
    out.push_back({responder, [ropt] { return run_responder(*ropt); }});

    auto sopt = std::make_shared<sender_cli_options>();
    auto* sender = app.add_subcommand("sender", "TWAMP Light / STAMP Session-Sender");
    add_debug_options(sender, sopt->common);
    add_ip_options(sender, sopt->common);
    sender->add_option("remote-ip:port", sopt->far_end, "Reflector address")->capture_default_str();
    auto* near = sender
                     ->add_option("local-ip:port", sopt->near_end,
                                  "Local address (a busy default port falls back to an "
                                  "ephemeral one)")
                     ->capture_default_str();
    sender
        ->add_option("-i,--interval", sopt->interval_ms,
                     "Interval between probes, ms (fractions allowed)")
        ->capture_default_str();
    sender->add_option("-c,--count", sopt->count, "Number of probes")->capture_default_str();
    sender->add_option("--timeout", sopt->timeout_s, "Per-probe loss timeout, seconds")
        ->capture_default_str();
    sender->add_flag("--stamp", sopt->stamp, "Send STAMP (RFC 8762) instead of TWAMP Light");
    sender->add_option("--ssid", sopt->ssid, "STAMP Session-Sender Identifier (RFC 8972)");
    sender->add_option("--key-file", sopt->key_file,
                       "Authenticated STAMP: key file of 'KEYID HEXSECRET' lines (pfs format)");
    sender->add_option("--key-id", sopt->key_id,
                       "Authenticated STAMP: which key (default: the first)");
    sender
        ->add_option(
            "--distribution", sopt->distribution,
            "Send schedule: periodic (RFC 3432) or poisson (RFC 2330; mean gap = --interval)")
        ->capture_default_str();
    sender->add_option("--seed", sopt->seed,
                       "Seed of the Poisson schedule (default: random, shown in --json)");
    add_output_options(sender, sopt->output, /*live=*/true);
    out.push_back({sender, [sopt, near] {
                       sopt->near_end_given = near->count() > 0;
                       return run_sender(*sopt);
                   }});
    return out;
}

} // namespace twamp_cli
