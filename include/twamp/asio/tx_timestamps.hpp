// twamp/asio/tx_timestamps.hpp — kernel send timestamps on a UDP socket (SO_TIMESTAMPING).
//
// A user-space clock read before sendto() is not the time the datagram left: the system call, the
// IP stack and the queueing discipline come between. Linux can stamp the datagram itself, in
// software where the driver hands it to the device or in hardware on the wire, and queues the
// stamp on the socket's error queue. This header enables that, reads the stamps without blocking,
// and matches them to what was sent:
//
//   enable_tx_timestamps(fd, mode, interface)   the mode asked for (auto | hardware | software |
//                                               user) against what the host can do; the result
//                                               says truthfully what was enabled and why not more
//   drain_tx_error_queue(fd, on_stamp)          one bounded non-blocking pass over the error
//                                               queue: send stamps to the callback, every other
//                                               queued error (ICMP, IP_RECVERR) counted as before
//   tx_key_ring<T>                              which datagram a stamp belongs to (OPT_ID keys),
//                                               in fixed memory
//
// Keys (SOF_TIMESTAMPING_OPT_ID): the kernel numbers the datagrams of a socket from 0 when the
// option is enabled, one key per datagram it accepts (sendmsg: one; sendmmsg: one per datagram
// it reports sent, in order). A call the kernel refuses takes no key on current kernels; older
// ones took one, and tx_key_ring resolves that from the stamps (see send_failed()). OPT_TSONLY
// keeps the payload out of the error queue. Hardware stamps are the interface clock's: they are
// used only when that clock is disciplined to the system clock, which tx_key_ring checks per
// stamp (a send time before the user-space read, or more than a second after it, is refused).
//
// Without SO_TIMESTAMPING (not Linux) everything degrades to `user`, and says so.
#pragma once

#include "twamp/asio/clock.hpp"
#include "twamp/asio/udp.hpp"

#include <asio.hpp>

#include <sys/socket.h>
#include <unistd.h>

#if defined(__linux__)
#include <ifaddrs.h>
#include <linux/errqueue.h>
#include <linux/ethtool.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#endif

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#if defined(__linux__) && defined(SO_TIMESTAMPING) && defined(SCM_TIMESTAMPING)
#define TWAMP_TX_TIMESTAMPS 1
#else
#define TWAMP_TX_TIMESTAMPS 0
#endif

