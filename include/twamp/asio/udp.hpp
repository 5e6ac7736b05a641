// twamp/asio/udp.hpp — UDP sockets for test traffic: IP options, ancillary data, batched I/O.
//
// What RFC 5357 §4 needs from the socket layer: DSCP/TOS and TTL/hop limit on what we send (255 by
// default, RFC 4656 §4.1.2), don't-fragment on request, the TTL/hop limit and DS field of each
// received packet (Sender TTL, RFC 5357 §4.2.1), and the kernel's receive timestamp. The socket
// calls are made directly on asio's native handle; asio provides the reactor.
//
// Two I/O paths, chosen at build time. On Linux, batches go through recvmmsg/sendmmsg (one
// system call per batch). Elsewhere (FreeBSD, macOS), or with TWAMP_PORTABLE_IO defined (the CI
// builds it on Linux to test it), each datagram is one recvmsg/sendmsg with the same ancillary
// data. Options are spelled per system: SO_TIMESTAMPNS or SO_TIMESTAMP, IP_MTU_DISCOVER or
// IP_DONTFRAG, the TTL and TOS control messages as Linux or the BSDs deliver them; ICMP error
// queues (IP_RECVERR) exist on Linux only.
#pragma once

#if defined(__linux__) && !defined(TWAMP_PORTABLE_IO)
#define TWAMP_IO_MMSG 1
#else
#define TWAMP_IO_MMSG 0
#endif

#include "twamp/asio/clock.hpp"

#include <asio.hpp>

#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

namespace twamp::net {

struct socket_options {
    std::optional<int> tos; // IPv4 TOS / IPv6 traffic class octet; unset = leave default
    int ttl = 255;          // IPv4 TTL / IPv6 unicast hop limit
    bool dont_fragment = false;
    int buffer_bytes = 4 << 20; // SO_RCVBUF / SO_SNDBUF request (the kernel may cap it)
    bool v6only = false;        // for IPv6 sockets: refuse IPv4-mapped traffic
    bool icmp_errors = false;   // queue ICMP errors (IP_RECVERR) so they can be counted
    // SO_REUSEPORT: several sockets (one per thread) share the port and the kernel hashes each
    // flow (addresses and ports) to one of them, always the same. Every socket of the group
    // must ask for it; without it a second bind to a taken port fails.
    bool reuse_port = false;
};

namespace detail {
// Up to kCount error-queue messages read in one system call (recvmmsg where there is one): with
// kernel send stamps every datagram sent queues one, so reading them one by one would cost a
// system call per probe. The payload (the offending datagram of an ICMP error) is not kept.
struct error_queue_batch {
    static constexpr std::size_t kCount = 16;
    struct slot {
        unsigned char data[64];
        alignas(cmsghdr) unsigned char ctrl[512];
        sockaddr_storage from;
        iovec iov;
    };
    slot slots[kCount];
#if TWAMP_IO_MMSG
    mmsghdr msgs[kCount];
#else
    msghdr msgs[kCount];
#endif

    msghdr& header(std::size_t i) noexcept
    {
#if TWAMP_IO_MMSG
        return msgs[i].msg_hdr;
#else
        return msgs[i];
#endif
    }

