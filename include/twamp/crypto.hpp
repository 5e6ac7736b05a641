// twamp/crypto.hpp — the crypto policy concept and the TWAMP/STAMP security rules built on it.
//
// Implements the protocol side of: RFC 4656 §3.1 (PBKDF2 key K, the Token), §3.2 (running CBC
// chains and running HMAC per control direction), §4.1.2 and §6 (per-SID test keys, test packet
// protection), as reused by RFC 5357 §3–§4.2.1 (TWAMP modes 2/4, and 8 for control only, RFC
// 5618); RFC 8762 §4.2.2/§4.3.2 (authenticated STAMP, HMAC-SHA-256/128 over bytes 0–95) and RFC
// 8972 §4.8 (the STAMP HMAC TLV).
//
// The primitives come from a policy type (see `crypto_policy`) so this header stays std-only and
// the core can be tested or built without OpenSSL; crypto_openssl.hpp supplies the usual one.
// Every function reports failures as std::error_code; nothing here throws.
#pragma once

#include "twamp/error.hpp"
#include "twamp/test_layout.hpp"
#include "twamp/wire.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

namespace twamp {

// aes_block_size and truncated_hmac_size: test_layout.hpp.
inline constexpr std::size_t aes_key_size = 16;  // AES Session-key, K, test AES key
inline constexpr std::size_t hmac_key_size = 32; // HMAC Session-key, test HMAC key
inline constexpr std::size_t token_size = 64;    // Challenge || AES_SK || HMAC_SK
inline constexpr std::size_t sid_size = 16;

// ---------------------------------------------------------------------------------------------
// Key storage

// Overwrites bytes in a way the optimiser may not drop: the stores go through a volatile
// pointer, and the fence keeps them from being sunk past the end of the object's lifetime.
inline void wipe_bytes(std::span<std::uint8_t> s) noexcept
{
    volatile std::uint8_t* p = s.data();
    for (std::size_t i = 0; i < s.size(); ++i)
        p[i] = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

// A fixed-size secret (a key or key material) that zeroes itself when it dies, so session keys
// do not linger in freed memory. Copies are independent and each wipes itself.
template <std::size_t N> struct secret_array {
    std::array<std::uint8_t, N> value{};

    ~secret_array() { wipe_bytes(value); }

    std::span<const std::uint8_t, N> span() const noexcept { return value; }
    std::span<std::uint8_t, N> span() noexcept { return value; }
    static constexpr std::size_t size() noexcept { return N; }
};

using aes_key = secret_array<aes_key_size>;
using hmac_key = secret_array<hmac_key_size>;

// ---------------------------------------------------------------------------------------------
// The policy

// An incremental HMAC whose output is truncated to 16 octets. TWAMP-Control needs the running
// form because one HMAC covers everything sent since the previous one (RFC 4656 §3.2), which may
// span several messages (Server-Start's last block + the first Accept-Session). After final() the
// context must accept init() again.
// (clang-format 14 scatters requires-expressions over many lines, hence the off/on markers.)
// clang-format off
template <class H>
concept truncated_hmac_context =
    std::default_initializable<H> && std::movable<H> &&
    requires(H h, std::span<const std::uint8_t> data, std::span<std::uint8_t, 16> out) {
        { h.init(data) } -> std::same_as<std::error_code>; // data = key, any length
        { h.update(data) } -> std::same_as<std::error_code>;
        { h.final(out) } -> std::same_as<std::error_code>;
    };
// clang-format on

// What the protocol needs from a crypto library. All members are static: a policy is a bundle of
// algorithms, not an object with state (keyed state lives in the HMAC context types).
//
// Contracts shared by the members:
//  - AES functions work on whole 16-octet blocks only (no padding; anything else is
//    errc::bad_length), and `out` must be exactly as long as `in`. `in` and `out` may be the
//    same memory (in-place), but must not overlap partially.
//  - CBC functions read the IV from `iv` and leave there the last ciphertext block they produced
//    or consumed, so the next call continues the same chain (a control connection is one chain
//    per direction, RFC 4656 §3.1).
//  - pbkdf2_hmac_sha1 fills `out` completely (any length; TWAMP uses 16 octets).
//  - hmac_*_128 write the first 16 octets of the HMAC.
//  - random_bytes must draw from a CSPRNG (keys, IVs, challenges, salts).
// clang-format off
template <class C>
concept crypto_policy =
    truncated_hmac_context<typename C::hmac_sha1_ctx> &&
    truncated_hmac_context<typename C::hmac_sha256_ctx> &&
    requires(std::span<const std::uint8_t> in, std::span<std::uint8_t> out,
             std::span<const std::uint8_t, 16> key, std::span<std::uint8_t, 16> iv,
             std::span<std::uint8_t, 16> mac, std::uint32_t count) {
        // (secret, salt, count, out), then (key, in, out) and (key, iv, in, out):
        { C::pbkdf2_hmac_sha1(in, in, count, out) } -> std::same_as<std::error_code>;
        { C::aes128_ecb_encrypt(key, in, out) } -> std::same_as<std::error_code>;
        { C::aes128_ecb_decrypt(key, in, out) } -> std::same_as<std::error_code>;
        { C::aes128_cbc_encrypt(key, iv, in, out) } -> std::same_as<std::error_code>;
        { C::aes128_cbc_decrypt(key, iv, in, out) } -> std::same_as<std::error_code>;
        { C::hmac_sha1_128(in, in, mac) } -> std::same_as<std::error_code>;   // (key, data, out)
        { C::hmac_sha256_128(in, in, mac) } -> std::same_as<std::error_code>; // (key, data, out)
        { C::random_bytes(out) } -> std::same_as<std::error_code>;
        { C::constant_time_equal(in, in) } noexcept -> std::same_as<bool>;
        { C::secure_wipe(out) } noexcept;
    };
// clang-format on

// ---------------------------------------------------------------------------------------------
// Key derivation and the Token (RFC 4656 §3.1)

// K = PBKDF2-HMAC-SHA1(shared secret, Salt, Count, 16). The caller is responsible for refusing
// an absurd Count before calling (RFC 5357 §6 suggests a client-side maximum); 0 is rejected
// here because PBKDF2 is undefined for it.
template <crypto_policy C>
std::error_code derive_shared_key(std::span<const std::uint8_t> secret,
                                  std::span<const std::uint8_t, 16> salt, std::uint32_t count,
                                  aes_key& k)
{
    if (count == 0) return errc::bad_value;
    return C::pbkdf2_hmac_sha1(secret, salt, count, k.span());
}

// Fills the client's random AES and HMAC Session-keys (RFC 4656 §3.1: "generated randomly").
template <crypto_policy C> std::error_code generate_session_keys(aes_key& aes_sk, hmac_key& hmac_sk)
{
    if (auto ec = C::random_bytes(aes_sk.span())) return ec;
    return C::random_bytes(hmac_sk.span());
}

// Token = AES-128-CBC(key K, IV 0, Challenge || AES_SK || HMAC_SK): four blocks.
template <crypto_policy C>
std::error_code make_token(const aes_key& k, std::span<const std::uint8_t, 16> challenge,
                           const aes_key& aes_sk, const hmac_key& hmac_sk,
                           std::span<std::uint8_t, token_size> token)
{
    secret_array<token_size> plain;
    auto p = plain.span();
    std::copy(challenge.begin(), challenge.end(), p.begin());
    std::copy(aes_sk.value.begin(), aes_sk.value.end(), p.begin() + 16);
    std::copy(hmac_sk.value.begin(), hmac_sk.value.end(), p.begin() + 32);
    std::array<std::uint8_t, 16> iv{};
    return C::aes128_cbc_encrypt(k.span(), iv, plain.span(), token);
}

struct token_contents {
    std::array<std::uint8_t, 16> challenge{};
    aes_key aes_sk;
    hmac_key hmac_sk;
};

// Decrypts a Token. It does not judge the challenge; see verify_token for the server's check.
template <crypto_policy C>
std::error_code open_token(const aes_key& k, std::span<const std::uint8_t, token_size> token,
                           token_contents& out)
{
    secret_array<token_size> plain;
    std::array<std::uint8_t, 16> iv{};
    if (auto ec = C::aes128_cbc_decrypt(k.span(), iv, token, plain.span())) return ec;
    const auto& p = plain.value;
    std::copy(p.begin(), p.begin() + 16, out.challenge.begin());
    std::copy(p.begin() + 16, p.begin() + 32, out.aes_sk.value.begin());
    std::copy(p.begin() + 32, p.end(), out.hmac_sk.value.begin());
    return {};
}

// The server's check (RFC 4656 §3.1): the Token must carry the Challenge this server sent, which
// proves the client knows the shared secret. errc::auth_failed otherwise, with `out`'s keys wiped.
// The comparison is constant-time so a probing client learns nothing from the timing.
template <crypto_policy C>
std::error_code verify_token(const aes_key& k, std::span<const std::uint8_t, token_size> token,
                             std::span<const std::uint8_t, 16> expected_challenge,
                             token_contents& out)
{
    if (auto ec = open_token<C>(k, token, out)) return ec;
    if (!C::constant_time_equal(out.challenge, expected_challenge)) {
        // Keys from a Token that failed the check are noise (or an attacker's); do not hand them
        // to a caller who might ignore the error.
        C::secure_wipe(out.aes_sk.span());
        C::secure_wipe(out.hmac_sk.span());
        return errc::auth_failed;
    }
    return {};
}

// ---------------------------------------------------------------------------------------------
// TWAMP-Control protection, one object per direction (RFC 4656 §3.1–3.2)

// The sending side and the receiving side of one direction of a control connection: an AES-CBC
// chain keyed with AES_SK that starts at Client-IV (client->server) or Server-IV (server->client)
// and never restarts, plus an HMAC-SHA1/128 keyed with HMAC_SK that covers every plaintext block
// sent in this direction since the previous HMAC. A client uses two objects: one it protects
// with (IV = Client-IV) and one it unprotects with (IV = Server-IV); the server the reverse.
//
// The HMAC is computed on plaintext before encryption and the HMAC block itself is then
// encrypted as part of the chain ("authenticate, then encrypt", RFC 4656 §3.2).
//
// After a failed HMAC check the object refuses all further work (errc::auth_failed): the chain
// and the HMAC coverage can no longer be trusted, and RFC 4656 §6.10 says to drop the message;
// a connection in that state must be closed.
template <crypto_policy C> class control_cipher {
public:
    control_cipher() = default;

    std::error_code init(std::span<const std::uint8_t, 16> aes_sk,
                         std::span<const std::uint8_t, 32> hmac_sk,
                         std::span<const std::uint8_t, 16> iv)
    {
        std::copy(aes_sk.begin(), aes_sk.end(), key_.value.begin());
        std::copy(hmac_sk.begin(), hmac_sk.end(), mac_key_.value.begin());
        std::copy(iv.begin(), iv.end(), iv_.begin());
        state_ = state::failed;
        if (auto ec = mac_.init(mac_key_.span())) return ec;
        state_ = state::ready;
        return {};
    }

    bool ready() const noexcept { return state_ == state::ready; }
    // The IV the next block will be chained to (the last ciphertext block so far).
    std::span<const std::uint8_t, 16> chain_iv() const noexcept { return iv_; }

    // --- sending ---

    // Adds plaintext blocks to the running HMAC, then encrypts them in place on the chain.
    // Used alone for blocks that are encrypted but carry no HMAC of their own: the Server-Start
    // block (bytes 32–47), which the first Accept-Session's HMAC then covers.
    std::error_code encrypt_blocks(std::span<std::uint8_t> blocks)
    {
        if (auto ec = check(blocks.size())) return ec;
        if (auto ec = mac_.update(blocks)) return fail(ec);
        if (auto ec = C::aes128_cbc_encrypt(key_.span(), iv_, blocks, blocks)) return fail(ec);
        return {};
    }

    // Writes the HMAC of everything fed since the previous HMAC into `hmac_field`, encrypts that
    // block on the chain and starts a new HMAC.
    std::error_code seal(std::span<std::uint8_t, 16> hmac_field)
    {
        if (state_ != state::ready) return errc::auth_failed;
        if (auto ec = mac_.final(hmac_field)) return fail(ec);
        if (auto ec = mac_.init(mac_key_.span())) return fail(ec);
        if (auto ec = C::aes128_cbc_encrypt(key_.span(), iv_, hmac_field, hmac_field))
            return fail(ec);
        return {};
    }

    // A whole control message whose last block is its HMAC field (every TWAMP-Control message
    // after Server-Start): plaintext in, ciphertext out, in place. Size: a multiple of 16, ≥ 32.
    std::error_code protect(std::span<std::uint8_t> msg)
    {
        if (msg.size() < 2 * aes_block_size) return errc::bad_length;
        const std::size_t body = msg.size() - truncated_hmac_size;
        if (auto ec = encrypt_blocks(msg.first(body))) return ec;
        return seal(msg.last<truncated_hmac_size>());
    }

    // Server-Start (48 octets): bytes 0–31 stay clear; bytes 32–47 (Start-Time + MBZ) are the
    // first block of the server chain and go into the server's first HMAC (RFC 4656 §3.1, which
    // says Start-Time is encrypted; the HMAC rule is §3.2's "everything since the last HMAC").
    // Do not call this when Accept is non-zero: then nothing is encrypted.
    std::error_code protect_server_start(std::span<std::uint8_t> msg)
    {
        if (msg.size() != 48) return errc::bad_length;
        return encrypt_blocks(msg.subspan(32, 16));
    }

    // --- receiving ---

    // Decrypts ciphertext blocks in place on the chain and feeds the plaintext to the running
    // HMAC. A reader that must see the first block to learn a message's length (the command
    // octet) can call this on that block first and on the rest later.
    std::error_code decrypt_blocks(std::span<std::uint8_t> blocks)
    {
        if (auto ec = check(blocks.size())) return ec;
        if (auto ec = C::aes128_cbc_decrypt(key_.span(), iv_, blocks, blocks)) return fail(ec);
        if (auto ec = mac_.update(blocks)) return fail(ec);
        return {};
    }

    // Decrypts the HMAC block in place and compares it with the HMAC of everything decrypted
    // since the previous HMAC. errc::auth_failed on mismatch (and the object stays failed).
    std::error_code verify(std::span<std::uint8_t, 16> hmac_field)
    {
        if (state_ != state::ready) return errc::auth_failed;
        if (auto ec = C::aes128_cbc_decrypt(key_.span(), iv_, hmac_field, hmac_field))
            return fail(ec);
        std::array<std::uint8_t, 16> expected{};
        if (auto ec = mac_.final(expected)) return fail(ec);
        if (!C::constant_time_equal(expected, hmac_field)) return fail(errc::auth_failed);
        if (auto ec = mac_.init(mac_key_.span())) return fail(ec);
        return {};
    }

    // The inverse of protect(): ciphertext in, verified plaintext out (HMAC field decrypted too).
    std::error_code unprotect(std::span<std::uint8_t> msg)
    {
        if (msg.size() < 2 * aes_block_size) return errc::bad_length;
        const std::size_t body = msg.size() - truncated_hmac_size;
        if (auto ec = decrypt_blocks(msg.first(body))) return ec;
        return verify(msg.last<truncated_hmac_size>());
    }

    // The inverse of protect_server_start(): decrypts bytes 32–47 and keeps them for the HMAC
    // that the first Accept-Session carries.
    std::error_code unprotect_server_start(std::span<std::uint8_t> msg)
    {
        if (msg.size() != 48) return errc::bad_length;
        return decrypt_blocks(msg.subspan(32, 16));
    }

private:
    enum class state : std::uint8_t { uninitialised, ready, failed };

    std::error_code check(std::size_t n) const
    {
        if (state_ != state::ready) return errc::auth_failed;
        if (n % aes_block_size != 0) return errc::bad_length;
        return {};
    }
    std::error_code fail(std::error_code ec)
    {
        state_ = state::failed;
        return ec;
    }

    aes_key key_;
    hmac_key mac_key_;
    std::array<std::uint8_t, 16> iv_{};
    typename C::hmac_sha1_ctx mac_;
    state state_ = state::uninitialised;
};

// ---------------------------------------------------------------------------------------------
// TWAMP-Test protection (RFC 4656 §4.1.2 and §6, RFC 5357 §4.1.2 and §4.2.1 with EID 5045)

// Per-SID test keys (RFC 4656 §4.1.2): the SID is the AES key in both derivations.
//   TestAESKey  = AES-ECB(key = SID, AES_SK)             (one block)
//   TestHMACKey = AES-CBC(key = SID, IV = 0, HMAC_SK)    (two blocks)
// TWAMP uses the same pair for the sender's and the reflector's packets.
template <crypto_policy C>
std::error_code derive_test_keys(std::span<const std::uint8_t, 16> aes_sk,
                                 std::span<const std::uint8_t, 32> hmac_sk,
                                 std::span<const std::uint8_t, 16> sid, aes_key& test_aes,
                                 hmac_key& test_hmac)
{
    if (auto ec = C::aes128_ecb_encrypt(sid, aes_sk, test_aes.span())) return ec;
    std::array<std::uint8_t, 16> iv{};
    return C::aes128_cbc_encrypt(sid, iv, hmac_sk, test_hmac.span());
}

// The two protected TWAMP-Test modes; the values are the TWAMP Modes bits (RFC 5357 §3.1).
// Mixed mode (8) uses unauthenticated test packets, so it has no entry here.
enum class test_protection : std::uint8_t { authenticated = 2, encrypted = 4 };

// The protected TWAMP-Test bases and HMAC fields (test_layout.hpp).
inline constexpr std::size_t test_sender_base_size = test_layout::auth::twamp_sender_base;
inline constexpr std::size_t test_reflector_base_size = test_layout::auth::base;
inline constexpr std::size_t test_sender_hmac_offset = test_layout::auth::twamp_sender_hmac.offset;
inline constexpr std::size_t test_reflector_hmac_offset = test_layout::auth::hmac.offset;

// How many leading octets are encrypted, and HMAC-covered (always the same bytes, as plaintext):
// authenticated mode encrypts only block 0 (the sequence number) so that the timestamps can stay
// clear and be written late; encrypted mode encrypts everything before the HMAC field.
// Authenticated: 16 both ways. Encrypted: 32 (sender), 96 (reflector). Padding: never.
inline constexpr std::size_t test_sender_protected_size(test_protection p) noexcept
{
    return p == test_protection::authenticated ? test_layout::auth::first_block.size
                                               : test_sender_hmac_offset;
}
inline constexpr std::size_t test_reflector_protected_size(test_protection p) noexcept
{
    return p == test_protection::authenticated ? test_layout::auth::first_block.size
                                               : test_reflector_hmac_offset;
}

// Keys and HMAC state of one test session. Not thread-safe: it reuses one HMAC context, so use
// one object per thread that seals or opens packets.
//
// seal_*: the packet holds plaintext (any content in the HMAC field); on return the protected
// region is encrypted and the HMAC field written. open_*: the inverse, in place; on
// errc::auth_failed the bytes are garbage and the packet must be discarded (RFC 4656 §4.2).
//
// Late timestamps: the seal_* overloads taking `late` call late(packet) at the last moment the
// mode allows. In authenticated mode that is after sealing, because the timestamps (sender T1 at
// 16–23, reflector T3 at 16–23) lie outside the encrypted and HMAC-covered block 0; `late` may
// then write only bytes 16 .. HMAC offset - 1. In encrypted mode the timestamps are encrypted
// and covered, so `late` runs just before the HMAC and encryption.
template <crypto_policy C> class test_session_crypto {
public:
    test_session_crypto() = default;

    std::error_code init(std::span<const std::uint8_t, 16> aes_sk,
                         std::span<const std::uint8_t, 32> hmac_sk,
                         std::span<const std::uint8_t, 16> sid)
    {
        ready_ = false;
        if (auto ec = derive_test_keys<C>(aes_sk, hmac_sk, sid, aes_, hmac_)) return ec;
        ready_ = true;
        return {};
    }

    bool ready() const noexcept { return ready_; }
    const aes_key& test_aes_key() const noexcept { return aes_; }
    const hmac_key& test_hmac_key() const noexcept { return hmac_; }

    std::error_code seal_sender(std::span<std::uint8_t> pkt, test_protection p)
    {
        return seal(pkt, p, test_sender_base_size, test_sender_hmac_offset,
                    test_sender_protected_size(p), [](std::span<std::uint8_t>) {});
    }
    template <std::invocable<std::span<std::uint8_t>> Late>
    std::error_code seal_sender(std::span<std::uint8_t> pkt, test_protection p, Late&& late)
    {
        return seal(pkt, p, test_sender_base_size, test_sender_hmac_offset,
                    test_sender_protected_size(p), std::forward<Late>(late));
    }
    std::error_code open_sender(std::span<std::uint8_t> pkt, test_protection p)
    {
        return open(pkt, test_sender_base_size, test_sender_hmac_offset,
                    test_sender_protected_size(p));
    }

    std::error_code seal_reflector(std::span<std::uint8_t> pkt, test_protection p)
    {
        return seal(pkt, p, test_reflector_base_size, test_reflector_hmac_offset,
                    test_reflector_protected_size(p), [](std::span<std::uint8_t>) {});
    }
    template <std::invocable<std::span<std::uint8_t>> Late>
    std::error_code seal_reflector(std::span<std::uint8_t> pkt, test_protection p, Late&& late)
    {
        return seal(pkt, p, test_reflector_base_size, test_reflector_hmac_offset,
                    test_reflector_protected_size(p), std::forward<Late>(late));
    }
    std::error_code open_reflector(std::span<std::uint8_t> pkt, test_protection p)
    {
        return open(pkt, test_reflector_base_size, test_reflector_hmac_offset,
                    test_reflector_protected_size(p));
    }

private:
    // CBC with a zero IV on one block is ECB on that block, so one CBC call serves both modes
    // (RFC 4656 §4.1.2 names ECB for authenticated mode and CBC, IV 0, for encrypted mode).
    template <class Late>
    std::error_code seal(std::span<std::uint8_t> pkt, test_protection p, std::size_t base,
                         std::size_t hmac_at, std::size_t prot, Late&& late)
    {
        if (!ready_) return errc::auth_failed;
        if (pkt.size() < base) return errc::buffer_too_small;
        const bool late_after = p == test_protection::authenticated;
        if (!late_after) late(pkt);
        auto region = pkt.first(prot);
        auto field = pkt.subspan(hmac_at).first<truncated_hmac_size>();
        if (auto ec = mac_.init(hmac_.span())) return ec;
        if (auto ec = mac_.update(region)) return ec;
        if (auto ec = mac_.final(field)) return ec;
        std::array<std::uint8_t, 16> iv{};
        if (auto ec = C::aes128_cbc_encrypt(aes_.span(), iv, region, region)) return ec;
        if (late_after) late(pkt);
        return {};
    }

    std::error_code open(std::span<std::uint8_t> pkt, std::size_t base, std::size_t hmac_at,
                         std::size_t prot)
    {
        if (!ready_) return errc::auth_failed;
        if (pkt.size() < base) return errc::truncated;
        auto region = pkt.first(prot);
        std::array<std::uint8_t, 16> iv{};
        if (auto ec = C::aes128_cbc_decrypt(aes_.span(), iv, region, region)) return ec;
        std::array<std::uint8_t, 16> expected{};
        if (auto ec = mac_.init(hmac_.span())) return ec;
        if (auto ec = mac_.update(region)) return ec;
        if (auto ec = mac_.final(expected)) return ec;
        if (!C::constant_time_equal(expected, pkt.subspan(hmac_at, truncated_hmac_size)))
            return errc::auth_failed;
        return {};
    }

    aes_key aes_;
    hmac_key hmac_;
    typename C::hmac_sha1_ctx mac_;
    bool ready_ = false;
};

// ---------------------------------------------------------------------------------------------
// STAMP (RFC 8762 §4.2.2, §4.3.2, §4.4; RFC 8972 §4.8)

// Authenticated STAMP base packet (sender or reflector, same rule): HMAC-SHA-256/128 with the
// pre-shared key over bytes 0–95, written at 96–111. STAMP encrypts nothing.
template <crypto_policy C>
std::error_code stamp_seal(std::span<const std::uint8_t> key, std::span<std::uint8_t> pkt)
{
    constexpr auto hmac = test_layout::auth::hmac;
    if (pkt.size() < test_layout::auth::base) return errc::buffer_too_small;
    return C::hmac_sha256_128(key, pkt.first(hmac.offset),
                              pkt.subspan(hmac.offset).first<truncated_hmac_size>());
}

template <crypto_policy C>
std::error_code stamp_verify(std::span<const std::uint8_t> key, std::span<const std::uint8_t> pkt)
{
    constexpr auto hmac = test_layout::auth::hmac;
    if (pkt.size() < test_layout::auth::base) return errc::truncated;
    std::array<std::uint8_t, truncated_hmac_size> expected{};
    if (auto ec = C::hmac_sha256_128(key, pkt.first(hmac.offset), expected)) return ec;
    if (!C::constant_time_equal(expected, pkt.subspan(hmac.offset, hmac.size)))
        return errc::auth_failed;
    return {};
}

// The HMAC TLV value (RFC 8972 §4.8): HMAC-SHA-256/128 over the base packet's Sequence Number
// (octets 0–3) followed by every TLV before the HMAC TLV, headers included — that is packet bytes
// [tlvs_begin, hmac_tlv). tlvs_begin is the end of the base packet (44 unauthenticated, 112
// authenticated); hmac_tlv is the offset of the HMAC TLV's Flags octet. The TLV there must have
// Type 8 and Length 16 (errc::bad_value / errc::bad_length), and fit in the packet.
template <crypto_policy C>
std::error_code stamp_tlv_hmac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> pkt,
                               std::size_t tlvs_begin, std::size_t hmac_tlv,
                               std::span<std::uint8_t, 16> out)
{
    if (tlvs_begin < 4 || hmac_tlv < tlvs_begin) return errc::bad_length;
    namespace T = test_layout::tlv;
    if (pkt.size() < hmac_tlv || pkt.size() - hmac_tlv < T::header_size + T::hmac_value_size)
        return errc::truncated;
    if (pkt[hmac_tlv + T::type.offset] != T::type_hmac) return errc::bad_value;
    if (wire::load16(pkt.data() + hmac_tlv + T::length.offset) != T::hmac_value_size)
        return errc::bad_length;
    typename C::hmac_sha256_ctx mac;
    if (auto ec = mac.init(key)) return ec;
    if (auto ec = mac.update(pkt.first(4))) return ec;
    if (auto ec = mac.update(pkt.subspan(tlvs_begin, hmac_tlv - tlvs_begin))) return ec;
    return mac.final(out);
}

// Computes the HMAC TLV value and writes it into the TLV at hmac_tlv (its header must already
// be in place).
template <crypto_policy C>
std::error_code stamp_seal_tlv_hmac(std::span<const std::uint8_t> key, std::span<std::uint8_t> pkt,
                                    std::size_t tlvs_begin, std::size_t hmac_tlv)
{
    std::array<std::uint8_t, 16> mac{};
    if (auto ec = stamp_tlv_hmac<C>(key, pkt, tlvs_begin, hmac_tlv, mac)) return ec;
    std::copy(mac.begin(), mac.end(),
              pkt.begin() + static_cast<std::ptrdiff_t>(hmac_tlv + test_layout::tlv::header_size));
    return {};
}

// errc::auth_failed when the HMAC TLV does not verify; per RFC 8972 §4.8 the caller then must not
// use the TLVs (a reflector sets the I flag on the copies it returns).
template <crypto_policy C>
std::error_code stamp_verify_tlv_hmac(std::span<const std::uint8_t> key,
                                      std::span<const std::uint8_t> pkt, std::size_t tlvs_begin,
                                      std::size_t hmac_tlv)
{
    std::array<std::uint8_t, 16> mac{};
    if (auto ec = stamp_tlv_hmac<C>(key, pkt, tlvs_begin, hmac_tlv, mac)) return ec;
    if (!C::constant_time_equal(mac,
                                pkt.subspan(hmac_tlv + test_layout::tlv::header_size, mac.size())))
        return errc::auth_failed;
    return {};
}

} // namespace twamp
