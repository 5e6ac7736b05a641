// Known-answer and property tests for twamp/crypto.hpp through twamp::openssl_crypto.
//
// Primitive vectors come from the standards that define them (RFC 6070, RFC 2202, RFC 4231,
// FIPS-197, SP 800-38A). The protocol-level vectors (control chain, test keys and packets, STAMP)
// were computed independently with Python's hmac module and the `cryptography` package from the
// rules in RFC 4656 §3–4, RFC 5357 §4 and RFC 8762/8972, so they check our composition of the
// primitives, not just the primitives.

// Hide every deprecated OpenSSL declaration: if crypto_openssl.hpp used one, this would not build.
#define OPENSSL_NO_DEPRECATED
#include "twamp/crypto.hpp"
#include "twamp/crypto_openssl.hpp"

#include <doctest/doctest.h>

#include "support/bytes.hpp"

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using twamp::errc;
using C = twamp::openssl_crypto;
using bytes = std::vector<std::uint8_t>;
using twamp_test::hex;

bytes str(std::string_view s)
{
    return bytes(s.begin(), s.end());
}

bytes repeat(std::uint8_t b, std::size_t n)
{
    return bytes(n, b);
}

bytes range(std::uint8_t first, std::size_t n)
{
    bytes out(n);
    for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::uint8_t>(first + i);
    return out;
}

template <std::size_t N> std::span<const std::uint8_t, N> fixed(const bytes& b)
{
    REQUIRE(b.size() == N);
    return std::span<const std::uint8_t, N>(b.data(), N);
}

template <std::size_t N> bytes to_bytes(const std::array<std::uint8_t, N>& a)
{
    return bytes(a.begin(), a.end());
}

} // namespace

