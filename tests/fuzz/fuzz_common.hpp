// tests/fuzz/fuzz_common.hpp — helpers shared by the libFuzzer targets.
//
// fuzz_input hands out bytes from the front (data: packets, control streams) and from the back
// (the "tape" of operations, chunk sizes and time steps), like LLVM's FuzzedDataProvider. Keeping
// the two apart means a mutation of the data does not reshuffle the operations and vice versa.
// FUZZ_CHECK aborts with a message, so a violated invariant is a crash for libFuzzer and a failed
// test for the replay build.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);    \
            std::abort();                                                                          \
        }                                                                                          \
    } while (false)

namespace twamp_fuzz {

class fuzz_input {
public:
    fuzz_input(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}

    std::size_t remaining() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    // Front.
    std::uint8_t u8() noexcept
    {
        if (size_ == 0) return 0;
        const std::uint8_t b = data_[0];
        ++data_;
        --size_;
        return b;
    }
    std::uint16_t u16() noexcept
    {
        const std::uint16_t hi = u8();
        return static_cast<std::uint16_t>(hi << 8 | u8());
    }
    std::uint32_t u32() noexcept
    {
        const std::uint32_t hi = u16();
        return hi << 16 | u16();
    }
    std::span<const std::uint8_t> bytes(std::size_t n) noexcept
    {
        n = std::min(n, size_);
        std::span<const std::uint8_t> s(data_, n);
        data_ += n;
        size_ -= n;
        return s;
    }
    std::span<const std::uint8_t> rest() noexcept { return bytes(size_); }

    // Back.
    std::uint8_t back_u8() noexcept
    {
        if (size_ == 0) return 0;
        --size_;
        return data_[size_];
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
};

// A deterministic stand-in for random_source: a counter run through a 64-bit mixer.
struct counter_random {
    std::uint64_t state = 0x9E3779B97F4A7C15ull;
    void operator()(std::span<std::uint8_t> out) noexcept
    {
        for (auto& b : out) {
            state += 0x9E3779B97F4A7C15ull;
            std::uint64_t z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            b = static_cast<std::uint8_t>(z ^ (z >> 31));
        }
    }
};

// A plausible wall clock start (2023-11-14) so NTP conversions stay in range.
inline constexpr std::int64_t kEpochNs = 1'700'000'000'000'000'000;

// A time step from one tape byte: 0 ns up to ~10 minutes, roughly log-uniform, so both "at once"
// and "long after every timeout" are reachable.
inline std::int64_t time_step_ns(std::uint8_t b) noexcept
{
    if (b == 0) return 0;
    const int shift = b >> 3;                // 0..31
    const std::int64_t mant = (b & 7) + 1;   // 1..8
    return mant << std::min(shift + 10, 36); // 1 us .. ~9.8 min
}

} // namespace twamp_fuzz
