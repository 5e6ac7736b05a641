// Fuzz target: the protected TWAMP-Test packet openers and the TWAMP-Control cipher
// (crypto.hpp with the OpenSSL policy), with fixed keys.
//
// Input: a selector octet, then data.
//   selector % 3 == 0  test packets: open_sender / open_reflector on the data in both modes
//                      (authenticated, encrypted); when one verifies, sealing the result gives
//                      the input back. Also: seal then open any data gives it back (HMAC field
//                      aside), and a flipped octet in the protected region fails.
//   selector % 3 == 1  control_cipher::unprotect on the data cut into messages (lengths from
//                      the data); after the first failure every call fails.
//   selector % 3 == 2  control_cipher protect -> unprotect round trip of the data cut into
//                      messages, with Server-Start first when the selector says so.
#include "fuzz_common.hpp"

#include "twamp/crypto.hpp"
#include "twamp/crypto_openssl.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

using namespace twamp;
using C = openssl_crypto;
using twamp_fuzz::fuzz_input;

constexpr std::array<std::uint8_t, 16> kAesSk = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                                 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
constexpr std::array<std::uint8_t, 32> kHmacSk = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                                  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                                  23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
constexpr std::array<std::uint8_t, 16> kSid = {0x7f, 0,    0,    1,    0xee, 0xb5, 0x90, 0x93,
                                               0xb5, 0x04, 0xc4, 0x8a, 0x58, 0xbe, 0x72, 0x97};
constexpr std::array<std::uint8_t, 16> kIv = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};

using bytes = std::vector<std::uint8_t>;

void test_packets(std::span<const std::uint8_t> data)
{
    test_session_crypto<C> tc;
    FUZZ_CHECK(!tc.init(kAesSk, kHmacSk, kSid));
    for (const auto p : {test_protection::authenticated, test_protection::encrypted}) {
        for (const bool reflector : {false, true}) {
            const std::size_t base = reflector ? test_reflector_base_size : test_sender_base_size;
            const std::size_t hmac_at =
                reflector ? test_reflector_hmac_offset : test_sender_hmac_offset;
            const std::size_t prot =
                reflector ? test_reflector_protected_size(p) : test_sender_protected_size(p);
            auto open = [&](bytes& b) {
                return reflector ? tc.open_reflector(b, p) : tc.open_sender(b, p);
            };
            auto seal = [&](bytes& b) {
                return reflector ? tc.seal_reflector(b, p) : tc.seal_sender(b, p);
            };
            // Open arbitrary octets.
            bytes b(data.begin(), data.end());
            const auto ec = open(b);
            if (data.size() < base) {
                FUZZ_CHECK(ec == make_error_code(errc::truncated));
                FUZZ_CHECK(std::equal(b.begin(), b.end(), data.begin(), data.end()));
                bytes small(data.begin(), data.end());
                FUZZ_CHECK(seal(small) == make_error_code(errc::buffer_too_small));
                continue;
            }
            FUZZ_CHECK(!ec || ec == make_error_code(errc::auth_failed));
            // Outside the protected region nothing changes.
            FUZZ_CHECK(std::equal(b.begin() + static_cast<std::ptrdiff_t>(prot), b.end(),
                                  data.begin() + static_cast<std::ptrdiff_t>(prot)));
            if (!ec) {
                bytes again = b;
                FUZZ_CHECK(!seal(again));
                FUZZ_CHECK(std::equal(again.begin(), again.end(), data.begin(), data.end()));
            }
            // Seal then open gives the plaintext back.
            bytes plain(data.begin(), data.end());
            bytes sealed = plain;
            FUZZ_CHECK(!seal(sealed));
            bytes opened = sealed;
            FUZZ_CHECK(!open(opened));
            for (std::size_t i = 0; i < plain.size(); ++i)
                if (i < hmac_at || i >= hmac_at + truncated_hmac_size)
                    FUZZ_CHECK(opened[i] == plain[i]);
            // Any change to the protected region or the HMAC field is caught.
            const std::size_t flip = data[0] % (prot + truncated_hmac_size);
            const std::size_t at = flip < prot ? flip : hmac_at + (flip - prot);
            bytes tampered = sealed;
            tampered[at] ^= static_cast<std::uint8_t>(1u << (data[1] & 7));
            FUZZ_CHECK(open(tampered) == make_error_code(errc::auth_failed));
        }
    }
}