TEST_CASE("PBKDF2-HMAC-SHA1: RFC 6070 vectors, full length and the 16-octet TWAMP prefix")
{
    struct vec {
        bytes p, s;
        std::uint32_t c;
        bytes dk;
    };
    // RFC 6070 §2 (the 16777216-iteration vector is left out for run time).
    const vec vectors[] = {
        {str("password"), str("salt"), 1, hex("0c60c80f961f0e71f3a9b524af6012062fe037a6")},
        {str("password"), str("salt"), 2, hex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")},
        {str("password"), str("salt"), 4096, hex("4b007901b765489abead49d926f721d065a429c1")},
        {str("passwordPASSWORDpassword"), str("saltSALTsaltSALTsaltSALTsaltSALTsalt"), 4096,
         hex("3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038")},
        {bytes{'p', 'a', 's', 's', 0, 'w', 'o', 'r', 'd'}, bytes{'s', 'a', 0, 'l', 't'}, 4096,
         hex("56fa6aa75548099dcc37d7f03425e0c3")},
    };
    for (const auto& v : vectors) {
        bytes full(v.dk.size());
        REQUIRE_FALSE(C::pbkdf2_hmac_sha1(v.p, v.s, v.c, full));
        CHECK(full == v.dk);
        // TWAMP asks for dkLen 16, which is the first 16 octets of any longer output.
        bytes k16(16);
        REQUIRE_FALSE(C::pbkdf2_hmac_sha1(v.p, v.s, v.c, k16));
        CHECK(k16 == bytes(v.dk.begin(), v.dk.begin() + 16));
    }
    bytes out(16);
    CHECK(C::pbkdf2_hmac_sha1(str("p"), str("salt"), 0, out) == errc::bad_value);
    CHECK(C::pbkdf2_hmac_sha1(str("p"), str("salt"), 1, {}) == errc::bad_length);
}

TEST_CASE("derive_shared_key reproduces the check value of the authenticated capture")
{
    // /work/shared/captures/README.md: salt, count 2048, passphrase -> K.
    const bytes salt = hex("98dbd88702b2f6e83a2bf0af610242cf");
    twamp::aes_key k;
    REQUIRE_FALSE(
        twamp::derive_shared_key<C>(str("super secret passphrase"), fixed<16>(salt), 2048, k));
    CHECK(to_bytes(k.value) == hex("48f97db05503b13d2b28fd312da56f9a"));
    CHECK(twamp::derive_shared_key<C>(str("x"), fixed<16>(salt), 0, k) == errc::bad_value);
}

TEST_CASE("HMAC-SHA1/128: RFC 2202 vectors truncated to 16 octets")
{
    const struct {
        bytes key, data;
        const char* digest;
    } vectors[] = {
        {repeat(0x0b, 20), str("Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"},
        {str("Jefe"), str("what do ya want for nothing?"),
         "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
        {repeat(0xaa, 20), repeat(0xdd, 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
        {range(1, 25), repeat(0xcd, 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da"},
        {repeat(0x0c, 20), str("Test With Truncation"), "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
        {repeat(0xaa, 80), str("Test Using Larger Than Block-Size Key - Hash Key First"),
         "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
        {repeat(0xaa, 80),
         str("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"),
         "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
    };
    for (const auto& v : vectors) {
        const bytes full = hex(v.digest);
        const bytes want(full.begin(), full.begin() + 16);
        std::array<std::uint8_t, 16> mac{};
        REQUIRE_FALSE(C::hmac_sha1_128(v.key, v.data, mac));
        CHECK(to_bytes(mac) == want);

        // The incremental form, fed in uneven pieces, must agree, and a context must be reusable
        // after final() (the control channel re-initialises it after every HMAC).
        C::hmac_sha1_ctx ctx;
        for (int round = 0; round < 2; ++round) {
            REQUIRE_FALSE(ctx.init(v.key));
            const std::span<const std::uint8_t> d(v.data);
            const std::size_t cut = d.size() / 3;
            REQUIRE_FALSE(ctx.update(d.first(cut)));
            REQUIRE_FALSE(ctx.update({}));
            REQUIRE_FALSE(ctx.update(d.subspan(cut)));
            std::array<std::uint8_t, 16> inc{};
            REQUIRE_FALSE(ctx.final(inc));
            CHECK(to_bytes(inc) == want);
        }
    }
    // An update before any init is a usage error, not a silent success.
    C::hmac_sha1_ctx fresh;
    CHECK(fresh.update(str("x")));
}

TEST_CASE("HMAC-SHA-256/128: RFC 4231 vectors")
{
    const struct {
        bytes key, data;
        const char* digest;
    } vectors[] = {
        {repeat(0x0b, 20), str("Hi There"),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {str("Jefe"), str("what do ya want for nothing?"),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {repeat(0xaa, 20), repeat(0xdd, 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {range(1, 25), repeat(0xcd, 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        // Test case 5 is the RFC's own 128-bit truncation example.
        {repeat(0x0c, 20), str("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b"},
        {repeat(0xaa, 131), str("Test Using Larger Than Block-Size Key - Hash Key First"),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {repeat(0xaa, 131),
         str("This is a test using a larger than block-size key and a larger than block-size "
             "data. The key needs to be hashed before being used by the HMAC algorithm."),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (const auto& v : vectors) {
        const bytes full = hex(v.digest);
        std::array<std::uint8_t, 16> mac{};
        REQUIRE_FALSE(C::hmac_sha256_128(v.key, v.data, mac));
        CHECK(to_bytes(mac) == bytes(full.begin(), full.begin() + 16));
    }
}

// The one-shot HMACs reuse a context per thread and the algorithm objects are fetched once per
// process: alternating keys, digests and threads must still give every vector's value.
TEST_CASE("HMAC one-shots: alternating keys and digests on four threads at once")
{
    const bytes k1 = repeat(0x0b, 20), k2 = str("Jefe");
    const bytes d1 = str("Hi There"), d2 = str("what do ya want for nothing?");
    const bytes sha256_1 = hex("b0344c61d8db38535ca8afceaf0bf12b");
    const bytes sha256_2 = hex("5bdcc146bf60754e6a042426089575c7");
    // RFC 2202 test cases 1 and 2 (HMAC-SHA1), truncated to 16 octets.
    const bytes sha1_1 = hex("b617318655057264e28bc0b6fb378c8e");
    const bytes sha1_2 = hex("effcdf6ae5eb2fa2d27416d5f184df9c");
    std::atomic<int> wrong{0};
    auto work = [&] {
        for (int i = 0; i < 500; ++i) {
            std::array<std::uint8_t, 16> mac{};
            const bool second = (i % 2) != 0;
            if (C::hmac_sha256_128(second ? k2 : k1, second ? d2 : d1, mac) ||
                to_bytes(mac) != (second ? sha256_2 : sha256_1))
                ++wrong;
            if (C::hmac_sha1_128(second ? k1 : k2, second ? d1 : d2, mac) ||
                to_bytes(mac) != (second ? sha1_1 : sha1_2))
                ++wrong;
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back(work);
    for (auto& t : threads)
        t.join();
    CHECK(wrong.load() == 0);
}

TEST_CASE("AES-128: FIPS-197 Appendix B and C.1, both directions")
{
    const struct {
        bytes key, pt, ct;
    } vectors[] = {
        {hex("2b7e151628aed2a6abf7158809cf4f3c"), hex("3243f6a8885a308d313198a2e0370734"),
         hex("3925841d02dc09fbdc118597196a0b32")},
        {hex("000102030405060708090a0b0c0d0e0f"), hex("00112233445566778899aabbccddeeff"),
         hex("69c4e0d86a7b0430d8cdb78070b4c55a")},
    };
    for (const auto& v : vectors) {
        bytes out(16);
        REQUIRE_FALSE(C::aes128_ecb_encrypt(fixed<16>(v.key), v.pt, out));
        CHECK(out == v.ct);
        REQUIRE_FALSE(C::aes128_ecb_decrypt(fixed<16>(v.key), v.ct, out));
        CHECK(out == v.pt);
        // In place.
        bytes buf = v.pt;
        REQUIRE_FALSE(C::aes128_ecb_encrypt(fixed<16>(v.key), buf, buf));
        CHECK(buf == v.ct);
    }
}

TEST_CASE("AES-128-CBC: SP 800-38A F.2.1/F.2.2, and a chain split over calls equals one call")
{
    const bytes key = hex("2b7e151628aed2a6abf7158809cf4f3c");
    const bytes iv0 = hex("000102030405060708090a0b0c0d0e0f");
    const bytes pt = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                         "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
    const bytes ct = hex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
                         "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7");

    std::array<std::uint8_t, 16> iv{};
    std::copy(iv0.begin(), iv0.end(), iv.begin());
    bytes one(64);
    REQUIRE_FALSE(C::aes128_cbc_encrypt(fixed<16>(key), iv, pt, one));
    CHECK(one == ct);
    // The IV is left at the last ciphertext block, ready for the next message.
    CHECK(to_bytes(iv) == bytes(ct.end() - 16, ct.end()));

    // 1 block + 3 blocks on a running IV == 4 blocks at once (control messages chain this way).
    std::copy(iv0.begin(), iv0.end(), iv.begin());
    bytes split = pt;
    std::span<std::uint8_t> s(split);
    REQUIRE_FALSE(C::aes128_cbc_encrypt(fixed<16>(key), iv, s.first(16), s.first(16)));
    REQUIRE_FALSE(C::aes128_cbc_encrypt(fixed<16>(key), iv, s.subspan(16), s.subspan(16)));
    CHECK(split == ct);

    // Decrypt in place in two calls (3 + 1 blocks); the saved IV must be the ciphertext, not the
    // overwritten plaintext.
    std::copy(iv0.begin(), iv0.end(), iv.begin());
    REQUIRE_FALSE(C::aes128_cbc_decrypt(fixed<16>(key), iv, s.first(48), s.first(48)));
    CHECK(to_bytes(iv) == bytes(ct.begin() + 32, ct.begin() + 48));
    REQUIRE_FALSE(C::aes128_cbc_decrypt(fixed<16>(key), iv, s.subspan(48), s.subspan(48)));
    CHECK(split == pt);
    CHECK(to_bytes(iv) == bytes(ct.end() - 16, ct.end()));
}

TEST_CASE("AES entry points reject partial blocks and bad output sizes")
{
    const bytes key(16, 0);
    bytes in(15), out(15), out16(16), small(16), big(48);
    std::array<std::uint8_t, 16> iv{};
    CHECK(C::aes128_ecb_encrypt(fixed<16>(key), in, out) == errc::bad_length);
    CHECK(C::aes128_cbc_decrypt(fixed<16>(key), iv, in, out) == errc::bad_length);
    const bytes two(32);
    CHECK(C::aes128_ecb_encrypt(fixed<16>(key), two, small) == errc::buffer_too_small);
    CHECK(C::aes128_cbc_encrypt(fixed<16>(key), iv, two, big) == errc::bad_length);
    // Partially overlapping buffers are refused rather than silently corrupted.
    std::span<std::uint8_t> b(big);
    CHECK(C::aes128_ecb_encrypt(fixed<16>(key), b.first(32), b.subspan(16)));
}

TEST_CASE("random_bytes, constant_time_equal, secure_wipe")
{
    bytes a(32), b(32);
    REQUIRE_FALSE(C::random_bytes(a));
    REQUIRE_FALSE(C::random_bytes(b));
    CHECK(a != b); // 2^-256 chance of a false failure
    CHECK(C::constant_time_equal(a, a));
    CHECK_FALSE(C::constant_time_equal(a, b));
    CHECK_FALSE(C::constant_time_equal(a, std::span<const std::uint8_t>(a).first(31)));
    C::secure_wipe(a);
    CHECK(a == bytes(32, 0));

    twamp::secret_array<8> s{{1, 2, 3, 4, 5, 6, 7, 8}};
    twamp::wipe_bytes(s.span());
    CHECK(to_bytes(s.value) == bytes(8, 0));
}

TEST_CASE("Token: make_token / open_token / verify_token round trip")
{
    const bytes salt = hex("98dbd88702b2f6e83a2bf0af610242cf");
    twamp::aes_key k;
    REQUIRE_FALSE(
        twamp::derive_shared_key<C>(str("super secret passphrase"), fixed<16>(salt), 2048, k));
    bytes challenge(16);
    REQUIRE_FALSE(C::random_bytes(challenge));
    twamp::aes_key aes_sk;
    twamp::hmac_key hmac_sk;
    REQUIRE_FALSE(twamp::generate_session_keys<C>(aes_sk, hmac_sk));

    std::array<std::uint8_t, 64> token{};
    REQUIRE_FALSE(twamp::make_token<C>(k, fixed<16>(challenge), aes_sk, hmac_sk, token));
    // The plaintext must not appear in the Token.
    CHECK(bytes(token.begin(), token.begin() + 16) != challenge);

    twamp::token_contents got;
    REQUIRE_FALSE(twamp::verify_token<C>(k, token, fixed<16>(challenge), got));
    CHECK(to_bytes(got.challenge) == challenge);
    CHECK(got.aes_sk.value == aes_sk.value);
    CHECK(got.hmac_sk.value == hmac_sk.value);

    // The Token is CBC with IV 0 under K: block 0 is AES-ECB(K, challenge).
    bytes first(16);
    REQUIRE_FALSE(C::aes128_ecb_encrypt(k.span(), challenge, first));
    CHECK(first == bytes(token.begin(), token.begin() + 16));

    // Wrong challenge, or a different shared secret: the server must refuse, and the keys it
    // decoded are not handed back.
    bytes other = challenge;
    other[5] ^= 1;
    twamp::token_contents bad;
    CHECK(twamp::verify_token<C>(k, token, fixed<16>(other), bad) == errc::auth_failed);
    CHECK(bad.aes_sk.value == std::array<std::uint8_t, 16>{});
    twamp::aes_key k2;
    REQUIRE_FALSE(twamp::derive_shared_key<C>(str("wrong passphrase"), fixed<16>(salt), 2048, k2));
    CHECK(twamp::verify_token<C>(k2, token, fixed<16>(challenge), bad) == errc::auth_failed);
}

namespace {
struct control_fixture {
    bytes aes_sk = range(0x00, 16);
    bytes hmac_sk = range(0x20, 32);
    bytes client_iv = range(0xf0, 16);
    bytes server_iv = range(0xe0, 16);
};
} // namespace

TEST_CASE("control_cipher: known answer for a two-message client chain")
{
    control_fixture f;
    twamp::control_cipher<C> tx;
    REQUIRE_FALSE(tx.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk), fixed<16>(f.client_iv)));
    bytes start(32, 0);
    start[0] = 2; // Start-Sessions, HMAC field zero
    bytes stop(32, 0);
    stop[0] = 3; // Stop-Sessions, Number of Sessions = 1
    stop[7] = 1;
    REQUIRE_FALSE(tx.protect(start));
    REQUIRE_FALSE(tx.protect(stop));
    bytes wire = start;
    wire.insert(wire.end(), stop.begin(), stop.end());
    CHECK(wire == hex("046d5136ca2c0a413b8f83ca60233243f6d9349288aa990680861f223b7bda17"
                      "6b8c1faa7f0270f2539ca207c0f82e96049a6bd4c8c4f58d152e6fd64a2a3063"));
    CHECK(bytes(tx.chain_iv().begin(), tx.chain_iv().end()) == bytes(wire.end() - 16, wire.end()));
}

TEST_CASE("control_cipher: Server-Start block is encrypted and covered by the next HMAC")
{
    control_fixture f;
    twamp::control_cipher<C> server_tx, client_rx;
    REQUIRE_FALSE(
        server_tx.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk), fixed<16>(f.server_iv)));
    REQUIRE_FALSE(
        client_rx.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk), fixed<16>(f.server_iv)));

    bytes server_start(48, 0);
    std::copy(f.server_iv.begin(), f.server_iv.end(), server_start.begin() + 16);
    const bytes start_time = hex("e123456789abcdef");
    std::copy(start_time.begin(), start_time.end(), server_start.begin() + 32);
    const bytes clear_part(server_start.begin(), server_start.begin() + 32);
    REQUIRE_FALSE(server_tx.protect_server_start(server_start));
    CHECK(bytes(server_start.begin(), server_start.begin() + 32) == clear_part);

    bytes accept(48, 0);
    accept[2] = 0x4a;
    accept[3] = 0x3c;
    const bytes sid = range(0x40, 16);
    std::copy(sid.begin(), sid.end(), accept.begin() + 4);
    const bytes accept_plain = accept;
    REQUIRE_FALSE(server_tx.protect(accept));

    bytes wire(server_start.begin() + 32, server_start.end());
    wire.insert(wire.end(), accept.begin(), accept.end());
    CHECK(wire == hex("f63de25cb1c1f3bb101322893f3b5c023ab688ff6410cb10d14ade3d622a6e8c"
                      "60b12f21a017d00cb8285e09dfc82f01dbdfc7c0c957fe5902d354dceb89add1"));

    bytes ss_rx = server_start;
    bytes acc_rx = accept;
    REQUIRE_FALSE(client_rx.unprotect_server_start(ss_rx));
    CHECK(bytes(ss_rx.begin() + 32, ss_rx.begin() + 40) == start_time);
    REQUIRE_FALSE(client_rx.unprotect(acc_rx));
    CHECK(bytes(acc_rx.begin(), acc_rx.begin() + 32) ==
          bytes(accept_plain.begin(), accept_plain.begin() + 32));

    // A receiver that skipped the Server-Start block cannot verify the first Accept-Session: the
    // chain is wrong and the HMAC lacks the Start-Time block.
    twamp::control_cipher<C> naive;
    REQUIRE_FALSE(naive.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk),
                             std::span<const std::uint8_t, 16>(server_start.data() + 32, 16)));
    bytes acc2 = accept;
    CHECK(naive.unprotect(acc2) == errc::auth_failed);
}

TEST_CASE("control_cipher: round trips, block-wise reading, tamper detection")
{
    control_fixture f;
    twamp::control_cipher<C> tx, rx;
    REQUIRE_FALSE(tx.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk), fixed<16>(f.client_iv)));
    REQUIRE_FALSE(rx.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk), fixed<16>(f.client_iv)));

    // A 112-octet Request-TW-Session, then a Start-Sessions: read the way a server reads, one
    // block to learn the command, then the rest.
    bytes req(112);
    for (std::size_t i = 0; i < 96; ++i)
        req[i] = static_cast<std::uint8_t>(i * 7 + 1);
    req[0] = 5;
    std::fill(req.begin() + 96, req.end(), std::uint8_t{0});
    const bytes req_plain = req;
    REQUIRE_FALSE(tx.protect(req));
    CHECK(req != req_plain);
    std::span<std::uint8_t> r(req);
    REQUIRE_FALSE(rx.decrypt_blocks(r.first(16)));
    CHECK(req[0] == 5);
    REQUIRE_FALSE(rx.decrypt_blocks(r.subspan(16, 80)));
    REQUIRE_FALSE(rx.verify(r.last<16>()));
    CHECK(bytes(req.begin(), req.begin() + 96) == bytes(req_plain.begin(), req_plain.begin() + 96));

    bytes start(32, 0);
    start[0] = 2;
    REQUIRE_FALSE(tx.protect(start));
    bytes start_copy = start;
    REQUIRE_FALSE(rx.unprotect(start));
    CHECK(start[0] == 2);

    // The same ciphertext replayed does not verify: the chain has moved on.
    CHECK(rx.unprotect(start_copy) == errc::auth_failed);
    // And the receiver stays failed afterwards.
    bytes next(32, 0);
    REQUIRE_FALSE(tx.protect(next));
    CHECK(rx.unprotect(next) == errc::auth_failed);
    CHECK_FALSE(rx.ready());

    // Any flipped bit, in the body or in the HMAC block, fails.
    for (std::size_t pos : {std::size_t{0}, std::size_t{17}, std::size_t{31}}) {
        twamp::control_cipher<C> a, b;
        REQUIRE_FALSE(a.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk), fixed<16>(f.client_iv)));
        REQUIRE_FALSE(b.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk), fixed<16>(f.client_iv)));
        bytes m(32, 0);
        m[0] = 3;
        REQUIRE_FALSE(a.protect(m));
        m[pos] ^= 0x01;
        CHECK(b.unprotect(m) == errc::auth_failed);
    }

    twamp::control_cipher<C> c;
    bytes m(32);
    CHECK(c.protect(m) == errc::auth_failed); // not initialised
    REQUIRE_FALSE(c.init(fixed<16>(f.aes_sk), fixed<32>(f.hmac_sk), fixed<16>(f.client_iv)));
    bytes odd(40);
    CHECK(c.protect(odd) == errc::bad_length);
    bytes tiny(16);
    CHECK(c.protect(tiny) == errc::bad_length);
    bytes ss(47);
    CHECK(c.protect_server_start(ss) == errc::bad_length);
}

TEST_CASE("Test-session keys and packets: known answers")
{
    const bytes aes_sk = range(0x00, 16), hmac_sk = range(0x20, 32);
    const bytes sid = hex("7f000001e1234567000000000a0b0c0d");
    twamp::test_session_crypto<C> t;
    REQUIRE_FALSE(t.init(fixed<16>(aes_sk), fixed<32>(hmac_sk), fixed<16>(sid)));
    CHECK(to_bytes(t.test_aes_key().value) == hex("4b6d75f8460ef9345e13d562f08250e4"));
    CHECK(to_bytes(t.test_hmac_key().value) ==
          hex("9b6ab53fefa0b36481483eee3c0182bd5d54ce5242ee5a1fb8a6c9cb876e42e9"));

    // Authenticated sender packet, 48 + 16 padding.
    bytes s(64, 0);
    s[3] = 5;
    const bytes t1 = hex("e1234567deadbeef");
    std::copy(t1.begin(), t1.end(), s.begin() + 16);
    s[24] = 0x3f;
    s[25] = 0xff;
    std::fill(s.begin() + 48, s.end(), std::uint8_t{0xa5});
    const bytes s_plain = s;
    REQUIRE_FALSE(t.seal_sender(s, twamp::test_protection::authenticated));
    CHECK(s == hex("b46b3ce834c0924a2a1ed37905e2deb8e1234567deadbeef3fff000000000000"
                   "f18b38766dacf3d4c36a5439b5bf7ba3a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"));
    REQUIRE_FALSE(t.open_sender(s, twamp::test_protection::authenticated));
    CHECK(bytes(s.begin(), s.begin() + 32) == bytes(s_plain.begin(), s_plain.begin() + 32));

    // Encrypted reflector packet, 112 octets.
    bytes r(112, 0);
    r[3] = 7;
    const bytes t3 = hex("e1234568000000ff"), t2 = hex("e1234567ffff0000");
    std::copy(t3.begin(), t3.end(), r.begin() + 16);
    r[24] = 0x80;
    r[25] = 0x01;
    std::copy(t2.begin(), t2.end(), r.begin() + 32);
    r[51] = 5;
    std::copy(t1.begin(), t1.end(), r.begin() + 64);
    r[72] = 0x3f;
    r[73] = 0xff;
    r[80] = 255;
    const bytes r_plain = r;
    REQUIRE_FALSE(t.seal_reflector(r, twamp::test_protection::encrypted));
    CHECK(r == hex("b57b9f693de775f26201715044c2ce5414166c98d8402e5c0f2c506596e51091"
                   "ba987c798b654d8ef324c2db390956efaa3425fff9b2706fe2c882faa441919a"
                   "a18bfa949f686654ebbf5849c62566da8df07810f4d88e6bf65faea3bc62b4a0"
                   "fb410df447c2cb2c2de6504486d0feac"));
    REQUIRE_FALSE(t.open_reflector(r, twamp::test_protection::encrypted));
    CHECK(bytes(r.begin(), r.begin() + 96) == bytes(r_plain.begin(), r_plain.begin() + 96));
}

TEST_CASE("Test packets: coverage per mode, late timestamps, tampering, sizes")
{
    using twamp::test_protection;
    bytes aes_sk(16), hmac_sk(32), sid(16);
    REQUIRE_FALSE(C::random_bytes(aes_sk));
    REQUIRE_FALSE(C::random_bytes(hmac_sk));
    REQUIRE_FALSE(C::random_bytes(sid));
    twamp::test_session_crypto<C> tx, rx;
    REQUIRE_FALSE(tx.init(fixed<16>(aes_sk), fixed<32>(hmac_sk), fixed<16>(sid)));
    REQUIRE_FALSE(rx.init(fixed<16>(aes_sk), fixed<32>(hmac_sk), fixed<16>(sid)));

    auto make = [](std::size_t n) {
        bytes p(n);
        for (std::size_t i = 0; i < n; ++i)
            p[i] = static_cast<std::uint8_t>(i);
        return p;
    };

    SUBCASE("authenticated reflector: T3 written after sealing still verifies")
    {
        bytes r = make(112 + 8);
        const bytes t3 = hex("0102030405060708");
        bool called = false;
        REQUIRE_FALSE(
            tx.seal_reflector(r, test_protection::authenticated, [&](std::span<std::uint8_t> p) {
                // Block 0 is already ciphertext when we get here (a single octet could be
                // unchanged by chance with random keys; the whole block cannot).
                CHECK(bytes(p.begin(), p.begin() + 16) != bytes(make(16)));
                std::copy(t3.begin(), t3.end(), p.begin() + 16);
                called = true;
            }));
        CHECK(called);
        bytes got = r;
        REQUIRE_FALSE(rx.open_reflector(got, test_protection::authenticated));
        CHECK(bytes(got.begin() + 16, got.begin() + 24) == t3);
        CHECK(bytes(got.begin(), got.begin() + 16) == bytes(make(16)));
        // Bytes 16..95 and the padding are not covered in authenticated mode; block 0 and the
        // HMAC are.
        for (std::size_t pos : {std::size_t{20}, std::size_t{95}, std::size_t{112}}) {
            bytes m = r;
            m[pos] ^= 0x80;
            CHECK_FALSE(rx.open_reflector(m, test_protection::authenticated));
        }
        for (std::size_t pos :
             {std::size_t{0}, std::size_t{15}, std::size_t{96}, std::size_t{111}}) {
            bytes m = r;
            m[pos] ^= 0x80;
            CHECK(rx.open_reflector(m, test_protection::authenticated) == errc::auth_failed);
        }
    }

    SUBCASE("encrypted reflector: the late hook runs before encryption, T3 is protected")
    {
        bytes r = make(112);
        const bytes t3 = hex("1112131415161718");
        REQUIRE_FALSE(
            tx.seal_reflector(r, test_protection::encrypted, [&](std::span<std::uint8_t> p) {
                CHECK(p[1] == 1); // still plaintext
                std::copy(t3.begin(), t3.end(), p.begin() + 16);
            }));
        CHECK(bytes(r.begin() + 16, r.begin() + 24) != t3);
        bytes got = r;
        REQUIRE_FALSE(rx.open_reflector(got, test_protection::encrypted));
        CHECK(bytes(got.begin() + 16, got.begin() + 24) == t3);
        for (std::size_t pos :
             {std::size_t{0}, std::size_t{20}, std::size_t{95}, std::size_t{100}}) {
            bytes m = r;
            m[pos] ^= 0x01;
            CHECK(rx.open_reflector(m, test_protection::encrypted) == errc::auth_failed);
        }
    }

    SUBCASE("sender packets: authenticated covers 0-15, encrypted 0-31, padding never")
    {
        for (auto mode : {test_protection::authenticated, test_protection::encrypted}) {
            bytes s = make(48 + 64);
            const bytes plain = s;
            REQUIRE_FALSE(tx.seal_sender(s, mode));
            const std::size_t enc = mode == test_protection::authenticated ? 16 : 32;
            CHECK(bytes(s.begin() + static_cast<std::ptrdiff_t>(enc), s.begin() + 32) ==
                  bytes(plain.begin() + static_cast<std::ptrdiff_t>(enc), plain.begin() + 32));
            CHECK(bytes(s.begin() + 48, s.end()) == bytes(plain.begin() + 48, plain.end()));
            bytes ok = s;
            REQUIRE_FALSE(rx.open_sender(ok, mode));
            CHECK(bytes(ok.begin(), ok.begin() + 32) == bytes(plain.begin(), plain.begin() + 32));

            bytes t = s;
            t[20] ^= 1; // timestamp octet
            if (mode == test_protection::authenticated)
                CHECK_FALSE(rx.open_sender(t, mode));
            else
                CHECK(rx.open_sender(t, mode) == errc::auth_failed);
            bytes u = s;
            u[2] ^= 1;
            CHECK(rx.open_sender(u, mode) == errc::auth_failed);
            bytes v = s;
            v[100] ^= 1; // padding
            CHECK_FALSE(rx.open_sender(v, mode));
        }
    }

    SUBCASE("a different SID gives different keys and nothing verifies across sessions")
    {
        bytes sid2 = sid;
        sid2[15] ^= 1;
        twamp::test_session_crypto<C> other;
        REQUIRE_FALSE(other.init(fixed<16>(aes_sk), fixed<32>(hmac_sk), fixed<16>(sid2)));
        CHECK(other.test_aes_key().value != tx.test_aes_key().value);
        bytes s = make(48);
        REQUIRE_FALSE(tx.seal_sender(s, test_protection::authenticated));
        CHECK(other.open_sender(s, test_protection::authenticated) == errc::auth_failed);
    }

    SUBCASE("sizes and state")
    {
        bytes s47(47), r111(111);
        CHECK(tx.seal_sender(s47, test_protection::authenticated) == errc::buffer_too_small);
        CHECK(rx.open_sender(s47, test_protection::authenticated) == errc::truncated);
        CHECK(rx.open_reflector(r111, test_protection::encrypted) == errc::truncated);
        twamp::test_session_crypto<C> none;
        bytes s(48);
        CHECK(none.seal_sender(s, test_protection::authenticated) == errc::auth_failed);
    }
}

TEST_CASE("STAMP authenticated base packet: HMAC-SHA-256/128 over bytes 0-95")
{
    const bytes key(32, 0x11);
    bytes p(112 + 4);
    for (std::size_t i = 0; i < p.size(); ++i)
        p[i] = static_cast<std::uint8_t>(i);
    REQUIRE_FALSE(twamp::stamp_seal<C>(key, p));
    CHECK(bytes(p.begin() + 96, p.begin() + 112) == hex("3b9bcf9cd8c3d02c8abb265ffb9bac6c"));
    CHECK(p[112] == 112); // whatever follows the base packet is untouched
    REQUIRE_FALSE(twamp::stamp_verify<C>(key, p));
    bytes t = p;
    t[95] ^= 1;
    CHECK(twamp::stamp_verify<C>(key, t) == errc::auth_failed);
    t = p;
    t[113] ^= 1; // TLV area: not part of the base HMAC
    CHECK_FALSE(twamp::stamp_verify<C>(key, t));
    bytes wrong_key(32, 0x12);
    CHECK(twamp::stamp_verify<C>(wrong_key, p) == errc::auth_failed);
    CHECK(twamp::stamp_verify<C>(key, std::span<const std::uint8_t>(p).first(111)) ==
          errc::truncated);
}

TEST_CASE("STAMP HMAC TLV (RFC 8972 4.8): Sequence Number + preceding TLVs")
{
    const bytes key(32, 0x11);
    // 44-octet unauthenticated sender base, a Class-of-Service TLV at 44, the HMAC TLV at 52.
    bytes p(72, 0);
    p[3] = 9;
    const bytes ts = hex("e1234567deadbeef");
    std::copy(ts.begin(), ts.end(), p.begin() + 4);
    p[12] = 0x80;
    p[13] = 0x01;
    p[14] = 0x12;
    p[15] = 0x34;
    const bytes tlvs = {0, 4, 0, 4, 0xb8, 0, 0, 0, 0, 8, 0, 16};
    std::copy(tlvs.begin(), tlvs.end(), p.begin() + 44);
    REQUIRE_FALSE(twamp::stamp_seal_tlv_hmac<C>(key, p, 44, 52));
    CHECK(bytes(p.begin() + 56, p.end()) == hex("14789a28b95f71eb00bc7e2b583af0c5"));
    REQUIRE_FALSE(twamp::stamp_verify_tlv_hmac<C>(key, p, 44, 52));

    // Covered: the Sequence Number and the earlier TLV (header and value).
    for (std::size_t pos : {std::size_t{3}, std::size_t{45}, std::size_t{48}, std::size_t{60}}) {
        bytes t = p;
        t[pos] ^= 1;
        CHECK(twamp::stamp_verify_tlv_hmac<C>(key, t, 44, 52) == errc::auth_failed);
    }
    // Not covered: the rest of the base packet (timestamp, SSID, MBZ).
    for (std::size_t pos : {std::size_t{4}, std::size_t{14}, std::size_t{43}}) {
        bytes t = p;
        t[pos] ^= 1;
        CHECK_FALSE(twamp::stamp_verify_tlv_hmac<C>(key, t, 44, 52));
    }
    // Structural checks on the HMAC TLV itself.
    bytes t = p;
    t[53] = 1; // type is not 8
    CHECK(twamp::stamp_verify_tlv_hmac<C>(key, t, 44, 52) == errc::bad_value);
    t = p;
    t[55] = 12; // length is not 16
    CHECK(twamp::stamp_verify_tlv_hmac<C>(key, t, 44, 52) == errc::bad_length);
    CHECK(twamp::stamp_verify_tlv_hmac<C>(key, std::span<const std::uint8_t>(p).first(71), 44,
                                          52) == errc::truncated);
    CHECK(twamp::stamp_verify_tlv_hmac<C>(key, p, 56, 52) == errc::bad_length);
}

TEST_CASE("openssl error category gives a message")
{
    const std::error_code ec(static_cast<int>(ERR_PACK(ERR_LIB_EVP, 0, ERR_R_INTERNAL_ERROR)),
                             twamp::openssl_error_category());
    CHECK(std::string(ec.category().name()) == "openssl");
    CHECK_FALSE(ec.message().empty());
}
