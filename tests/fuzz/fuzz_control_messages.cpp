// Fuzz target: every TWAMP-Control message codec (control.hpp) and the command framing.
//
// Every decoder sees the whole input (a decoder takes exactly one message, so most inputs fail on
// the length; the corpus holds real messages). Properties:
//   lenient decode ok  => encode succeeds, has the input's length, and decodes to the same value;
//   strict decode ok   => lenient decode ok with the same value, and encode gives the input back;
//   command_message_size ok => a multiple of 16 >= 32, and the framed message decodes.
#include "fuzz_common.hpp"

#include "twamp/control.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

using namespace twamp;
using namespace twamp::control;

template <class M> std::vector<std::uint8_t> encode_vec(const M& m)
{
    std::vector<std::uint8_t> out(encoded_size(m));
    FUZZ_CHECK(!encode(m, out));
    if (!out.empty()) {
        // One octet short is refused, never partly written.
        std::vector<std::uint8_t> small(out.size() - 1, 0xA5);
        FUZZ_CHECK(encode(m, std::span(small)) == make_error_code(errc::buffer_too_small));
    }
    return out;
}

template <class M> bool check(std::span<const std::uint8_t> in)
{
    M lenient{};
    const auto ec = decode(in, lenient, strictness::lenient);
    if (!ec) {
        const auto out = encode_vec(lenient);
        FUZZ_CHECK(out.size() == in.size());
        M again{};
        FUZZ_CHECK(!decode(out, again, strictness::lenient));
        FUZZ_CHECK(again == lenient);
        // What the encoder writes is canonical: it passes the strict decoder too.
        M canon{};
        FUZZ_CHECK(!decode(out, canon, strictness::strict));
        FUZZ_CHECK(canon == lenient);
    }
    M strict{};
    const auto ecs = decode(in, strict, strictness::strict);
    if (!ecs) {
        FUZZ_CHECK(!ec);
        FUZZ_CHECK(strict == lenient);
        const auto out = encode_vec(strict);
        FUZZ_CHECK(std::equal(out.begin(), out.end(), in.begin(), in.end()));
    }
    return !ec;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::span<const std::uint8_t> in(data, size);
    check<server_greeting>(in);
    check<setup_response>(in);
    check<server_start>(in);
    check<request_tw_session>(in);
    check<accept_session>(in);
    check<start_sessions>(in);
    check<start_ack>(in);
    check<stop_sessions>(in);
    check<start_n_sessions>(in);
    check<start_n_ack>(in);
    check<stop_n_sessions>(in);
    check<stop_n_ack>(in);

    // Framing: the length from the first block, then the framed message alone.
    std::size_t framed = 0;
    const auto ec = command_message_size(in, framed);
    FUZZ_CHECK(!ec || size < kBlockSize || ec == make_error_code(errc::unsupported) ||
               ec == make_error_code(errc::bad_length));
    if (!ec) {
        FUZZ_CHECK(framed >= 32 && framed % kBlockSize == 0);
        FUZZ_CHECK(framed <= n_message_size(kMaxSessionsPerNMessage));
        FUZZ_CHECK(peek_command(in) == data[0]);
        if (size >= framed) {
            const auto msg = in.first(framed);
            bool ok = false;
            switch (static_cast<command>(data[0])) {
            case command::start_sessions:
                ok = check<start_sessions>(msg);
                break;
            case command::stop_sessions:
                ok = check<stop_sessions>(msg);
                break;
            case command::request_tw_session: {
                // Only IPVN can make a framed Request-TW-Session undecodable.
                request_tw_session r;
                const auto e = decode(msg, r);
                ok = !e || (e == make_error_code(errc::bad_value) && (msg[1] & 0x0F) != 4 &&
                            (msg[1] & 0x0F) != 6);
                check<request_tw_session>(msg);
                break;
            }
            case command::start_n_sessions:
                ok = check<start_n_sessions>(msg);
                break;
            case command::start_n_ack:
                ok = check<start_n_ack>(msg);
                break;
            case command::stop_n_sessions:
                ok = check<stop_n_sessions>(msg);
                break;
            case command::stop_n_ack:
                ok = check<stop_n_ack>(msg);
                break;
            default:
                ok = false;
                break;
            }
            FUZZ_CHECK(ok);
        }
    }

    // Field helpers on the input's words.
    if (size >= 4) {
        const std::uint32_t w = wire::load32(data);
        if (const auto d = dscp_from_type_p(w)) {
            FUZZ_CHECK(*d < 64 && type_p_from_dscp(*d) == w);
        }
        if (const auto d = dscp_from_type_p(w, true)) FUZZ_CHECK(*d < 64);
        FUZZ_CHECK(mode::security_bit_count(w) >= 0 && mode::security_bit_count(w) <= 4);
    }
    if (size >= 8) {
        const auto t = ntp_timestamp::from_u64(wire::load64(data));
        const auto d = duration_from_ntp(t);
        // A duration survives NTP -> ns -> NTP within the rounding to whole nanoseconds.
        const auto back = ntp_from_duration(d);
        const auto diff = static_cast<std::int64_t>(back.to_u64() - t.to_u64());
        FUZZ_CHECK(diff >= -3 && diff <= 3); // two roundings of at most half a ns each
    }
    return 0;
}
