// twamp/error.hpp — the library's error codes and their std::error_category ("twamp").
//
// Every fallible path of the sans-I/O core reports a std::error_code from this enum, so callers
// can mix them with the std::errc / asio codes the transport layer produces.
#pragma once

#include <string>
#include <system_error>

namespace twamp {

enum class errc {
    ok = 0,
    truncated,              // fewer bytes than the layout needs
    buffer_too_small,       // output span cannot hold the encoded message
    bad_length,             // a length field or total size is impossible
    mbz_not_zero,           // a must-be-zero field is not zero (only where we are strict)
    bad_value,              // an enumerated field holds an unknown value
    bad_timestamp,          // NTP value outside the representable range
    invalid_error_estimate, // multiplier 0
    unexpected_source,      // datagram from an address/port that is not our peer
    unknown_sequence,       // reply for a sequence number we never sent
    duplicate,              // second reply for the same probe
    late,                   // reply after the probe's loss timeout
    session_table_full,     // reflector state cap reached
    parse_address,          // an address string that cannot be parsed
    protocol_violation,     // a message that is not allowed in the current state
    unsupported,            // a feature the peer asked for that we do not implement
    auth_failed,            // HMAC or key check failed
    timeout,                // a protocol timer expired
};

namespace detail {
class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "twamp"; }
    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev)) {
        case errc::ok:
            return "success";
        case errc::truncated:
            return "message truncated";
        case errc::buffer_too_small:
            return "output buffer too small";
        case errc::bad_length:
            return "invalid length";
        case errc::mbz_not_zero:
            return "must-be-zero field is not zero";
        case errc::bad_value:
            return "invalid field value";
        case errc::bad_timestamp:
            return "timestamp out of range";
        case errc::invalid_error_estimate:
            return "invalid error estimate (multiplier 0)";
        case errc::unexpected_source:
            return "datagram from unexpected source";
        case errc::unknown_sequence:
            return "reply for an unknown sequence number";
        case errc::duplicate:
            return "duplicate reply";
        case errc::late:
            return "reply arrived after the loss timeout";
        case errc::session_table_full:
            return "reflector session table full";
        case errc::parse_address:
            return "cannot parse address";
        case errc::protocol_violation:
            return "protocol violation";
        case errc::unsupported:
            return "unsupported feature";
        case errc::auth_failed:
            return "authentication failed";
        case errc::timeout:
            return "timed out";
        }
        return "unknown twamp error";
    }
};
} // namespace detail

inline const std::error_category& error_category() noexcept
{
    static const detail::error_category_impl cat;
    return cat;
}

inline std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

} // namespace twamp

template <> struct std::is_error_code_enum<twamp::errc> : std::true_type {
};
