// impair_relay — a user-space network impairment relay for the integration tests (no netem here).
//
//   sender ──► [listen socket] ──forward──► [upstream socket] ──► reflector
//   sender ◄── [listen socket] ◄─backward── [upstream socket] ◄── reflector
//
// The relay listens on a UDP address for one sender (the source of the first datagram; anything
// from elsewhere is counted and ignored), forwards its datagrams to the reflector from an
// ephemeral upstream socket, and forwards the reflector's replies back to the sender. Per
// direction it applies, in this order of decision:
//
//   drop     with probability --X-drop (nothing else happens to a dropped datagram);
//   hold     "late" with probability --X-late (extra --X-late-ms), else "reorder" with probability
//            --X-reorder (extra --X-reorder-ms); a datagram is held at most once;
//   delay    --X-delay ms fixed + uniform [0, --X-jitter] ms (+ the hold). Jitter larger than the
//            gap between datagrams reorders them naturally: release is by time, not arrival;
//   duplicate with probability --X-dup: a second copy leaves --X-dup-gap ms after the first.
//
// X is "fwd" (sender → reflector) or "bwd" (reflector → sender). The decisions for a datagram come
// from a std::mt19937_64 seeded with splitmix64(--seed, direction, key, occurrence), where key is
// the TWAMP/STAMP Sender Sequence Number — octets 0..3 forward, octets 24..27 backward (where a
// reply echoes it; octets 0..3 if the reply is shorter) — and occurrence counts earlier datagrams
// with the same key. So a run is reproducible packet by packet whatever the arrival order, which
// natural reordering makes timing-dependent. Uniform variates are built from the raw 64-bit output
// (not std::*_distribution), so libstdc++ and libc++ builds agree.
//
// The relay acts as one router hop: a datagram leaves with the TTL / hop limit it arrived with
// minus one (IP_RECVTTL / IPV6_RECVHOPLIMIT), so a TWAMP sender reads 1 hop each way.
//
// Scheduling: every datagram is stamped by the kernel on arrival (SO_TIMESTAMPNS, converted to the
// steady clock through a bracketed clock reading, so a preemption between two clock reads cannot
// make it release early) and released at arrival + delay from one timer queue (a binary heap
// ordered by release time, then arrival) driven by one asio steady_timer (timerfd: nanosecond
// resolution; the process timer slack is set to 1 ns). A datagram never leaves before its release
// time; nothing sleeps per packet. Memory is bounded (--max-queue datagrams, --max-queue-bytes
// octets in flight; beyond that a datagram is dropped and recorded as "overflow"; --max-record
// datagrams per direction recorded in detail) and so is time (--duration, default 300 s).
//
// On SIGINT/SIGTERM or after --duration the relay writes its record (--record FILE, JSON, written
// to FILE.tmp and renamed) and exits 0; datagrams still queued are discarded and counted. The
// record holds, per direction, the counts, the sequence numbers (octets 0..3) that were dropped,
// duplicated and held, every datagram (seq, sender_seq, length, kernel arrival, decisions, the
// delay applied) and every transmission in the order it happened (due and actual time). Times are
// nanoseconds of the steady clock since the relay started.
//
// --plan N prints the decisions for keys 0..N-1 (first occurrence) as JSON and exits, so a test
// can choose a seed that covers its cases and check that a run did what the plan says.
//
// Once bound it prints one line on stdout: "impair_relay listening <addr>:<port> -> <target>".
// Exit status: 0 done, 2 bad command line, 3 run-time error (address, socket, record file).
#include <asio.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitRuntime = 3;
constexpr std::size_t kMaxDatagram = 65536;

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Configuration

struct direction_config {
    double delay_ms = 0;
    double jitter_ms = 0;
    double drop = 0;
    double dup = 0;
    double dup_gap_ms = 0;
    double reorder = 0;
    double reorder_ms = 0;
    double late = 0;
    double late_ms = 0;
};