    // Reads at most `max` (≤ kCount) messages without blocking; returns how many.
    std::size_t read(int fd, std::size_t max) noexcept
    {
#ifndef MSG_ERRQUEUE
        (void)fd;
        (void)max;
        return 0;
#else
        max = std::min(max, kCount);
        for (std::size_t i = 0; i < max; ++i) {
            slot& sl = slots[i];
            sl.iov = {sl.data, sizeof sl.data};
            msghdr& mh = header(i);
            mh = msghdr{};
            mh.msg_name = &sl.from;
            mh.msg_namelen = sizeof sl.from;
            mh.msg_iov = &sl.iov;
            mh.msg_iovlen = 1;
            mh.msg_control = sl.ctrl;
            mh.msg_controllen = sizeof sl.ctrl;
        }
#if TWAMP_IO_MMSG
        int n;
        do {
            n = ::recvmmsg(fd, msgs, static_cast<unsigned>(max), MSG_ERRQUEUE | MSG_DONTWAIT,
                           nullptr);
        } while (n < 0 && errno == EINTR);
        return n > 0 ? static_cast<std::size_t>(n) : 0;
#else
        std::size_t n = 0;
        while (n < max && ::recvmsg(fd, &msgs[n], MSG_ERRQUEUE | MSG_DONTWAIT) >= 0)
            ++n;
        return n;
#endif
#endif
    }
};
} // namespace detail

// Reads and counts the socket's queued ICMP errors (IP_RECVERR / IPV6_RECVERR), which also
// clears the readiness they cause. Returns how many were read.
inline std::size_t drain_error_queue(int fd) noexcept
{
    std::size_t n = 0;
    detail::error_queue_batch b;
    while (n < 1024) {
        const std::size_t k = b.read(fd, detail::error_queue_batch::kCount);
        n += k;
        if (k < detail::error_queue_batch::kCount) break;
    }
    return n;
}

namespace detail {
inline std::error_code set_opt(int fd, int level, int name, int value) noexcept
{
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
        return {errno, std::system_category()};
    return {};
}
} // namespace detail

// Opens and binds a UDP socket with the options above, plus the receive-side ancillary data.
inline std::error_code open_udp_socket(asio::ip::udp::socket& sock,
                                       const asio::ip::udp::endpoint& local,
                                       const socket_options& o)
{
    std::error_code ec;
    sock.open(local.protocol(), ec);
    if (ec) return ec;
    const int fd = sock.native_handle();
    const bool v6 = local.protocol() == asio::ip::udp::v6();
    using detail::set_opt;
    if (v6) {
        if ((ec = set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, o.v6only ? 1 : 0))) return ec;
        if ((ec = set_opt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, o.ttl))) return ec;
        if (o.tos && (ec = set_opt(fd, IPPROTO_IPV6, IPV6_TCLASS, *o.tos))) return ec;
        if ((ec = set_opt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, o.dont_fragment ? 1 : 0))) return ec;
#ifdef IPV6_MTU_DISCOVER
        if ((ec = set_opt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER,
                          o.dont_fragment ? IPV6_PMTUDISC_DO : IPV6_PMTUDISC_DONT)))
            return ec;
#endif
        if ((ec = set_opt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1))) return ec;
        if ((ec = set_opt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, 1))) return ec;
    }
    if (!v6 || !o.v6only) {
        // On a dual-stack socket these govern the IPv4-mapped traffic; Linux accepts them there.
        std::error_code ec4;
        if ((ec4 = set_opt(fd, IPPROTO_IP, IP_TTL, o.ttl)) && !v6) return ec4;
        if (o.tos && (ec4 = set_opt(fd, IPPROTO_IP, IP_TOS, *o.tos)) && !v6) return ec4;
            // Without don't-fragment we say so explicitly: Linux would otherwise set DF on UDP.
#if defined(IP_MTU_DISCOVER)
        if ((ec4 = set_opt(fd, IPPROTO_IP, IP_MTU_DISCOVER,
                           o.dont_fragment ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT)) &&
            !v6)
            return ec4;
#elif defined(IP_DONTFRAG)
        if ((ec4 = set_opt(fd, IPPROTO_IP, IP_DONTFRAG, o.dont_fragment ? 1 : 0)) && !v6)
            return ec4;
#endif
        if ((ec4 = set_opt(fd, IPPROTO_IP, IP_RECVTTL, 1)) && !v6) return ec4;
        if ((ec4 = set_opt(fd, IPPROTO_IP, IP_RECVTOS, 1)) && !v6) return ec4;
    }
#ifdef IP_RECVERR
    if (o.icmp_errors) {
        (void)set_opt(fd, IPPROTO_IP, IP_RECVERR, 1);
        if (v6) (void)set_opt(fd, IPPROTO_IPV6, IPV6_RECVERR, 1);
    }
#endif
    // Kernel receive timestamps; without them we fall back to reading the clock after recv.
#ifdef SO_TIMESTAMPNS
    (void)set_opt(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1);
#else
    (void)set_opt(fd, SOL_SOCKET, SO_TIMESTAMP, 1); // microseconds
