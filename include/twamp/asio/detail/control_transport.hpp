// twamp/asio/detail/control_transport.hpp — what the TWAMP server and controller do alike with
// a TCP control connection (RFC 5357 §3, RFC 4656 §3).
//
// Both feed a sans-I/O control machine (control_server, control_client) from a TCP socket: read
// whatever arrived, hand it over with the time, write out what the machine queued, one write at
// a time. Both turn asio addresses into the 16-octet form of Request-TW-Session and back, set up
// the socket (no Nagle; the DS field of the test on the control traffic, twampy's habit), and key
// a session's test packets once a protected mode is agreed. This file holds that once; the two
// adapters keep their protocol side and their lifetime rules (a shared connection on the server,
// one object per run on the controller), passed in as the `alive` guard of each operation.
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/test_guard.hpp"
#include "twamp/asio/udp.hpp"
#include "twamp/clock.hpp"
#include "twamp/control.hpp"
#include "twamp/dscp.hpp"

#include <asio.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace twamp::net::detail {

// Request-TW-Session's address field (RFC 5357 §3.5): IPv4 in the first four octets; an
// IPv4-mapped address counts as IPv4.
inline control::address_bytes to_address_bytes(const asio::ip::address& address)
{
    const asio::ip::address a = unmap(address);
    control::address_bytes b{};
    if (a.is_v4()) {
        const auto v = a.to_v4().to_bytes();
        std::copy(v.begin(), v.end(), b.begin());
    } else {
        b = a.to_v6().to_bytes();
    }
    return b;
}
inline asio::ip::address from_address_bytes(std::uint8_t ipvn, const control::address_bytes& b)
{
    if (ipvn == 4) return asio::ip::address_v4({b[0], b[1], b[2], b[3]});
    return asio::ip::address_v6(b);
}

// The control socket's options: no Nagle (the messages are small and answered one by one) and,
// with a non-zero DSCP, that DS field on the control traffic too.
inline void configure_control_socket(asio::ip::tcp::socket& sock, std::uint8_t dscp)
{
    std::error_code ec;
    sock.set_option(asio::ip::tcp::no_delay(true), ec);
    if (!dscp) return;
    const int tos = dscp_to_tos(dscp);
    std::error_code v6;
    const bool is_v6 = sock.local_endpoint(v6).protocol() == asio::ip::tcp::v6();
    if (is_v6)
        (void)set_opt(sock.native_handle(), IPPROTO_IPV6, IPV6_TCLASS, tos);
    else
        (void)set_opt(sock.native_handle(), IPPROTO_IP, IP_TOS, tos);
}

// The guard of one session's test packets when the agreed mode protects them (authenticated or
// encrypted; mixed mode protects only the control connection), keyed with the control
// connection's session keys and the session's SID; null otherwise.
template <class Security>
std::unique_ptr<test_guard> make_test_guard([[maybe_unused]] Security& security, std::uint32_t mode,
                                            [[maybe_unused]] const control::session_id& sid)
{
    if constexpr (test_keying_policy<Security>) {
        if (mode & (control::mode::authenticated | control::mode::encrypted))
            return std::make_unique<twamp_test_guard<typename Security::crypto_type>>(
                (mode & control::mode::authenticated) ? test_protection::authenticated
                                                      : test_protection::encrypted,
                security.aes_session_key().span(), security.hmac_session_key().span(),
                std::span<const std::uint8_t, 16>(sid));
    }
    (void)mode;
    return nullptr;
}

// The read → feed → write loop of one control connection. `Machine` is control_server or
// control_client (receive, on_eof, pending_output, consume_output). Every completion first asks
// `alive()` (which also keeps the owner alive, if it captures a shared pointer) and does nothing
// when it says no: the owner closed meanwhile.
template <class Machine> class control_stream {
public:
    explicit control_stream(asio::ip::tcp::socket& sock) : sock_(sock) {}

    // Reads once, feeds the machine what came (or the end of the stream) with the clock's time,
    // then calls `after(ec)`. The owner decides whether to read again.
    template <clock_policy Clock, class Alive, class After>
    void read(Machine& machine, const Clock& clock, Alive alive, After after)
    {
        sock_.async_read_some(
            asio::buffer(rbuf_),
            [this, &machine, clock, alive = std::move(alive),
             after = std::move(after)](const std::error_code& ec, std::size_t n) mutable {
                if (!alive()) return;
                const instant now = now_of(clock);
                if (ec)
                    machine.on_eof(now);
                else
                    machine.receive(std::span<const std::uint8_t>(rbuf_.data(), n), now);
                after(ec);
            });
    }

    // Writes out everything the machine has queued unless a write is under way; `after(ec)`
    // runs when it is done (call write() again there: more may have been queued meanwhile).
    // Returns false when there was nothing to write and no write is under way.
    template <class Alive, class After> bool write(Machine& machine, Alive alive, After after)
    {
        if (writing_) return true;
        const auto out = machine.pending_output();
        if (out.empty()) return false;
        wbuf_.assign(out.begin(), out.end());
        machine.consume_output(out.size());
        writing_ = true;
        asio::async_write(sock_, asio::buffer(wbuf_),
                          [this, alive = std::move(alive), after = std::move(after)](
                              const std::error_code& ec, std::size_t) mutable {
                              writing_ = false;
                              if (!alive()) return;
                              after(ec);
                          });
        return true;
    }

    bool writing() const noexcept { return writing_; }
    // Octets taken from the machine and not yet written.
    std::size_t in_flight() const noexcept { return writing_ ? wbuf_.size() : 0; }

    void close()
    {
        std::error_code ec;
        sock_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        sock_.close(ec);
    }

private:
    asio::ip::tcp::socket& sock_;
    std::array<std::uint8_t, 4096> rbuf_{};
    std::vector<std::uint8_t> wbuf_;
    bool writing_ = false;
};

} // namespace twamp::net::detail
