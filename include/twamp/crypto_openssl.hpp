// twamp/crypto_openssl.hpp — `twamp::openssl_crypto`, the OpenSSL 3 implementation of the
// crypto_policy concept in crypto.hpp.
//
// Supplies the primitives RFC 4656 §3.1–3.2 / §4.1.2 and RFC 8762 §4.4 name: PBKDF2-HMAC-SHA1,
// AES-128 in ECB and CBC mode (whole blocks, no padding), HMAC-SHA1 and HMAC-SHA-256 truncated to
// 128 bits, a CSPRNG, constant-time comparison and key wiping. Only the non-deprecated EVP/EVP_MAC
// interfaces are used, so the header compiles with OPENSSL_NO_DEPRECATED and -Werror.
//
// OpenSSL failures come back as std::error_code in `openssl_error_category()` (the packed
// ERR_get_error() code; OS errors map to std::system_category()); misuse of the block/length
// contracts comes back as twamp::errc.
#pragma once

#include "twamp/crypto.hpp"
#include "twamp/error.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>

namespace twamp {

namespace detail {

class openssl_error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "openssl"; }
    std::string message(int ev) const override
    {
        std::array<char, 256> buf{};
        ERR_error_string_n(static_cast<unsigned long>(ev), buf.data(), buf.size());
        return buf.data();
    }
};

} // namespace detail

inline const std::error_category& openssl_error_category() noexcept
{
    static const detail::openssl_error_category_impl cat;
    return cat;
}

namespace detail {

// Takes the oldest queued OpenSSL error (usually the root cause) and clears the rest of the
// thread's queue, so a later failure is not blamed on a stale entry.
inline std::error_code openssl_last_error()
{
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) {
        // The call failed without saying why; report it as an EVP internal error.
        return {static_cast<int>(ERR_PACK(ERR_LIB_EVP, 0, ERR_R_INTERNAL_ERROR)),
                openssl_error_category()};
    }
    if (ERR_SYSTEM_ERROR(e)) return {static_cast<int>(ERR_GET_REASON(e)), std::system_category()};
    // Library errors pack an 8-bit library and a 23-bit reason, so they fit in an int.
    return {static_cast<int>(e), openssl_error_category()};
}

struct cipher_ctx_deleter {
    void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};

inline bool partially_overlapping(std::span<const std::uint8_t> a,
                                  std::span<const std::uint8_t> b) noexcept
{
    if (a.data() == b.data() || a.empty() || b.empty()) return false;
    const auto pa = reinterpret_cast<std::uintptr_t>(a.data());
    const auto pb = reinterpret_cast<std::uintptr_t>(b.data());
    return pa < pb + b.size() && pb < pa + a.size();
}

// Shared length rules of every AES entry point (see crypto_policy).
inline std::error_code check_blocks(std::span<const std::uint8_t> in,
                                    std::span<const std::uint8_t> out) noexcept
{
    if (in.size() % aes_block_size != 0) return errc::bad_length;
    if (out.size() < in.size()) return errc::buffer_too_small;
    if (out.size() != in.size()) return errc::bad_length;
    // EVP takes int lengths; TWAMP never comes close, so a larger request is a caller bug.
    if (in.size() > static_cast<std::size_t>(INT_MAX - 16)) return errc::bad_length;
    if (partially_overlapping(in, out)) return std::make_error_code(std::errc::invalid_argument);
    return {};
}

// The algorithm objects are fetched from the default provider once per process (a fetch takes
// the provider store's lock and a name lookup, which used to dominate a 48-octet operation); the
// objects live until exit. A fetch that fails (no default provider) stays failed: every call
// then reports an error.
enum class aes_mode { ecb, cbc };

inline const EVP_CIPHER* fetched_aes128(aes_mode m) noexcept
{
    struct fetched {
        EVP_CIPHER* ecb = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
        EVP_CIPHER* cbc = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
    };
    static const fetched f;
    return m == aes_mode::ecb ? f.ecb : f.cbc;
}

inline EVP_MAC* fetched_hmac() noexcept
{
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    return mac;
}

// One AES pass with padding off. A fresh context per call keeps the policy stateless;
// EVP_CIPHER_CTX_free cleanses the expanded key.
inline std::error_code aes_run(aes_mode mode, int enc, std::span<const std::uint8_t, 16> key,
                               const std::uint8_t* iv, std::span<const std::uint8_t> in,
                               std::span<std::uint8_t> out)
{
    const EVP_CIPHER* cipher = fetched_aes128(mode);
    if (!cipher) return openssl_last_error();
    std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter> ctx(EVP_CIPHER_CTX_new());
    if (!ctx) return openssl_last_error();
    if (EVP_CipherInit_ex2(ctx.get(), cipher, key.data(), iv, enc, nullptr) != 1)
        return openssl_last_error();
    if (EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) return openssl_last_error();
    int n = 0;
    if (EVP_CipherUpdate(ctx.get(), out.data(), &n, in.data(), static_cast<int>(in.size())) != 1)
        return openssl_last_error();
    int tail = 0;
    if (EVP_CipherFinal_ex(ctx.get(), out.data() + n, &tail) != 1) return openssl_last_error();
    if (static_cast<std::size_t>(n) + static_cast<std::size_t>(tail) != in.size())
        return {static_cast<int>(ERR_PACK(ERR_LIB_EVP, 0, ERR_R_INTERNAL_ERROR)),
                openssl_error_category()};
    return {};
}