// Message lengths (multiples of 16, at least 32) from the data's own octets.
std::size_t next_len(fuzz_input& in)
{
    return (2 + (in.back_u8() & 7)) * aes_block_size;
}

void control_open(fuzz_input& in)
{
    control_cipher<C> rx;
    FUZZ_CHECK(!rx.init(kAesSk, kHmacSk, kIv));
    bool failed = false;
    while (!in.empty()) {
        const std::uint8_t how = in.back_u8();
        if ((how & 0x30) == 0x30) {
            // A malformed length: refused without touching the chain.
            bytes odd(static_cast<std::size_t>(how & 15) + 1);
            std::array<std::uint8_t, 16> iv{};
            std::copy(rx.chain_iv().begin(), rx.chain_iv().end(), iv.begin());
            const auto ec = rx.unprotect(odd);
            FUZZ_CHECK(ec == make_error_code(errc::bad_length));
            FUZZ_CHECK(std::equal(iv.begin(), iv.end(), rx.chain_iv().begin()));
            continue;
        }
        const auto msg = in.bytes((2 + (how & 7)) * aes_block_size);
        if (msg.size() % aes_block_size != 0 || msg.size() < 2 * aes_block_size) break;
        bytes m(msg.begin(), msg.end());
        const auto ec = rx.unprotect(m);
        if (failed) FUZZ_CHECK(ec == make_error_code(errc::auth_failed));
        if (ec) {
            failed = true;
            FUZZ_CHECK(!rx.ready());
        }
    }
}

void control_roundtrip(fuzz_input& in, bool server_start)
{
    control_cipher<C> tx, rx;
    FUZZ_CHECK(!tx.init(kAesSk, kHmacSk, kIv));
    FUZZ_CHECK(!rx.init(kAesSk, kHmacSk, kIv));
    if (server_start) {
        const auto s = in.bytes(48);
        bytes m(48);
        std::copy(s.begin(), s.end(), m.begin());
        const bytes plain = m;
        FUZZ_CHECK(!tx.protect_server_start(m));
        FUZZ_CHECK(std::equal(m.begin(), m.begin() + 32, plain.begin())); // first 32 in clear
        FUZZ_CHECK(!rx.unprotect_server_start(m));
        FUZZ_CHECK(m == plain);
    }
    while (!in.empty()) {
        const std::size_t len = next_len(in);
        const auto s = in.bytes(len);
        bytes m(len);
        std::copy(s.begin(), s.end(), m.begin());
        const bytes plain = m;
        FUZZ_CHECK(!tx.protect(m));
        FUZZ_CHECK(std::equal(tx.chain_iv().begin(), tx.chain_iv().end(), m.end() - 16));
        FUZZ_CHECK(!rx.unprotect(m));
        FUZZ_CHECK(std::equal(m.begin(), m.end() - 16, plain.begin()));
        FUZZ_CHECK(std::equal(tx.chain_iv().begin(), tx.chain_iv().end(), rx.chain_iv().begin()));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0) return 0;
    fuzz_input in(data, size);
    const std::uint8_t sel = in.u8();
    switch (sel % 3) {
    case 0: {
        const auto rest = in.rest();
        if (rest.size() < 2) {
            test_session_crypto<C> tc;
            bytes b(rest.begin(), rest.end());
            FUZZ_CHECK(tc.open_sender(b, test_protection::authenticated) ==
                       make_error_code(errc::auth_failed)); // not initialised
            return 0;
        }
        if (rest.size() > 4096) return 0;
        test_packets(rest);
        break;
    }
    case 1:
        control_open(in);
        break;
    case 2:
        control_roundtrip(in, (sel & 8) != 0);
        break;
    }
    return 0;
}