#endif
    (void)set_opt(fd, SOL_SOCKET, SO_RCVBUF, o.buffer_bytes);
    (void)set_opt(fd, SOL_SOCKET, SO_SNDBUF, o.buffer_bytes);
    // No SO_REUSEADDR: on UDP it lets a bind to port 0 return a port another socket holds, and
    // two reflectors would silently share a fixed port. SO_REUSEPORT only when asked (threads).
    if (o.reuse_port && (ec = set_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1))) return ec;
    sock.bind(local, ec);
    if (ec) return ec;
    sock.non_blocking(true, ec);
    return ec;
}

// One received datagram with what the kernel told us about it.
struct rx_meta {
    std::size_t len = 0;
    bool truncated = false; // larger than our buffer: dropped by the caller
    nanoseconds rx_time{0}; // kernel timestamp, or the clock right after recv
    bool kernel_time = false;
    std::uint8_t ttl = 0; // 0 = not reported
    int tos = -1;         // -1 = not reported
    sockaddr_storage from{};
    socklen_t from_len = 0;
};

namespace detail {
// Whether `c` is the (level, type) message with a payload of at least `len` octets.
inline bool cmsg_is(const cmsghdr* c, int level, int type, std::size_t len) noexcept
{
    return c->cmsg_level == level && c->cmsg_type == type && c->cmsg_len >= CMSG_LEN(len);
}
inline int cmsg_int(cmsghdr* c) noexcept
{
    int v;
    std::memcpy(&v, CMSG_DATA(c), sizeof v);
    return v;
}
inline std::uint8_t cmsg_octet(cmsghdr* c) noexcept
{
    return *reinterpret_cast<const unsigned char*>(CMSG_DATA(c));
}

inline void parse_cmsgs(msghdr& mh, rx_meta& m) noexcept
{
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
#ifdef SCM_TIMESTAMPNS
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
            c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
            timespec ts;
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            m.rx_time = nanoseconds{std::int64_t{ts.tv_sec} * kNsPerSec + ts.tv_nsec};
            m.kernel_time = true;
            continue;
        }
#endif
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP &&
            c->cmsg_len >= CMSG_LEN(sizeof(timeval))) {
            timeval tv;
            std::memcpy(&tv, CMSG_DATA(c), sizeof tv);
            m.rx_time = nanoseconds{std::int64_t{tv.tv_sec} * kNsPerSec + tv.tv_usec * 1000};
            m.kernel_time = true;
#if !defined(__linux__)
        } else if (cmsg_is(c, IPPROTO_IP, IP_RECVTTL, 1)) {
            // The BSDs deliver the received TTL and TOS as one octet under the option's name.
            m.ttl = cmsg_octet(c);
        } else if (cmsg_is(c, IPPROTO_IP, IP_RECVTOS, 1)) {
            m.tos = cmsg_octet(c);
#endif
        } else if (cmsg_is(c, IPPROTO_IP, IP_TTL, sizeof(int)) ||
                   cmsg_is(c, IPPROTO_IPV6, IPV6_HOPLIMIT, sizeof(int))) {
            m.ttl = static_cast<std::uint8_t>(cmsg_int(c));
        } else if (cmsg_is(c, IPPROTO_IP, IP_TOS, 1)) {
            m.tos = cmsg_octet(c);
        } else if (cmsg_is(c, IPPROTO_IPV6, IPV6_TCLASS, sizeof(int))) {
            m.tos = cmsg_int(c) & 0xFF;
        }
    }
}
inline constexpr std::size_t kCmsgSpace = 256;

#if TWAMP_IO_MMSG
using batch_msg = mmsghdr;
#else
struct batch_msg {                                  // the part of mmsghdr the batches use
    msghdr msg_hdr;
    unsigned int msg_len;
};
#endif
} // namespace detail

// A fixed batch of receive buffers for recvmmsg; allocated once.
class rx_batch {
public:
    rx_batch(std::size_t count, std::size_t buffer_size)
        : bufs_(count * buffer_size), buf_size_(buffer_size), meta_(count), iov_(count),
          msgs_(count), ctrl_(count * detail::kCmsgSpace)
    {
    }
    std::size_t capacity() const noexcept { return meta_.size(); }
    std::size_t buffer_size() const noexcept { return buf_size_; }