// HMAC through EVP_MAC with the digest fixed at construction. The EVP_MAC_CTX is created on the
// first init() and reused afterwards (EVP_MAC_init with a new key does not allocate), so a
// per-session object costs no allocation per packet. Freeing it cleanses the key.
template <class Digest> class openssl_hmac_ctx {
public:
    openssl_hmac_ctx() = default;
    openssl_hmac_ctx(const openssl_hmac_ctx&) = delete;
    openssl_hmac_ctx& operator=(const openssl_hmac_ctx&) = delete;
    openssl_hmac_ctx(openssl_hmac_ctx&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}
    openssl_hmac_ctx& operator=(openssl_hmac_ctx&& o) noexcept
    {
        if (this != &o) {
            EVP_MAC_CTX_free(ctx_);
            ctx_ = std::exchange(o.ctx_, nullptr);
        }
        return *this;
    }
    ~openssl_hmac_ctx() { EVP_MAC_CTX_free(ctx_); }

    std::error_code init(std::span<const std::uint8_t> key)
    {
        if (!ctx_) {
            if (auto ec = create()) return ec;
        }
        // A null key would mean "keep the previous key" to EVP_MAC_init, so an empty key still
        // gets a valid pointer.
        static const std::uint8_t empty = 0;
        const std::uint8_t* k = key.empty() ? &empty : key.data();
        if (EVP_MAC_init(ctx_, k, key.size(), nullptr) != 1) return openssl_last_error();
        return {};
    }

    std::error_code update(std::span<const std::uint8_t> data)
    {
        if (!ctx_) return std::make_error_code(std::errc::invalid_argument);
        if (data.empty()) return {};
        if (EVP_MAC_update(ctx_, data.data(), data.size()) != 1) return openssl_last_error();
        return {};
    }

    std::error_code final(std::span<std::uint8_t, 16> out)
    {
        if (!ctx_) return std::make_error_code(std::errc::invalid_argument);
        std::array<std::uint8_t, EVP_MAX_MD_SIZE> full{};
        std::size_t n = 0;
        if (EVP_MAC_final(ctx_, full.data(), &n, full.size()) != 1) return openssl_last_error();
        if (n < out.size()) return errc::bad_length;
        std::copy_n(full.begin(), out.size(), out.begin());
        OPENSSL_cleanse(full.data(), full.size());
        return {};
    }

private:
    // A context with the digest already set, one per thread and digest: new contexts are
    // duplicated from it instead of fetching HMAC and resolving the digest name each time.
    static EVP_MAC_CTX* prototype()
    {
        struct holder {
            EVP_MAC_CTX* ctx = nullptr;
            holder()
            {
                EVP_MAC* mac = fetched_hmac();
                if (!mac) return;
                ctx = EVP_MAC_CTX_new(mac);
                if (!ctx) return;
                std::array<char, sizeof(Digest::name)> digest{};
                std::copy_n(Digest::name, sizeof(Digest::name), digest.begin());
                const OSSL_PARAM params[] = {
                    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest.data(), 0),
                    OSSL_PARAM_construct_end()};
                if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
                    EVP_MAC_CTX_free(ctx);
                    ctx = nullptr;
                }
            }
            holder(const holder&) = delete;
            holder& operator=(const holder&) = delete;
            ~holder() { EVP_MAC_CTX_free(ctx); }
        };
        thread_local holder h;
        return h.ctx;
    }

    std::error_code create()
    {
        EVP_MAC_CTX* proto = prototype();
        if (!proto) return openssl_last_error();
        ctx_ = EVP_MAC_CTX_dup(proto);
        if (!ctx_) return openssl_last_error();
        return {};
    }

    EVP_MAC_CTX* ctx_ = nullptr;
};

struct sha1_digest {
    static constexpr char name[] = "SHA1";
};
struct sha256_digest {
    static constexpr char name[] = "SHA256";
};

// One HMAC over one buffer through a context kept per thread and digest (re-keyed by each call),
// so a one-shot costs no allocation. The last key stays in that context until the next call or
// the thread's exit (freeing cleanses it), as it does in a per-session context.
template <class Ctx>
std::error_code one_shot_hmac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data,
                              std::span<std::uint8_t, 16> out)
{
    thread_local Ctx ctx;
    if (auto ec = ctx.init(key)) return ec;
    if (auto ec = ctx.update(data)) return ec;
    return ctx.final(out);
}

} // namespace detail

struct openssl_crypto {
    using hmac_sha1_ctx = detail::openssl_hmac_ctx<detail::sha1_digest>;
    using hmac_sha256_ctx = detail::openssl_hmac_ctx<detail::sha256_digest>;

