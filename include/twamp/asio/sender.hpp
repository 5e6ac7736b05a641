// twamp/asio/sender.hpp — a TWAMP Light / STAMP Session-Sender on an asio event loop.
//
// RFC 5357 §4.1, RFC 8762 §4.2. Probes leave at absolute deadlines on the steady clock, so pacing
// does not drift and intervals below a millisecond work: start + k·interval (periodic, RFC 3432),
// or start + the sum of k exponential gaps of mean `interval` from a seeded generator (Poisson,
// RFC 2330 §11.1.1), so a run can be repeated exactly. Above 1000 probes/s the last 50 µs before
// a deadline are spun rather than slept (timers wake up late); pacing_error() records how far
// each send was from its deadline (the send being the T1 read right before the send call). T1 is
// the wall clock read right before each send; it is what the probe carries. With kernel send
// timestamps (sender_options::timestamping, tx_timestamps.hpp) the delays use the kernel's send
// time instead: the error queue is read before every batch of replies, so a probe's stamp (taken
// inside the send call on loopback, at the driver otherwise) is normally matched before its reply;
// a reply handled before its stamp keeps the user-space T1 and the stamp is counted as after_reply
// (session().stamps_after_reply()). Replies are read whenever the socket is readable, in the same
// loop, so the receive path never waits for the send schedule; above 1000 probes/s the schedule
// reads them itself, before and between its sends, with the socket out of the event loop's epoll
// set until sending ends. T4 is the kernel's receive timestamp. The session ends when every probe
// is answered or the loss timeout after the last probe has passed, or when stop() is called twice
// (the first stop only ends the sending).
//
// Counts are honest: scheduled() is the number of probes whose send time came before sending
// ended (the requested count unless interrupted), sent is what the socket accepted, and skipped()
// the difference (socket errors).
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/clock.hpp"
#include "twamp/asio/test_guard.hpp"
#include "twamp/asio/tx_timestamps.hpp"
#include "twamp/asio/udp.hpp"
#include "twamp/clock.hpp"
#include "twamp/histogram.hpp"
#include "twamp/sender_session.hpp"

#include <asio.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace twamp::net {

enum class send_distribution : std::uint8_t { periodic, poisson };

struct sender_options {
    asio::ip::udp::endpoint remote;
    asio::ip::udp::endpoint local;
    socket_options sock{};
    sender_config core{};
    std::uint32_t count = 100;
    std::chrono::nanoseconds interval = std::chrono::milliseconds{100}; // the mean for Poisson
    send_distribution distribution = send_distribution::periodic;
    std::uint64_t seed = 1; // Poisson generator seed
    // Payload sizes (octets), used in turn, probe after probe; one entry = a fixed size.
    std::vector<std::size_t> sizes{kReflectorUnauthLen};
    std::size_t batch = 32;
    // When the local port is taken, bind an ephemeral port instead of failing (for a default
    // port the user did not ask for; see busy_port()).
    bool ephemeral_port_fallback = false;
    // Kernel send timestamps for T1 (tx_timestamps.hpp); what was enabled: timestamping().
    timestamping_mode timestamping = timestamping_mode::user;
    // Probes remembered while their send stamp is on its way (fixed memory).
    std::size_t tx_stamp_capacity = 8192;
};

// CLOCK_MONOTONIC as nanoseconds: what the loss timeout runs on.
inline nanoseconds steady_now() noexcept
{
    return std::chrono::duration_cast<nanoseconds>(
        std::chrono::steady_clock::now().time_since_epoch());
}

class udp_sender {
public:
    using reply_handler = std::function<void(const reply_result&)>;
    using probe_handler = std::function<void(std::uint32_t seq, nanoseconds t1)>;
    using tick_handler = std::function<void(nanoseconds now)>;

