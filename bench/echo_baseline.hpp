// bench/echo_baseline.hpp — plain loopback UDP pieces for the socket benchmarks: a client that
// sends bursts and collects the replies, and the two echo servers the reflector is compared with.
//
// Everything is non-blocking and every wait has a deadline, so a dropped datagram costs at most
// one timeout and is counted; it never hangs the benchmark.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace twamp_bench {

using steady = std::chrono::steady_clock;

// An IPv4 UDP socket bound to 127.0.0.1:0, non-blocking, with 4 MiB buffers requested (the same
// request twamp::net::socket_options makes, so both sides get the same queue depth).
class plain_udp {
public:
    plain_udp()
    {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        const int buf = 4 << 20;
        (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        (void)::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
        socklen_t len = sizeof addr_;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr_), &len);
    }
    plain_udp(const plain_udp&) = delete;
    plain_udp& operator=(const plain_udp&) = delete;
    ~plain_udp()
    {
        if (fd_ >= 0) ::close(fd_);
    }
    int fd() const noexcept { return fd_; }
    const sockaddr_in& addr() const noexcept { return addr_; }

private:
    int fd_ = -1;
    sockaddr_in addr_{};
};

// The load generator: sends `burst` copies of one request with sendmmsg to a connected peer and
// receives the replies with recvmmsg, waiting at most `timeout` for stragglers.
class burst_client {
public:
    burst_client(const sockaddr_in& server, const std::vector<std::uint8_t>& request,
                 std::size_t max_burst)
        : request_(request), rx_buf_(max_burst * kRxSize), tx_iov_(max_burst), rx_iov_(max_burst),
          tx_(max_burst), rx_(max_burst)
    {
        if (::connect(sock_.fd(), reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0)
            throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
        for (std::size_t i = 0; i < max_burst; ++i) {
            tx_iov_[i] = {const_cast<std::uint8_t*>(request_.data()), request_.size()};
            tx_[i].msg_hdr = {};
            tx_[i].msg_hdr.msg_iov = &tx_iov_[i];
            tx_[i].msg_hdr.msg_iovlen = 1;
            rx_iov_[i] = {rx_buf_.data() + i * kRxSize, kRxSize};
        }
    }

    // Returns how many datagrams the kernel accepted.
    std::size_t send_burst(std::size_t n) noexcept
    {
        std::size_t done = 0;
        while (done < n) {
            const int r =
                ::sendmmsg(sock_.fd(), tx_.data() + done, static_cast<unsigned>(n - done), 0);
            if (r < 0) {
                if (errno == EINTR) continue;
                break; // EAGAIN (send buffer full) or a real error: count the rest as not sent
            }
            done += static_cast<std::size_t>(r);
        }
        return done;
    }

    // Receives until `n` replies arrived or nothing came for `timeout`. Returns how many arrived.
    std::size_t receive(std::size_t n, std::chrono::milliseconds timeout) noexcept
    {
        std::size_t got = 0;
        auto deadline = steady::now() + timeout;
        while (got < n) {
            const std::size_t want = std::min(n - got, rx_.size());
            for (std::size_t i = 0; i < want; ++i) {
                rx_[i].msg_hdr = {};
                rx_[i].msg_hdr.msg_iov = &rx_iov_[i];
                rx_[i].msg_hdr.msg_iovlen = 1;
            }
            const int r = ::recvmmsg(sock_.fd(), rx_.data(), static_cast<unsigned>(want),
                                     MSG_DONTWAIT, nullptr);
            if (r > 0) {
                got += static_cast<std::size_t>(r);
                deadline = steady::now() + timeout;
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
            if (left.count() <= 0) break;
            pollfd p{sock_.fd(), POLLIN, 0};
            (void)::poll(&p, 1, static_cast<int>(left.count()));
        }
        return got;
    }

    // Throws away anything still queued (late replies of an earlier iteration).
    void flush() noexcept
    {
        for (;;) {
            const int r = ::recvmmsg(sock_.fd(), rx_.data(), static_cast<unsigned>(rx_.size()),
                                     MSG_DONTWAIT, nullptr);
            if (r <= 0) return;
        }
    }

private:
    static constexpr std::size_t kRxSize = 2048;
    plain_udp sock_;
    std::vector<std::uint8_t> request_;
    std::vector<std::uint8_t> rx_buf_;
    std::vector<iovec> tx_iov_, rx_iov_;
    std::vector<mmsghdr> tx_, rx_;
};

// Baseline 1, the one the developers' guide asks for: recvfrom, then sendto the same octets back
// to the source. One datagram per step; returns 0 when nothing is queued.
class echo_recvfrom_sendto {
public:
    int fd() const noexcept { return sock_.fd(); }
    const sockaddr_in& addr() const noexcept { return sock_.addr(); }

    std::size_t step() noexcept
    {
        sockaddr_storage from{};
        socklen_t from_len = sizeof from;
        ssize_t n;
        do {
            n = ::recvfrom(sock_.fd(), buf_, sizeof buf_, MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
        } while (n < 0 && errno == EINTR);
        if (n < 0) return 0;
        ssize_t s;
        do {
            s = ::sendto(sock_.fd(), buf_, static_cast<std::size_t>(n), 0,
                         reinterpret_cast<const sockaddr*>(&from), from_len);
        } while (s < 0 && errno == EINTR);
        return s < 0 ? 0 : 1;
    }

private:
    plain_udp sock_;
    std::uint8_t buf_[9728];
};

// Baseline 2: the same echo batched like the reflector (recvmmsg / sendmmsg, `batch` at a time)
// but with no reply building. Without `metadata` it asks for no ancillary data at all; with it,
// it does at the socket level what net::udp_reflector does: SO_TIMESTAMPNS, IP_RECVTTL and
// IP_RECVTOS on receive (control buffers of the same size), an IP_TOS control message on every
// reply, and one clock read per batch. The two variants split the reflector's cost into what the
// kernel spends on metadata and what the library spends in user space.
class echo_mmsg {
public:
    explicit echo_mmsg(std::size_t batch = 32, bool metadata = false)
        : buf_(batch * kSize), from_(batch), iov_(batch), msgs_(batch), metadata_(metadata),
          rx_ctrl_(metadata ? batch * kCtrl : 0), tx_ctrl_(metadata ? batch * kTxCtrl : 0)
    {
        if (metadata_) {
            const int one = 1;
            (void)::setsockopt(sock_.fd(), SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
            (void)::setsockopt(sock_.fd(), IPPROTO_IP, IP_RECVTTL, &one, sizeof one);
            (void)::setsockopt(sock_.fd(), IPPROTO_IP, IP_RECVTOS, &one, sizeof one);
        }
    }
    int fd() const noexcept { return sock_.fd(); }
    const sockaddr_in& addr() const noexcept { return sock_.addr(); }

    // Like udp_reflector::drain(): up to `rounds` batches, stopping at a short batch.
    std::size_t step(int rounds = 8) noexcept
    {
        std::size_t total = 0;
        const auto cap = static_cast<unsigned>(msgs_.size());
        for (int round = 0; round < rounds; ++round) {
            for (std::size_t i = 0; i < msgs_.size(); ++i) {
                iov_[i] = {buf_.data() + i * kSize, kSize};
                msghdr& h = msgs_[i].msg_hdr;
                h = {};
                h.msg_name = &from_[i];
                h.msg_namelen = sizeof(sockaddr_storage);
                h.msg_iov = &iov_[i];
                h.msg_iovlen = 1;
                if (metadata_) {
                    h.msg_control = rx_ctrl_.data() + i * kCtrl;
                    h.msg_controllen = kCtrl;
                }
            }
            int n;
            do {
                n = ::recvmmsg(sock_.fd(), msgs_.data(), cap, MSG_DONTWAIT, nullptr);
            } while (n < 0 && errno == EINTR);
            if (n <= 0) break;
            std::uint64_t stamp = 0;
            for (int i = 0; i < n; ++i) {
                const auto k = static_cast<std::size_t>(i);
                auto& m = msgs_[k];
                iov_[k].iov_len = m.msg_len; // echo what came in
                m.msg_hdr.msg_flags = 0;
                if (metadata_) {
                    int tos = 0;
                    for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c;
                         c = CMSG_NXTHDR(&m.msg_hdr, c)) {
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                            timespec ts;
                            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
                            stamp ^= static_cast<std::uint64_t>(ts.tv_nsec);
                        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
                            tos = *CMSG_DATA(c) & 0xFC;
                        }
                    }
                    unsigned char* c = tx_ctrl_.data() + k * kTxCtrl;
                    m.msg_hdr.msg_control = c;
                    m.msg_hdr.msg_controllen = kTxCtrl;
                    cmsghdr* cm = CMSG_FIRSTHDR(&m.msg_hdr);
                    cm->cmsg_level = IPPROTO_IP;
                    cm->cmsg_type = IP_TOS;
                    cm->cmsg_len = CMSG_LEN(sizeof(int));
                    std::memcpy(CMSG_DATA(cm), &tos, sizeof tos);
                }
            }
            if (metadata_) {
                timespec now{};
                ::clock_gettime(CLOCK_REALTIME, &now); // the reflector's T3 read
                last_stamp_ = stamp ^ static_cast<std::uint64_t>(now.tv_nsec);
            }
            std::size_t done = 0;
            while (done < static_cast<std::size_t>(n)) {
                const int r =
                    ::sendmmsg(sock_.fd(), msgs_.data() + done,
                               static_cast<unsigned>(static_cast<std::size_t>(n) - done), 0);
                if (r < 0) {
                    if (errno == EINTR) continue;
                    ++done; // skip the one that failed, as tx_batch::send does
                    continue;
                }
                done += static_cast<std::size_t>(r);
                total += static_cast<std::size_t>(r);
            }
            if (static_cast<unsigned>(n) < cap) break;
        }
        return total;
    }

    std::uint64_t last_stamp() const noexcept { return last_stamp_; }

private:
    static constexpr std::size_t kSize = 9728;
    static constexpr std::size_t kCtrl = 256; // as twamp::net::detail::kCmsgSpace
    static constexpr std::size_t kTxCtrl = CMSG_SPACE(sizeof(int));
    plain_udp sock_;
    std::vector<std::uint8_t> buf_;
    std::vector<sockaddr_storage> from_;
    std::vector<iovec> iov_;
    std::vector<mmsghdr> msgs_;
    bool metadata_;
    std::vector<unsigned char> rx_ctrl_, tx_ctrl_;
    std::uint64_t last_stamp_ = 0;
};

} // namespace twamp_bench
