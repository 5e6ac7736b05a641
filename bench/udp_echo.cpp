// bench/udp_echo.cpp — the raw baseline peer for sender measurements: a plain blocking
// recvfrom/sendto loop on 127.0.0.1 that turns each TWAMP Light request of 41+ octets into the
// least a reply needs, in place (RFC 5357 §4.2.1 layout, stateless: the sender's sequence
// number, timestamp and error estimate copied to 24..37, T2 = T3 = one clock read, Sender TTL
// 255), and sends it back. No ancillary data, no state, no checks: the floor a reflector can
// be measured against. It prints its port, then runs until `seconds` pass.
// Usage: udp_echo [seconds=60] [port=0]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

int main(int argc, char** argv)
{
    const double seconds = argc > 1 ? std::atof(argv[1]) : 60;
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    const int buf = 4 << 20;
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    timeval tv{0, 200'000}; // wake up to check the deadline
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<unsigned short>(argc > 2 ? std::atoi(argv[2]) : 0));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 1;
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    std::printf("udp_echo listening on 127.0.0.1:%u\n", unsigned(ntohs(a.sin_port)));
    std::fflush(stdout);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    unsigned char b[65536];
    unsigned long long n = 0;
    while (std::chrono::steady_clock::now() < end) {
        sockaddr_in from{};
        socklen_t fl = sizeof from;
        const ssize_t r = ::recvfrom(fd, b, sizeof b, 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (r < 41) continue;
        timespec ts{};
        ::clock_gettime(CLOCK_REALTIME, &ts);
        const unsigned long long secs = static_cast<unsigned long long>(ts.tv_sec) + 2208988800ULL;
        const unsigned long long frac =
            (static_cast<unsigned long long>(ts.tv_nsec) << 32) / 1000000000ULL;
        unsigned char t[8];
        for (int i = 0; i < 4; ++i) {
            t[i] = static_cast<unsigned char>(secs >> (24 - 8 * i));
            t[4 + i] = static_cast<unsigned char>(frac >> (24 - 8 * i));
        }
        std::memmove(b + 24, b, 14); // sender seq, timestamp, error estimate
        b[38] = b[39] = 0;           // MBZ
        b[40] = 255;                 // Sender TTL
        std::memcpy(b + 4, t, 8);    // T3
        b[14] = b[15] = 0;           // MBZ
        std::memcpy(b + 16, t, 8);   // T2
        ::sendto(fd, b, static_cast<size_t>(r), 0, reinterpret_cast<sockaddr*>(&from), fl);
        ++n;
    }
    std::printf("udp_echo: echoed %llu datagrams\n", n);
    return 0;
}
