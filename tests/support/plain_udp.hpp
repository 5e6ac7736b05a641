// tests/support/plain_udp.hpp — a plain blocking IPv4 UDP socket on 127.0.0.1:0 for the asio
// tests: an independent peer that reads the TTL and TOS the kernel reports for what it receives
// (here, not through the library's parse_cmsgs) and can send with a chosen TOS and TTL.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace twamp_test {

struct plain_udp_peer {
    int fd = -1;
    std::uint16_t port = 0;

    plain_udp_peer()
    {
        fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port = ntohs(a.sin_port);
        set_ip(IP_RECVTTL, 1);
        set_ip(IP_RECVTOS, 1);
        timeval tv{2, 0}; // every receive is bounded
        REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    }
    ~plain_udp_peer() { ::close(fd); }
    plain_udp_peer(const plain_udp_peer&) = delete;
    plain_udp_peer& operator=(const plain_udp_peer&) = delete;

    struct datagram {
        std::vector<std::uint8_t> data;
        long len = -1; // -1: nothing came within 2 s
        int ttl = -1;
        int tos = -1;
        sockaddr_in from{};
        std::uint16_t from_port = 0;
    };

    // One datagram with the TTL and TOS the kernel reports; false on timeout.
    bool receive(datagram& d)
    {
        d = datagram{};
        d.data.assign(2048, 0);
        alignas(cmsghdr) unsigned char ctrl[256];
        iovec iov{d.data.data(), d.data.size()};
        msghdr mh{};
        mh.msg_name = &d.from;
        mh.msg_namelen = sizeof d.from;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctrl;
        mh.msg_controllen = sizeof ctrl;
        d.len = ::recvmsg(fd, &mh, 0);
        if (d.len < 0) {
            d.data.clear();
            return false;
        }
        d.data.resize(static_cast<std::size_t>(d.len));
        d.from_port = ntohs(d.from.sin_port);
        for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != IPPROTO_IP) continue;
            if (c->cmsg_type == IP_TOS) d.tos = *CMSG_DATA(c);
            if (c->cmsg_type == IP_TTL) std::memcpy(&d.ttl, CMSG_DATA(c), sizeof d.ttl);
        }
        return true;
    }
    datagram receive()
    {
        datagram d;
        receive(d);
        return d;
    }

    void send_to(const sockaddr_in& to, const void* p, std::size_t n)
    {
        REQUIRE(::sendto(fd, p, n, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
                static_cast<ssize_t>(n));
    }
    void send_to(const sockaddr_in& to, const std::vector<std::uint8_t>& p)
    {
        send_to(to, p.data(), p.size());
    }
    void send_to(std::uint16_t to_port, const std::vector<std::uint8_t>& p)
    {
        send_to(loopback(to_port), p.data(), p.size());
    }
    // With a TOS and TTL of its own (-1: leave the socket's).
    void send_to(std::uint16_t to_port, const void* p, std::size_t n, int tos = -1, int ttl = -1)
    {
        if (tos >= 0) set_ip(IP_TOS, tos);
        if (ttl >= 0) set_ip(IP_TTL, ttl);
        send_to(loopback(to_port), p, n);
    }
    void set_ip(int name, int value)
    {
        REQUIRE(::setsockopt(fd, IPPROTO_IP, name, &value, sizeof value) == 0);
    }

    static sockaddr_in loopback(std::uint16_t p)
    {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(p);
        return a;
    }
};

} // namespace twamp_test
