// twamp/asio/server.hpp — a TWAMP Server and Session-Reflector on one asio event loop.
//
// RFC 5357 §3 (control) and §4.2 (reflector), RFC 5938 (individual session control), RFC 6038
// (reflect octets, symmetrical size), RFC 8545 (ports). Every control connection is a
// control::control_server state machine fed from its TCP socket; no thread or process per
// connection. Test sessions are reflected by shared ports (shared_reflector.hpp: the TWAMP
// Light hot path, one socket for up to sessions_per_port sessions, demultiplexed by sender
// address and port). A session is granted the requested port when it is free (a new socket) or
// already ours and shared by sessions its sender can be told apart from; otherwise it joins a
// port of ours with room, otherwise it gets a new socket on a port from the configured range (any
// port without one); when none of that works the request is answered with Accept 5 (temporary
// resource limit) and Port 0.
//
// Session life: accepted (packets dropped), started (reflecting from its Start Time), stopped
// (still reflecting for its Timeout, RFC 5357 §3.8), ended. Start Time and Timeout end are
// compared with each packet's receive time. A session that receives nothing for REFWAIT ends on
// its own and gives its socket back. Closing the control connection ends its sessions at once.
//
// Limits (see README "Security model and limits"): every session that holds a flow (accepted,
// running, stopped and waiting out its Timeout) counts against the connection's max_sessions
// and the server-wide max_test_sessions; Timeouts are capped at max_timeout; a descriptor
// budget read from RLIMIT_NOFILE answers requests that would need a new socket with Accept 5 and
// connections with a Modes 0 greeting before the process runs out, and one descriptor is held
// in reserve so that even then a connection is accepted, answered and closed instead of left in
// the queue.
//
// Time (twamp/clock.hpp): the Clock policy's wall_now() gives Server-Start's Start-Time, SIDs
// and T3; every deadline (SERVWAIT, REFWAIT, Stop-Sessions + Timeout, the flush grace, a held
// refusal) runs on its mono_now(). A session's Start Time, a wall time on the wire, becomes a
// monotonic deadline when Start-Sessions arrives.
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/clock.hpp"
#include "twamp/asio/detail/control_transport.hpp"
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/shared_reflector.hpp"
#include "twamp/asio/test_guard.hpp"
#include "twamp/clock.hpp"
#include "twamp/control_server.hpp"

#include <asio.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

namespace twamp::net {

// An address prefix for --allow (10.0.0.0/8, 2001:db8::/32, 192.0.2.1).
struct address_prefix {
    asio::ip::address address;
    unsigned length = 0;

    static std::optional<address_prefix> parse(const std::string& s)
    {
        const auto slash = s.find('/');
        std::error_code ec;
        auto a = asio::ip::make_address(s.substr(0, slash), ec);
        if (ec) return std::nullopt;
        const unsigned max = a.is_v4() ? 32 : 128;
        unsigned len = max;
        if (slash != std::string::npos) {
            const std::string l = s.substr(slash + 1);
            if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos)
                return std::nullopt;
            len = static_cast<unsigned>(std::stoul(l));
            if (len > max) return std::nullopt;
        }
        return address_prefix{a, len};
    }

    bool contains(asio::ip::address x) const
    {
        x = unmap(x);
        if (x.is_v4() != address.is_v4()) return false;
        std::array<std::uint8_t, 16> a{}, b{};
        if (x.is_v4()) {
            auto xa = x.to_v4().to_bytes(), pa = address.to_v4().to_bytes();
            std::copy(xa.begin(), xa.end(), a.begin());
            std::copy(pa.begin(), pa.end(), b.begin());
        } else {
            a = x.to_v6().to_bytes();
            b = address.to_v6().to_bytes();
        }
        for (unsigned bit = 0; bit < length; ++bit) {
            const unsigned byte = bit / 8, mask = 0x80u >> (bit % 8);
            if ((a[byte] & mask) != (b[byte] & mask)) return false;
        }
        return true;
    }
};

struct server_options {
    asio::ip::tcp::endpoint local{asio::ip::address_v6::any(), control::kControlPort};
    control::server_config control{};   // modes, SERVWAIT, sessions per connection, ...
    std::size_t max_connections = 1024; // beyond it: a Modes 0 greeting, then close
    std::vector<address_prefix> allow;  // empty: everybody
    std::uint16_t test_port_low = 0;    // range for reflector ports when the requested
    std::uint16_t test_port_high = 0;   // one is taken; 0/0: let the kernel choose
    std::chrono::nanoseconds refwait = std::chrono::seconds{900};
    // Test sessions, server-wide (each holds a flow of a few KiB, not a descriptor); 0: the
    // default, kDefaultMaxTestSessions. Beyond it requests get Accept 5.
    std::size_t max_test_sessions = 0;
    // Sessions one reflector port (socket) serves at most; 1: a socket per session.
    std::size_t sessions_per_port = 1024;
    // Longest Timeout granted (RFC 5357 §3.8 wait after Stop-Sessions); longer requests get this.
    std::chrono::nanoseconds max_timeout = std::chrono::seconds{60};
    // How long a closing connection may take to flush its last messages to a peer that does not
    // read (zero TCP window) before it is closed anyway.
    std::chrono::nanoseconds flush_grace = std::chrono::seconds{2};
    // PBKDF2 key derivations (protected Set-Up-Responses) per second, server-wide; each source
    // address gets a quarter of it. 0: 2^18 / --count (about an eighth of a core). Beyond it a
    // client gets Server-Start Accept 1 after refusal_delay, without the derivation.
    double key_derivations_per_second = 0;
    std::chrono::nanoseconds refusal_delay = std::chrono::seconds{1};
    socket_options test_socket{};                // TTL etc. of reflector sockets
    std::function<void(const std::string&)> log; // optional; called off the packet path
};