namespace twamp::net {

// What the user asks for. `automatic`: hardware when the interface can stamp and is already set
// to (the host's PTP set-up owns that switch), else software, else user.
enum class timestamping_mode : std::uint8_t { automatic, hardware, software, user };
// Where a send time came from.
enum class tx_source : std::uint8_t { user, software, hardware };

inline constexpr const char* to_string(timestamping_mode m) noexcept
{
    switch (m) {
    case timestamping_mode::automatic:
        return "auto";
    case timestamping_mode::hardware:
        return "hardware";
    case timestamping_mode::software:
        return "software";
    case timestamping_mode::user:
        return "user";
    }
    return "auto";
}
inline constexpr const char* to_string(tx_source s) noexcept
{
    switch (s) {
    case tx_source::user:
        return "user";
    case tx_source::software:
        return "software";
    case tx_source::hardware:
        return "hardware";
    }
    return "user";
}
inline std::optional<timestamping_mode> parse_timestamping_mode(std::string_view s) noexcept
{
    if (s == "auto") return timestamping_mode::automatic;
    if (s == "hardware") return timestamping_mode::hardware;
    if (s == "software") return timestamping_mode::software;
    if (s == "user") return timestamping_mode::user;
    return std::nullopt;
}

// What enable_tx_timestamps() did.
struct tx_timestamping {
    timestamping_mode requested = timestamping_mode::user;
    tx_source enabled = tx_source::user; // user: no kernel send stamps
    std::string interface;               // the interface probed for hardware ("" = none)
    std::string note;                    // why less than asked was enabled; "" when met
    bool kernel() const noexcept { return enabled != tx_source::user; }
    // An explicit hardware or software request that could not be met.
    bool unmet() const noexcept
    {
        return (requested == timestamping_mode::hardware && enabled != tx_source::hardware) ||
               (requested == timestamping_mode::software && enabled != tx_source::software);
    }
};

// What an interface can stamp (ETHTOOL_GET_TS_INFO) and whether its transmit stamping is on
// (SIOCGHWTSTAMP).
struct hw_timestamp_caps {
    bool queried = false;     // the driver answered
    bool tx_hardware = false; // SOF_TIMESTAMPING_TX_HARDWARE | RAW_HARDWARE, HWTSTAMP_TX_ON
    bool tx_enabled = false;  // the interface is set to stamp transmitted packets now
    int phc_index = -1;       // its PTP hardware clock, -1 = none
    std::error_code error;    // why the query failed
};

#if TWAMP_TX_TIMESTAMPS
namespace detail {
inline bool ifreq_for(ifreq& ifr, const std::string& ifname) noexcept
{
    std::memset(&ifr, 0, sizeof ifr);
    if (ifname.empty() || ifname.size() >= sizeof ifr.ifr_name) return false;
    std::memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
    return true;
}
} // namespace detail
#endif

// Asks the driver of `ifname` what it can stamp (any socket `fd` serves for the ioctl).
inline hw_timestamp_caps probe_hw_timestamping(int fd, const std::string& ifname) noexcept
{
    hw_timestamp_caps c;
#if TWAMP_TX_TIMESTAMPS && defined(SIOCETHTOOL) && defined(ETHTOOL_GET_TS_INFO)
    ifreq ifr;
    if (!detail::ifreq_for(ifr, ifname)) {
        c.error = std::make_error_code(std::errc::no_such_device);
        return c;
    }
    ethtool_ts_info info{};
    info.cmd = ETHTOOL_GET_TS_INFO;
    ifr.ifr_data = reinterpret_cast<char*>(&info);
    if (::ioctl(fd, SIOCETHTOOL, &ifr) != 0) {
        c.error = {errno, std::system_category()};
        return c;
    }
    c.queried = true;
    c.phc_index = info.phc_index;
    constexpr std::uint32_t need = SOF_TIMESTAMPING_TX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE;
    c.tx_hardware = (info.so_timestamping & need) == need &&
                    (info.tx_types & (1U << HWTSTAMP_TX_ON)) != 0 && info.phc_index >= 0;
#ifdef SIOCGHWTSTAMP
    if (c.tx_hardware) {
        hwtstamp_config cfg{};
        ifr.ifr_data = reinterpret_cast<char*>(&cfg);
        if (::ioctl(fd, SIOCGHWTSTAMP, &ifr) == 0) c.tx_enabled = cfg.tx_type == HWTSTAMP_TX_ON;
    }
#endif
#else
    (void)fd;
    (void)ifname;
    c.error = std::make_error_code(std::errc::operation_not_supported);
#endif
    return c;
}

// The name of the interface that holds `addr` ("" when none does, or for a wildcard address).
inline std::string interface_for(const asio::ip::address& addr)
{
#if TWAMP_TX_TIMESTAMPS
    if (addr.is_unspecified()) return {};
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return {};
    std::string name;
    for (ifaddrs* i = list; i && name.empty(); i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        if (addr.is_v4() && i->ifa_addr->sa_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
            const auto b = addr.to_v4().to_bytes();
            if (std::memcmp(&a->sin_addr, b.data(), b.size()) == 0) name = i->ifa_name;
        } else if (addr.is_v6() && i->ifa_addr->sa_family == AF_INET6) {
            const auto* a = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
            const auto b = addr.to_v6().to_bytes();
            if (std::memcmp(&a->sin6_addr, b.data(), b.size()) == 0) name = i->ifa_name;
        }
    }
    ::freeifaddrs(list);
    return name;
#else
    (void)addr;
    return {};
#endif
}

namespace detail {
#if TWAMP_TX_TIMESTAMPS
inline constexpr int kTxFlagsCommon = SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
inline constexpr int kTxFlagsSoftware =
    SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | kTxFlagsCommon;
inline constexpr int kTxFlagsHardware =
    SOF_TIMESTAMPING_TX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE | kTxFlagsCommon;

inline std::error_code set_timestamping(int fd, int flags) noexcept
{
    if (::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)
        return {errno, std::system_category()};
    return {};
}

// Switches the interface's transmit stamping on, keeping its receive filter (needs
// CAP_NET_ADMIN; a change for every socket on the host, so only on an explicit request).
inline std::error_code switch_on_hw_tx(int fd, const std::string& ifname) noexcept
{
#if defined(SIOCGHWTSTAMP) && defined(SIOCSHWTSTAMP)
    ifreq ifr;
    if (!ifreq_for(ifr, ifname)) return std::make_error_code(std::errc::no_such_device);
    hwtstamp_config cfg{};
    ifr.ifr_data = reinterpret_cast<char*>(&cfg);
    if (::ioctl(fd, SIOCGHWTSTAMP, &ifr) != 0) cfg = hwtstamp_config{};
    cfg.tx_type = HWTSTAMP_TX_ON;
    ifr.ifr_data = reinterpret_cast<char*>(&cfg);
    if (::ioctl(fd, SIOCSHWTSTAMP, &ifr) != 0) return {errno, std::system_category()};
    return cfg.tx_type == HWTSTAMP_TX_ON ? std::error_code{}
                                         : std::make_error_code(std::errc::not_supported);
#else
    (void)fd;
    (void)ifname;
    return std::make_error_code(std::errc::not_supported);
#endif
}
#endif
} // namespace detail

// Enables kernel send stamps on `fd` as far as `mode` asks and the host allows. `ifname` is the
// interface the datagrams leave by (interface_for(); "" = unknown, so no hardware). `automatic`
// takes the best available and never changes the interface's settings; `hardware` and `software`
// enable exactly that or nothing (unmet() then says so, note says why); `user` enables nothing.
inline tx_timestamping enable_tx_timestamps(int fd, timestamping_mode mode,
                                            const std::string& ifname)
{
    tx_timestamping r;
    r.requested = mode;
    r.interface = ifname;
    if (mode == timestamping_mode::user) return r;
#if TWAMP_TX_TIMESTAMPS
    if (mode == timestamping_mode::automatic || mode == timestamping_mode::hardware) {
        const auto caps = probe_hw_timestamping(fd, ifname);
        std::string why;
        if (ifname.empty())
            why = "no interface known for the source address";
        else if (!caps.queried)
            why = "interface " + ifname + ": " + caps.error.message();
        else if (!caps.tx_hardware)
            why = "interface " + ifname + " has no hardware transmit timestamping";
        bool on = why.empty() && caps.tx_enabled;
        if (why.empty() && !on) {
            if (mode == timestamping_mode::hardware) {
                const auto ec = detail::switch_on_hw_tx(fd, ifname);
                if (ec)
                    why = "interface " + ifname +
                          ": cannot switch transmit timestamping on: " + ec.message();
                on = !ec;
            } else {
                why = "interface " + ifname +
                      " can stamp in hardware but its transmit timestamping is off";
            }
        }
        if (on) {
            const auto ec = detail::set_timestamping(fd, detail::kTxFlagsHardware);
            if (!ec) {
                r.enabled = tx_source::hardware;
                return r;
            }
            why = "SO_TIMESTAMPING (hardware): " + ec.message();
        }
        if (mode == timestamping_mode::hardware) {
            r.note = why;
            return r;
        }
        r.note = why; // auto: say why not hardware, then try software
    }
    if (const auto ec = detail::set_timestamping(fd, detail::kTxFlagsSoftware)) {
        r.note = (r.note.empty() ? "" : r.note + "; ") + "SO_TIMESTAMPING: " + ec.message();
        return r;
    }
    r.enabled = tx_source::software;
    if (mode == timestamping_mode::software) r.note.clear();
#else
    (void)fd;
    r.note = "kernel send timestamps (SO_TIMESTAMPING) are not available on this system";
#endif
    return r;
}

// What enable_tx_timestamps() would give a UDP socket of `family` (AF_INET or AF_INET6) sending
// by `ifname`, tried on a socket of its own that is closed again: for a component that decides
// before its sockets exist (a reflector writing its Timestamp Information TLV). An explicit
// `hardware` may switch the interface's transmit stamping on, as enable_tx_timestamps() does.
inline tx_timestamping resolve_tx_timestamps(timestamping_mode mode, const std::string& ifname,
                                             int family = AF_INET)
{
    const int fd = ::socket(family, SOCK_DGRAM, 0);
    if (fd < 0) {
        tx_timestamping r;
        r.requested = mode;
        r.interface = ifname;
        if (mode != timestamping_mode::user)
            r.note = std::string("cannot open a socket to try: ") + std::strerror(errno);
        return r;
    }
    auto r = enable_tx_timestamps(fd, mode, ifname);
    ::close(fd);
    return r;
}

// One send stamp read from the error queue.
struct tx_stamp {
    std::uint32_t key = 0; // the datagram's OPT_ID key
    nanoseconds time{0};   // when it was sent, CLOCK_REALTIME (hardware: the interface clock)
    tx_source source = tx_source::software;
};

// What one pass over the error queue read.
struct error_queue_read {
    std::size_t stamps = 0; // send stamps handed to the callback
    std::size_t errors = 0; // everything else: ICMP errors (IP_RECVERR), counted as before
    bool more = false;      // the pass stopped at its bound with the queue not yet empty