    udp_sender(asio::io_context& io, sender_options o)
        : opts_(std::move(o)), sock_(io), send_timer_(io), end_timer_(io),
          core_(with_window(opts_)), rx_(opts_.batch, 65536), tx_buf_(max_size(opts_.sizes)),
          tx_keys_(0), tick_timer_(io), rng_(opts_.seed)
    {
        if (opts_.sizes.empty()) opts_.sizes.push_back(sender_base_len(opts_.core.format));
    }

    std::error_code open()
    {
        core_.set_error_estimate(system_error_estimate());
        socket_options so = opts_.sock;
        so.icmp_errors = true; // count port/host unreachable answers to our probes
        auto ec = open_udp_socket(sock_, opts_.local, so);
        if (ec == asio::error::address_in_use && opts_.ephemeral_port_fallback &&
            opts_.local.port() != 0) {
            std::error_code ignored;
            sock_.close(ignored);
            busy_port_ = opts_.local.port();
            opts_.local.port(0);
            ec = open_udp_socket(sock_, opts_.local, so);
        }
        if (!ec) {
            fd_ = sock_.native_handle();
            local_ = sock_.local_endpoint(ec);
        }
        if (!ec) enable_timestamping();
        return ec;
    }
    ~udp_sender()
    {
        if (released_ && fd_ >= 0) ::close(fd_);
    }
    udp_sender(const udp_sender&) = delete;
    udp_sender& operator=(const udp_sender&) = delete;
    // What open() enabled of the kernel send timestamps asked for (sender_options::timestamping).
    const tx_timestamping& timestamping() const noexcept { return tx_ts_; }
    // How the send stamps matched the probes (tx_key_ring counters), and how many probes still
    // wait for theirs.
    const tx_key_ring<std::uint32_t>::counters& tx_stamp_counters() const noexcept
    {
        return tx_keys_.stats();
    }
    std::size_t tx_stamps_pending() const noexcept { return tx_keys_.pending(); }
    // The local port that was taken when open() fell back to an ephemeral one; 0 otherwise.
    std::uint16_t busy_port() const noexcept { return busy_port_; }

    asio::ip::udp::endpoint local_endpoint() const { return local_; }

    // The reflector's address, when it is known only after open() (TWAMP: from Accept-Session).
    void set_remote(const asio::ip::udp::endpoint& ep) { opts_.remote = ep; }
    // RFC 6038: Server octets from Accept-Session, carried in every probe.
    void set_server_octets(std::uint16_t v) noexcept { core_.set_server_octets(v); }
    bool finished() const noexcept { return finished_; }
    // Authenticated / encrypted test packets: probe sizes are then protected sizes.
    void set_guard(std::unique_ptr<test_guard> g)
    {
        guard_ = std::move(g);
        open_buf_.resize(65536);
        tx_buf_.resize(std::max<std::size_t>(tx_buf_.size(), max_size(opts_.sizes) + 128));
    }
    // Replies dropped because their authentication failed (RFC 4656 §4.2).
    std::uint64_t auth_failures() const noexcept { return auth_failures_; }
    // Ends the session at once (the owner is going away); `done` still runs.
    void abort() { finish(); }

    // Called for every reply handled (for logging); optional.
    void on_reply(reply_handler h) { reply_handler_ = std::move(h); }
    // Called for every probe the socket accepted, with its sequence number and T1; optional.
    void on_sent(probe_handler h) { sent_handler_ = std::move(h); }
    // Called once for every probe declared lost (no reply within the timeout), in sequence order,
    // as soon as its timeout has passed (checked at each send and tick) and at the end; optional.
    void on_lost(probe_handler h) { lost_handler_ = std::move(h); }
    // Called every `period` while the session runs, with the wall-clock time; optional.
    void on_tick(std::chrono::nanoseconds period, tick_handler h)
    {
        tick_period_ = std::max(period, std::chrono::nanoseconds{std::chrono::milliseconds{1}});
        tick_handler_ = std::move(h);
    }

