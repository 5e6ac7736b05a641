#include "twamp/wire.hpp"

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through operator<<

#include <array>
#include <cstdint>

using namespace twamp::wire;

TEST_CASE("reader decodes big-endian integers in order")
{
    const std::array<std::uint8_t, 15> d{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                         0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    reader r(d);
    CHECK(r.u8() == 0x01);
    CHECK(r.u16() == 0x0203);
    CHECK(r.u32() == 0x04050607u);
    CHECK(r.u64() == 0x08090a0b0c0d0e0full);
    CHECK(r.ok());
    CHECK(r.remaining() == 0);
}

TEST_CASE("reader fails sticky at the end and returns zeros")
{
    const std::array<std::uint8_t, 3> d{0xff, 0xff, 0xff};
    reader r(d);
    CHECK(r.u16() == 0xffff);
    CHECK(r.u16() == 0); // only one byte left
    CHECK_FALSE(r.ok());
    CHECK(r.u8() == 0); // sticky: even a fitting read now fails
    CHECK(r.position() == 2);
    CHECK(r.bytes(1).empty());
}

TEST_CASE("reader bytes, skip, zeros and array views")
{
    const std::array<std::uint8_t, 8> d{0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd};
    reader r(d);
    CHECK_FALSE(r.zeros(4));
    auto a = r.array<2>();
    CHECK(a[0] == 0xaa);
    CHECK(a[1] == 0xbb);
    r.skip(1);
    CHECK(r.u8() == 0xdd);
    CHECK(r.ok());
    r.skip(1);
    CHECK_FALSE(r.ok());
    // A huge length must not wrap around the bounds check.
    reader r2(d);
    CHECK(r2.bytes(SIZE_MAX).empty());
    CHECK_FALSE(r2.ok());
}

TEST_CASE("writer encodes big-endian and refuses to overflow")
{
    std::array<std::uint8_t, 16> buf{};
    writer w(buf);
    w.u8(0x11);
    w.u16(0x2233);
    w.u32(0x44556677);
    w.u64(0x8899aabbccddeeffull);
    CHECK(w.ok());
    CHECK(w.position() == 15);
    const std::array<std::uint8_t, 15> want{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                            0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    CHECK(std::equal(want.begin(), want.end(), buf.begin()));
    w.u16(0x1234); // one byte left: fails, writes nothing
    CHECK_FALSE(w.ok());
    CHECK(buf[15] == 0);
}

TEST_CASE("writer zeros and bytes")
{
    std::array<std::uint8_t, 6> buf;
    buf.fill(0xee);
    writer w(buf);
    w.zeros(2);
    const std::array<std::uint8_t, 3> src{1, 2, 3};
    w.bytes(src);
    CHECK(w.ok());
    CHECK(buf == std::array<std::uint8_t, 6>{0, 0, 1, 2, 3, 0xee});
    w.bytes(src);
    CHECK_FALSE(w.ok());
}

TEST_CASE("unchecked load/store round trip")
{
    std::uint8_t b[8];
    store64(b, 0x0102030405060708ull);
    CHECK(load64(b) == 0x0102030405060708ull);
    CHECK(load32(b + 4) == 0x05060708u);
    store16(b, 0xbeef);
    CHECK(load16(b) == 0xbeef);
}