    error_queue_read& operator+=(const error_queue_read& o) noexcept
    {
        stamps += o.stamps;
        errors += o.errors;
        more = more || o.more;
        return *this;
    }
};

namespace detail {
// One error-queue message: a send stamp goes to `on_stamp`, other stamp kinds are skipped,
// anything else counts as an error.
template <class F> error_queue_read read_one_error(msghdr& mh, F& on_stamp) noexcept
{
    error_queue_read r;
#if TWAMP_TX_TIMESTAMPS
    bool have_ts = false, have_ee = false;
    timespec ts[3]{};
    sock_extended_err ee{};
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING &&
            c->cmsg_len >= CMSG_LEN(sizeof ts)) {
            std::memcpy(ts, CMSG_DATA(c), sizeof ts);
            have_ts = true;
        } else if (((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                    (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) &&
                   c->cmsg_len >= CMSG_LEN(sizeof ee)) {
            std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
            have_ee = true;
        }
    }
    if (have_ee && ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
        if (!have_ts || ee.ee_info != SCM_TSTAMP_SND) return r;
        const bool hw = ts[2].tv_sec != 0 || ts[2].tv_nsec != 0;
        const timespec& t = hw ? ts[2] : ts[0];
        if (t.tv_sec == 0 && t.tv_nsec == 0) return r;
        tx_stamp s;
        s.key = ee.ee_data;
        s.time = nanoseconds{std::int64_t{t.tv_sec} * kNsPerSec + t.tv_nsec};
        s.source = hw ? tx_source::hardware : tx_source::software;
        ++r.stamps;
        on_stamp(static_cast<const tx_stamp&>(s));
        return r;
    }
#else
    (void)on_stamp;
#endif
    ++r.errors;
    return r;
}
} // namespace detail

// Reads the error queue without blocking, at most `limit` messages: each send stamp goes to
// `on_stamp(const tx_stamp&)`, anything else is counted in `errors` (what drain_error_queue()
// counted). Stamps of other kinds than "sent" (scheduler, ACK) are not asked for and skipped.
template <class F>
error_queue_read drain_tx_error_queue(int fd, F&& on_stamp, std::size_t limit = 256) noexcept
{
    error_queue_read r;
#ifndef MSG_ERRQUEUE
    (void)fd;
    (void)on_stamp;
    (void)limit;
#else
    detail::error_queue_batch batch;
    std::size_t done = 0;
    while (done < limit) {
        const std::size_t want = std::min(limit - done, detail::error_queue_batch::kCount);
        const std::size_t got = batch.read(fd, want);
        for (std::size_t i = 0; i < got; ++i)
            r += detail::read_one_error(batch.header(i), on_stamp);
        done += got;
        if (got < want) return r; // the queue is empty
    }
    r.more = true;
#endif
    return r;
}

// Remembers the datagrams sent, by OPT_ID key, until their stamp comes: a fixed ring of
// `capacity` entries (a power of two), allocated once. `T` is what the caller wants back (a
// sequence number, a session index). A datagram whose stamp has not come when `capacity` newer
// ones have been sent is forgotten (counted in `expired`).
template <class T> class tx_key_ring {
public:
    struct match {
        T value;
        nanoseconds user_time; // the clock read before the send
    };
    struct counters {
        std::uint64_t sent = 0;        // datagrams recorded
        std::uint64_t matched = 0;     // stamps matched to one
        std::uint64_t unmatched = 0;   // stamps with no datagram (forgotten, or read twice)
        std::uint64_t implausible = 0; // stamps refused: before the user-space read, or > 1 s
        std::uint64_t expired = 0;     // datagrams forgotten before their stamp came
        std::uint64_t send_failures = 0;
        std::uint64_t keys_skipped = 0; // keys an older kernel took for a refused send
    };
    // A stamp is accepted when it is no earlier than the user-space read before the send (less a
    // small allowance for clock granularity) and no later than this after it.
    static constexpr nanoseconds kMaxSendDelay{1'000'000'000};
    static constexpr nanoseconds kClockAllowance{1'000};

    explicit tx_key_ring(std::size_t capacity = 4096)
        : ring_(std::bit_ceil(std::max<std::size_t>(capacity, 16)))
    {
        mask_ = ring_.size() - 1;
    }

    std::size_t capacity() const noexcept { return ring_.size(); }
    // The key the next datagram the kernel accepts will get (on the ring's own count).
    std::uint32_t next_key() const noexcept { return next_; }
    // Datagrams recorded whose stamp has not come (nor been forgotten).
    std::size_t pending() const noexcept { return pending_; }
    const counters& stats() const noexcept { return c_; }

    // The kernel accepted one datagram (sendmmsg: call once per datagram it reports sent, in
    // order): it has key next_key().
    void sent(nanoseconds user_time, const T& value) noexcept
    {
        entry& e = ring_[next_ & mask_];
        if (e.live) {
            ++c_.expired;
            --pending_;
        }
        e = entry{next_, failures_, user_time, value, true};
        ++next_;
        ++pending_;
        ++c_.sent;
    }
    // The kernel refused a send call. Whether it took a key for it depends on the kernel (older
    // ones did): until a stamp settles it, a stamp whose key is one more than ours per refused
    // send, and only such a one, is also looked for.
    void send_failed() noexcept
    {
        ++failures_;
        ++c_.send_failures;
        if (unresolved_ < kMaxUnresolved) ++unresolved_;
    }

    // The datagram the stamp `key` at `kernel_time` belongs to, taken out of the ring.
    std::optional<match> take(std::uint32_t key, nanoseconds kernel_time) noexcept
    {
        for (std::uint32_t d = 0; d <= unresolved_; ++d) {
            const std::uint32_t ours = key - skew_ - d;
            entry& e = ring_[ours & mask_];
            if (!e.live || e.key != ours) continue;
            if (kernel_time < e.user_time - kClockAllowance ||
                kernel_time > e.user_time + kMaxSendDelay) {
                if (d == 0 && unresolved_ == 0) {
                    ++c_.implausible;
                    return std::nullopt;
                }
                continue;
            }
            if (d > 0) {
                skew_ += d;
                unresolved_ -= d;
                c_.keys_skipped += d;
            } else {
                // Matched with the current skew a datagram sent after `e.failures` refusals:
                // those took no key.
                unresolved_ = std::min(unresolved_, failures_ - e.failures);
            }
            e.live = false;
            --pending_;
            ++c_.matched;
            return match{e.value, e.user_time};
        }
        ++c_.unmatched;
        return std::nullopt;
    }

private:
    static constexpr std::uint32_t kMaxUnresolved = 8;
    struct entry {
        std::uint32_t key = 0;
        std::uint32_t failures = 0; // refused sends before this datagram
        nanoseconds user_time{0};
        T value{};
        bool live = false;
    };
    std::vector<entry> ring_;
    std::size_t mask_ = 0;
    std::uint32_t next_ = 0;
    std::uint32_t skew_ = 0; // kernel key - our key
    std::uint32_t failures_ = 0;
    std::uint32_t unresolved_ = 0;
    std::size_t pending_ = 0;
    counters c_{};
};

} // namespace twamp::net
