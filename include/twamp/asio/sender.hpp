// twamp/asio/sender.hpp — a TWAMP Light / STAMP Session-Sender on an asio event loop.
//
// RFC 5357 §4.1, RFC 8762 §4.2. Probes leave at absolute deadlines start + k·interval on the
// steady clock, so pacing does not drift and intervals below a millisecond work; T1 is the wall
// clock read right before each send. Replies are read whenever the socket is readable, in the same
// loop, so the receive path never waits for the send schedule; T4 is the kernel's receive
// timestamp. The session ends when every probe is answered or the loss timeout after the last
// probe has passed, or when stop() is called twice (the first stop only ends the sending).
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/clock.hpp"
#include "twamp/asio/udp.hpp"
#include "twamp/sender_session.hpp"

#include <asio.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <cstring>
#include <system_error>
#include <vector>

namespace twamp::net {

struct sender_options {
    asio::ip::udp::endpoint remote;
    asio::ip::udp::endpoint local;
    socket_options sock{};
    sender_config core{};
    std::uint32_t count = 100;
    std::chrono::nanoseconds interval = std::chrono::milliseconds{100};
    // Payload sizes (octets), used in turn, probe after probe; one entry = a fixed size.
    std::vector<std::size_t> sizes{kReflectorUnauthLen};
    std::size_t batch = 32;
};

class udp_sender {
public:
    using reply_handler = std::function<void(const reply_result&)>;

    udp_sender(asio::io_context& io, sender_options o)
        : opts_(std::move(o)), sock_(io), send_timer_(io), end_timer_(io),
          core_(with_window(opts_)), rx_(opts_.batch, 65536),
          tx_buf_(max_size(opts_.sizes))
    {
        if (opts_.sizes.empty()) opts_.sizes.push_back(sender_base_len(opts_.core.format));
    }

    std::error_code open()
    {
        core_.set_error_estimate(system_error_estimate());
        return open_udp_socket(sock_, opts_.local, opts_.sock);
    }

    asio::ip::udp::endpoint local_endpoint() const
    {
        std::error_code ec;
        return sock_.local_endpoint(ec);
    }

    // Called for every reply handled (for logging); optional.
    void on_reply(reply_handler h) { reply_handler_ = std::move(h); }

    // Starts the session; `done` runs once when it is over.
    void start(std::function<void()> done)
    {
        done_ = std::move(done);
        from_len_ = from_endpoint(opts_.remote, remote_);
        start_ = std::chrono::steady_clock::now();
        sending_ = true;
        wait_readable();
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
            arm_end();
            return;
        }
        finish();
    }

    const session_sender& session() const noexcept { return core_; }
    const session_stats& stats() const noexcept { return core_.stats(); }
    bool interrupted() const noexcept { return interrupted_; }
    void mark_interrupted() noexcept { interrupted_ = true; }
    std::uint32_t scheduled() const noexcept { return opts_.count; }

private:
    static sender_config with_window(const sender_options& o)
    {
        sender_config c = o.core;
        // Track every probe that can still be within its timeout, with room to spare.
        const double per_timeout = o.interval.count() > 0
                                       ? static_cast<double>(c.timeout.count()) / o.interval.count()
                                       : 1e9;
        const double want = std::min<double>(std::max(2 * per_timeout + 64, 64.0), 1 << 22);
        c.window = std::min<std::size_t>(static_cast<std::size_t>(want), std::max<std::size_t>(o.count, 16));
        return c;
    }
    static std::size_t max_size(const std::vector<std::size_t>& sizes)
    {
        std::size_t m = kStampBaseLen;
        for (auto s : sizes) m = std::max(m, s);
        return m;
    }

    void schedule_next()
    {
        if (!sending_) return;
        const auto now = std::chrono::steady_clock::now();
        // Send every probe whose deadline has come (catching up after a stall, in order).
        while (sent_ < opts_.count && start_ + opts_.interval * sent_ <= now) {
            send_one();
            ++sent_;
        }
        if (sent_ >= opts_.count) {
            sending_ = false;
            arm_end();
            return;
        }
        send_timer_.expires_at(start_ + opts_.interval * sent_);
        send_timer_.async_wait([this](const std::error_code& ec) {
            if (!ec) schedule_next();
        });
    }

    void send_one()
    {
        const std::size_t size = opts_.sizes[sent_ % opts_.sizes.size()];
        const nanoseconds t1 = realtime_now();
        const std::size_t len = core_.make_probe(t1, size, tx_buf_);
        if (len == 0) return;
        ssize_t r;
        do {
            r = ::sendto(sock_.native_handle(), tx_buf_.data(), len, 0,
                         reinterpret_cast<const sockaddr*>(&remote_), from_len_);
        } while (r < 0 && errno == EINTR);
        if (r < 0) core_.unsend_last();
        last_send_ = std::chrono::steady_clock::now();
    }

    void wait_readable()
    {
        sock_.async_wait(asio::ip::udp::socket::wait_read, [this](const std::error_code& ec) {
            if (ec || finished_) return;
            drain();
            if (!finished_) wait_readable();
        });
    }

    void drain()
    {
        const int fd = sock_.native_handle();
        for (int round = 0; round < 8; ++round) {
            std::error_code ec;
            const std::size_t n = rx_.receive(fd, ec);
            if (n == 0) break;
            for (std::size_t i = 0; i < n; ++i) {
                const rx_meta& m = rx_.meta(i);
                if (!same_peer(m.from)) {
                    core_.on_unexpected_source();
                    continue;
                }
                const auto res = core_.on_reply(rx_.data(i), m.rx_time, m.ttl);
                if (reply_handler_) reply_handler_(res);
            }
            if (n < rx_.capacity()) break;
        }
        if (!sending_ && sent_ >= opts_.count && core_.all_answered()) finish();
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
        std::error_code ec;
        send_timer_.cancel();
        end_timer_.cancel();
        sock_.cancel(ec);
        if (done_) {
            auto d = std::move(done_);
            d();
        }
    }

    sender_options opts_;
    asio::ip::udp::socket sock_;
    asio::steady_timer send_timer_;
    asio::steady_timer end_timer_;
    session_sender core_;
    rx_batch rx_;
    std::vector<std::uint8_t> tx_buf_;
    sockaddr_storage remote_{};
    socklen_t from_len_ = 0;
    std::chrono::steady_clock::time_point start_{};
    std::chrono::steady_clock::time_point last_send_{};
    std::uint32_t sent_ = 0;
    bool sending_ = false;
    bool finished_ = false;
    bool interrupted_ = false;
    std::function<void()> done_;
    reply_handler reply_handler_;
};

} // namespace twamp::net
