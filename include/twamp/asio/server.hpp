// twamp/asio/server.hpp — a TWAMP Server and Session-Reflector on one asio event loop.
//
// RFC 5357 §3 (control) and §4.2 (reflector), RFC 5938 (individual session control), RFC 6038
// (reflect octets, symmetrical size), RFC 8545 (ports). Every control connection is a
// control::control_server state machine fed from its TCP socket; no thread or process per
// connection. Each accepted test session gets its own UDP socket and the TWAMP Light reflector
// (udp_reflector: same hot path and counters), opened on the port the session is granted:
// the requested one when it is free, otherwise one from the configured range, otherwise the
// request is answered with Accept 5 (temporary resource limit) and Port 0.
//
// Session life: accepted (packets dropped), started (reflecting from its Start Time), stopped
// (still reflecting for its Timeout, RFC 5357 §3.8), ended. A session that receives nothing for
// REFWAIT ends on its own. Closing the control connection ends its sessions at once.
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/clock.hpp"
#include "twamp/asio/reflector.hpp"
#include "twamp/asio/test_guard.hpp"
#include "twamp/control_server.hpp"

#include <asio.hpp>

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
        if (x.is_v6() && x.to_v6().is_v4_mapped())
            x = asio::ip::make_address_v4(asio::ip::v4_mapped, x.to_v6());
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
    std::uint64_t packets_reflected = 0; // by sessions that have ended
    std::uint64_t test_auth_failures =
        0; // protected test packets that failed their HMAC (ended sessions)
};

template <class Security = control::open_security> class twamp_server {
public:
    using security_factory = std::function<Security()>;

    twamp_server(asio::io_context& io, server_options o, security_factory make_security = {})
        : io_(io), opts_(std::move(o)), acceptor_(io), accept_retry_(io),
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
            opts_.control.server_start_time = realtime_now();
        return ec;
    }

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