struct server_counters {
    std::uint64_t connections = 0;
    std::uint64_t refused_connections = 0; // Modes 0 greetings for limits or --allow
    std::uint64_t accept_errors = 0;       // accept() failures (EMFILE, ENFILE, ENOBUFS...)
    std::uint64_t sessions_accepted = 0;
    std::uint64_t sessions_rejected = 0;
    std::uint64_t sessions_ended_refwait = 0;
    std::uint64_t packets_reflected = 0;      // by sessions that have ended
    std::uint64_t test_packets_unmatched = 0; // on ports now closed: no session's sender
    std::uint64_t test_ports_opened = 0;      // reflector sockets opened
    std::uint64_t sessions_joined_port = 0;   // sessions given a port already open
    std::uint64_t test_auth_failures =
        0; // protected test packets that failed their HMAC (ended sessions)
    std::uint64_t sessions_refused_budget = 0;      // Accept 5: server-wide or descriptor budget
    std::uint64_t sessions_refused_lingering = 0;   // Accept 5: stopped sessions fill max_sessions
    std::uint64_t sessions_refused_third_party = 0; // Accept 1: Sender Address not allowed
    std::uint64_t timeouts_capped = 0;              // Timeouts above max_timeout
    std::uint64_t connections_refused_descriptors = 0; // Modes 0: descriptor budget or reserve
    std::uint64_t flush_grace_closes = 0;              // closed while the peer was not reading
    std::uint64_t key_derivations = 0;                 // PBKDF2 runs for protected set-ups
    std::uint64_t key_derivations_refused = 0;         // Accept 1 (delayed) by the rate limit
};

// Descriptors the server leaves to everything it does not count itself (standard streams,
// epoll/eventfd/timerfd, the signal pipe, resolver, log files) and to the reserve.
inline constexpr std::size_t kDescriptorSpare = 16;

// The descriptor limit (soft RLIMIT_NOFILE), bounded so an "unlimited" limit stays usable.
inline std::size_t descriptor_limit()
{
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 1u << 20;
    return static_cast<std::size_t>(std::min<rlim_t>(rl.rlim_cur, rlim_t{1} << 20));
}

// Default --max-test-sessions. Sessions share sockets, so descriptors do not bound them; their
// memory does (a few KiB each: 16384 sessions stay well under 100 MiB).
inline constexpr std::size_t kDefaultMaxTestSessions = 16384;