    // Receives up to capacity() datagrams without blocking. Returns how many (0 when none are
    // waiting); sets ec on a real error.
    std::size_t receive(int fd, std::error_code& ec) noexcept
    {
        ec.clear();
        for (std::size_t i = 0; i < meta_.size(); ++i) {
            iov_[i] = {bufs_.data() + i * buf_size_, buf_size_};
            msghdr& h = msgs_[i].msg_hdr;
            h = {};
            h.msg_name = &meta_[i].from;
            h.msg_namelen = sizeof(sockaddr_storage);
            h.msg_iov = &iov_[i];
            h.msg_iovlen = 1;
            h.msg_control = ctrl_.data() + i * detail::kCmsgSpace;
            h.msg_controllen = detail::kCmsgSpace;
            msgs_[i].msg_len = 0;
        }
        int n;
#if TWAMP_IO_MMSG
        do {
            n = ::recvmmsg(fd, msgs_.data(), static_cast<unsigned>(msgs_.size()), MSG_DONTWAIT,
                           nullptr);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) ec = {errno, std::system_category()};
            return 0;
        }
#else
        n = 0;
        while (static_cast<std::size_t>(n) < msgs_.size()) {
            const ssize_t r =
                ::recvmsg(fd, &msgs_[static_cast<std::size_t>(n)].msg_hdr, MSG_DONTWAIT);
            if (r < 0) {
                if (errno == EINTR) continue;
                // An error after some datagrams waits for the next call, as recvmmsg does.
                if (n == 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                    ec = {errno, std::system_category()};
                break;
            }
            msgs_[static_cast<std::size_t>(n)].msg_len = static_cast<unsigned int>(r);
            ++n;
        }
        if (n == 0) return 0;
#endif
        // A datagram without a kernel timestamp gets the clock read once for the batch; with
        // SO_TIMESTAMPNS working (the usual case) the clock is not read here at all.
        nanoseconds fallback{0};
        for (int i = 0; i < n; ++i) {
            rx_meta& m = meta_[static_cast<std::size_t>(i)];
            msghdr& h = msgs_[static_cast<std::size_t>(i)].msg_hdr;
            m.len = msgs_[static_cast<std::size_t>(i)].msg_len;
            m.truncated = (h.msg_flags & MSG_TRUNC) != 0;
            m.from_len = h.msg_namelen;
            m.ttl = 0;
            m.tos = -1;
            m.kernel_time = false;
            detail::parse_cmsgs(h, m);
            if (!m.kernel_time) {
                if (fallback.count() == 0) fallback = realtime_now();
                m.rx_time = fallback;
            }
        }
        return static_cast<std::size_t>(n);
    }

    std::span<std::uint8_t> data(std::size_t i) noexcept
    {
        return {bufs_.data() + i * buf_size_, std::min(meta_[i].len, buf_size_)};
    }
    const rx_meta& meta(std::size_t i) const noexcept
    {
        return meta_[i];
    }

private:
    std::vector<std::uint8_t> bufs_;
    std::size_t buf_size_;
    std::vector<rx_meta> meta_;
    std::vector<iovec> iov_;
    std::vector<detail::batch_msg> msgs_;
    std::vector<unsigned char> ctrl_;
};

// A fixed batch of outgoing datagrams for sendmmsg, each optionally with its own DS field.
class tx_batch {
public:
    tx_batch(std::size_t count, std::size_t buffer_size)
        : bufs_(count * buffer_size), buf_size_(buffer_size), lens_(count), to_(count),
          to_len_(count), tos_(count), failed_(count), slot_of_(count), iov_(count), msgs_(count),
          ctrl_(count * CMSG_SPACE(sizeof(int)))
    {
    }
    std::size_t capacity() const noexcept { return lens_.size(); }
    std::size_t size() const noexcept { return n_; }
    void clear() noexcept { n_ = 0; }
    std::span<std::uint8_t> slot(std::size_t i) noexcept
    {
        return {bufs_.data() + i * buf_size_, buf_size_};
    }
    std::span<std::uint8_t> sent_data(std::size_t i) noexcept
    {
        return {bufs_.data() + i * buf_size_, lens_[i]};
    }

    // Commits slot size() with `len` octets to `to`; tos < 0 sends with the socket's setting.
    void push(std::size_t len, const sockaddr_storage& to, socklen_t to_len, int tos) noexcept
    {
        lens_[n_] = len;
        to_[n_] = to;
        to_len_[n_] = to_len;
        tos_[n_] = tos;
        ++n_;
    }