    // Starts the session; `done` runs once when it is over.
    void start(std::function<void()> done)
    {
        done_ = std::move(done);
        from_len_ = from_endpoint(opts_.remote, remote_);
        start_ = std::chrono::steady_clock::now();
        sending_ = true;
        next_deadline_ = start_;
        // Above 1000 probes/s the schedule itself reads the replies (before and between its
        // sends, at least once per interval), so the socket leaves the event loop's epoll set
        // while sending: a registration there costs every datagram sent or received a locked
        // wake-up of it (bench/README.md, "The reflector's dedicated loop"). It is back in the
        // set for the wait for the last replies.
        if (fine_pacing() && opts_.count > 1) leave_reactor();
        if (!released_) wait_readable();
        if (tick_handler_) arm_tick();
        schedule_next();
    }

    // First call: stop sending and wait for outstanding replies (at most the loss timeout).
    // Second call: finish at once.
    void stop()
    {
        if (finished_) return;
        if (sending_) {
            sending_ = false;
            send_timer_.cancel();
            rejoin_reactor();
            arm_end();
            return;
        }
        finish();
    }

    const session_sender& session() const noexcept { return core_; }
    const session_stats& stats() const noexcept { return core_.stats(); }
    bool interrupted() const noexcept { return interrupted_; }
    void mark_interrupted() noexcept { interrupted_ = true; }
    std::uint32_t requested() const noexcept { return opts_.count; }
    std::uint32_t scheduled() const noexcept { return sent_; }
    std::uint64_t skipped() const noexcept
    {
        return sent_ > core_.stats().sent ? sent_ - core_.stats().sent : 0;
    }
    // How well the schedule was kept: |actual - scheduled| send time of every probe handed to
    // the socket (steady clock, ns; actual = when T1 was read, right before the send call), and
    // the rate achieved between the first and last send.
    const log_histogram& pacing_error() const noexcept { return pacing_; }
    // Whether the socket is out of the event loop's reactor (while sending above 1000 probes/s).
    bool out_of_reactor() const noexcept { return released_; }
    // The socket's descriptor (after open()), in or out of the reactor.
    int native_handle() const noexcept { return fd_; }
    double achieved_rate() const noexcept
    {
        if (pacing_.count() < 2) return 0;
        const auto span = std::chrono::duration<double>(last_send_ - first_send_).count();
        return span > 0 ? static_cast<double>(pacing_.count() - 1) / span : 0;
    }

private:
    void enable_timestamping()
    {
        std::string ifname;
        if (opts_.timestamping == timestamping_mode::automatic ||
            opts_.timestamping == timestamping_mode::hardware) {
            // The interface the probes leave by: the one holding the source address.
            auto a = local_.address();
            if (a.is_unspecified() && opts_.remote.port() != 0)
                a = source_address_for(opts_.remote);
            ifname = interface_for(a);
        }
        tx_ts_ = enable_tx_timestamps(fd_, opts_.timestamping, ifname);
        // The ring's memory only when stamps will come (a load generator runs many senders).
        if (tx_ts_.kernel()) tx_keys_ = tx_key_ring<std::uint32_t>(opts_.tx_stamp_capacity);
    }

    static sender_config with_window(const sender_options& o)
    {
        sender_config c = o.core;
        // Track every probe that can still be within its timeout, with room to spare.
        const double per_timeout = o.interval.count() > 0
                                       ? static_cast<double>(c.timeout.count()) / o.interval.count()
                                       : 1e9;
        const double want = std::min<double>(std::max(2 * per_timeout + 64, 64.0), 1 << 22);
        c.window = std::min<std::size_t>(static_cast<std::size_t>(want),
                                         std::max<std::size_t>(o.count, 16));
        return c;
    }
    static std::size_t max_size(const std::vector<std::size_t>& sizes)
    {
        std::size_t m = kStampBaseLen;
        for (auto s : sizes)
            m = std::max(m, s);
        return m;
    }

