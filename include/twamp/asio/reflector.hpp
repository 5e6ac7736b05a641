// twamp/asio/reflector.hpp — a TWAMP Light / STAMP Session-Reflector on an asio event loop.
//
// RFC 5357 Appendix I, RFC 8762 §4.3. The receive → reflect → send path runs on buffers allocated
// at construction: recvmmsg fills a batch with kernel receive timestamps (T2) and TTLs, the core
// builds every reply, T3 is taken once right before sendmmsg and written into each reply. No
// allocation, no logging and no locking happen per packet. Replies go back to the source address
// and port of the request (NAT-safe), with TTL 255 and either the configured DS field or, when
// none is configured, the DSCP the request arrived with.
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/clock.hpp"
#include "twamp/asio/udp.hpp"
#include "twamp/reflector_session.hpp"

#include <asio.hpp>

#include <chrono>
#include <cstring>
#include <cstdint>
#include <system_error>

namespace twamp::net {

struct reflector_options {
    asio::ip::udp::endpoint local{asio::ip::address_v6::any(), 862};
    socket_options sock{};
    reflector_config core{};
    std::size_t batch = 32;
    std::size_t max_datagram = 9216 + 512; // jumbo frames; larger datagrams are counted and dropped
    std::chrono::seconds housekeeping{10};  // REFWAIT sweep and clock-state refresh period
};

struct reflector_io_counters {
    std::uint64_t oversize = 0;    // larger than max_datagram
    std::uint64_t send_errors = 0; // sendmmsg refused a reply
    std::uint64_t receive_errors = 0;
    std::uint64_t kernel_timestamps = 0; // T2 from SO_TIMESTAMPNS
};

class udp_reflector {
public:
    udp_reflector(asio::io_context& io, reflector_options o)
        : opts_(std::move(o)), sock_(io), timer_(io), core_(opts_.core),
          rx_(opts_.batch, opts_.max_datagram), tx_(opts_.batch, opts_.max_datagram + 64)
    {
    }

    // Opens and binds the socket. Call once before start().
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

    void start()
    {
        running_ = true;
        wait_readable();
        arm_housekeeping();
    }

    void stop()
    {
        running_ = false;
        std::error_code ec;
        timer_.cancel();
        sock_.cancel(ec);
        sock_.close(ec);
    }

    const session_reflector& session() const noexcept { return core_; }
    const reflector_io_counters& io_counters() const noexcept { return io_counters_; }

    // Runs the receive → reflect → send path once over whatever is queued (at most `rounds`
    // batches). Public so tests and benchmarks can drive it without the reactor.
    std::size_t drain(int rounds = 8) noexcept
    {
        const int fd = sock_.native_handle();
        std::size_t total = 0;
        for (int r = 0; r < rounds; ++r) {
            std::error_code ec;
            const std::size_t n = rx_.receive(fd, ec);
            if (ec) ++io_counters_.receive_errors;
            if (n == 0) break;
            for (std::size_t i = 0; i < n; ++i) {
                const rx_meta& m = rx_.meta(i);
                if (m.truncated) {
                    ++io_counters_.oversize;
                    continue;
                }
                if (m.kernel_time) ++io_counters_.kernel_timestamps;
                const std::size_t len =
                    core_.reflect(rx_.data(i), key_of(m.from), m.rx_time, m.ttl ? m.ttl : 255,
                                  tx_.slot(tx_.size()));
                if (len == 0) continue;
                const int tos = opts_.sock.tos ? -1 : (m.tos >= 0 ? (m.tos & 0xFC) : -1);
                tx_.push(len, m.from, m.from_len, tos);
            }
            if (tx_.size()) {
                // T3: as late as we can take it in user space, once for the whole batch.
                const nanoseconds t3 = realtime_now();
                const std::uint64_t w =
                    core_.config().err.ptp ? to_ptp_truncated(t3) : to_ntp(t3).to_u64();
                for (std::size_t i = 0; i < tx_.size(); ++i) stamp_reflector_timestamp(tx_.slot(i), w);
                const std::size_t queued = tx_.size();
                const std::size_t sent = tx_.send(fd, ec);
                io_counters_.send_errors += queued - sent;
                total += sent;
            }
            if (n < rx_.capacity()) break;
        }
        return total;
    }

private:
    static peer_key key_of(const sockaddr_storage& s) noexcept
    {
        peer_key k;
        if (s.ss_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(&s);
            k.addr[10] = k.addr[11] = 0xFF;
            std::memcpy(k.addr.data() + 12, &a->sin_addr, 4);
            k.port = ntohs(a->sin_port);
        } else {
            const auto* a = reinterpret_cast<const sockaddr_in6*>(&s);
            std::memcpy(k.addr.data(), &a->sin6_addr, 16);
            k.port = ntohs(a->sin6_port);
        }
        return k;
    }

    void wait_readable()
    {
        sock_.async_wait(asio::ip::udp::socket::wait_read, [this](const std::error_code& ec) {
            if (ec || !running_) return;
            drain();
            wait_readable();
        });
    }

    void arm_housekeeping()
    {
        timer_.expires_after(opts_.housekeeping);
        timer_.async_wait([this](const std::error_code& ec) {
            if (ec || !running_) return;
            core_.expire(realtime_now());
            core_.set_error_estimate(system_error_estimate());
            arm_housekeeping();
        });
    }

    reflector_options opts_;
    asio::ip::udp::socket sock_;
    asio::steady_timer timer_;
    session_reflector core_;
    rx_batch rx_;
    tx_batch tx_;
    reflector_io_counters io_counters_;
    bool running_ = false;
};

} // namespace twamp::net
