// twamp/timestamp_source.hpp — where each of a sample's four timestamps came from.
//
// A delay is only as good as its timestamps. T1 is the sender's kernel send time when the socket
// gives one (SO_TIMESTAMPING), otherwise a clock read in user space before the send call; T4 is
// the kernel's receive time, or a clock read after the receive call; T2 and T3 are the reflector's,
// and only an RFC 8972 Timestamp Information TLV (§4.3) says how it took them. Reports count, per
// timestamp, how many samples used each source. Sans-I/O: names and counters only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace twamp {

enum class timestamp_source : std::uint8_t {
    unknown,       // not said (the reflector's T2/T3 without a Timestamp Information TLV)
    user,          // a clock read in user space next to the send or receive call
    kernel,        // the kernel's software timestamp (SO_TIMESTAMPING, SO_TIMESTAMPNS)
    hardware,      // the network interface's clock (or the reflector said "HW assist")
    software,      // the reflector said "SW local": kernel or user space, it does not tell
    control_plane, // the reflector said "control plane"
};
inline constexpr std::size_t kTimestampSources = 6;

inline constexpr const char* to_string(timestamp_source s) noexcept
{
    constexpr const char* names[kTimestampSources] = {"unknown",  "user",     "kernel",
                                                      "hardware", "software", "control_plane"};
    const auto i = static_cast<std::size_t>(s);
    return i < kTimestampSources ? names[i] : "unknown";
}

// A Timestamp Information TLV's method octet (RFC 8972 §5.5) as a source; unknown values (and 0)
// are unknown.
inline constexpr timestamp_source from_tlv_method(std::uint8_t method) noexcept
{
    switch (method) {
    case 1:
        return timestamp_source::hardware;
    case 2:
        return timestamp_source::software;
    case 3:
        return timestamp_source::control_plane;
    default:
        return timestamp_source::unknown;
    }
}

// Per timestamp (T1..T4, index 0..3), the number of samples whose value came from each source.
struct timestamp_source_counts {
    std::array<std::array<std::uint64_t, kTimestampSources>, 4> n{};

    void add(timestamp_source t1, timestamp_source t2, timestamp_source t3,
             timestamp_source t4) noexcept
    {
        ++n[0][static_cast<std::size_t>(t1)];
        ++n[1][static_cast<std::size_t>(t2)];
        ++n[2][static_cast<std::size_t>(t3)];
        ++n[3][static_cast<std::size_t>(t4)];
    }
    std::uint64_t get(std::size_t t, timestamp_source s) const noexcept
    {
        return n[t][static_cast<std::size_t>(s)];
    }
    std::uint64_t total(std::size_t t) const noexcept
    {
        std::uint64_t sum = 0;
        for (auto v : n[t])
            sum += v;
        return sum;
    }
};

} // namespace twamp