    void schedule_next()
    {
        if (!sending_) return;
        const auto entered = std::chrono::steady_clock::now();
        // Send every probe whose deadline has come (catching up after a stall, in order). Replies
        // are read before and between the sends, so a long catch-up never starves reception
        // (their T4 is the kernel's, but a full socket buffer would drop them).
        drain();
        unsigned since_drain = 0;
        for (;;) {
            auto now = std::chrono::steady_clock::now();
            while (sent_ < opts_.count && next_deadline_ <= now) {
                send_one(next_deadline_);
                ++sent_;
                advance_deadline();
                if (++since_drain == kSendsBetweenDrains) {
                    since_drain = 0;
                    drain();
                    if (!sending_) return; // drain() may end the session (stop)
                }
                now = std::chrono::steady_clock::now();
            }
            if (sent_ >= opts_.count) break;
            // Fine pacing above 1000 probes/s: a timer wakes up tens of microseconds late, so the
            // timer is set kSpinWindow early and the rest is spun; at most kSpinBudget per call,
            // then the event loop runs the other handlers before the next call.
            if (fine_pacing() && next_deadline_ - now <= kSpinWindow &&
                now - entered < kSpinBudget) {
                while (std::chrono::steady_clock::now() < next_deadline_) {
                }
                continue;
            }
            break;
        }
        expire_lost();
        if (sent_ >= opts_.count) {
            sending_ = false;
            rejoin_reactor();
            arm_end();
            return;
        }
        send_timer_.expires_at(fine_pacing() ? next_deadline_ - kSpinWindow : next_deadline_);
        send_timer_.async_wait([this](const std::error_code& ec) {
            if (!ec) schedule_next();
        });
    }

    static constexpr std::chrono::microseconds kSpinWindow{50};
    static constexpr std::chrono::milliseconds kSpinBudget{2};
    bool fine_pacing() const noexcept { return opts_.interval < std::chrono::milliseconds{1}; }

    void advance_deadline()
    {
        if (opts_.distribution == send_distribution::periodic) {
            next_deadline_ = start_ + opts_.interval * sent_;
            return;
        }
        // Exponential gap by inversion: -mean · ln(1 - U), U uniform in [0, 1) from 53 bits.
        const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
        poisson_offset_ns_ += -static_cast<double>(opts_.interval.count()) * std::log1p(-u);
        next_deadline_ =
            start_ + std::chrono::nanoseconds{static_cast<std::int64_t>(poisson_offset_ns_)};
    }

    // Declares lost the probes whose timeout has passed. The clock is read first and every
    // reply already queued is handled before, so a reply that arrived in time (its T4 is the
    // kernel's receive time, on the same clock) is never declared lost: one probe, one fate.
    void expire_lost()
    {
        if (!lost_handler_ || finished_) return;
        const nanoseconds now = steady_now(); // the loss timeout runs on the monotonic clock
        drain();
        if (finished_) return;
        core_.expire(now, lost_handler_);
    }

    void arm_tick()
    {
        tick_timer_.expires_after(tick_period_);
        tick_timer_.async_wait([this](const std::error_code& ec) {
            if (ec || finished_) return;
            expire_lost();
            tick_handler_(realtime_now());
            arm_tick();
        });
    }

    static constexpr unsigned kSendsBetweenDrains = 16;