    // Queued datagrams that will really be sent (not withdrawn with length 0).
    std::size_t live() const noexcept
    {
        std::size_t n = 0;
        for (std::size_t i = 0; i < n_; ++i)
            n += lens_[i] != 0;
        return n;
    }
    // Changes the length of queued datagram i (a protected reply is longer than its staging).
    void set_length(std::size_t i, std::size_t len) noexcept { lens_[i] = len; }

    // Whether queued datagram i was refused by the last send() (false for withdrawn ones).
    bool failed(std::size_t i) const noexcept { return failed_[i] != 0; }

    // Sends everything queued; returns how many went out (the rest failed with ec).
    std::size_t send(int fd, std::error_code& ec) noexcept
    {
        ec.clear();
        std::size_t m = 0; // datagrams to send; zero-length entries were withdrawn
        for (std::size_t i = 0; i < n_; ++i) {
            failed_[i] = 0;
            if (lens_[i] == 0) continue;
            slot_of_[m] = i;
            iov_[m] = {bufs_.data() + i * buf_size_, lens_[i]};
            msghdr& h = msgs_[m].msg_hdr;
            h = {};
            h.msg_name = &to_[i];
            h.msg_namelen = to_len_[i];
            h.msg_iov = &iov_[m];
            h.msg_iovlen = 1;
            if (tos_[i] >= 0) {
                unsigned char* c = ctrl_.data() + m * CMSG_SPACE(sizeof(int));
                h.msg_control = c;
                h.msg_controllen = CMSG_SPACE(sizeof(int));
                cmsghdr* cm = CMSG_FIRSTHDR(&h);
                const bool mapped_or_v4 = is_ipv4_destination(to_[i]);
                cm->cmsg_level = mapped_or_v4 ? IPPROTO_IP : IPPROTO_IPV6;
                cm->cmsg_type = mapped_or_v4 ? IP_TOS : IPV6_TCLASS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                const int v = tos_[i];
                std::memcpy(CMSG_DATA(cm), &v, sizeof v);
            }
            ++m;
        }
        std::size_t done = 0, ok = 0;
        while (done < m) {
#if TWAMP_IO_MMSG
            const int r = ::sendmmsg(fd, msgs_.data() + done, static_cast<unsigned>(m - done), 0);
#else
            const int r = ::sendmsg(fd, &msgs_[done].msg_hdr, 0) < 0 ? -1 : 1;
#endif
            if (r < 0) {
                if (errno == EINTR) continue;
                ec = {errno, std::system_category()};
                failed_[slot_of_[done]] = 1;
                ++done; // skip the datagram that failed and go on with the rest
                continue;
            }
            done += static_cast<std::size_t>(r);
            ok += static_cast<std::size_t>(r);
        }
        n_ = 0;
        return ok;
    }

    static bool is_ipv4_destination(const sockaddr_storage& s) noexcept
    {
        if (s.ss_family == AF_INET) return true;
        if (s.ss_family != AF_INET6) return false;
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&s);
        return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
    }

private:
    std::vector<std::uint8_t> bufs_;
    std::size_t buf_size_;
    std::vector<std::size_t> lens_;
    std::vector<sockaddr_storage> to_;
    std::vector<socklen_t> to_len_;
    std::vector<int> tos_;
    std::vector<std::uint8_t> failed_;
    std::vector<std::size_t> slot_of_; // message index -> queued slot, for the last send()
    std::vector<iovec> iov_;
    std::vector<detail::batch_msg> msgs_;
    std::vector<unsigned char> ctrl_;
    std::size_t n_ = 0;
};

// sockaddr <-> asio conversions.
inline asio::ip::udp::endpoint to_endpoint(const sockaddr_storage& s) noexcept
{
    asio::ip::udp::endpoint ep;
    const std::size_t len = s.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    std::memcpy(ep.data(), &s, len);
    return ep;
}
inline socklen_t from_endpoint(const asio::ip::udp::endpoint& ep, sockaddr_storage& s) noexcept
{
    std::memcpy(&s, ep.data(), ep.size());
    return static_cast<socklen_t>(ep.size());
}

} // namespace twamp::net