struct options {
    std::string listen = "127.0.0.1:0";
    std::string target;
    std::uint64_t seed = 1;
    double duration_s = 300;
    std::string record;
    std::size_t max_queue = 65536;
    std::size_t max_queue_bytes = std::size_t{64} << 20;
    std::size_t max_record = std::size_t{1} << 20;
    std::int64_t plan = -1; // --plan N
    direction_config dir[2];
};

constexpr const char* kDirName[2] = {"forward", "backward"};
constexpr const char* kDirFlag[2] = {"fwd", "bwd"};

void print_help()
{
    std::printf(
        "usage: impair_relay --target HOST:PORT [options]\n"
        "  --listen HOST:PORT    where the sender sends to (default 127.0.0.1:0 = any port)\n"
        "  --target HOST:PORT    the reflector\n"
        "  --seed N              seed of the decisions (default 1)\n"
        "  --duration S          exit after S seconds (default 300, at most 86400)\n"
        "  --record FILE         write the JSON record there on exit\n"
        "  --max-queue N         datagrams in flight at most (default 65536)\n"
        "  --max-queue-bytes N   octets in flight at most (default 64 MiB)\n"
        "  --max-record N        datagrams recorded in detail per direction (default 1048576)\n"
        "  --plan N              print the decisions for keys 0..N-1 (first occurrence) in both\n"
        "                        directions as JSON and exit (needs no --target)\n"
        "per direction, X = fwd (sender -> reflector) or bwd (reflector -> sender):\n"
        "  --X-delay MS          fixed delay\n"
        "  --X-jitter MS         plus uniform [0, MS]\n"
        "  --X-drop P            drop probability\n"
        "  --X-dup P             duplicate probability\n"
        "  --X-dup-gap MS        the copy leaves MS after the original (default 0)\n"
        "  --X-reorder P         hold back with probability P ...\n"
        "  --X-reorder-ms MS     ... by MS extra\n"
        "  --X-late P            hold back with probability P (decided before reorder) ...\n"
        "  --X-late-ms MS        ... by MS extra\n");
}

double parse_number(std::string_view flag, const std::string& v, double lo, double hi)
{
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || errno != 0 || !(d >= lo && d <= hi))
        throw usage_error(std::string(flag) + ": invalid value '" + v + "' (" + std::to_string(lo) +
                          " to " + std::to_string(hi) + ")");
    return d;
}

std::uint64_t parse_u64(std::string_view flag, const std::string& v, std::uint64_t hi)
{
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 0);
    if (v.empty() || v[0] == '-' || end != v.c_str() + v.size() || errno != 0 || n > hi)
        throw usage_error(std::string(flag) + ": invalid value '" + v + "'");
    return n;
}

