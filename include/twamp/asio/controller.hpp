// twamp/asio/controller.hpp — a TWAMP Control-Client and Session-Sender (twampy's "controller").
//
// RFC 5357 §3 and §4.1, RFC 5938 (Start-N/Stop-N), RFC 6038 (reflect octets, symmetrical size).
// One control connection on the event loop: greeting, mode, one Request-TW-Session per test
// session (sender port = the UDP socket we already opened), Start-Sessions (or Start-N), the test
// (udp_sender per session, to the port Accept-Session names), then Stop-Sessions with the true
// session count (or Stop-N and its Ack). Every wait has a timeout; a refusal ends the run with
// the server's Accept code and its meaning.
//
// Without test senders (`run_senders = false`) it is twampy's "controlclient": it sets sessions
// up for another Session-Sender, keeps the connection for a duration, then stops them.
//
// Time (twamp/clock.hpp): the control machine's reply timeout runs on the Clock policy's
// mono_now(); wall_now() is for what goes on the wire.
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/clock.hpp"
#include "twamp/asio/detail/control_transport.hpp"
#include "twamp/asio/sender.hpp"
#include "twamp/asio/test_guard.hpp"
#include "twamp/clock.hpp"
#include "twamp/control_client.hpp"

#include <asio.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace twamp::net {

// RFC 4656 §3.3's meaning of each Accept value, indexed by the value.
inline const char* accept_code_text(control::accept_code a)
{
    static constexpr const char* text[control::kMaxAcceptCode + 1] = {
        "OK",
        "failure, reason unspecified",
        "internal error",
        "some aspect of the request is not supported",
        "cannot perform the request due to permanent resource limitations",
        "cannot perform the request due to temporary resource limitations",
    };
    const auto i = static_cast<std::uint8_t>(a);
    return i <= control::kMaxAcceptCode ? text[i] : "unknown Accept code";
}

struct controller_options {
    asio::ip::tcp::endpoint server;
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds{10};
    control::client_config control{}; // security modes, features (16/32/64), timeouts, max count
    unsigned sessions = 1;
    sender_options test{};            // per-session sender template (remote port filled in)
    std::uint16_t requested_port = 0; // Receiver Port to ask for (the server may offer another)
    std::chrono::nanoseconds session_timeout = std::chrono::seconds{2}; // reflect after Stop
    std::uint8_t dscp = 0;            // Type-P Descriptor (and the probes' DS field)
    bool individual = false;          // RFC 5938: Start-N/Stop-N (needs mode 16)
    std::uint16_t reflect_length = 0; // RFC 6038 Reflect Octets: octets to reflect per probe
    bool symmetric = false;           // RFC 6038 Symmetrical Size
    bool zero_addresses = false;      // send zero Sender/Receiver Address (behind NAT)
    bool run_senders = true;          // false: controlclient (another sender sends)
    asio::ip::udp::endpoint external_sender{}; // controlclient: the other sender's address/port
    std::chrono::nanoseconds hold{0}; // controlclient: keep sessions up this long (0 = until stop)
    // Probe padding, used in turn (the test sizes follow from it and the agreed mode); empty:
    // 27 octets in open and mixed mode, 64 in authenticated and encrypted mode, so requests and
    // replies are the same size (RFC 5357 §4.1.2).
    std::vector<std::size_t> paddings;
};

struct controller_session_result {
    std::uint16_t port = 0; // the reflector port the server named
    control::session_id sid{};
    // Our sender's address as the request named it (the control connection's local address
    // when the test socket is bound to the wildcard) and its port.
    asio::ip::udp::endpoint local;
    session_stats stats{};
    std::uint32_t scheduled = 0; // probes whose send time came
    std::uint64_t skipped = 0;   // of those, refused by the socket
    double achieved_pps = 0;     // see udp_sender::achieved_rate()
    double pacing_error_p50_ns = 0, pacing_error_p99_ns = 0, pacing_error_max_ns = 0;
};