// Descriptors open in this process now (/proc/self/fd), or nullopt where that cannot be read.
inline std::optional<std::size_t> open_descriptor_count()
{
    DIR* d = opendir("/proc/self/fd");
    if (!d) return std::nullopt;
    std::size_t n = 0;
    while (const dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n > 0 ? n - 1 : 0; // not the directory's own descriptor
}

template <transport_control_policy Security = control::open_security,
          clock_policy Clock = system_clock_policy>
class twamp_server {
public:
    using security_factory = std::function<Security()>;

    twamp_server(asio::io_context& io, server_options o, security_factory make_security = {},
                 Clock clock = {})
        : io_(io), opts_(std::move(o)), clock_(std::move(clock)), acceptor_(io), accept_retry_(io),
          make_security_(std::move(make_security))
    {
        if (!make_security_) make_security_ = [] { return Security{}; };
    }

    std::error_code open()
    {
        std::error_code ec;
        acceptor_.open(opts_.local.protocol(), ec);
        if (ec) return ec;
        acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (opts_.local.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(false), ec);
        acceptor_.bind(opts_.local, ec);
        if (ec) return ec;
        acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (!opts_.control.server_start_time.count())
            opts_.control.server_start_time = clock_.wall_now();
        nofile_ = descriptor_limit();
        if (opts_.key_derivations_per_second <= 0)
            opts_.key_derivations_per_second =
                std::max(1.0, double(1u << 18) / std::max<std::uint32_t>(opts_.control.count, 1));
        if (opts_.max_test_sessions == 0) opts_.max_test_sessions = kDefaultMaxTestSessions;
        if (opts_.sessions_per_port == 0) opts_.sessions_per_port = 1;
        if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        // Everything open now (acceptor, reserve, the event loop's own) is the baseline.
        base_fds_ = open_descriptor_count().value_or(8);
        return ec;
    }

    // Closes every connection first: their handlers still queued then find them closing and
    // never reach this object (see connection::closing); the acceptor's find life_ expired.
    ~twamp_server()
    {
        stop();
        if (worker_) worker_->join(); // a derivation running now finishes; its result is dropped
        if (reserve_fd_ >= 0) ::close(reserve_fd_);
    }
    twamp_server(const twamp_server&) = delete;
    twamp_server& operator=(const twamp_server&) = delete;

    const server_options& options() const noexcept { return opts_; }
    // Descriptors the server holds by its own count: baseline, control connections, test sockets.
    std::size_t descriptors_in_use() const noexcept
    {
        return base_fds_ + connections_.size() + ports_.size();
    }
    // Test sessions holding a flow (any state), server-wide.
    std::size_t live_test_sessions() const noexcept { return live_flows_; }

    asio::ip::tcp::endpoint local_endpoint() const
    {
        std::error_code ec;
        return acceptor_.local_endpoint(ec);
    }

    void start() { accept_next(); }

    void stop()
    {
        std::error_code ec;
        acceptor_.close(ec);
        accept_retry_.cancel();
        auto conns = connections_;
        for (auto& c : conns)
            c->shutdown("server stopping");
    }

    std::size_t connection_count() const noexcept { return connections_.size(); }
    std::size_t session_count() const noexcept
    {
        std::size_t n = 0;
        for (const auto& c : connections_)
            n += c->sessions.size();
        return n;
    }
    const server_counters& counters() const noexcept { return counters_; }
    // Server counters with what open ports have counted so far added in.
    server_counters counters_now() const
    {
        server_counters c = counters_;
        for (const auto& [n, p] : ports_)
            c.test_packets_unmatched += p.refl->port_counters().not_accepted;
        return c;
    }

private:
    using port_type = basic_shared_reflector<Clock>;
    // A reflector socket and the local address it is bound to (the one its clients connected to).
    struct test_port {
        std::unique_ptr<port_type> refl;
        asio::ip::address local;
    };
    // A flow made for a request and attached to its port, before the session is accepted.
    struct port_grant {
        std::uint16_t port = 0;
        peer_key key{};
        std::unique_ptr<reflector_flow> flow;
    };

    // Its times are monotonic (the Clock's mono_now()).
    struct test_session {
        control::session_id sid{};
        control::request_tw_session request;
        std::unique_ptr<reflector_flow> reflector; // null once ended by REFWAIT
        peer_key key{};
        std::uint16_t port = 0;
        nanoseconds timeout{0};
        nanoseconds started_at{0};
        bool started = false;
        std::optional<nanoseconds> active_from;
        std::optional<nanoseconds> end_at; // stop time + Timeout
        bool ended_by_refwait = false;     // its socket is closed; kept until Stop-Sessions
    };

    struct connection : std::enable_shared_from_this<connection> {
        twamp_server& server;
        asio::ip::tcp::socket sock;
        asio::steady_timer timer;
        std::optional<control::control_server<Security>> fsm;
        detail::control_stream<control::control_server<Security>> stream{sock};
        bool closing = false;
        bool deriving = false; // fsm->derive_keys() runs on the worker thread
        bool read_paused = false;
        std::optional<nanoseconds> closed_at;  // the state machine closed; flushing its output
        std::optional<nanoseconds> hold_until; // output held back (a refused key derivation)
        static constexpr std::size_t kMaxBacklog = 64 * 1024;

        std::size_t backlog() const { return stream.in_flight() + fsm->pending_output().size(); }
        std::map<control::session_id, test_session> sessions;
        std::vector<port_grant> pending; // flows allocated, not yet claimed by a session
        std::optional<peer_key> asking;  // the sender of the request being admitted
        asio::ip::address local_addr, peer_addr;
        std::string peer;

        connection(twamp_server& s, asio::ip::tcp::socket so)
            : server(s), sock(std::move(so)), timer(s.io_)
        {
        }

        void begin(bool admitted)
        {
            std::error_code ec;
            auto le = sock.local_endpoint(ec);
            auto re = sock.remote_endpoint(ec);
            local_addr = unmap(le.address());
            peer_addr = unmap(re.address());
            peer = "[" + peer_addr.to_string() + "]:" + std::to_string(re.port());
            detail::configure_control_socket(sock, 0);
            control::connection_addresses ca;
            ca.ipvn = peer_addr.is_v4() ? 4 : 6;
            ca.client = detail::to_address_bytes(peer_addr);
            ca.server = detail::to_address_bytes(local_addr);
            control::server_config cfg = server.opts_.control;
            cfg.allocate_port = [this](std::uint16_t want) { return allocate(want); };
            cfg.admit_session = [this](const control::request_tw_session& r) {
                return admit_session(r);
            };
            // PBKDF2 runs on the server's worker thread, never on the loop that reflects.
            cfg.offload_key_derivation = true;
            cfg.admit_key_derivation = [this] {
                if (server.take_key_derivation(peer_addr)) {
                    ++server.counters_.key_derivations;
                    return true;
                }
                // The refusal goes out after a delay, so a flooding client cannot simply retry.
                ++server.counters_.key_derivations_refused;
                server.log_budget(
                    "key derivation rate limit: " + peer + " refused with Accept 1 (" +
                    std::to_string(server.counters_.key_derivations_refused) + " so far)");
                hold_until = server.clock_.mono_now() + server.opts_.refusal_delay;
                return false;
            };
            if (!admitted) cfg.admit = [](const control::connection_addresses&) { return false; };
            fsm.emplace(std::move(cfg), ca, server.now(), server.make_security_());
            pump();
            read();
        }

        // The port allocator the state machine calls, right after admit_session() for the same
        // request: give the session a flow on a port now, so the port we announce is ours.
        std::optional<std::uint16_t> allocate(std::uint16_t want)
        {
            if (!asking) return std::nullopt; // admit_session() did not pass this request
            const peer_key key = *asking;
            asking.reset();
            auto& ports = server.ports_;
            const std::size_t cap = server.opts_.sessions_per_port;
            // Join port p: ours, on the address this client connected to, with room, and no
            // session there whose sender cannot be told apart from this one.
            auto join = [&](std::uint16_t p) -> std::optional<std::uint16_t> {
                const auto it = ports.find(p);
                if (it == ports.end()) return std::nullopt;
                port_type& r = *it->second.refl;
                if (it->second.local != local_addr || r.flows() >= cap || !r.compatible(key))
                    return std::nullopt;
                if (r.flows() > 0) ++server.counters_.sessions_joined_port;
                auto f = r.make_flow(key);
                r.attach(key, *f);
                pending.push_back({p, key, std::move(f)});
                ++server.live_flows_;
                server.join_hint_ = p;
                return p;
            };
            // A new socket on port p (0: the kernel's choice). Reflector sockets are opened with
            // SO_REUSEADDR (open_udp_socket), so on Linux a second bind to a port we hold would
            // succeed and steal its packets: never open a port we already have.
            auto open = [&](std::uint16_t p) -> std::optional<std::uint16_t> {
                if (p != 0 && ports.count(p)) return std::nullopt;
                if (!server.descriptor_for_session()) return std::nullopt;
                reflector_options ro;
                ro.local = {local_addr, p};
                ro.sock = server.opts_.test_socket;
                ro.core.format = reflector_format::twamp;
                ro.core.refwait = server.opts_.refwait;
                ro.core.max_sessions = 4; // one sender per session: the smallest table
                ro.batch = cap > 1 ? 32 : 4;
                auto r = std::make_unique<port_type>(server.io_, ro, server.clock_);
                if (r->open()) return std::nullopt;
                const std::uint16_t got = r->local_endpoint().port();
                r->start(); // answers nobody until a session is attached and started
                ports.emplace(got, test_port{std::move(r), local_addr});
                ++server.counters_.test_ports_opened;
                if (auto j = join(got)) return j;
                server.close_port(got); // cannot happen: an empty port takes any session
                return std::nullopt;
            };
            const auto lo = server.opts_.test_port_low, hi = server.opts_.test_port_high;
            const bool ranged = lo != 0 || hi != 0;
            const auto in_range = [&](std::uint16_t p) { return !ranged || (p >= lo && p <= hi); };
            // A requested port is granted when it is free or shared by compatible sessions; with
            // a range set, only inside it.
            if (want != 0 && in_range(want))
                if (auto p = ports.count(want) ? join(want) : open(want)) return p;
            if (cap > 1) {
                if (server.join_hint_ && in_range(*server.join_hint_))
                    if (auto p = join(*server.join_hint_)) return p;
                for (const auto& [n, tp] : ports)
                    if (in_range(n))
                        if (auto p = join(n)) return p;
            }
            std::optional<std::uint16_t> got;
            if (!ranged) {
                got = open(0);
            } else {
                const std::uint32_t span = std::uint32_t{hi} - lo + 1;
                for (std::uint32_t i = 0; i < span && !got; ++i) {
                    const auto p =
                        static_cast<std::uint16_t>(lo + (server.port_cursor_ + i) % span);
                    if (ports.count(p)) continue;
                    if ((got = open(p))) server.port_cursor_ = (server.port_cursor_ + i + 1) % span;
                }
            }
            if (!got && !server.descriptor_for_session()) {
                ++server.counters_.sessions_refused_budget;
                server.log_budget("descriptor budget reached (" +
                                  std::to_string(server.descriptors_in_use()) + " of " +
                                  std::to_string(server.nofile_) +
                                  "): requests that need a new reflector socket get Accept 5");
            }
            return got;
        }

        // Sessions of this connection that hold a flow: accepted, running, or stopped and
        // waiting out their Timeout.
        std::size_t sessions_with_flow() const
        {
            std::size_t n = pending.size();
            for (const auto& [sid, s] : sessions)
                n += s.reflector != nullptr;
            return n;
        }

        control::accept_code admit_session(const control::request_tw_session& r)
        {
            // RFC 5357 §3.5: a Control-Client may set up a session for another Session-Sender.
            // The reflector then accepts test packets from that address, so it must be one the
            // operator allows (--allow; everybody when no prefix is set). Refused with Accept 1:
            // a policy refusal, not a lack of resources (4, 5) nor an unsupported field (3).
            const auto sender = detail::from_address_bytes(r.ipvn, r.sender_address);
            if (sender != peer_addr && !server.allowed(sender)) {
                ++server.counters_.sessions_refused_third_party;
                server.log("session request from " + peer + " refused: Sender Address " +
                           sender.to_string() + " is not the client's and not allowed");
                return control::accept_code::failure;
            }
            // Stopped sessions still hold their sockets until their Timeout: they count
            // against max_sessions too, so a client cannot pile them up by stopping and asking
            // again. They free themselves, hence Accept 5 (temporary).
            if (sessions_with_flow() >= server.opts_.control.max_sessions) {
                ++server.counters_.sessions_refused_lingering;
                return control::accept_code::temporary_limit;
            }
            if (server.live_flows_ >= server.opts_.max_test_sessions) {
                ++server.counters_.sessions_refused_budget;
                server.log_budget("test session budget reached (" +
                                  std::to_string(server.live_flows_) +
                                  " sessions): requests get Accept 5");
                return control::accept_code::temporary_limit;
            }
            asking = sender_key(sender, r.sender_port); // for allocate(), called next
            return control::accept_code::ok;
        }

        // A session's flow leaves its port (the port closes with its last flow).
        void release(std::uint16_t port, const peer_key& key, std::unique_ptr<reflector_flow>& f)
        {
            if (!f) return;
            const auto it = server.ports_.find(port);
            if (it != server.ports_.end()) {
                it->second.refl->detach(key);
                if (it->second.refl->flows() == 0) server.close_port(port);
            }
            f.reset();
            --server.live_flows_;
        }

        // Completions of this connection's reads and writes run only while it is open, and
        // keep it alive until they have run.
        auto alive()
        {
            return [self = this->shared_from_this()] { return !self->closing; };
        }

        void read()
        {
            auto self = this->shared_from_this();
            stream.read(*fsm, server.clock_, alive(), [self](const std::error_code& ec) {
                self->pump();
                if (ec || self->fsm->closed()) return;
                // A client that sends without reading its answers is not read from until they
                // are written out, so its backlog cannot grow our memory.
                if (self->backlog() > kMaxBacklog)
                    self->read_paused = true;
                else
                    self->read();
            });
        }

        // After every input or timer: handle events, write output, re-arm the timer, close.
        void pump()
        {
            while (auto ev = fsm->next_event())
                std::visit([this](auto& e) { this->on_event(e); }, *ev);
            for (auto& g : pending) // allocated for requests that were then refused
                release(g.port, g.key, g.flow);
            pending.clear();
            if (fsm->key_derivation_pending() && !deriving) derive_off_loop();
            if (hold_until) {
                const auto now = server.clock_.mono_now();
                if (now < *hold_until) {
                    hold_output(*hold_until - now);
                    return;
                }
                hold_until.reset();
            }
            write();
            if (fsm->closed() && !closed_at) closed_at = server.clock_.mono_now();
            if (fsm->closed() && !stream.writing()) {
                finish();
                return;
            }
            arm_timer();
        }

        void write()
        {
            auto self = this->shared_from_this();
            stream.write(*fsm, alive(), [self](const std::error_code& ec) {
                if (ec) {
                    self->finish();
                    return;
                }
                self->write();
                if (self->fsm->closed() && !self->stream.writing()) {
                    self->finish();
                    return;
                }
                if (self->read_paused && self->backlog() <= kMaxBacklog) {
                    self->read_paused = false;
                    self->read();
                }
            });
        }

        // The key derivation on the worker; its result comes back to this loop. Nothing here
        // touches the state machine's Security policy until then (see derive_keys()).
        void derive_off_loop()
        {
            deriving = true;
            auto self = this->shared_from_this();
            asio::io_context& io = server.io_; // outlives the server and its worker
            asio::post(server.worker(), [self, &io] {
                self->fsm->derive_keys();
                asio::post(io, [self] {
                    self->deriving = false;
                    if (self->closing) return;
                    self->fsm->keys_derived(self->server.now());
                    self->pump();
                    if (self->read_paused && self->backlog() <= kMaxBacklog && !self->closing &&
                        !self->fsm->closed()) {
                        self->read_paused = false;
                        self->read();
                    }
                });
            });
        }

        void hold_output(nanoseconds d)
        {
            timer.expires_after(d);
            auto self = this->shared_from_this();
            timer.async_wait([self](const std::error_code& ec) {
                if (ec || self->closing) return;
                self->hold_until.reset();
                self->pump();
            });
        }

        void arm_timer()
        {
            // One timer: the state machine's SERVWAIT deadline, and a periodic session check
            // (stop timeouts, REFWAIT) while there are sessions; once the state machine has
            // closed, the flush grace: a peer that does not read its last messages (zero TCP
            // window) cannot keep the connection, its slot and its sessions.
            if (closing) return;
            const auto now = server.clock_.mono_now();
            if (closed_at) {
                timer.expires_after(
                    std::max(*closed_at + server.opts_.flush_grace - now, nanoseconds{0}));
                auto self = this->shared_from_this();
                timer.async_wait([self](const std::error_code& ec) {
                    if (ec || self->closing) return;
                    ++self->server.counters_.flush_grace_closes;
                    self->shutdown("the peer does not read; flush grace expired");
                });
                return;
            }
            std::optional<nanoseconds> when = fsm->deadline();
            if (!sessions.empty()) {
                const nanoseconds tick = now + std::chrono::milliseconds{100};
                when = when ? std::min(*when, tick) : tick;
            }
            if (!when) {
                timer.cancel();
                return;
            }
            timer.expires_after(std::max(*when - now, nanoseconds{0}));
            auto self = this->shared_from_this();
            timer.async_wait([self](const std::error_code& ec) {
                if (ec || self->closing) return;
                const instant t = self->server.now();
                self->check_sessions(t);
                self->fsm->on_timer(t);
                self->pump();
            });
        }

        void check_sessions(instant at)
        {
            const nanoseconds now = at.mono;
            bool any_running = false;
            for (auto it = sessions.begin(); it != sessions.end();) {
                test_session& s = it->second;
                if (s.end_at && now >= *s.end_at) {
                    end_session(it++);
                    continue;
                }
                if (s.started && !s.ended_by_refwait && !s.end_at) {
                    // REFWAIT counts from the later of Start-Sessions and the Start Time.
                    const nanoseconds from = std::max(s.started_at, s.active_from.value_or(now));
                    const nanoseconds last = std::max(s.reflector->last_activity_mono, from);
                    if (now - last > server.opts_.refwait) {
                        s.ended_by_refwait = true;
                        ++server.counters_.sessions_ended_refwait;
                        add_totals(s);
                        server.log("session on port " + std::to_string(s.port) + " from " + peer +
                                   ": nothing received for REFWAIT, ended");
                        release(s.port, s.key, s.reflector); // now, not at Stop-Sessions
                    } else {
                        any_running = true;
                    }
                }
                ++it;
            }
            // RFC 5357 §3.1, RFC 5938 §3.6: SERVWAIT resumes once no started session still runs;
            // sessions accepted and never started do not hold it off.
            if (!any_running) fsm->refwait_expired(at);
        }

        void add_totals(const test_session& s)
        {
            if (!s.reflector) return;
            server.counters_.packets_reflected += s.reflector->core.counters().reflected;
            server.counters_.test_auth_failures += s.reflector->io.auth_failures;
        }

        void on_event(control::server_events::mode_agreed& e)
        {
            server.log("control connection " + peer + ": mode " + std::to_string(e.mode));
        }
        void on_event(control::server_events::session_accepted& e)
        {
            const peer_key key =
                sender_key(detail::from_address_bytes(e.request.ipvn, e.request.sender_address),
                           e.request.sender_port);
            const auto it = std::find_if(pending.begin(), pending.end(), [&](const port_grant& g) {
                return g.port == e.reflector_port && g.key == key;
            });
            if (it == pending.end()) return; // cannot happen: the allocator made it
            test_session s;
            s.sid = e.sid;
            s.request = e.request;
            s.port = e.reflector_port;
            s.key = key;
            s.timeout = control::duration_from_ntp(e.request.timeout);
            if (s.timeout > server.opts_.max_timeout) {
                ++server.counters_.timeouts_capped;
                server.log("session for " + peer + ": Timeout of " +
                           std::to_string(s.timeout.count() / 1000000) + " ms capped to " +
                           std::to_string(server.opts_.max_timeout.count() / 1000000) + " ms");
                s.timeout = server.opts_.max_timeout;
            }
            s.reflector = std::move(it->flow);
            pending.erase(it);
            s.reflector->reply_tos = dscp_to_tos(e.dscp);
            s.reflector->core.set_symmetric(
                (fsm->agreed_mode() & control::mode::symmetrical_size) != 0);
            // Authenticated / encrypted test packets with this SID's keys (mixed mode: protected
            // control, open test packets).
            if (auto g = detail::make_test_guard(fsm->security(), fsm->agreed_mode(), e.sid))
                server.ports_.at(s.port).refl->protect(*s.reflector, std::move(g));
            ++server.counters_.sessions_accepted;
            server.log("session accepted for " + peer + " on UDP port " + std::to_string(s.port));
            sessions.emplace(e.sid, std::move(s));
        }
        void on_event(control::server_events::session_rejected& e)
        {
            ++server.counters_.sessions_rejected;
            server.log("session request from " + peer + " refused, Accept " +
                       std::to_string(static_cast<int>(e.accept)));
        }
        void on_event(control::server_events::sessions_started& e)
        {
            const instant now = server.now();
            for (const auto& sid : e.sids) {
                auto it = sessions.find(sid);
                if (it == sessions.end()) continue;
                test_session& s = it->second;
                if (!s.reflector) continue;
                s.started = true;
                s.started_at = now.mono;
                // RFC 4656 §3.7: reflect from the session's Start Time if that is later; the
                // reflector compares each packet's receive time with it. The Start Time is a
                // wall time: it becomes a monotonic one here, once.
                nanoseconds from = now.mono;
                if (s.request.start_time.to_u64() != 0)
                    from += std::max(from_ntp(s.request.start_time, now.wall) - now.wall,
                                     nanoseconds{0});
                s.active_from = from;
                s.reflector->window_from = from;
                s.reflector->window_until = nanoseconds::max();
                s.reflector->active = true;
            }
        }
        void on_event(control::server_events::sessions_stopped& e)
        {
            for (const auto& sid : e.sids) {
                auto it = sessions.find(sid);
                if (it == sessions.end()) continue;
                test_session& s = it->second;
                s.end_at = e.at + s.timeout;
                // RFC 5357 §3.8: packets received up to Stop-Sessions + Timeout are reflected,
                // none after (compared per packet).
                if (s.reflector) {
                    s.reflector->window_from = s.active_from.value_or(e.at);
                    s.reflector->window_until = *s.end_at;
                }
            }
        }
        void on_event(control::connection_closed& e)
        {
            server.log("control connection " + peer + " closed: " + std::string(e.reason));
        }

        void end_session(typename std::map<control::session_id, test_session>::iterator it)
        {
            test_session& s = it->second;
            if (s.reflector) {
                add_totals(s);
                server.log(
                    "session on UDP port " + std::to_string(s.port) + " from " + peer +
                    " ended: reflected " + std::to_string(s.reflector->core.counters().reflected) +
                    ", not accepted " + std::to_string(s.reflector->io.not_accepted) +
                    ", authentication failures " + std::to_string(s.reflector->io.auth_failures));
                release(s.port, s.key, s.reflector);
            }
            sessions.erase(it);
        }

        void finish()
        {
            if (closing) return;
            closing = true;
            timer.cancel();
            stream.close();
            while (!sessions.empty())
                end_session(sessions.begin());
            for (auto& g : pending)
                release(g.port, g.key, g.flow);
            pending.clear();
            server.connections_.erase(this->shared_from_this());
        }

        void shutdown(const char* why)
        {
            server.log(std::string("closing ") + peer + ": " + why);
            finish();
        }
    };

    instant now() const { return now_of(clock_); }

    void log(const std::string& s)
    {
        if (opts_.log) opts_.log(s);
    }
    // A budget message at most once a second, so a flood of refused requests is not a log flood.
    void log_budget(const std::string& s)
    {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_budget_log_ < std::chrono::seconds{1}) return;
        last_budget_log_ = now;
        log(s);
    }

    // One worker thread for key derivations, started on first use.
    asio::thread_pool& worker()
    {
        if (!worker_) worker_ = std::make_unique<asio::thread_pool>(1);
        return *worker_;
    }

    // Token buckets for PBKDF2: server-wide, and a quarter of it per source address.
    struct bucket {
        double tokens = 0;
        std::chrono::steady_clock::time_point last{};
        bool take(double rate, std::chrono::steady_clock::time_point now)
        {
            if (last == std::chrono::steady_clock::time_point{})
                tokens = rate;
            else
                tokens = std::min(
                    rate, tokens + rate * std::chrono::duration<double>(now - last).count());
            last = now;
            if (tokens < 1) return false;
            tokens -= 1;
            return true;
        }
    };
    bool take_key_derivation(const asio::ip::address& peer)
    {
        const auto now = std::chrono::steady_clock::now();
        const double rate = opts_.key_derivations_per_second;
        const double per_source = std::max(1.0, rate / 4);
        if (per_source_.size() > 4096) per_source_.clear(); // bounded; forgetting is harmless
        bucket b = per_source_[peer];
        if (!b.take(per_source, now)) {
            per_source_[peer] = b;
            return false;
        }
        if (!global_.take(rate, now)) return false; // the source's token is not spent
        per_source_[peer] = b;
        return true;
    }

    bool allowed(const asio::ip::address& a) const
    {
        if (opts_.allow.empty()) return true;
        for (const auto& p : opts_.allow)
            if (p.contains(a)) return true;
        return false;
    }

    // Closes a reflector socket (its last session has left); what it counted stays in counters_.
    void close_port(std::uint16_t p)
    {
        const auto it = ports_.find(p);
        if (it == ports_.end()) return;
        counters_.test_packets_unmatched += it->second.refl->port_counters().not_accepted;
        it->second.refl->stop();
        ports_.erase(it);
        if (join_hint_ == p) join_hint_.reset();
    }

    // One more test socket must leave the spare untouched.
    bool descriptor_for_session() const noexcept
    {
        return descriptors_in_use() + 1 + kDescriptorSpare <= nofile_;
    }
    bool descriptor_for_connection() const noexcept
    {
        return descriptors_in_use() + 1 + kDescriptorSpare / 2 <= nofile_;
    }

    // Out of descriptors although the budget said otherwise (another part of the process, the
    // system-wide limit): give the reserve descriptor up for one accept, answer the connection
    // with a Modes 0 greeting (RFC 4656 §3.1: the server will not serve it), close it, take the
    // reserve back. The client gets an answer instead of waiting in the listen queue.
    bool accept_with_reserve()
    {
        if (reserve_fd_ < 0) return false;
        ::close(reserve_fd_);
        reserve_fd_ = -1;
        bool answered = false;
        const int fd =
            ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            const auto g = refusal_greeting();
            (void)!::send(fd, g.data(), g.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            ::close(fd);
            ++counters_.connections;
            ++counters_.refused_connections;
            ++counters_.connections_refused_descriptors;
            answered = true;
        }
        reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        return answered;
    }

    std::array<std::uint8_t, 64> refusal_greeting() const
    {
        control::server_greeting g; // Modes 0: no mode offered
        g.count = opts_.control.count;
        std::array<std::uint8_t, 64> out{};
        (void)control::encode(g, std::span<std::uint8_t>(out));
        return out;
    }

    void accept_next()
    {
        acceptor_.async_accept([this, life = std::weak_ptr<char>(life_)](const std::error_code& ec,
                                                                         asio::ip::tcp::socket s) {
            if (life.expired()) return;
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
            if (ec) {
                ++counters_.accept_errors;
                if (!accept_failing_) log("accept failed: " + ec.message());
                accept_failing_ = true;
                if ((ec.value() == EMFILE || ec.value() == ENFILE) && accept_with_reserve()) {
                    accept_next();
                    return;
                }
                // Still nothing (out of memory, or no reserve): the connection stays queued and
                // the acceptor readable, so accepting again at once would spin at full CPU.
                // Retry after a pause; connections closing meanwhile free descriptors.
                accept_retry_.expires_after(std::chrono::milliseconds{100});
                accept_retry_.async_wait(
                    [this, life = std::weak_ptr<char>(life_)](const std::error_code& e) {
                        if (!life.expired() && !e && acceptor_.is_open()) accept_next();
                    });
                return;
            }
            accept_failing_ = false;
            ++counters_.connections;
            auto c = std::make_shared<connection>(*this, std::move(s));
            std::error_code e2;
            const auto peer = unmap(c->sock.remote_endpoint(e2).address());
            bool admitted = connections_.size() < opts_.max_connections && allowed(peer);
            // The descriptor budget: near it, a Modes 0 greeting rather than a connection we
            // could not serve. Sessions stop half the spare earlier, so this still has room.
            if (admitted && !descriptor_for_connection()) {
                admitted = false;
                ++counters_.connections_refused_descriptors;
                log_budget("descriptor budget reached (" + std::to_string(descriptors_in_use()) +
                           " of " + std::to_string(nofile_) +
                           "): new connections get a Modes 0 greeting");
            }
            if (!admitted) ++counters_.refused_connections;
            connections_.insert(c);
            c->begin(admitted);
            accept_next();
        });
    }

    asio::io_context& io_;
    server_options opts_;
    Clock clock_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer accept_retry_;
    bool accept_failing_ = false;
    security_factory make_security_;
    std::set<std::shared_ptr<connection>> connections_;
    std::map<std::uint16_t, test_port> ports_; // reflector sockets by port number
    std::optional<std::uint16_t> join_hint_;   // the port last given out: likely to have room
    std::uint32_t port_cursor_ = 0;
    server_counters counters_;
    std::size_t nofile_ = 1024;
    std::size_t base_fds_ = 8;
    std::size_t live_flows_ = 0; // test sessions holding a flow, and flows being allocated
    int reserve_fd_ = -1;
    std::chrono::steady_clock::time_point last_budget_log_{};
    bucket global_;
    std::map<asio::ip::address, bucket> per_source_;
    std::unique_ptr<asio::thread_pool> worker_;
    std::shared_ptr<char> life_ = std::make_shared<char>(0); // see the handlers' weak refs
};

} // namespace twamp::net