    void send_one(std::chrono::steady_clock::time_point deadline)
    {
        const std::size_t size = opts_.sizes[sent_ % opts_.sizes.size()];
        std::size_t len = 0;
        nanoseconds t1;
        // The send time the schedule is kept against: the moment T1 is read, right before the
        // send call. What the call itself takes (on loopback it delivers to the peer and may
        // have to wake it) is the path's, not the schedule's; kernel send stamps measure it.
        nanoseconds issued;
        if (guard_) {
            // Sizes are protected sizes; the core builds the open probe, the guard seals it.
            t1 = realtime_now();
            issued = steady_now();
            const std::size_t open_len =
                core_.make_probe(instant{t1, issued}, size - guard_->sender_overhead(), open_buf_);
            if (open_len == 0) return;
            len = guard_->seal_probe(std::span(open_buf_).first(open_len), tx_buf_);
            if (len == 0) {
                core_.unsend_last();
                return;
            }
        } else {
            t1 = realtime_now();
            issued = steady_now();
            len = core_.make_probe(instant{t1, issued}, size, tx_buf_);
            if (len == 0) return;
        }
        ssize_t r = send_probe(len);
        if (r < 0) {
            // An ICMP error that an earlier probe caused (port unreachable, say) is reported by
            // the next send, which then fails without sending. It is no error of this probe:
            // count what the error queue holds and send it again, once.
            if (tx_ts_.kernel()) tx_keys_.send_failed();
            read_error_queue();
            const bool queued = icmp_unsurfaced_ > 0;
            icmp_unsurfaced_ = 0;
            if (queued) {
                r = send_probe(len);
                if (r < 0 && tx_ts_.kernel()) tx_keys_.send_failed();
            }
        }
        const auto now = std::chrono::steady_clock::now();
        if (r < 0) {
            core_.unsend_last();
        } else {
            if (tx_ts_.kernel()) tx_keys_.sent(t1, core_.next_sequence() - 1);
            if (pacing_.count() == 0) first_send_ = now;
            pacing_.add(std::chrono::abs(issued - deadline.time_since_epoch()).count());
            if (sent_handler_) sent_handler_(core_.next_sequence() - 1, t1);
        }
        last_send_ = now;
    }

    ssize_t send_probe(std::size_t len) noexcept
    {
        ssize_t r;
        do {
            r = ::sendto(fd_, tx_buf_.data(), len, 0, reinterpret_cast<const sockaddr*>(&remote_),
                         from_len_);
        } while (r < 0 && errno == EINTR);
        return r;
    }

    // While the schedule reads the replies: the socket out of the reactor (still open, fd_).
    void leave_reactor()
    {
        std::error_code ec;
        (void)sock_.release(ec);
        released_ = !ec;
    }
    // Back into the reactor, waiting for replies; ownership of the descriptor returns to sock_.
    void rejoin_reactor()
    {
        if (!released_) return;
        std::error_code ec;
        sock_.assign(local_.protocol(), fd_, ec);
        if (ec) return; // stays released: the destructor closes it; drain() still reads it
        released_ = false;
        if (!finished_) wait_readable();
    }

    void wait_readable()
    {
        sock_.async_wait(asio::ip::udp::socket::wait_read, [this](const std::error_code& ec) {
            if (ec || finished_) return;
            drain();
            if (!finished_) wait_readable();
        });
    }

    // Reads the error queue: send stamps become the probes' kernel T1, anything else is an ICMP
    // error, counted. Bounded: what is left is read on the next call.
    void read_error_queue()
    {
        const auto r = drain_tx_error_queue(fd_, [this](const tx_stamp& s) {
            if (const auto m = tx_keys_.take(s.key, s.time))
                core_.set_kernel_t1(m->value, s.time,
                                    s.source == tx_source::hardware ? timestamp_source::hardware
                                                                    : timestamp_source::kernel);
        });
        for (std::size_t e = 0; e < r.errors; ++e)
            core_.on_icmp_error();
        icmp_unsurfaced_ += r.errors;
    }