struct controller_result {
    bool ok = false;
    std::string error; // one line, for the user
    std::optional<control::accept_code> accept;
    std::uint32_t mode = 0; // agreed mode
    std::vector<controller_session_result> sessions;
    bool interrupted = false;
    std::uint64_t auth_failures = 0; // replies that failed authentication (all sessions)
    // Things the user should know that are no error (one line each), e.g. a busy default port.
    std::vector<std::string> notices;
};

template <transport_control_policy Security = control::open_security,
          clock_policy Clock = system_clock_policy>
class controller {
public:
    controller(asio::io_context& io, controller_options o, Security security = {}, Clock clock = {})
        : io_(io), opts_(std::move(o)), clock_(std::move(clock)), sock_(io), timer_(io),
          hold_timer_(io), security_(std::move(security))
    {
    }

    // Starts the run; `done` runs once with the result.
    void start(std::function<void(const controller_result&)> done)
    {
        done_ = std::move(done);
        timer_.expires_after(opts_.connect_timeout);
        timer_.async_wait([this](const std::error_code& ec) {
            if (!ec && !connected_) fail("cannot connect to " + where() + ": timed out");
        });
        sock_.async_connect(opts_.server, [this](const std::error_code& ec) {
            if (finished_) return;
            if (ec) {
                fail("cannot connect to " + where() + ": " + ec.message());
                return;
            }
            connected_ = true;
            timer_.cancel();
            // Control traffic gets the same DS field as the test (a twampy habit).
            detail::configure_control_socket(sock_, opts_.dscp);
            fsm_.emplace(opts_.control, now_of(clock_), std::move(security_));
            read();
            pump();
        });
    }

    // Ctrl-C: first call ends the test early (senders stop, sessions are stopped), second call
    // ends at once.
    void stop()
    {
        if (finished_) return;
        result_.interrupted = true;
        if (stopping_) {
            fail("interrupted");
            return;
        }
        stopping_ = true;
        hold_timer_.cancel();
        bool any = false;
        for (auto& s : senders_)
            if (s && !s->finished()) {
                s->stop();
                any = true;
            }
        if (!any) stop_sessions();
    }

    const controller_result& result() const noexcept { return result_; }

private:
    std::string where() const
    {
        return "[" + opts_.server.address().to_string() +
               "]:" + std::to_string(opts_.server.port());
    }

    // Completions run only while the run is on (the object outlives its event loop's work).
    auto alive()
    {
        return [this] { return !finished_; };
    }

    void read()
    {
        stream_.read(*fsm_, clock_, alive(), [this](const std::error_code& ec) {
            pump();
            if (!ec && !finished_ && !fsm_->closed()) read();
        });
    }

    void pump()
    {
        if (finished_) return;
        while (auto ev = fsm_->next_event()) {
            std::visit([this](auto& e) { this->on_event(e); }, *ev);
            if (finished_) return;
        }
        write();
        arm_timer();
    }

    void write()
    {
        if (finished_) return;
        const bool busy = stream_.write(*fsm_, alive(), [this](const std::error_code& ec) {
            if (ec) {
                fail("control connection to " + where() + " failed: " + ec.message());
                return;
            }
            write();
        });
        if (busy) return;
        // Everything is out: a close we were waiting for can happen now.
        if (fail_after_write_)
            fail(std::move(*fail_after_write_));
        else if (closing_after_write_)
            finish_ok();
    }

    void arm_timer()
    {
        const auto d = fsm_->deadline();
        if (!d) return;
        timer_.expires_after(std::max(*d - clock_.mono_now(), nanoseconds{0}));
        timer_.async_wait([this](const std::error_code& ec) {
            if (ec || finished_) return;
            fsm_->on_timer(now_of(clock_));
            pump();
        });
    }

    // ---- events
    void on_event(control::client_events::greeting_received& e)
    {
        selected_mode_ = e.selected_mode;
    }

