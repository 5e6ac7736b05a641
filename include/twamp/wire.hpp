// twamp/wire.hpp — bounds-checked big-endian reader and writer over byte spans.
//
// All TWAMP/OWAMP/STAMP integers are network byte order (RFC 4656 §3, RFC 8762 §4). Both classes
// keep a sticky failure flag instead of throwing: once a read or write would cross the end of the
// span, every later call is a no-op that returns zero, and ok() turns false. Decoders check ok()
// (or check the total length up front) before trusting anything they read.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace twamp::wire {

using byte_span = std::span<std::uint8_t>;
using const_byte_span = std::span<const std::uint8_t>;

// Unchecked primitives for callers that already validated the length (hot paths).
inline constexpr std::uint16_t load16(const std::uint8_t* p) noexcept
{
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline constexpr std::uint32_t load32(const std::uint8_t* p) noexcept
{
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}
inline constexpr std::uint64_t load64(const std::uint8_t* p) noexcept
{
    return (std::uint64_t{load32(p)} << 32) | load32(p + 4);
}
inline constexpr void store16(std::uint8_t* p, std::uint16_t v) noexcept
{
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
inline constexpr void store32(std::uint8_t* p, std::uint32_t v) noexcept
{
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}
inline constexpr void store64(std::uint8_t* p, std::uint64_t v) noexcept
{
    store32(p, static_cast<std::uint32_t>(v >> 32));
    store32(p + 4, static_cast<std::uint32_t>(v));
}

namespace detail {

// Bounds and position shared by reader and writer. Once an access does not fit, the cursor has
// failed: that access and every later one do nothing.
template <class Span> class cursor {
public:
    constexpr explicit cursor(Span data) noexcept : data_(data) {}

    constexpr bool ok() const noexcept { return ok_; }
    constexpr std::size_t position() const noexcept { return pos_; }
    constexpr std::size_t remaining() const noexcept { return data_.size() - pos_; }

protected:
    // The next n octets, consumed; empty, and the cursor failed, when they are not all there.
    constexpr Span take(std::size_t n) noexcept
    {
        if (!ok_ || n > data_.size() - pos_) {
            ok_ = false;
            return {};
        }
        auto s = data_.subspan(pos_, n);
        pos_ += n;
        return s;
    }

private:
    Span data_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

} // namespace detail

class reader : public detail::cursor<const_byte_span> {
public:
    constexpr explicit reader(const_byte_span data) noexcept : cursor(data) {}

    constexpr std::uint8_t u8() noexcept
    {
        const auto s = take(1);
        return ok() ? s[0] : 0;
    }
    constexpr std::uint16_t u16() noexcept
    {
        const auto s = take(2);
        return ok() ? load16(s.data()) : 0;
    }
    constexpr std::uint32_t u32() noexcept
    {
        const auto s = take(4);
        return ok() ? load32(s.data()) : 0;
    }
    constexpr std::uint64_t u64() noexcept
    {
        const auto s = take(8);
        return ok() ? load64(s.data()) : 0;
    }
    // Returns a view of the next n bytes (empty on failure).
    constexpr const_byte_span bytes(std::size_t n) noexcept { return take(n); }
    template <std::size_t N> constexpr std::array<std::uint8_t, N> array() noexcept
    {
        std::array<std::uint8_t, N> out{};
        auto s = bytes(N);
        if (!s.empty()) std::copy(s.begin(), s.end(), out.begin());
        return out;
    }
    constexpr void skip(std::size_t n) noexcept { take(n); }
    // True when the next n bytes exist and are all zero; consumes them either way.
    constexpr bool zeros(std::size_t n) noexcept
    {
        auto s = bytes(n);
        return ok() && std::all_of(s.begin(), s.end(), [](std::uint8_t b) { return b == 0; });
    }
};

class writer : public detail::cursor<byte_span> {
public:
    constexpr explicit writer(byte_span data) noexcept : cursor(data) {}

    constexpr void u8(std::uint8_t v) noexcept
    {
        const auto s = take(1);
        if (ok()) s[0] = v;
    }
    constexpr void u16(std::uint16_t v) noexcept
    {
        const auto s = take(2);
        if (ok()) store16(s.data(), v);
    }
    constexpr void u32(std::uint32_t v) noexcept
    {
        const auto s = take(4);
        if (ok()) store32(s.data(), v);
    }
    constexpr void u64(std::uint64_t v) noexcept
    {
        const auto s = take(8);
        if (ok()) store64(s.data(), v);
    }
    constexpr void bytes(const_byte_span in) noexcept
    {
        const auto s = take(in.size());
        if (ok()) std::copy(in.begin(), in.end(), s.begin());
    }
    constexpr void zeros(std::size_t n) noexcept
    {
        const auto s = take(n);
        if (ok()) std::fill(s.begin(), s.end(), std::uint8_t{0});
    }
};

} // namespace twamp::wire
