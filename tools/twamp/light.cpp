// light.cpp — the TWAMP Light / STAMP sub-commands: responder (alias reflector) and sender.
#include "light.hpp"

#include "cli_common.hpp"
#include "output.hpp"
#include "probe_options.hpp"
#include "tlv_options.hpp"

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
    // STAMP TLV policy (RFC 8972 §4.2.2, §4.4): the DSCPs a Class of Service TLV may ask for on
    // the reply, and whether Location reports addresses and ports.
    std::string tlv_permit_dscp = "all";
    bool tlv_hide_location = false;
    // RFC 9534 Micro-session ID: this reflector's LAG member-link ID; draft-ietf-ippm-
    // asymmetrical-pkts Reflected Test Packet Control: off unless enabled, then capped.
    std::optional<unsigned> tlv_micro_session_id;
    bool tlv_reflected_control = false;
    unsigned tlv_rc_max_replies = 4;
    std::size_t tlv_rc_max_octets = 1472;
    std::uint64_t tlv_rc_rate = 125'000;
    std::string timestamping = "auto"; // --timestamping: the T2/T3 methods the TLVs report
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

// With --key-file, every request (or reply) must carry a valid HMAC.
template <class Endpoint>
void guard_with_key(Endpoint& e, const std::string& file, const std::string& id)
{
    if (file.empty()) return;
    e.set_guard(
        std::make_unique<twamp::net::stamp_auth_guard<twamp::openssl_crypto>>(stamp_key(file, id)));
}