options parse_args(int argc, char** argv)
{
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "-h" || flag == "--help") {
            print_help();
            std::exit(kExitOk);
        }
        if (i + 1 >= argc) throw usage_error(flag + ": missing value or unknown flag");
        const std::string v = argv[++i];
        if (flag == "--listen")
            o.listen = v;
        else if (flag == "--target")
            o.target = v;
        else if (flag == "--seed")
            o.seed = parse_u64(flag, v, std::numeric_limits<std::uint64_t>::max());
        else if (flag == "--duration")
            o.duration_s = parse_number(flag, v, 0.001, 86400);
        else if (flag == "--record")
            o.record = v;
        else if (flag == "--max-queue")
            o.max_queue = parse_u64(flag, v, std::size_t{1} << 24);
        else if (flag == "--max-queue-bytes")
            o.max_queue_bytes = parse_u64(flag, v, std::size_t{1} << 34);
        else if (flag == "--max-record")
            o.max_record = parse_u64(flag, v, std::size_t{1} << 26);
        else if (flag == "--plan")
            o.plan = static_cast<std::int64_t>(parse_u64(flag, v, 1u << 24));
        else {
            bool known = false;
            for (int d = 0; d < 2 && !known; ++d) {
                const std::string p = std::string("--") + kDirFlag[d] + "-";
                if (flag.rfind(p, 0) != 0) continue;
                const std::string k = flag.substr(p.size());
                direction_config& c = o.dir[d];
                constexpr double kMaxMs = 3.6e6;
                known = true;
                if (k == "delay")
                    c.delay_ms = parse_number(flag, v, 0, kMaxMs);
                else if (k == "jitter")
                    c.jitter_ms = parse_number(flag, v, 0, kMaxMs);
                else if (k == "drop")
                    c.drop = parse_number(flag, v, 0, 1);
                else if (k == "dup")
                    c.dup = parse_number(flag, v, 0, 1);
                else if (k == "dup-gap")
                    c.dup_gap_ms = parse_number(flag, v, 0, kMaxMs);
                else if (k == "reorder")
                    c.reorder = parse_number(flag, v, 0, 1);
                else if (k == "reorder-ms")
                    c.reorder_ms = parse_number(flag, v, 0, kMaxMs);
                else if (k == "late")
                    c.late = parse_number(flag, v, 0, 1);
                else if (k == "late-ms")
                    c.late_ms = parse_number(flag, v, 0, kMaxMs);
                else
                    known = false;
            }
            if (!known) throw usage_error(flag + ": unknown flag");
        }
    }
    if (o.target.empty() && o.plan < 0) throw usage_error("--target: required");
    if (o.max_queue < 1) throw usage_error("--max-queue: at least 1");
    return o;
}