    void on_event(control::client_events::control_ready& e)
    {
        result_.mode = e.mode;
        ready_ = true;
        const instant now = now_of(clock_);
        protected_test_ = (e.mode & (control::mode::authenticated | control::mode::encrypted)) != 0;
        {
            // Probe sizes for the agreed mode.
            const std::size_t base = protected_test_ ? test_sender_base_size : kSenderUnauthLen;
            std::vector<std::size_t> pads = opts_.paddings;
            if (pads.empty()) pads = {protected_test_ ? kSymmetricPaddingAuth : kSymmetricPadding};
            opts_.test.sizes.clear();
            for (auto p : pads)
                opts_.test.sizes.push_back(base + p);
        }
        const bool v4 = opts_.server.address().is_v4();
        for (unsigned i = 0; i < opts_.sessions; ++i) {
            control::request_tw_session req;
            req.ipvn = v4 ? 4 : 6;
            std::uint16_t sender_port = opts_.external_sender.port();
            asio::ip::address sender_addr = opts_.external_sender.address();
            if (opts_.run_senders) {
                sender_options so = opts_.test;
                so.remote = {opts_.server.address(), 0};
                if (i > 0 && so.local.port() != 0) so.local.port(0); // one port per session
                so.core.reflect_length = opts_.reflect_length;
                so.core.symmetric = opts_.symmetric;
                // Every session is new on the server, so its reflector numbers from 0.
                so.core.reflector_counts_from_zero = true;
                auto s = std::make_unique<udp_sender>(io_, so);
                if (auto ec = s->open()) {
                    fail("cannot bind the test socket " + so.local.address().to_string() + ":" +
                         std::to_string(so.local.port()) + ": " + ec.message());
                    return;
                }
                sender_port = s->local_endpoint().port();
                sender_addr = s->local_endpoint().address();
                if (s->busy_port())
                    result_.notices.push_back("local port " + std::to_string(s->busy_port()) +
                                              " is in use: session " + std::to_string(i + 1) +
                                              " sends from port " + std::to_string(sender_port));
                if (reply_handler_) s->on_reply(reply_handler_);
                senders_.push_back(std::move(s));
            }
            req.sender_port = sender_port;
            req.receiver_port = opts_.requested_port;
            if (!opts_.zero_addresses) {
                req.sender_address = detail::to_address_bytes(
                    sender_addr.is_unspecified() ? local_address() : sender_addr);
                req.receiver_address = detail::to_address_bytes(opts_.server.address());
            }
            req.padding_length = static_cast<std::uint32_t>(
                opts_.test.sizes.front() -
                (protected_test_ ? test_sender_base_size : kSenderUnauthLen));
            req.timeout = control::ntp_from_duration(opts_.session_timeout);
            req.type_p = control::type_p_from_dscp(opts_.dscp);
            if (opts_.reflect_length) {
                req.octets_to_be_reflected = static_cast<std::uint16_t>(0x5A00 | (i & 0xFF));
                req.padding_to_reflect_length = opts_.reflect_length;
            }
            std::uint64_t id = 0;
            if (auto ec = fsm_->request_session(req, now, id)) {
                fail(std::string("cannot request a session: ") + ec.message());
                return;
            }
            request_ids_.push_back(id);
            result_.sessions.push_back({});
            octets_sent_.push_back(req.octets_to_be_reflected);
        }
    }

    asio::ip::address local_address() const
    {
        std::error_code ec;
        return sock_.local_endpoint(ec).address();
    }

    void on_event(control::client_events::session_accepted& e)
    {
        const auto i = index_of(e.request_id);
        if (!i) return;
        auto& r = result_.sessions[*i];
        r.port = e.port;
        r.sid = e.sid;
        if (opts_.reflect_length && e.reflected_octets != octets_sent_[*i]) {
            fail("the server did not echo the octets to be reflected (RFC 6038)");
            return;
        }
        if (opts_.run_senders) {
            senders_[*i]->set_remote({opts_.server.address(), e.port});
            if (auto g = detail::make_test_guard(fsm_->security(), result_.mode, e.sid))
                senders_[*i]->set_guard(std::move(g));
            if (e.server_octets) senders_[*i]->set_server_octets(e.server_octets);
            r.local = senders_[*i]->local_endpoint();
            if (r.local.address().is_unspecified()) r.local.address(local_address());
        }
        ++answered_;
        maybe_start();
    }

