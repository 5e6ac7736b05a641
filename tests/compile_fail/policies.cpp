// Compile-fail checks of the security-policy extension points.
//
// One valid keyed policy (`probe_policy`) is instantiated with every template that takes a
// control security policy: control_client, control_server, net::controller and
// net::twamp_server. Built as is, the file must compile (the control case). Each TWAMP_BREAK_*
// macro damages the policy in one way; the build must then fail naming the concept that
// rejects it (tests/compile_fail/expect_fail.cmake checks both).
//
// The member functions are declared, never defined: only their shape is checked, and the
// targets are object libraries that are never linked.
#include <twamp/asio/controller.hpp>
#include <twamp/asio/server.hpp>
#include <twamp/control_client.hpp>
#include <twamp/control_server.hpp>
#include <twamp/crypto_openssl.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <system_error>

namespace probe {

using namespace twamp;
using namespace twamp::control;

struct probe_policy {
#ifndef TWAMP_BREAK_NO_CRYPTO_TYPE
    using crypto_type = openssl_crypto;
#endif
    static constexpr std::uint32_t security_modes =
        mode::unauthenticated | mode::authenticated | mode::encrypted;

    void select_mode(std::uint32_t m);
    std::error_code seal(std::span<std::uint8_t> blocks, bool ends_with_hmac);
    std::error_code open_block(std::span<std::uint8_t, kBlockSize> block);
#ifndef TWAMP_BREAK_NO_VERIFY
    std::error_code verify(std::span<std::uint8_t, kBlockSize> hmac);
#endif

    // The set-up hooks (RFC 4656 §3.1).
#ifdef TWAMP_BREAK_MISSPELLED_CLIENT_HOOK
    std::error_code client_set_up(const server_greeting& g, setup_response& sr);
#else
    std::error_code client_setup(const server_greeting& g, setup_response& sr);
#endif
#ifdef TWAMP_BREAK_MISSPELLED_ALL_HOOKS
    std::error_code server_i_v(const std::array<std::uint8_t, 16>& iv);
    accept_code server_set_up(const server_greeting& g, const setup_response& sr,
                              const std::array<std::uint8_t, 16>& server_iv);
#else
    std::error_code server_iv(const std::array<std::uint8_t, 16>& iv);
#ifdef TWAMP_BREAK_SERVER_HOOK_TYPE
    bool server_setup(const server_greeting& g, const setup_response& sr,
                      const std::array<std::uint8_t, 16>& server_iv);
#else
    accept_code server_setup(const server_greeting& g, const setup_response& sr,
                             const std::array<std::uint8_t, 16>& server_iv);
#endif
#endif

    // The session keys that key the test packets.
#ifndef TWAMP_BREAK_NO_SESSION_KEYS
    const aes_key& aes_session_key() const noexcept;
#endif
    const hmac_key& hmac_session_key() const noexcept;
};

} // namespace probe

#if !defined(TWAMP_BREAK_NO_SESSION_KEYS) && !defined(TWAMP_BREAK_NO_CRYPTO_TYPE)
// The state machines.
template class twamp::control::control_client<probe::probe_policy>;
template class twamp::control::control_server<probe::probe_policy>;
#endif
// The transports.
template class twamp::net::controller<probe::probe_policy>;
template class twamp::net::twamp_server<probe::probe_policy>;

int main()
{
    return 0;
}