    void drain()
    {
        const int fd = fd_;
        for (int round = 0; round < 8; ++round) {
            // Send stamps first, so the replies below find their probe's kernel T1. Only while
            // some are awaited: otherwise the queue is read when an error surfaces, and the
            // normal receive path costs no extra system call.
            if (tx_keys_.pending()) read_error_queue();
            std::error_code ec;
            const std::size_t n = rx_.receive(fd, ec);
            if (ec) {
                // An ICMP error surfaced as the socket's pending error (now cleared); each one
                // is counted from the error queue.
                read_error_queue();
                icmp_unsurfaced_ = 0;
                continue;
            }
            if (n == 0) break;
            const nanoseconds mono = steady_now(), stamped = realtime_now();
            for (std::size_t i = 0; i < n; ++i) {
                const rx_meta& m = rx_.meta(i);
                if (!same_peer(m.from)) {
                    core_.on_unexpected_source();
                    continue;
                }
                auto data = rx_.data(i);
                if (guard_) {
                    const std::size_t n = guard_->open_reply(data, open_buf_);
                    if (n == 0) {
                        ++auth_failures_;
                        core_.on_auth_failure();
                        continue;
                    }
                    data = std::span(open_buf_).first(n);
                }
                // T4 is the kernel's wall-clock stamp; its monotonic twin is now less the
                // packet's age (bounded), so a wall-clock step does not make it late or early.
                const instant t4{m.rx_time, mono - std::clamp(stamped - m.rx_time, nanoseconds{0},
                                                              std::chrono::nanoseconds{
                                                                  std::chrono::seconds{1}})};
                const auto res = core_.on_reply(data, t4, m.ttl,
                                                m.kernel_time ? timestamp_source::kernel
                                                              : timestamp_source::user);
                if (reply_handler_) reply_handler_(res);
            }
            if (n < rx_.capacity()) break;
        }
        // Done sending (the schedule ran out or stop() ended it) and nothing outstanding.
        if (!sending_ && core_.all_answered()) finish();
    }

    bool same_peer(const sockaddr_storage& s) const noexcept
    {
        if (s.ss_family != remote_.ss_family) return false;
        if (s.ss_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(&s);
            const auto* b = reinterpret_cast<const sockaddr_in*>(&remote_);
            return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
        }
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&s);
        const auto* b = reinterpret_cast<const sockaddr_in6*>(&remote_);
        return a->sin6_port == b->sin6_port &&
               std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
    }

    void arm_end()
    {
        if (core_.all_answered()) {
            finish();
            return;
        }
        end_timer_.expires_at(last_send_ + core_.config().timeout);
        end_timer_.async_wait([this](const std::error_code& ec) {
            if (!ec) finish();
        });
    }

    void finish()
    {
        if (finished_) return;
        finished_ = true;
        sending_ = false;
        // Replies already queued are handled before what is left is declared lost.
        drain();
        std::error_code ec;
        send_timer_.cancel();
        end_timer_.cancel();
        tick_timer_.cancel();
        rejoin_reactor();
        sock_.cancel(ec);
        if (lost_handler_) core_.expire(nanoseconds::max(), lost_handler_);
        if (done_) {
            auto d = std::move(done_);
            d();
        }
    }

    sender_options opts_;
    asio::ip::udp::socket sock_;
    int fd_ = -1; // the socket, also while released
    asio::ip::udp::endpoint local_{};
    bool released_ = false;
    asio::steady_timer send_timer_;
    asio::steady_timer end_timer_;
    session_sender core_;
    rx_batch rx_;
    std::vector<std::uint8_t> tx_buf_;
    tx_timestamping tx_ts_{};
    tx_key_ring<std::uint32_t> tx_keys_;
    std::size_t icmp_unsurfaced_ = 0; // ICMP errors read before the socket reported them
    std::unique_ptr<test_guard> guard_;
    std::vector<std::uint8_t> open_buf_;
    std::uint64_t auth_failures_ = 0;
    std::uint16_t busy_port_ = 0;
    sockaddr_storage remote_{};
    socklen_t from_len_ = 0;
    std::chrono::steady_clock::time_point start_{};
    std::chrono::steady_clock::time_point last_send_{};
    std::chrono::steady_clock::time_point first_send_{};
    log_histogram pacing_;
    std::uint32_t sent_ = 0;
    bool sending_ = false;
    bool finished_ = false;
    bool interrupted_ = false;
    std::function<void()> done_;
    reply_handler reply_handler_;
    probe_handler sent_handler_;
    probe_handler lost_handler_;
    tick_handler tick_handler_;
    asio::steady_timer tick_timer_;
    std::chrono::nanoseconds tick_period_{0};
    std::chrono::steady_clock::time_point next_deadline_{};
    std::mt19937_64 rng_;
    double poisson_offset_ns_ = 0;
};

} // namespace twamp::net