    void on_event(control::client_events::session_rejected& e)
    {
        result_.accept = e.accept;
        fail("the server refused the session: Accept " +
             std::to_string(static_cast<int>(e.accept)) + " (" + accept_code_text(e.accept) + ")");
    }

    // The SIDs of every session, in request order (Start-N / Stop-N with mode 16).
    std::vector<control::session_id> session_ids() const
    {
        std::vector<control::session_id> sids;
        for (const auto& s : result_.sessions)
            sids.push_back(s.sid);
        return sids;
    }

    // The classic command, or with mode 16 its RFC 5938 form naming every session.
    template <class Classic, class Individual>
    std::error_code to_all_sessions(Classic classic, Individual individual)
    {
        const instant now = now_of(clock_);
        return opts_.individual ? individual(session_ids(), now) : classic(now);
    }

    void maybe_start()
    {
        if (answered_ != opts_.sessions) return;
        const auto ec = to_all_sessions(
            [&](instant now) { return fsm_->start_sessions(now); },
            [&](const auto& sids, instant now) { return fsm_->start_n_sessions(sids, now); });
        if (ec) fail(std::string("cannot start the sessions: ") + ec.message());
    }

    void on_event(control::client_events::sessions_started&) { begin_test(); }
    void on_event(control::client_events::start_n_acked& e)
    {
        if (e.accept != control::accept_code::ok) {
            result_.accept = e.accept;
            fail("the server refused to start the sessions: Accept " +
                 std::to_string(static_cast<int>(e.accept)) + " (" + accept_code_text(e.accept) +
                 ")");
            return;
        }
        started_n_ += e.sids.size();
        if (started_n_ == opts_.sessions) begin_test();
    }
    void on_event(control::client_events::stop_n_acked& e)
    {
        stopped_n_ += e.sids.size();
        if (e.accept != control::accept_code::ok) result_.accept = e.accept;
        if (stopped_n_ == opts_.sessions) {
            closing_after_write_ = true;
            write();
        }
    }
    void on_event(control::connection_closed& e)
    {
        if (closing_after_write_ && !e.ec) {
            finish_ok();
            return;
        }
        const bool protected_mode =
            (selected_mode_ &
             (control::mode::authenticated | control::mode::encrypted | control::mode::mixed)) != 0;
        if (!ready_ && protected_mode && e.accept == control::accept_code::failure) {
            result_.accept = e.accept;
            fail("the server at " + where() +
                 " refused the key (Server-Start Accept 1: unknown KeyID or wrong secret)");
            return;
        }
        if (!ready_ && !e.accept && !fsm_->pending_output().empty()) {
            // We declined the greeting (no common mode, a Count above --max-count, a missing
            // feature, no usable key): the server did not close anything. Send the Mode-0
            // Set-Up-Response that says so (RFC 4656 §3.1) before closing.
            fail_after_write_ = "cannot use the server at " + where() + ": " +
                                std::string(e.reason) + " (declined with Set-Up-Response Mode 0)";
            write();
            return;
        }
        std::string msg = "the server at " + where() + " closed the control connection";
        if (e.accept) {
            result_.accept = e.accept;
            msg += ": Accept " + std::to_string(static_cast<int>(*e.accept)) + " (" +
                   accept_code_text(*e.accept) + ")";
        }
        if (!e.reason.empty()) msg += " — " + std::string(e.reason);
        fail(msg);
    }

    void begin_test()
    {
        if (stopping_) {
            stop_sessions();
            return;
        }
        if (!opts_.run_senders) {
            if (opts_.hold.count() > 0) {
                hold_timer_.expires_after(opts_.hold);
                hold_timer_.async_wait([this](const std::error_code& ec) {
                    if (!ec) stop_sessions();
                });
            }
            if (on_started_) on_started_();
            return;
        }
        running_ = senders_.size();
        for (auto& s : senders_)
            s->start([this] {
                if (--running_ == 0) stop_sessions();
            });
    }