private:
    struct test_session {
        control::session_id sid{};
        control::request_tw_session request;
        std::unique_ptr<udp_reflector> reflector;
        std::uint16_t port = 0;
        nanoseconds timeout{0};
        nanoseconds started_at{0};
        bool started = false;
        std::optional<nanoseconds> active_from;
        std::optional<nanoseconds> end_at; // stop time + Timeout
        bool ended_by_refwait = false;
    };

    struct connection : std::enable_shared_from_this<connection> {
        twamp_server& server;
        asio::ip::tcp::socket sock;
        asio::steady_timer timer;
        std::optional<control::control_server<Security>> fsm;
        std::array<std::uint8_t, 4096> rbuf{};
        std::vector<std::uint8_t> wbuf;
        bool writing = false;
        bool closing = false;
        bool read_paused = false;
        static constexpr std::size_t kMaxBacklog = 64 * 1024;

        std::size_t backlog() const { return wbuf.size() * writing + fsm->pending_output().size(); }
        std::map<control::session_id, test_session> sessions;
        std::map<std::uint16_t, std::unique_ptr<udp_reflector>>
            pending; // ports allocated, not yet claimed
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
            sock.set_option(asio::ip::tcp::no_delay(true), ec);
            control::connection_addresses ca;
            ca.ipvn = peer_addr.is_v4() ? 4 : 6;
            ca.client = to_bytes(peer_addr);
            ca.server = to_bytes(local_addr);
            control::server_config cfg = server.opts_.control;
            cfg.allocate_port = [this](std::uint16_t want) { return allocate(want); };
            if (!admitted) cfg.admit = [](const control::connection_addresses&) { return false; };
            fsm.emplace(std::move(cfg), ca, realtime_now(), server.make_security_());
            pump();
            read();
        }

        static asio::ip::address unmap(const asio::ip::address& a)
        {
            if (a.is_v6() && a.to_v6().is_v4_mapped())
                return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
            return a;
        }
        static control::address_bytes to_bytes(const asio::ip::address& a)
        {
            control::address_bytes b{};
            if (a.is_v4()) {
                auto v = a.to_v4().to_bytes();
                std::copy(v.begin(), v.end(), b.begin());
            } else {
                b = a.to_v6().to_bytes();
            }
            return b;
        }
        static asio::ip::address from_bytes(std::uint8_t ipvn, const control::address_bytes& b)
        {
            if (ipvn == 4) return asio::ip::address_v4({b[0], b[1], b[2], b[3]});
            return asio::ip::address_v6(b);
        }

        // The port allocator the state machine calls: bind a reflector socket now, so the port
        // we announce is really ours.
        std::optional<std::uint16_t> allocate(std::uint16_t want)
        {
            auto try_port = [&](std::uint16_t p) -> std::optional<std::uint16_t> {
                // Reflector sockets are opened with SO_REUSEADDR (open_udp_socket), so on Linux a
                // second bind to a port one of our sessions holds would succeed and steal its
                // packets: never hand out a port we already use or have just allocated.
                if (p != 0 && (server.ports_in_use_.count(p) || pending.count(p)))
                    return std::nullopt;
                reflector_options ro;
                ro.local = {local_addr, p};
                ro.sock = server.opts_.test_socket;
                ro.core.format = reflector_format::twamp;
                ro.core.refwait = server.opts_.refwait;
                ro.core.max_sessions = 16;
                ro.batch = 4; // one sender per session: a small batch keeps per-session memory low
                auto r = std::make_unique<udp_reflector>(server.io_, ro);
                if (r->open()) return std::nullopt;
                const std::uint16_t got = r->local_endpoint().port();
                r->set_active(false);
                pending[got] = std::move(r);
                return got;
            };
            if (want != 0)
                if (auto p = try_port(want)) return p;
            const auto lo = server.opts_.test_port_low, hi = server.opts_.test_port_high;
            if (lo == 0 && hi == 0) return try_port(0);
            const std::uint32_t span = std::uint32_t{hi} - lo + 1;
            for (std::uint32_t i = 0; i < span; ++i) {
                const auto p = static_cast<std::uint16_t>(lo + (server.port_cursor_ + i) % span);
                if (server.ports_in_use_.count(p)) continue;
                if (auto got = try_port(p)) {
                    server.port_cursor_ = (server.port_cursor_ + i + 1) % span;
                    return got;
                }
            }
            return std::nullopt;
        }

        void read()
        {
            auto self = this->shared_from_this();
            sock.async_read_some(asio::buffer(rbuf), [self](const std::error_code& ec,
                                                            std::size_t n) {
                if (self->closing) return;
                const auto now = realtime_now();
                if (ec)
                    self->fsm->on_eof(now);
                else
                    self->fsm->receive(std::span<const std::uint8_t>(self->rbuf.data(), n), now);
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
            pending.clear(); // allocated for requests that were then refused
            write();
            arm_timer();
            if (fsm->closed() && !writing) finish();
        }

        void write()
        {
            if (writing) return;
            const auto out = fsm->pending_output();
            if (out.empty()) return;
            wbuf.assign(out.begin(), out.end());
            fsm->consume_output(out.size());
            writing = true;
            auto self = this->shared_from_this();
            asio::async_write(sock, asio::buffer(wbuf),
                              [self](const std::error_code& ec, std::size_t) {
                                  self->writing = false;
                                  if (ec) {
                                      self->finish();
                                      return;
                                  }
                                  self->write();
                                  if (self->fsm->closed() && !self->writing) {
                                      self->finish();
                                      return;
                                  }
                                  if (self->read_paused && self->backlog() <= kMaxBacklog) {
                                      self->read_paused = false;
                                      self->read();
                                  }
                              });
        }

        void arm_timer()
        {
            // One timer: the state machine's SERVWAIT deadline, and a periodic session check
            // (start times, stop timeouts, REFWAIT) while there are sessions.
            std::optional<nanoseconds> when = fsm->deadline();
            const auto now = realtime_now();
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
                const auto t = realtime_now();
                self->check_sessions(t);
                self->fsm->on_timer(t);
                self->pump();
            });
        }

        void check_sessions(nanoseconds now)
        {
            bool any_running = false, all_refwait = !sessions.empty();
            for (auto it = sessions.begin(); it != sessions.end();) {
                test_session& s = it->second;
                // Not for a session REFWAIT ended: that one stays inactive until it is stopped.
                if (s.started && s.active_from && now >= *s.active_from && !s.reflector->active() &&
                    !s.end_at && !s.ended_by_refwait)
                    s.reflector->set_active(true);
                if (s.end_at && now >= *s.end_at) {
                    end_session(it++);
                    continue;
                }
                if (s.started && !s.ended_by_refwait) {
                    const nanoseconds last = std::max(s.reflector->last_activity(), s.started_at);
                    if (now - last > server.opts_.refwait) {
                        s.ended_by_refwait = true;
                        s.reflector->set_active(false);
                        ++server.counters_.sessions_ended_refwait;
                        server.log("session on port " + std::to_string(s.port) + " from " + peer +
                                   ": nothing received for REFWAIT, ended");
                    }
                }
                if (s.started && !s.ended_by_refwait) any_running = true;
                if (!s.ended_by_refwait) all_refwait = false;
                ++it;
            }
            if (!any_running && all_refwait) fsm->refwait_expired(now);
        }

        void on_event(control::server_events::mode_agreed& e)
        {
            server.log("control connection " + peer + ": mode " + std::to_string(e.mode));
        }
        void on_event(control::server_events::session_accepted& e)
        {
            auto it = pending.find(e.reflector_port);
            if (it == pending.end()) return; // cannot happen: the allocator made it
            test_session s;
            s.sid = e.sid;
            s.request = e.request;
            s.port = e.reflector_port;
            s.timeout = control::duration_from_ntp(e.request.timeout);
            s.reflector = std::move(it->second);
            pending.erase(it);
            s.reflector->set_tos(dscp_to_tos_octet(e.dscp));
            s.reflector->accept_only_address(from_bytes(e.request.ipvn, e.request.sender_address));
            s.reflector->set_symmetric((fsm->agreed_mode() & control::mode::symmetrical_size) != 0);
            if constexpr (requires { typename Security::crypto_type; }) {
                // Authenticated / encrypted test packets with this SID's keys (mixed mode:
                // protected control, open test packets).
                const auto m = fsm->agreed_mode();
                if (m & (control::mode::authenticated | control::mode::encrypted)) {
                    auto& sec = fsm->security();
                    auto g = std::make_unique<twamp_test_guard<typename Security::crypto_type>>(
                        (m & control::mode::authenticated) ? test_protection::authenticated
                                                           : test_protection::encrypted,
                        sec.aes_session_key().span(), sec.hmac_session_key().span(),
                        std::span<const std::uint8_t, 16>(e.sid));
                    s.reflector->set_guard(std::move(g));
                }
            }
            s.reflector->start();
            server.ports_in_use_.insert(s.port);
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
            const auto now = realtime_now();
            for (const auto& sid : e.sids) {
                auto it = sessions.find(sid);
                if (it == sessions.end()) continue;
                test_session& s = it->second;
                s.started = true;
                s.started_at = now;
                // RFC 4656 §3.7: reflect from the session's Start Time if that is later.
                nanoseconds from = now;
                if (s.request.start_time.to_u64() != 0)
                    from = std::max(now, from_ntp(s.request.start_time, now));
                s.active_from = from;
                if (from <= now) s.reflector->set_active(true);
            }
        }
        void on_event(control::server_events::sessions_stopped& e)
        {
            for (const auto& sid : e.sids) {
                auto it = sessions.find(sid);
                if (it == sessions.end()) continue;
                it->second.end_at = e.at + it->second.timeout;
            }
        }
        void on_event(control::connection_closed& e)
        {
            server.log("control connection " + peer + " closed: " + std::string(e.reason));
        }

        static int dscp_to_tos_octet(std::uint8_t dscp) { return (dscp & 0x3F) << 2; }

        void end_session(typename std::map<control::session_id, test_session>::iterator it)
        {
            test_session& s = it->second;
            server.counters_.packets_reflected += s.reflector->session().counters().reflected;
            const auto failures = s.reflector->io_counters().auth_failures;
            server.counters_.test_auth_failures += failures;
            server.log("session on UDP port " + std::to_string(s.port) + " from " + peer +
                       " ended: reflected " +
                       std::to_string(s.reflector->session().counters().reflected) +
                       ", not accepted " + std::to_string(s.reflector->io_counters().not_accepted) +
                       ", authentication failures " + std::to_string(failures));
            s.reflector->stop();
            server.ports_in_use_.erase(s.port);
            sessions.erase(it);
        }

        void finish()
        {
            if (closing) return;
            closing = true;
            std::error_code ec;
            timer.cancel();
            sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
            sock.close(ec);
            while (!sessions.empty())
                end_session(sessions.begin());
            pending.clear();
            server.connections_.erase(this->shared_from_this());
        }

        void shutdown(const char* why)
        {
            server.log(std::string("closing ") + peer + ": " + why);
            finish();
        }
    };

    void log(const std::string& s)
    {
        if (opts_.log) opts_.log(s);
    }

    void accept_next()
    {
        acceptor_.async_accept([this](const std::error_code& ec, asio::ip::tcp::socket s) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
            if (ec) {
                // Out of descriptors (EMFILE/ENFILE) or memory: the connection stays queued and
                // the acceptor readable, so accepting again at once would spin at full CPU.
                // Retry after a pause; connections closing meanwhile free descriptors.
                ++counters_.accept_errors;
                if (!accept_failing_)
                    log("accept failed: " + ec.message() + "; retrying every 100 ms");
                accept_failing_ = true;
                accept_retry_.expires_after(std::chrono::milliseconds{100});
                accept_retry_.async_wait([this](const std::error_code& e) {
                    if (!e && acceptor_.is_open()) accept_next();
                });
                return;
            }
            accept_failing_ = false;
            if (!ec) {
                ++counters_.connections;
                auto c = std::make_shared<connection>(*this, std::move(s));
                std::error_code e2;
                const auto peer = connection::unmap(c->sock.remote_endpoint(e2).address());
                bool admitted = connections_.size() < opts_.max_connections;
                if (admitted && !opts_.allow.empty()) {
                    admitted = false;
                    for (const auto& p : opts_.allow)
                        if (p.contains(peer)) admitted = true;
                }
                if (!admitted) ++counters_.refused_connections;
                connections_.insert(c);
                c->begin(admitted);
            }
            accept_next();
        });
    }

    asio::io_context& io_;
    server_options opts_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer accept_retry_;
    bool accept_failing_ = false;
    security_factory make_security_;
    std::set<std::shared_ptr<connection>> connections_;
    std::set<std::uint16_t> ports_in_use_;
    std::uint32_t port_cursor_ = 0;
    server_counters counters_;
};

} // namespace twamp::net