// "a.b.c.d:port", "[v6]:port", "host:port".
asio::ip::udp::endpoint resolve(asio::io_context& io, const std::string& s)
{
    std::string host, port;
    if (!s.empty() && s[0] == '[') {
        const auto close = s.find(']');
        if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
            throw usage_error("bad address '" + s + "' ([v6]:port)");
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        const auto colon = s.rfind(':');
        if (colon == std::string::npos) throw usage_error("bad address '" + s + "' (host:port)");
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    (void)parse_u64("port", port, 65535);
    asio::ip::udp::resolver r(io);
    std::error_code ec;
    auto res = r.resolve(host, port, asio::ip::resolver_base::numeric_service, ec);
    if (ec || res.empty()) throw std::runtime_error("cannot resolve '" + s + "': " + ec.message());
    return res.begin()->endpoint();
}

std::string to_string(const asio::ip::udp::endpoint& ep)
{
    const auto a = ep.address().to_string();
    return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}

// ---------------------------------------------------------------------------------------------
// Decisions

std::uint64_t splitmix64(std::uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// [0, 1) with 53 bits, the same on every standard library.
double unit(std::mt19937_64& g)
{
    return static_cast<double>(g() >> 11) * 0x1p-53;
}

std::int64_t ms_to_ns(double ms)
{
    return static_cast<std::int64_t>(ms * 1e6 + 0.5);
}

enum class hold_kind : std::uint8_t { none, reorder, late };
enum class fate_kind : std::uint8_t { forward, drop, overflow };

struct decision {
    bool drop = false;
    bool dup = false;
    hold_kind hold = hold_kind::none;
    std::int64_t jitter_ns = 0;
    std::int64_t delay_ns = 0; // fixed + jitter + hold
};

decision decide(const direction_config& c, std::uint64_t seed, int dir, std::uint32_t key,
                std::uint32_t occurrence)
{
    std::uint64_t s = splitmix64(seed);
    s = splitmix64(s ^ static_cast<std::uint64_t>(dir + 1));
    s = splitmix64(s ^ key);
    s = splitmix64(s ^ (std::uint64_t{occurrence} << 32));
    std::mt19937_64 g(s);
    // Always the same number of draws, in the same order, whatever the outcome.
    const double u_drop = unit(g), u_dup = unit(g), u_late = unit(g), u_reorder = unit(g),
                 u_jitter = unit(g);
    decision d;
    d.drop = u_drop < c.drop;
    d.dup = u_dup < c.dup;
    if (u_late < c.late)
        d.hold = hold_kind::late;
    else if (u_reorder < c.reorder)
        d.hold = hold_kind::reorder;
    d.jitter_ns = static_cast<std::int64_t>(u_jitter * static_cast<double>(ms_to_ns(c.jitter_ms)));
    d.delay_ns = ms_to_ns(c.delay_ms) + d.jitter_ns;
    if (d.hold == hold_kind::late) d.delay_ns += ms_to_ns(c.late_ms);
    if (d.hold == hold_kind::reorder) d.delay_ns += ms_to_ns(c.reorder_ms);
    return d;
}

const char* hold_name(hold_kind h)
{
    return h == hold_kind::late ? "late" : h == hold_kind::reorder ? "reorder" : "none";
}

// --plan: what the relay would do to keys 0..n-1, so a test can pick a seed that covers its cases.
void print_plan(const options& o)
{
    nlohmann::json j;
    j["seed"] = o.seed;
    for (int d = 0; d < 2; ++d) {
        auto arr = nlohmann::json::array();
        for (std::int64_t k = 0; k < o.plan; ++k) {
            const decision x = decide(o.dir[d], o.seed, d, static_cast<std::uint32_t>(k), 0);
            arr.push_back({{"drop", x.drop},
                           {"dup", x.dup},
                           {"hold", hold_name(x.hold)},
                           {"jitter_ns", x.jitter_ns},
                           {"delay_ns", x.delay_ns}});
        }
        j[kDirName[d]] = std::move(arr);
    }
    std::printf("%s\n", j.dump().c_str());
}

// ---------------------------------------------------------------------------------------------
// The relay

std::uint32_t load32(const std::uint8_t* p)
{
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

struct packet_record {
    std::uint32_t seq = 0;        // octets 0..3
    std::uint32_t sender_seq = 0; // octets 24..27 (backward, len >= 28)
    std::uint32_t key = 0;
    std::uint32_t len = 0;
    std::int64_t rx_ns = 0;
    int ttl = -1; // as received; -1 unknown
    decision d{};
    fate_kind fate = fate_kind::forward;
};

struct send_record {
    std::uint32_t packet = 0; // index into packets
    std::uint8_t copy = 0;    // 0 original, 1 duplicate
    std::int64_t due_ns = 0;
    std::int64_t sent_ns = 0;
    int error = 0; // errno of a failed send
};

struct direction_state {
    std::vector<packet_record> packets;
    std::vector<send_record> sends;
    std::unordered_map<std::uint32_t, std::uint32_t> occurrences;
    std::uint64_t received = 0, forwarded = 0, dropped = 0, duplicated = 0, held_reorder = 0,
                  held_late = 0, overflow = 0, send_errors = 0, foreign = 0, short_datagrams = 0;
    bool truncated = false;
};

struct queued {
    std::int64_t due_ns = 0;
    std::uint64_t order = 0;
    int dir = 0;
    std::uint32_t packet = 0; // record index, or UINT32_MAX when not recorded
    std::uint8_t copy = 0;
    int ttl = -1; // to send with; -1 = the socket's default
    std::vector<std::uint8_t> data;
};

// Min-heap on (due, order): std::push_heap keeps the largest first, so compare reversed.
struct later {
    bool operator()(const queued& a, const queued& b) const noexcept
    {
        return a.due_ns != b.due_ns ? a.due_ns > b.due_ns : a.order > b.order;
    }
};

class relay {
public:
    relay(asio::io_context& io, options o)
        : io_(io), o_(std::move(o)), listen_(io), upstream_(io), timer_(io), end_timer_(io),
          signals_(io, SIGINT, SIGTERM), t0_(steady::now())
    {
        target_ = resolve(io, o_.target);
        const auto local = resolve(io, o_.listen);
        open(listen_, local);
        open(upstream_, asio::ip::udp::endpoint(target_.protocol(), 0));
        rx_buf_.resize(kMaxDatagram);
    }

    asio::ip::udp::endpoint local_endpoint() const { return listen_.local_endpoint(); }

    void start()
    {
        wait_readable(0);
        wait_readable(1);
        signals_.async_wait([this](const std::error_code& ec, int) {
            if (!ec) stop();
        });
        end_timer_.expires_after(
            std::chrono::nanoseconds{static_cast<std::int64_t>(o_.duration_s * 1e9)});
        end_timer_.async_wait([this](const std::error_code& ec) {
            if (!ec) stop();
        });
    }

    // Writes the record; false when it could not be written.
    bool write_record() const
    {
        if (o_.record.empty()) return true;
        nlohmann::json j;
        j["tool"] = "impair_relay";
        j["seed"] = o_.seed;
        j["listen"] = to_string(listen_.local_endpoint());
        j["target"] = to_string(target_);
        j["sender"] = have_sender_ ? nlohmann::json(to_string(sender_)) : nlohmann::json(nullptr);
        j["pending_at_exit"] = heap_.size();
        j["max_queue"] = o_.max_queue;
        j["max_queue_bytes"] = o_.max_queue_bytes;
        for (int d = 0; d < 2; ++d) {
            const direction_config& c = o_.dir[d];
            j["config"][kDirName[d]] = {{"delay_ms", c.delay_ms},
                                        {"jitter_ms", c.jitter_ms},
                                        {"drop", c.drop},
                                        {"dup", c.dup},
                                        {"dup_gap_ms", c.dup_gap_ms},
                                        {"reorder", c.reorder},
                                        {"reorder_ms", c.reorder_ms},
                                        {"late", c.late},
                                        {"late_ms", c.late_ms}};
            j[kDirName[d]] = direction_json(dirs_[d]);
        }
        const std::string tmp = o_.record + ".tmp";
        {
            std::ofstream f(tmp, std::ios::trunc);
            f << j.dump() << '\n';
            if (!f.good()) return false;
        }
        return std::rename(tmp.c_str(), o_.record.c_str()) == 0;
    }

    void stop()
    {
        std::error_code ec;
        timer_.cancel();
        end_timer_.cancel();
        signals_.cancel(ec);
        listen_.cancel(ec);
        upstream_.cancel(ec);
        io_.stop();
    }

private:
    static void open(asio::ip::udp::socket& s, const asio::ip::udp::endpoint& ep)
    {
        s.open(ep.protocol());
        s.bind(ep);
        s.non_blocking(true);
        const int on = 1;
        if (::setsockopt(s.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0)
            throw std::runtime_error(std::string("SO_TIMESTAMPNS: ") + std::strerror(errno));
        // The relay acts as one router hop: a datagram leaves with the TTL / hop limit it came
        // with minus one (so the sender's hop counts read 1 each way).
        if (ep.address().is_v4()) {
            if (::setsockopt(s.native_handle(), IPPROTO_IP, IP_RECVTTL, &on, sizeof on) != 0)
                throw std::runtime_error(std::string("IP_RECVTTL: ") + std::strerror(errno));
        } else if (::setsockopt(s.native_handle(), IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on,
                                sizeof on) != 0) {
            throw std::runtime_error(std::string("IPV6_RECVHOPLIMIT: ") + std::strerror(errno));
        }
        const int buf = 4 << 20; // the kernel caps it at rmem_max / wmem_max
        (void)::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        (void)::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    }

    std::int64_t now_ns() const { return (steady::now() - t0_).count(); }

    static std::int64_t realtime_ns()
    {
        timespec t{};
        ::clock_gettime(CLOCK_REALTIME, &t);
        return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
    }

    // CLOCK_REALTIME minus our steady time, from the narrowest of up to four real/steady/real
    // brackets: a preemption between two reads would otherwise skew every conversion by its
    // length (tens of microseconds to milliseconds on a loaded machine) and release early.
    std::int64_t realtime_minus_steady() const
    {
        std::int64_t best_width = std::numeric_limits<std::int64_t>::max(), offset = 0;
        for (int i = 0; i < 4; ++i) {
            const std::int64_t r1 = realtime_ns();
            const std::int64_t s = now_ns();
            const std::int64_t r2 = realtime_ns();
            if (r2 - r1 < best_width) {
                best_width = r2 - r1;
                offset = r1 + (r2 - r1) / 2 - s;
            }
            if (best_width < 2000) break;
        }
        return offset;
    }

    // dir 0: the listen socket (from the sender); dir 1: the upstream socket (from the reflector).
    void wait_readable(int dir)
    {
        auto& s = dir == 0 ? listen_ : upstream_;
        s.async_wait(asio::ip::udp::socket::wait_read, [this, dir](const std::error_code& ec) {
            if (ec) return;
            drain(dir);
            wait_readable(dir);
        });
    }

    void drain(int dir)
    {
        auto& s = dir == 0 ? listen_ : upstream_;
        for (int n = 0; n < 64; ++n) { // bounded: the loop comes back for the rest
            sockaddr_storage from{};
            iovec iov{rx_buf_.data(), rx_buf_.size()};
            alignas(cmsghdr) std::array<char, 256> control{};
            msghdr msg{};
            msg.msg_name = &from;
            msg.msg_namelen = sizeof from;
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.data();
            msg.msg_controllen = control.size();
            const ssize_t r = ::recvmsg(s.native_handle(), &msg, MSG_DONTWAIT);
            if (r < 0) return; // EAGAIN, or an ICMP error reported on the socket: nothing to do
            const std::int64_t steady_now = now_ns();
            std::int64_t rx = steady_now;
            int ttl = -1;
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                    (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
                    std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
                }
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    timespec ts{};
                    std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    // The kernel's arrival time on the steady clock; a clock step makes it
                    // nonsense (in the future, or over a second old), then the read time is used.
                    const std::int64_t k =
                        ts.tv_sec * 1'000'000'000LL + ts.tv_nsec - realtime_minus_steady();
                    if (k <= steady_now && steady_now - k < 1'000'000'000LL) rx = k;
                }
            }
            asio::ip::udp::endpoint src;
            src.resize(msg.msg_namelen);
            std::memcpy(src.data(), &from, std::min<std::size_t>(msg.msg_namelen, sizeof from));
            on_datagram(dir, src, static_cast<std::size_t>(r), rx, ttl);
        }
    }

    void on_datagram(int dir, const asio::ip::udp::endpoint& src, std::size_t len, std::int64_t rx,
                     int ttl)
    {
        direction_state& st = dirs_[dir];
        if (dir == 0) {
            if (!have_sender_) {
                sender_ = src;
                have_sender_ = true;
            } else if (src != sender_) {
                ++st.foreign;
                return;
            }
        } else if (src != target_ || !have_sender_) {
            ++st.foreign;
            return;
        }
        ++st.received;
        const std::uint8_t* p = rx_buf_.data();
        if (len < 4) ++st.short_datagrams;
        packet_record rec;
        rec.len = static_cast<std::uint32_t>(len);
        rec.rx_ns = rx;
        rec.ttl = ttl;
        rec.seq = len >= 4 ? load32(p) : 0;
        rec.sender_seq = dir == 1 && len >= 28 ? load32(p + 24) : rec.seq;
        rec.key = rec.sender_seq;
        std::uint32_t occurrence = 0;
        if (auto it = st.occurrences.find(rec.key); it != st.occurrences.end()) {
            occurrence = ++it->second;
        } else if (st.occurrences.size() < o_.max_record) {
            st.occurrences.emplace(rec.key, 0);
        }
        rec.d = decide(o_.dir[dir], o_.seed, dir, rec.key, occurrence);

        std::uint32_t index = std::numeric_limits<std::uint32_t>::max();
        if (st.packets.size() < o_.max_record) {
            index = static_cast<std::uint32_t>(st.packets.size());
        } else {
            st.truncated = true;
        }
        if (rec.d.drop) {
            rec.fate = fate_kind::drop;
            ++st.dropped;
        } else {
            const int copies = rec.d.dup ? 2 : 1;
            if (heap_.size() + copies > o_.max_queue ||
                queued_bytes_ + copies * len > o_.max_queue_bytes) {
                rec.fate = fate_kind::overflow;
                ++st.overflow;
            } else {
                if (rec.d.hold == hold_kind::late) ++st.held_late;
                if (rec.d.hold == hold_kind::reorder) ++st.held_reorder;
                if (rec.d.dup) ++st.duplicated;
                const std::int64_t due = rx + rec.d.delay_ns;
                const int out_ttl = ttl > 1 ? ttl - 1 : -1;
                push(due, dir, index, 0, out_ttl, p, len);
                if (rec.d.dup)
                    push(due + ms_to_ns(o_.dir[dir].dup_gap_ms), dir, index, 1, out_ttl, p, len);
                arm();
            }
        }
        if (index != std::numeric_limits<std::uint32_t>::max()) st.packets.push_back(rec);
    }

    void push(std::int64_t due, int dir, std::uint32_t index, std::uint8_t copy, int ttl,
              const std::uint8_t* p, std::size_t len)
    {
        queued q;
        q.due_ns = due;
        q.order = order_++;
        q.dir = dir;
        q.packet = index;
        q.copy = copy;
        q.ttl = ttl;
        q.data.assign(p, p + len);
        queued_bytes_ += len;
        heap_.push_back(std::move(q));
        std::push_heap(heap_.begin(), heap_.end(), later{});
    }

    // Keeps the timer on the earliest release time.
    void arm()
    {
        if (heap_.empty()) return;
        const std::int64_t due = heap_.front().due_ns;
        if (armed_ && armed_due_ <= due) return;
        armed_ = true;
        armed_due_ = due;
        timer_.expires_at(t0_ + std::chrono::nanoseconds{due}); // cancels an earlier wait
        timer_.async_wait([this](const std::error_code& ec) {
            if (ec) return; // re-armed earlier, or stopping
            armed_ = false;
            release_due();
            arm();
        });
    }

    void release_due()
    {
        // Bounded per wake-up so that receiving is not starved; the timer fires again at once.
        for (int n = 0; n < 1024 && !heap_.empty(); ++n) {
            const std::int64_t now = now_ns();
            if (heap_.front().due_ns > now) return;
            std::pop_heap(heap_.begin(), heap_.end(), later{});
            queued q = std::move(heap_.back());
            heap_.pop_back();
            queued_bytes_ -= q.data.size();
            transmit(q, now);
        }
    }

    void transmit(const queued& q, std::int64_t now)
    {
        direction_state& st = dirs_[q.dir];
        auto& s = q.dir == 0 ? upstream_ : listen_;
        const auto& to = q.dir == 0 ? target_ : sender_;
        set_ttl(q.dir, q.ttl);
        ssize_t r;
        do {
            r = ::sendto(s.native_handle(), q.data.data(), q.data.size(), 0, to.data(),
                         static_cast<socklen_t>(to.size()));
        } while (r < 0 && errno == EINTR);
        const int err = r < 0 ? errno : 0;
        if (err)
            ++st.send_errors;
        else
            ++st.forwarded;
        if (q.packet != std::numeric_limits<std::uint32_t>::max())
            st.sends.push_back({q.packet, q.copy, q.due_ns, now, err});
    }

    void set_ttl(int dir, int ttl)
    {
        if (ttl < 0 || ttl == out_ttl_[dir]) return;
        auto& s = dir == 0 ? upstream_ : listen_;
        const bool v4 = (dir == 0 ? target_ : sender_).address().is_v4();
        const int rc =
            v4 ? ::setsockopt(s.native_handle(), IPPROTO_IP, IP_TTL, &ttl, sizeof ttl)
               : ::setsockopt(s.native_handle(), IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
        if (rc == 0) out_ttl_[dir] = ttl;
    }

    static const char* name(hold_kind h) { return hold_name(h); }
    static const char* name(fate_kind f)
    {
        return f == fate_kind::drop ? "drop" : f == fate_kind::overflow ? "overflow" : "forward";
    }

    static nlohmann::json direction_json(const direction_state& st)
    {
        nlohmann::json j;
        j["received"] = st.received;
        j["forwarded"] = st.forwarded; // transmissions, duplicates included
        j["dropped"] = st.dropped;
        j["duplicated"] = st.duplicated;
        j["held_reorder"] = st.held_reorder;
        j["held_late"] = st.held_late;
        j["overflow"] = st.overflow;
        j["send_errors"] = st.send_errors;
        j["foreign"] = st.foreign;
        j["short"] = st.short_datagrams;
        j["record_truncated"] = st.truncated;
        auto seqs = nlohmann::json::object();
        seqs["dropped"] = nlohmann::json::array();
        seqs["duplicated"] = nlohmann::json::array();
        seqs["held_reorder"] = nlohmann::json::array();
        seqs["held_late"] = nlohmann::json::array();
        auto packets = nlohmann::json::array();
        for (const auto& p : st.packets) {
            if (p.fate == fate_kind::drop) seqs["dropped"].push_back(p.seq);
            if (p.fate == fate_kind::forward) {
                if (p.d.dup) seqs["duplicated"].push_back(p.seq);
                if (p.d.hold == hold_kind::reorder) seqs["held_reorder"].push_back(p.seq);
                if (p.d.hold == hold_kind::late) seqs["held_late"].push_back(p.seq);
            }
            packets.push_back({{"seq", p.seq},
                               {"sender_seq", p.sender_seq},
                               {"len", p.len},
                               {"ttl", p.ttl},
                               {"rx_ns", p.rx_ns},
                               {"fate", name(p.fate)},
                               {"hold", name(p.d.hold)},
                               {"dup", p.d.dup},
                               {"jitter_ns", p.d.jitter_ns},
                               {"delay_ns", p.d.delay_ns}});
        }
        j["seqs"] = std::move(seqs);
        j["packets"] = std::move(packets);
        auto sends = nlohmann::json::array();
        for (const auto& s : st.sends)
            sends.push_back({{"packet", s.packet},
                             {"copy", s.copy},
                             {"due_ns", s.due_ns},
                             {"sent_ns", s.sent_ns},
                             {"error", s.error}});
        j["sends"] = std::move(sends);
        return j;
    }

    asio::io_context& io_;
    options o_;
    asio::ip::udp::socket listen_;
    asio::ip::udp::socket upstream_;
    asio::steady_timer timer_;
    asio::steady_timer end_timer_;
    asio::signal_set signals_;
    steady::time_point t0_;
    asio::ip::udp::endpoint target_;
    asio::ip::udp::endpoint sender_;
    bool have_sender_ = false;
    std::vector<std::uint8_t> rx_buf_;
    std::vector<queued> heap_;
    std::size_t queued_bytes_ = 0;
    std::uint64_t order_ = 0;
    bool armed_ = false;
    std::int64_t armed_due_ = 0;
    direction_state dirs_[2];
    int out_ttl_[2] = {-1, -1};
};

} // namespace

int main(int argc, char** argv)
{
    options o;
    try {
        o = parse_args(argc, argv);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "impair_relay: %s\n", e.what());
        return kExitUsage;
    }
    if (o.plan >= 0) {
        print_plan(o);
        return kExitOk;
    }
    // Wake timers on time: the default slack is 50 us.
    (void)::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    try {
        asio::io_context io(1);
        relay r(io, o);
        r.start();
        std::printf("impair_relay listening %s -> %s\n", to_string(r.local_endpoint()).c_str(),
                    o.target.c_str());
        std::fflush(stdout);
        io.run();
        if (!r.write_record()) {
            std::fprintf(stderr, "impair_relay: cannot write %s\n", o.record.c_str());
            return kExitRuntime;
        }
    } catch (const usage_error& e) {
        std::fprintf(stderr, "impair_relay: %s\n", e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "impair_relay: %s\n", e.what());
        return kExitRuntime;
    }
    return kExitOk;
}