    static std::error_code pbkdf2_hmac_sha1(std::span<const std::uint8_t> secret,
                                            std::span<const std::uint8_t> salt, std::uint32_t count,
                                            std::span<std::uint8_t> out)
    {
        if (count == 0 || count > static_cast<std::uint32_t>(INT_MAX)) return errc::bad_value;
        if (out.empty() || out.size() > static_cast<std::size_t>(INT_MAX) ||
            secret.size() > static_cast<std::size_t>(INT_MAX) ||
            salt.size() > static_cast<std::size_t>(INT_MAX))
            return errc::bad_length;
        static const char empty = 0;
        const char* pass = secret.empty() ? &empty : reinterpret_cast<const char*>(secret.data());
        static const unsigned char no_salt = 0;
        const unsigned char* s = salt.empty() ? &no_salt : salt.data();
        if (PKCS5_PBKDF2_HMAC(pass, static_cast<int>(secret.size()), s,
                              static_cast<int>(salt.size()), static_cast<int>(count), EVP_sha1(),
                              static_cast<int>(out.size()), out.data()) != 1)
            return detail::openssl_last_error();
        return {};
    }

    static std::error_code aes128_ecb_encrypt(std::span<const std::uint8_t, 16> key,
                                              std::span<const std::uint8_t> in,
                                              std::span<std::uint8_t> out)
    {
        return ecb(1, key, in, out);
    }

    static std::error_code aes128_ecb_decrypt(std::span<const std::uint8_t, 16> key,
                                              std::span<const std::uint8_t> in,
                                              std::span<std::uint8_t> out)
    {
        return ecb(0, key, in, out);
    }

    static std::error_code aes128_cbc_encrypt(std::span<const std::uint8_t, 16> key,
                                              std::span<std::uint8_t, 16> iv,
                                              std::span<const std::uint8_t> in,
                                              std::span<std::uint8_t> out)
    {
        return cbc(1, key, iv, in, out);
    }

    static std::error_code aes128_cbc_decrypt(std::span<const std::uint8_t, 16> key,
                                              std::span<std::uint8_t, 16> iv,
                                              std::span<const std::uint8_t> in,
                                              std::span<std::uint8_t> out)
    {
        return cbc(0, key, iv, in, out);
    }

    static std::error_code hmac_sha1_128(std::span<const std::uint8_t> key,
                                         std::span<const std::uint8_t> data,
                                         std::span<std::uint8_t, 16> out)
    {
        return detail::one_shot_hmac<hmac_sha1_ctx>(key, data, out);
    }

    static std::error_code hmac_sha256_128(std::span<const std::uint8_t> key,
                                           std::span<const std::uint8_t> data,
                                           std::span<std::uint8_t, 16> out)
    {
        return detail::one_shot_hmac<hmac_sha256_ctx>(key, data, out);
    }

    static std::error_code random_bytes(std::span<std::uint8_t> out)
    {
        while (!out.empty()) {
            const std::size_t n = std::min<std::size_t>(out.size(), 1u << 20);
            if (RAND_bytes(out.data(), static_cast<int>(n)) != 1)
                return detail::openssl_last_error();
            out = out.subspan(n);
        }
        return {};
    }

    static bool constant_time_equal(std::span<const std::uint8_t> a,
                                    std::span<const std::uint8_t> b) noexcept
    {
        if (a.size() != b.size()) return false; // lengths are public (fixed by the protocol)
        if (a.empty()) return true;
        return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
    }

    static void secure_wipe(std::span<std::uint8_t> s) noexcept
    {
        if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    }

private:
    // The chain goes on from the last ciphertext block: the output's when encrypting, the
    // input's when decrypting (saved first, since in-place decryption overwrites it).
    static std::error_code cbc(int enc, std::span<const std::uint8_t, 16> key,
                               std::span<std::uint8_t, 16> iv, std::span<const std::uint8_t> in,
                               std::span<std::uint8_t> out)
    {
        if (auto ec = detail::check_blocks(in, out)) return ec;
        if (in.empty()) return {};
        std::array<std::uint8_t, 16> next_iv{};
        if (!enc) std::copy_n(in.end() - 16, 16, next_iv.begin());
        if (auto ec = detail::aes_run(detail::aes_mode::cbc, enc, key, iv.data(), in, out))
            return ec;
        if (enc) std::copy_n(out.end() - 16, 16, next_iv.begin());
        std::copy(next_iv.begin(), next_iv.end(), iv.begin());
        return {};
    }

    static std::error_code ecb(int enc, std::span<const std::uint8_t, 16> key,
                               std::span<const std::uint8_t> in, std::span<std::uint8_t> out)
    {
        if (auto ec = detail::check_blocks(in, out)) return ec;
        if (in.empty()) return {};
        return detail::aes_run(detail::aes_mode::ecb, enc, key, nullptr, in, out);
    }
};

static_assert(crypto_policy<openssl_crypto>);

} // namespace twamp
