// bench/bench_crypto.cpp — the OpenSSL crypto policy (twamp/crypto_openssl.hpp) on the sizes
// the test path uses: HMAC-SHA-256/128 over a 44-octet STAMP base plus TLVs (RFC 8762/8972),
// HMAC-SHA1/128 over the 96 octets an authenticated TWAMP-Test packet protects (RFC 4656), and
// AES-128 CBC/ECB over 48 and 16 octets.
//
// In-run baseline ("fetch_per_call"): the same operation written the way the policy did it
// before the algorithm objects were cached: HMAC fetched, a context made and its digest resolved
// by name for every call; AES through the implicitly fetched EVP_aes_128_*() objects. The ratio
// of the two is what caching the fetched objects buys.
#include "twamp/crypto_openssl.hpp"

#include <benchmark/benchmark.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace {

std::vector<std::uint8_t> payload(std::size_t n)
{
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<std::uint8_t>(i * 31u + 7u);
    return v;
}

constexpr std::array<std::uint8_t, 16> kKey{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
constexpr std::array<std::uint8_t, 32> kKey32{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                              12, 13, 14, 15, 16, 1,  2,  3,  4,  5,  6,
                                              7,  8,  9,  10, 11, 12, 13, 14, 15, 16};

// The pre-cache one-shot HMAC: fetch, new context, digest by name, init, update, final.
bool hmac_fetch_per_call(const char* digest_name, std::span<const std::uint8_t> key,
                         std::span<const std::uint8_t> data, std::span<std::uint8_t, 16> out)
{
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (!mac) return false;
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (!ctx) return false;
    std::array<char, 16> name{};
    for (std::size_t i = 0; digest_name[i] && i + 1 < name.size(); ++i)
        name[i] = digest_name[i];
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.data(), 0),
        OSSL_PARAM_construct_end()};
    std::array<std::uint8_t, EVP_MAX_MD_SIZE> full{};
    std::size_t n = 0;
    const bool ok = EVP_MAC_CTX_set_params(ctx, params) == 1 &&
                    EVP_MAC_init(ctx, key.data(), key.size(), nullptr) == 1 &&
                    EVP_MAC_update(ctx, data.data(), data.size()) == 1 &&
                    EVP_MAC_final(ctx, full.data(), &n, full.size()) == 1 && n >= out.size();
    EVP_MAC_CTX_free(ctx);
    if (ok)
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = full[i];
    return ok;
}

// The pre-cache AES pass: implicit fetch through EVP_aes_128_*() on every init.
bool aes_fetch_per_call(const EVP_CIPHER* cipher, int enc, const std::uint8_t* iv,
                        std::span<const std::uint8_t> in, std::span<std::uint8_t> out)
{
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return false;
    int n = 0;
    int tail = 0;
    const bool ok =
        EVP_CipherInit_ex2(ctx, cipher, kKey.data(), iv, enc, nullptr) == 1 &&
        EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
        EVP_CipherUpdate(ctx, out.data(), &n, in.data(), static_cast<int>(in.size())) == 1 &&
        EVP_CipherFinal_ex(ctx, out.data() + n, &tail) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

// range(0): 0 = the policy, 1 = fetch per call.
void BM_hmac_sha256_128(benchmark::State& state)
{
    const auto data = payload(static_cast<std::size_t>(state.range(1)));
    std::array<std::uint8_t, 16> out{};
    const bool baseline = state.range(0) != 0;
    for (auto _ : state) {
        bool ok = baseline ? hmac_fetch_per_call("SHA256", kKey32, data, out)
                           : !twamp::openssl_crypto::hmac_sha256_128(kKey32, data, out);
        if (!ok) state.SkipWithError("HMAC failed");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetLabel(baseline ? "fetch_per_call" : "policy");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(1));
}
BENCHMARK(BM_hmac_sha256_128)->ArgsProduct({{0, 1}, {44, 1472}});

void BM_hmac_sha1_128(benchmark::State& state)
{
    const auto data = payload(96);
    std::array<std::uint8_t, 16> out{};
    const bool baseline = state.range(0) != 0;
    for (auto _ : state) {
        bool ok = baseline ? hmac_fetch_per_call("SHA1", kKey32, data, out)
                           : !twamp::openssl_crypto::hmac_sha1_128(kKey32, data, out);
        if (!ok) state.SkipWithError("HMAC failed");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetLabel(baseline ? "fetch_per_call" : "policy");
}
BENCHMARK(BM_hmac_sha1_128)->Arg(0)->Arg(1);

void BM_aes128_cbc_encrypt_48(benchmark::State& state)
{
    const auto data = payload(48);
    std::vector<std::uint8_t> out(48);
    std::array<std::uint8_t, 16> iv{};
    const bool baseline = state.range(0) != 0;
    for (auto _ : state) {
        bool ok = baseline ? aes_fetch_per_call(EVP_aes_128_cbc(), 1, iv.data(), data, out)
                           : !twamp::openssl_crypto::aes128_cbc_encrypt(kKey, iv, data, out);
        if (!ok) state.SkipWithError("AES failed");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetLabel(baseline ? "fetch_per_call" : "policy");
}
BENCHMARK(BM_aes128_cbc_encrypt_48)->Arg(0)->Arg(1);

void BM_aes128_ecb_encrypt_16(benchmark::State& state)
{
    const auto data = payload(16);
    std::vector<std::uint8_t> out(16);
    const bool baseline = state.range(0) != 0;
    for (auto _ : state) {
        bool ok = baseline ? aes_fetch_per_call(EVP_aes_128_ecb(), 1, nullptr, data, out)
                           : !twamp::openssl_crypto::aes128_ecb_encrypt(kKey, data, out);
        if (!ok) state.SkipWithError("AES failed");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetLabel(baseline ? "fetch_per_call" : "policy");
}
BENCHMARK(BM_aes128_ecb_encrypt_16)->Arg(0)->Arg(1);

} // namespace

BENCHMARK_MAIN();
