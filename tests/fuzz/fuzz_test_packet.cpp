// Fuzz target: TWAMP-Test / STAMP packet decoders (test_packet.hpp), both formats.
//
// Properties: decoders never read past the input; decode -> encode -> decode is stable; the
// octets a decoder interprets are re-encoded identically; the Error Estimate round-trips.
#include "fuzz_common.hpp"

#include "twamp/test_packet.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

using namespace twamp;

bool same(const sender_packet& a, const sender_packet& b)
{
    return a.seq == b.seq && a.timestamp == b.timestamp && a.err == b.err && a.ssid == b.ssid;
}

bool same(const reflector_packet& a, const reflector_packet& b)
{
    return a.seq == b.seq && a.timestamp == b.timestamp && a.err == b.err && a.ssid == b.ssid &&
           a.receive_timestamp == b.receive_timestamp && a.sender_seq == b.sender_seq &&
           a.sender_timestamp == b.sender_timestamp && a.sender_err == b.sender_err &&
           a.sender_ttl == b.sender_ttl;
}

bool same_octets(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::size_t from,
                 std::size_t to)
{
    for (std::size_t i = from; i < to; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

void sender(std::span<const std::uint8_t> in, test_format f)
{
    sender_packet p;
    const auto ec = decode_sender(in, f, p);
    const std::size_t base = sender_base_len(f);
    FUZZ_CHECK(!ec == (in.size() >= base));
    if (ec) return;
    FUZZ_CHECK(f == test_format::stamp || p.ssid == 0);
    // Re-encode at the input's length (the largest we build) or at the base.
    const std::size_t len = in.size() <= kMaxTestPacketLen ? in.size() : base;
    std::vector<std::uint8_t> out(len);
    FUZZ_CHECK(!encode_sender(p, f, len, out));
    FUZZ_CHECK(encode_sender(p, f, len, std::span(out).first(len - 1)) ==
               make_error_code(errc::buffer_too_small));
    sender_packet q;
    FUZZ_CHECK(!decode_sender(out, f, q));
    FUZZ_CHECK(same(p, q));
    // Octets 0..13 (and the SSID, 14..15, for STAMP) are all the decoder reads.
    FUZZ_CHECK(same_octets(in, out, 0, f == test_format::stamp ? 16 : kSenderUnauthLen));
    // The encoder's padding is zero (STAMP MBZ included).
    for (std::size_t i = f == test_format::stamp ? 16 : kSenderUnauthLen; i < len; ++i)
        FUZZ_CHECK(out[i] == 0);
}

void reflector(std::span<const std::uint8_t> in, test_format f)
{
    reflector_packet p;
    const auto ec = decode_reflector(in, f, p);
    FUZZ_CHECK(!ec == (in.size() >= kMinUsableReplyLen));
    if (ec) return;
    FUZZ_CHECK(p.truncated == (in.size() < kReflectorUnauthLen));
    FUZZ_CHECK(f == test_format::stamp || p.ssid == 0);
    const std::size_t base = reflector_base_len(f);
    std::vector<std::uint8_t> out(base);
    FUZZ_CHECK(encode_reflector_base(p, f, std::span(out).first(base - 1)) ==
               make_error_code(errc::buffer_too_small));
    FUZZ_CHECK(!encode_reflector_base(p, f, out));
    reflector_packet q;
    FUZZ_CHECK(!decode_reflector(out, f, q));
    FUZZ_CHECK(!q.truncated);
    FUZZ_CHECK(same(p, q));
    // Identical octets where the decoder read a field (MBZ 38..39 and, for TWAMP, 14..15 are
    // ignored on input and written as zero). A truncated reply compares up to its length.
    const std::size_t n = std::min(in.size(), kReflectorUnauthLen);
    const std::size_t ssid_end = f == test_format::stamp ? 16 : 14;
    FUZZ_CHECK(same_octets(in, out, 0, std::min(n, ssid_end)));
    FUZZ_CHECK(n <= 16 || same_octets(in, out, 16, std::min(n, std::size_t{38})));
    if (n == kReflectorUnauthLen) FUZZ_CHECK(in[40] == out[40]);
    FUZZ_CHECK(out[38] == 0 && out[39] == 0);
    // Stamping T3 touches octets 4..11 only.
    std::vector<std::uint8_t> stamped = out;
    stamp_reflector_timestamp(stamped, 0x0102030405060708ull);
    FUZZ_CHECK(wire::load64(stamped.data() + 4) == 0x0102030405060708ull);
    FUZZ_CHECK(same_octets(stamped, out, 0, 4) && same_octets(stamped, out, 12, base));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::span<const std::uint8_t> in(data, size);
    for (const auto f : {test_format::twamp, test_format::stamp}) {
        sender(in, f);
        reflector(in, f);
    }
    // Short replies must not make stamp_reflector_timestamp write anything.
    std::vector<std::uint8_t> copy(in.begin(), in.end());
    stamp_reflector_timestamp(copy, ~std::uint64_t{0});
    FUZZ_CHECK(size >= 12 || std::equal(copy.begin(), copy.end(), in.begin()));
    // Error Estimate: every 16-bit value decodes and encodes back to itself.
    if (size >= 2) {
        const std::uint16_t raw = wire::load16(data);
        FUZZ_CHECK(error_estimate::decode(raw).encode() == raw);
    }
    // looks_like_stamp only for inputs that hold the whole base.
    FUZZ_CHECK(!looks_like_stamp(in) || size >= kStampBaseLen);
    return 0;
}