// --threads: 1-256, or auto (one per core).
std::optional<unsigned> parse_threads(const std::string& s)
{
    if (s == "auto") return std::max(1U, std::thread::hardware_concurrency());
    std::size_t used = 0;
    long v = 0;
    try {
        v = std::stol(s, &used);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (used != s.size() || v < 1 || v > 256) return std::nullopt;
    return static_cast<unsigned>(v);
}

twamp::reflector_format reflector_format_of(const responder_options& o)
{
    const std::string fmt = o.stamp ? "stamp" : o.format;
    if (fmt == "twamp") return twamp::reflector_format::twamp;
    if (fmt == "stamp") return twamp::reflector_format::stamp;
    return twamp::reflector_format::automatic;
}

// The checks that span flags, or a flag and the packet format.
void check_responder(const responder_options& o)
{
    check_common(o.common);
    if (o.common.padding && *o.common.padding < 0)
        throw usage_error("--padding: IMIX (-1) is a sender option; the responder mirrors sizes");
    if (o.common.padding &&
        twamp::kReflectorUnauthLen + static_cast<std::size_t>(*o.common.padding) >
            twamp::kMaxTestPacketLen)
        throw usage_error("--padding: " + std::to_string(*o.common.padding) + " is too large");
    if (o.key_file.empty() && !o.key_id.empty()) throw usage_error("--key-id: needs --key-file");
}

// --tlv-permit-dscp: "all", "none" or DSCPs (names or 0-63) separated by commas, as a 64-bit
// mask (bit d: DSCP d); nullopt when malformed.
std::optional<std::uint64_t> permitted_dscp_mask(const std::string& s)
{
    if (s == "all") return ~std::uint64_t{0};
    if (s == "none") return std::uint64_t{0};
    std::uint64_t mask = 0;
    for (const auto& item : detail::split_commas(s)) {
        const auto d = twamp::parse_dscp(item);
        if (!d) return std::nullopt;
        mask |= std::uint64_t{1} << *d;
    }
    return mask;
}

twamp::net::reflector_options reflector_options_from(const responder_options& o, unsigned threads)
{
    twamp::net::reflector_options ro;
    ro.sock = socket_options_from(o.common);
    if (o.common.padding)
        ro.core.min_reply_len =
            twamp::kReflectorUnauthLen + static_cast<std::size_t>(*o.common.padding);
    const double refwait = o.timer > 0 ? o.timer : o.refwait;
    ro.core.refwait = std::chrono::nanoseconds{static_cast<std::int64_t>(refwait * 1e9)};
    ro.core.stateless = o.stateless;
    ro.core.max_sessions = o.max_sessions;
    // A reply padded beyond its request is an amplifier for spoofed sources: --padding implies
    // --strict-size (requests shorter than their padded reply are dropped) unless the operator
    // opts out with --allow-amplification.
    ro.core.strict_size = o.strict_size || (o.common.padding && !o.allow_amplification);
    ro.core.format = reflector_format_of(o);
    ro.core.tlv_policy.permitted_dscp = *permitted_dscp_mask(o.tlv_permit_dscp);
    ro.core.tlv_policy.report_location = !o.tlv_hide_location;
    if (o.tlv_micro_session_id)
        ro.core.tlv_policy.micro_session_id = static_cast<std::uint16_t>(*o.tlv_micro_session_id);
    auto& rc = ro.core.tlv_policy.reflected_control;
    rc.enabled = o.tlv_reflected_control;
    rc.max_replies = static_cast<std::uint16_t>(o.tlv_rc_max_replies);
    rc.max_reply_octets = o.tlv_rc_max_octets;
    rc.max_octets_per_second = o.tlv_rc_rate;
    // One socket and one loop per thread on the same port (SO_REUSEPORT): the kernel keeps
    // each flow on one socket, so a stateful session's sequence numbers stay in one thread.
    if (threads > 1) ro.sock.reuse_port = true;
    return ro;
}

// --timestamping: kernel send stamps of the replies (the stamping the host gives on the interface
// of the listening address: hardware only there; a wildcard address names no interface, so no
// hardware), reported by Follow-Up Telemetry TLVs. The Timestamp Information TLV (RFC 8972 §4.3)
// says how T2 and T3 in the reply were taken: T2 is the kernel's software receive stamp
// (SO_TIMESTAMPNS), T3 the clock read before the send, in every mode.
void set_timestamp_methods(twamp::net::reflector_options& ro, const responder_options& o,
                           const twamp::net::host_port& hp)
{
    std::string ifname;
    int family = AF_INET;
    if (!hp.host.empty()) {
        asio::io_context io;
        std::error_code ec;
        const auto ep = twamp::net::resolve_udp(io, hp, hp.family_hint, ec);
        if (!ec) {
            ifname = twamp::net::interface_for(ep.address());
            family = ep.address().is_v6() ? AF_INET6 : AF_INET;
        }
    }
    const auto ts =
        twamp::net::resolve_tx_timestamps(timestamping_mode_of(o.timestamping), ifname, family);
    check_timestamping(ts, "twamp responder");
    // T3 in a reply is read before the send in every mode; kernel (or NIC) send stamps of the
    // replies go into Follow-Up Telemetry TLVs, with their own method (reflector.hpp).
    using method = twamp::stamp_tlv::timestamp_method;
    ro.core.t2_method = method::sw_local;
    ro.core.t3_method = method::sw_local;
    ro.tx_timestamping = timestamping_mode_of(o.timestamping);
}

void log_padding_policy(const responder_options& o, const twamp::net::reflector_options& ro)
{
    if (!o.common.padding || o.strict_size) return;
    if (o.allow_amplification)
        g_log.log(logger::info,
                  "--padding %d with --allow-amplification: short requests get padded replies",
                  *o.common.padding);
    else
        g_log.log(logger::info,
                  "--padding %d implies --strict-size: requests shorter than %zu octets are "
                  "dropped (--allow-amplification to answer them)",
                  *o.common.padding, ro.core.min_reply_len);
}

// The responder's reflectors, one per thread; the event loop only waits for signals (and
// resolves the address).
struct reflector_pool {
    asio::io_context io;
    std::vector<std::unique_ptr<twamp::net::udp_reflector>> refls;
};

// The first reflector: binds the address asked for, or IPv4 only when a wildcard finds no IPv6.
void open_first(reflector_pool& p, twamp::net::reflector_options ro,
                const twamp::net::host_port& hp, const responder_options& o)
{
    std::error_code ec;
    ro.local = twamp::net::resolve_udp(p.io, hp, 0, ec);
    if (ec)
        throw run_failure("twamp responder: cannot resolve '" + o.near_end + "': " + ec.message());
    auto refl = std::make_unique<twamp::net::udp_reflector>(p.io, ro);
    ec = refl->open();
    if (ec && hp.host.empty() && ro.local.address().is_v6()) {
        ro.local = {asio::ip::address_v4::any(), hp.port};
        refl = std::make_unique<twamp::net::udp_reflector>(p.io, ro);
        ec = refl->open();
    }
    guard_with_key(*refl, o.key_file, o.key_id);
    if (ec) throw run_failure("twamp responder: cannot bind " + o.near_end + ": " + ec.message());
    p.refls.push_back(std::move(refl));
}

// The other threads' reflectors join the port the first one got.
void open_others(reflector_pool& p, const twamp::net::reflector_options& ro, unsigned threads,
                 const responder_options& o)
{
    const auto ep = p.refls.front()->local_endpoint();
    for (unsigned t = 1; t < threads; ++t) {
        auto r = ro;
        r.local = ep;
        p.refls.push_back(std::make_unique<twamp::net::udp_reflector>(p.io, r));
        if (const auto ec = p.refls.back()->open())
            throw run_failure("twamp responder: thread " + std::to_string(t + 1) +
                              " cannot bind [" + ep.address().to_string() +
                              "]:" + std::to_string(ep.port()) + ": " + ec.message());
        guard_with_key(*p.refls.back(), o.key_file, o.key_id);
    }
}

// Runs every reflector until SIGINT or SIGTERM: each on a thread of its own in the port's
// dedicated loop (no event loop between the socket and the reflect path: reflector.hpp), the
// main thread waiting for the signal.
void serve(reflector_pool& p)
{
    const auto stop_all = [&p] {
        for (auto& r : p.refls)
            r->request_stop();
        p.io.stop();
    };
    signal_guard sig(p.io, [&stop_all](int) {
        g_log.log(logger::info, "signal received: stopping the reflector");
        stop_all();
    });
    std::vector<std::thread> workers;
    std::vector<std::error_code> failed(p.refls.size());
    for (std::size_t t = 0; t < p.refls.size(); ++t)
        workers.emplace_back([&p, &failed, &stop_all, t] {
            if ((failed[t] = p.refls[t]->run_dedicated())) asio::post(p.io, stop_all);
        });
    p.io.run();
    for (auto& w : workers)
        w.join();
    for (std::size_t t = 0; t < failed.size(); ++t)
        if (failed[t])
            throw run_failure("twamp responder: thread " + std::to_string(t + 1) + ": " +
                              failed[t].message());
}

void log_counters(const reflector_pool& p, bool authenticated)
{
    twamp::reflector_counters total{};
    std::uint64_t oversize = 0, auth_failures = 0, tx_stamps = 0, follow_ups = 0;
    for (std::size_t t = 0; t < p.refls.size(); ++t) {
        const auto& c = p.refls[t]->session().counters();
        if (p.refls.size() > 1)
            g_log.counts(
                logger::info,
                "thread %llu: received %llu, reflected %llu, malformed %llu, sessions %llu", t + 1,
                c.received, c.reflected, c.malformed, c.sessions_created);
        total.received += c.received;
        total.reflected += c.reflected;
        total.malformed += c.malformed;
        total.sessions_created += c.sessions_created;
        total.sessions_expired += c.sessions_expired;
        total.table_full += c.table_full;
        oversize += p.refls[t]->io_counters().oversize;
        auth_failures += p.refls[t]->io_counters().auth_failures;
        tx_stamps += p.refls[t]->io_counters().tx_kernel_stamps;
        follow_ups += p.refls[t]->io_counters().follow_up_kernel;
    }
    g_log.counts(logger::info,
                 "reflector stopped: received %llu, reflected %llu, malformed %llu, oversize %llu, "
                 "sessions %llu (expired %llu, table full %llu)",
                 total.received, total.reflected, total.malformed, oversize, total.sessions_created,
                 total.sessions_expired, total.table_full);
    if (authenticated) g_log.counts(logger::info, "authentication failures: %llu", auth_failures);
    if (p.refls.front()->tx_timestamps().kernel())
        g_log.log(logger::info,
                  "kernel send timestamps (%s): %llu replies, %llu reported by Follow-Up Telemetry",
                  twamp::net::to_string(p.refls.front()->tx_timestamps().enabled),
                  static_cast<unsigned long long>(tx_stamps),
                  static_cast<unsigned long long>(follow_ups));
    if (const auto* h = p.refls.front()->t3_kernel_minus_user(); h && h->count())
        g_log.log(logger::info,
                  "kernel send time - T3 (thread 1): p50 %.0f ns, p99 %.0f ns, max %lld ns over "
                  "%llu replies",
                  h->percentile(50), h->percentile(99), static_cast<long long>(h->max()),
                  static_cast<unsigned long long>(h->count()));
}

int run_responder(const responder_options& o)
{
    apply_logging(o.common);
    check_responder(o);
    const auto hp = parse_endpoint_arg("local-ip:port", o.near_end, 20001);
    const unsigned threads = parse_threads(o.threads).value_or(1);
    auto ro = reflector_options_from(o, threads);
    set_timestamp_methods(ro, o, hp);
    log_padding_policy(o, ro);

    reflector_pool pool;
    open_first(pool, ro, hp, o);
    open_others(pool, ro, threads, o);
    const auto ep = pool.refls.front()->local_endpoint();
    g_log.log(logger::info, "Wait to receive test packets on [%s]:%u (%u thread%s)",
              ep.address().to_string().c_str(), unsigned(ep.port()), threads,
              threads > 1 ? "s" : "");
    serve(pool);
    log_counters(pool, !o.key_file.empty());
    return kExitOk;
}

void add_responder_options(CLI::App* sc, responder_options& o)
{
    add_debug_options(sc, o.common);
    add_ip_options(sc, o.common);
    sc->add_option("local-ip:port", o.near_end, "Address to listen on")->capture_default_str();
    sc->add_option("--timer", o.timer, "twampy's session reset timer, seconds (sets --refwait)");
    sc->add_option("--refwait", o.refwait, "Drop sessions idle this long, seconds")
        ->capture_default_str()
        ->check(number_check<double>([](double v) { return v > 0; },
                                     [](double) { return std::string("must be > 0 seconds"); }));
    sc->add_flag("--stateless", o.stateless,
                 "Echo the sender's sequence numbers (RFC 8762 stateless)");
    sc->add_flag("--stamp", o.stamp, "Answer every request as STAMP (same as --format stamp)");
    sc->add_option("--format", o.format, "auto, twamp or stamp")
        ->capture_default_str()
        ->check(one_of({"auto", "twamp", "stamp"}, "invalid value", "auto, twamp or stamp"));
    sc->add_option("--max-sessions", o.max_sessions, "Per-sender state kept at most")
        ->capture_default_str()
        ->check(at_least_one<std::size_t>());
    sc->add_flag("--strict-size", o.strict_size,
                 "Drop requests shorter than their reply (implied by --padding)");
    sc->add_option("--threads", o.threads,
                   "Reflect on N threads (or auto = one per core), one socket each on the "
                   "same port (SO_REUSEPORT); a flow always stays on one thread")
        ->capture_default_str()
        ->check(text_check([](const std::string& s) { return parse_threads(s).has_value(); },
                           "invalid value", "1-256 or auto"));
    sc->add_flag("--allow-amplification", o.allow_amplification,
                 "With --padding, answer short requests with larger padded replies");
    sc->add_option("--tlv-permit-dscp", o.tlv_permit_dscp,
                   "STAMP Class of Service TLV: DSCPs a sender may ask for on its replies "
                   "(all, none, or a comma list of names/numbers); others keep the received "
                   "DSCP and get RP = 1")
        ->capture_default_str()
        ->check(text_check([](const std::string& s) { return permitted_dscp_mask(s).has_value(); },
                           "invalid value",
                           "all, none, or DSCP names/numbers separated by commas"));
    sc->add_flag("--tlv-hide-location", o.tlv_hide_location,
                 "STAMP Location TLV: report no addresses or ports (zeros)");
    sc->add_option("--tlv-micro-session-id", o.tlv_micro_session_id,
                   "STAMP Micro-session ID TLV (RFC 9534): this reflector's LAG member-link ID, "
                   "0-65535 (a host cannot pick the member a reply leaves on: run one reflector "
                   "per member); without it the TLV is returned unprocessed (U)")
        ->check(in_range<unsigned>(0, 65535, "0-65535"));
    auto* rc_on = sc->add_flag("--tlv-reflected-control", o.tlv_reflected_control,
                               "STAMP Reflected Test Packet Control TLV: honour requests for "
                               "more or longer replies, within the caps below (off by default)");
    sc->add_option("--tlv-reflected-control-max-replies", o.tlv_rc_max_replies,
                   "Replies per request at most, the first included")
        ->capture_default_str()
        ->check(in_range<unsigned>(1, 65535, "1-65535"))
        ->needs(rc_on);
    sc->add_option("--tlv-reflected-control-max-octets", o.tlv_rc_max_octets,
                   "Octets of one reply at most (UDP payload)")
        ->capture_default_str()
        ->check(in_range<std::size_t>(twamp::kStampBaseLen, twamp::kMaxTestPacketLen, "44-65507"))
        ->needs(rc_on);
    sc->add_option("--tlv-reflected-control-rate", o.tlv_rc_rate,
                   "Octets per second one session may draw for such replies (0: no rate cap)")
        ->capture_default_str()
        ->check(in_range<std::uint64_t>(0, 1'000'000'000, "0-1000000000"))
        ->needs(rc_on);
    add_timestamping_option(sc, o.timestamping,
                            "Send timestamps, as the Timestamp Information TLV reports T3: auto "
                            "(hardware when the interface can, else software), hardware, "
                            "software or user");
    sc->add_option("--key-file", o.key_file,
                   "Authenticated STAMP: key file of 'KEYID HEXSECRET' lines (pfs format)");
    sc->add_option("--key-id", o.key_id, "Authenticated STAMP: which key (default: the first)");
}

// ----------------------------------------------------------------------------------------------

struct sender_cli_options : test_cli_options {
    bool stamp = false;
    int ssid = 0;
    std::vector<std::string> tlvs; // --tlv SPEC (tlv_options.hpp)
    std::string distribution = "periodic";
    std::optional<std::uint64_t> seed;
    std::string key_file;
    std::string key_id;
    std::string timestamping = "auto"; // --timestamping (tx_timestamps.hpp)
};

twamp::test_format format_of(const sender_cli_options& o)
{
    return o.stamp ? twamp::test_format::stamp : twamp::test_format::twamp;
}

// The checks that span flags, or a flag and the packet format.
void check_sender(const sender_cli_options& o)
{
    check_common(o.common);
    check_output_options(o.output);
    if (o.ssid != 0 && !o.stamp) throw usage_error("--ssid: only with --stamp");
    if (o.seed && o.distribution != "poisson")
        throw usage_error("--seed: only with --distribution poisson");
    check_padding(o.common.padding, format_of(o));
    const int pad = o.common.padding.value_or(0);
    if (o.stamp && pad > 0 && pad < 4)
        throw usage_error(
            "--padding: with --stamp, padding travels in a TLV and is 0 or at least 4");
    if (!o.key_file.empty() && !o.stamp)
        throw usage_error("--key-file: the sender authenticates STAMP only (add --stamp)");
    if (o.key_file.empty() && !o.key_id.empty()) throw usage_error("--key-id: needs --key-file");
    if (!o.tlvs.empty()) {
        if (!o.stamp) throw usage_error("--tlv: only with --stamp");
        if (!o.key_file.empty())
            throw usage_error("--tlv: not with --key-file (authenticated STAMP carries no "
                              "extension TLVs yet)");
        const auto r = tlv_request_of(o.tlvs);
        if (r.destination_node && o.ssid == 0)
            throw usage_error("--tlv dest-node: needs --ssid (RFC 9503 §3)");
        const std::size_t room = twamp::kMaxTestPacketLen - twamp::kStampBaseLen;
        if (twamp::stamp_tlv_request_size(r) + static_cast<std::size_t>(std::max(pad, 0)) > room)
            throw usage_error("--tlv: the TLVs and --padding do not fit in one datagram");
    }
}

// The reflector's address and ours, in one IP version; returns it (4 or 6).
int resolve_addresses(asio::io_context& io, const sender_cli_options& o,
                      twamp::net::sender_options& so)
{
    const auto remote_hp = parse_endpoint_arg("remote-ip:port", o.far_end, 20001);
    const auto local_hp = parse_endpoint_arg("local-ip:port", o.near_end, 20000);
    std::error_code ec;
    const int fam = remote_hp.family_hint ? remote_hp.family_hint : local_hp.family_hint;
    so.remote = twamp::net::resolve_udp(io, remote_hp, fam, ec);
    if (ec) throw run_failure("twamp sender: cannot resolve '" + o.far_end + "': " + ec.message());
    const int family = so.remote.address().is_v4() ? 4 : 6;
    so.local = twamp::net::resolve_udp(io, local_hp, family, ec);
    if (ec || so.local.address().is_v4() != so.remote.address().is_v4())
        throw run_failure("twamp sender: local address '" + o.near_end +
                          "' does not fit the remote's IPv" + std::to_string(family));
    return family;
}

twamp::net::sender_options sender_options_from(asio::io_context& io, const sender_cli_options& o)
{
    twamp::net::sender_options so;
    const int family = resolve_addresses(io, o, so);
    fill_sender_options(o.common, o.probes, format_of(o), family, so);
    so.core.ssid = static_cast<std::uint16_t>(o.ssid);
    so.core.tlvs = tlv_request_of(o.tlvs);
    // The TLVs come first; --padding is what follows them (as Extra Padding).
    for (auto& sz : so.sizes)
        sz += twamp::stamp_tlv_request_size(so.core.tlvs);
    so.distribution = o.distribution == "poisson" ? twamp::net::send_distribution::poisson
                                                  : twamp::net::send_distribution::periodic;
    so.seed =
        o.seed ? *o.seed : (std::uint64_t{std::random_device{}()} << 32 | std::random_device{}());
    if (!o.key_file.empty()) {
        // Authenticated STAMP probes are 112 octets plus the same extra octets (as a TLV).
        for (auto& sz : so.sizes)
            sz += twamp::kStampAuthLen - twamp::kStampBaseLen;
    }
    so.ephemeral_port_fallback = !o.near_end_given;
    so.timestamping = timestamping_mode_of(o.timestamping);
    return so;
}

twamp::report::session_info session_info_of(const sender_cli_options& o,
                                            const twamp::net::sender_options& so,
                                            const asio::ip::udp::endpoint& local)
{
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
    return info;
}

// What only the end of the run knows: the schedule kept, and whether a signal cut it short.
void add_run_facts(twamp::report::session_info& info, const twamp::net::udp_sender& sender)
{
    info.scheduled = sender.scheduled();
    info.skipped = sender.skipped();
    info.interrupted = sender.interrupted();
    info.end_time_ns = twamp::net::realtime_now().count();
    info.pacing_known = true;
    info.achieved_pps = sender.achieved_rate();
    info.pacing_error_p50_ns = sender.pacing_error().percentile(50);
    info.pacing_error_p99_ns = sender.pacing_error().percentile(99);
    info.pacing_error_max_ns = static_cast<double>(sender.pacing_error().max());
    add_timestamp_facts(info, sender);
}

void log_reply(const asio::ip::udp::endpoint& remote, const twamp::reply_result& r)
{
    const auto& m = r.sample;
    if (r.status == twamp::reply_status::sample)
        g_log.log(logger::info,
                  "Reply from %s [rseq=%u sseq=%u rtt=%.3fms outbound=%.3fms inbound=%.3fms]",
                  remote.address().to_string().c_str(), m.reflector_seq, m.sender_seq,
                  m.roundtrip_ns / 1e6, m.outbound_ns / 1e6, m.inbound_ns / 1e6);
    else
        g_log.log(logger::info, "Reply from %s dropped [sseq=%u status=%d]",
                  remote.address().to_string().c_str(), m.sender_seq, int(r.status));
}

// What the sender feeds while the test runs: the reply log, the per-packet CSV and the interval
// bins (for --report-interval and --svg).
class live_outputs {
public:
    live_outputs(const sender_cli_options& o, const twamp::net::sender_options& so,
                 twamp::report::session_info& info)
        : out_(o.output), info_(info), remote_(so.remote)
    {
        if (!out_.per_packet.empty()) {
            const auto err = per_packet_.open(out_.per_packet, so.core.tlvs);
            if (!err.empty()) throw run_failure("twamp sender: --per-packet: " + err);
        }
        if (out_.report_interval_s > 0 || !out_.svg.empty()) {
            intervals_.emplace(interval_period(o), so.core.timeout,
                               report_options_of(out_).percentiles);
            info_.report_interval_ns = intervals_->period().count();
        }
    }

    void attach(twamp::net::udp_sender& sender)
    {
        if (log_replies_ || per_packet_.is_open() || intervals_)
            sender.on_reply([this](const twamp::reply_result& r) { on_reply(r); });
        if (per_packet_.is_open())
            sender.on_lost(
                [this](std::uint32_t seq, twamp::nanoseconds t1) { per_packet_.lost(seq, t1); });
        if (!intervals_) return;
        sender.on_sent([this](std::uint32_t seq, twamp::nanoseconds t1) {
            intervals_->on_sent(seq, t1, sink());
        });
        const auto tick = std::clamp<std::chrono::nanoseconds>(
            intervals_->period() / 10, std::chrono::milliseconds{10}, std::chrono::seconds{1});
        sender.on_tick(tick, [this](twamp::nanoseconds now) { intervals_->poll(now, sink()); });
    }

    void finish()
    {
        if (intervals_) intervals_->finish(sink());
    }
    const std::vector<twamp::interval_summary>& closed() const
    {
        static const std::vector<twamp::interval_summary> none;
        return intervals_ ? intervals_->closed() : none;
    }
    bool failed() const { return per_packet_.failed(); }

private:
    // Bins for the chart when --svg is given without --report-interval: about 60 over the run.
    static std::chrono::nanoseconds interval_period(const sender_cli_options& o)
    {
        if (o.output.report_interval_s > 0)
            return std::chrono::nanoseconds{
                static_cast<std::int64_t>(o.output.report_interval_s * 1e9)};
        const double run_ns = static_cast<double>(o.probes.count) * o.probes.interval_ms * 1e6;
        const double p = std::max({run_ns / 60, o.probes.interval_ms * 1e6, 1e7});
        return std::chrono::nanoseconds{static_cast<std::int64_t>(p)};
    }

    // Where closed interval bins go: a line on stdout with --report-interval (--svg alone keeps
    // them for the chart at the end).
    struct interval_sink {
        const live_outputs* self;
        void operator()(const twamp::interval_summary& b) const
        {
            if (self->out_.report_interval_s > 0)
                emit_interval(b, self->info_, self->out_, self->info_.report_interval_ns);
        }
    };
    interval_sink sink() const { return {this}; }

    void on_reply(const twamp::reply_result& r)
    {
        if (log_replies_) log_reply(remote_, r);
        per_packet_.reply(r);
        if (!intervals_) return;
        intervals_->on_reply(r);
        intervals_->poll(twamp::net::realtime_now(), sink());
    }

    const output_options& out_;
    twamp::report::session_info& info_;
    const asio::ip::udp::endpoint remote_;
    const bool log_replies_ = g_log.current() >= logger::info;
    per_packet_writer per_packet_;
    std::optional<twamp::interval_recorder> intervals_;
};

// Sends every probe, or until SIGINT or SIGTERM, and waits for the replies.
void send_all(asio::io_context& io, twamp::net::udp_sender& sender)
{
    signal_guard sig(io, [&](int) {
        sender.mark_interrupted();
        sender.stop();
    });
    sender.start([&] {
        sig.cancel();
        io.stop();
    });
    io.run();
}

int report_sender(const twamp::session_stats& st, const twamp::report::session_info& info,
                  const output_options& out, const live_outputs& live)
{
    const bool files_ok = emit_report(st, info, out, live.closed());
    if (live.failed()) std::fprintf(stderr, "twamp sender: --per-packet: write error\n");
    report_no_reply(st);
    if (!files_ok || live.failed()) return kExitRuntime;
    return st.received > 0 ? kExitOk : kExitNoReply;
}

int run_sender(const sender_cli_options& o)
{
    apply_logging(o.common);
    check_sender(o);
    asio::io_context io;
    const auto so = sender_options_from(io, o);
    twamp::net::udp_sender sender(io, so);
    guard_with_key(sender, o.key_file, o.key_id);
    if (const auto ec = sender.open())
        throw run_failure("twamp sender: cannot bind " + o.near_end + ": " + ec.message());
    const auto local = sender.local_endpoint();
    if (sender.busy_port())
        g_log.log(logger::warning, "local port %u is in use: sending from port %u instead",
                  unsigned(sender.busy_port()), unsigned(local.port()));
    check_timestamping(sender.timestamping(), "twamp sender");

    auto info = session_info_of(o, so, local);
    live_outputs live(o, so, info);
    live.attach(sender);
    g_log.log(logger::info, "Sending %u probes to [%s]:%u from [%s]:%u every %.3f ms", so.count,
              so.remote.address().to_string().c_str(), unsigned(so.remote.port()),
              local.address().to_string().c_str(), unsigned(local.port()), o.probes.interval_ms);
    send_all(io, sender);
    live.finish();
    add_run_facts(info, sender);
    return report_sender(sender.stats(), info, o.output, live);
}

void add_sender_options(CLI::App* sc, sender_cli_options& o)
{
    add_debug_options(sc, o.common);
    add_ip_options(sc, o.common);
    sc->add_option("remote-ip:port", o.far_end, "Reflector address")->capture_default_str();
    add_near_end(sc, o, "local-ip:port",
                 "Local address (a busy default port falls back to an ephemeral one)");
    add_probe_options(sc, o.probes, /*show_count_default=*/true);
    sc->add_flag("--stamp", o.stamp, "Send STAMP (RFC 8762) instead of TWAMP Light");
    sc->add_option("--ssid", o.ssid, "STAMP Session-Sender Identifier (RFC 8972)")
        ->check(in_range(0, 65535, "0-65535"));
    sc->add_option("--key-file", o.key_file,
                   "Authenticated STAMP: key file of 'KEYID HEXSECRET' lines (pfs format)");
    sc->add_option("--key-id", o.key_id, "Authenticated STAMP: which key (default: the first)");
    sc->add_option("--tlv", o.tlvs, kTlvHelp)->allow_extra_args(false)->check(tlv_spec_check());
    sc->add_option(
          "--distribution", o.distribution,
          "Send schedule: periodic (RFC 3432) or poisson (RFC 2330; mean gap = --interval)")
        ->capture_default_str()
        ->check(one_of({"periodic", "poisson"}, "invalid value", "periodic or poisson"));
    sc->add_option("--seed", o.seed,
                   "Seed of the Poisson schedule (default: random, shown in --json)");
    add_timestamping_option(sc, o.timestamping,
                            "Send timestamps for T1: auto (hardware when the interface can, else "
                            "software, else user), hardware, software (kernel) or user (a clock "
                            "read before the send)");
    add_output_options(sc, o.output, /*live=*/true);
}

} // namespace

std::vector<subcommand> register_light(CLI::App& app)
{
    auto ropt = std::make_shared<responder_options>();
    auto* responder = app.add_subcommand("responder", "TWAMP Light / STAMP Session-Reflector");
    responder->alias("reflector");
    add_responder_options(responder, *ropt);

    auto sopt = std::make_shared<sender_cli_options>();
    auto* sender = app.add_subcommand("sender", "TWAMP Light / STAMP Session-Sender");
    add_sender_options(sender, *sopt);
    return {{responder, [ropt] { return run_responder(*ropt); }},
            {sender, [sopt] { return run_sender(*sopt); }}};
}

} // namespace twamp_cli