    void stop_sessions()
    {
        if (finished_ || stop_sent_) return;
        if (!fsm_) {
            // Ctrl-C while the TCP connect is still pending: there is no control state yet.
            fail("interrupted before the control connection was up");
            return;
        }
        stop_sent_ = true;
        collect();
        const auto ec = to_all_sessions(
            [&](instant now) {
                closing_after_write_ = true; // Stop-Sessions has no reply
                return fsm_->stop_sessions(now);
            },
            [&](const auto& sids, instant now) { return fsm_->stop_n_sessions(sids, now); });
        if (ec) {
            fail(std::string("cannot stop the sessions: ") + ec.message());
            return;
        }
        pump();
    }

    void collect()
    {
        result_.auth_failures = 0;
        for (std::size_t i = 0; i < senders_.size() && i < result_.sessions.size(); ++i) {
            result_.sessions[i].stats = senders_[i]->stats();
            result_.sessions[i].scheduled = senders_[i]->scheduled();
            result_.sessions[i].skipped = senders_[i]->skipped();
            const auto& pe = senders_[i]->pacing_error();
            result_.sessions[i].achieved_pps = senders_[i]->achieved_rate();
            result_.sessions[i].pacing_error_p50_ns = pe.percentile(50);
            result_.sessions[i].pacing_error_p99_ns = pe.percentile(99);
            result_.sessions[i].pacing_error_max_ns = static_cast<double>(pe.max());
            result_.auth_failures += senders_[i]->auth_failures();
        }
    }

    std::optional<std::size_t> index_of(std::uint64_t request_id) const
    {
        for (std::size_t i = 0; i < request_ids_.size(); ++i)
            if (request_ids_[i] == request_id) return i;
        return std::nullopt;
    }

    void fail(std::string why)
    {
        if (finished_) return;
        collect();
        result_.ok = false;
        result_.error = std::move(why);
        finish();
    }
    void finish_ok()
    {
        if (finished_) return;
        result_.ok = true;
        finish();
    }
    void finish()
    {
        finished_ = true;
        timer_.cancel();
        hold_timer_.cancel();
        for (auto& s : senders_)
            if (s && !s->finished()) s->abort();
        stream_.close();
        if (done_) {
            auto d = std::move(done_);
            d(result_);
        }
    }

public:
    // controlclient: called once the sessions run (for printing where to send).
    void on_started(std::function<void()> f) { on_started_ = std::move(f); }
    // Called for every reply any of the sessions handles (set before start()); optional.
    void on_reply(udp_sender::reply_handler h) { reply_handler_ = std::move(h); }

private:
    asio::io_context& io_;
    controller_options opts_;
    Clock clock_;
    asio::ip::tcp::socket sock_;
    asio::steady_timer timer_;
    asio::steady_timer hold_timer_;
    Security security_;
    std::optional<control::control_client<Security>> fsm_;
    detail::control_stream<control::control_client<Security>> stream_{sock_};
    bool connected_ = false;
    bool finished_ = false;
    bool stopping_ = false;
    bool stop_sent_ = false;
    bool closing_after_write_ = false;
    std::optional<std::string> fail_after_write_; // our own refusal, reported once it is sent
    bool protected_test_ = false;
    bool ready_ = false;
    std::uint32_t selected_mode_ = 0;
    std::vector<std::unique_ptr<udp_sender>> senders_;
    std::vector<std::uint64_t> request_ids_;
    std::vector<std::uint16_t> octets_sent_;
    std::size_t answered_ = 0;
    std::size_t started_n_ = 0;
    std::size_t stopped_n_ = 0;
    std::size_t running_ = 0;
    controller_result result_;
    std::function<void(const controller_result&)> done_;
    std::function<void()> on_started_;
    udp_sender::reply_handler reply_handler_;
};

} // namespace twamp::net
