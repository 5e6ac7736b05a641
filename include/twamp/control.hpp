// twamp/control.hpp — TWAMP-Control messages: constants, structs, encode/decode.
//
// Implements the wire formats of RFC 5357 §3 (which reuses RFC 4656 §3.1–3.8): Server Greeting,
// Set-Up-Response, Server-Start, Request-TW-Session, Accept-Session, Start-Sessions, Start-Ack and
// the TWAMP Stop-Sessions; RFC 5938 §3.2–3.5 (Start-N-Sessions, Start-N-Ack, Stop-N-Sessions,
// Stop-N-Ack) and the RFC 6038 §4.2–4.3 Reflect Octets fields. Also the pieces both control state
// machines share: the incremental framing helper (message length from the first 16-octet block),
// the SID construction of RFC 4656 §3.5, and the hook through which a crypto policy will later
// encrypt and authenticate whole 16-octet blocks (RFC 4656 §3.2/§3.4).
//
// HMAC fields are carried as raw 16-octet arrays; in unauthenticated mode they are zero.
#pragma once

#include <twamp/error.hpp>
#include <twamp/test_layout.hpp>
#include <twamp/timestamp.hpp>
#include <twamp/wire.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace twamp::control {

// ---------------------------------------------------------------------------------------------
// Constants

inline constexpr std::uint16_t kControlPort = 862; // RFC 5357 §3.1 (TCP)
// Control messages after the Set-Up-Response are whole AES blocks (RFC 4656 §3.4).
inline constexpr std::size_t kBlockSize = aes_block_size;

inline constexpr std::size_t kServerGreetingSize = 64;
inline constexpr std::size_t kSetupResponseSize = 164; // the one message that is not whole blocks
inline constexpr std::size_t kServerStartSize = 48;
inline constexpr std::size_t kRequestTwSessionSize = 112;
inline constexpr std::size_t kAcceptSessionSize = 48;
inline constexpr std::size_t kStartSessionsSize = 32;
inline constexpr std::size_t kStartAckSize = 32;
inline constexpr std::size_t kStopSessionsSize = 32;
// Start-N-Sessions, Start-N-Ack, Stop-N-Sessions, Stop-N-Ack: 16 header + 16 * N + 16 HMAC.
inline constexpr std::size_t kNMessageBaseSize = 32;
// N is a 32-bit field; we refuse anything above this so a peer cannot make us buffer 64 GiB.
inline constexpr std::uint32_t kMaxSessionsPerNMessage = 1024;

constexpr std::size_t n_message_size(std::uint32_t n) noexcept
{
    return kNMessageBaseSize + kBlockSize * std::size_t{n};
}

// TWAMP-Control command numbers (first octet of client commands; IANA registry).
enum class command : std::uint8_t {
    reserved = 0,
    forbidden = 1, // OWAMP Request-Session
    start_sessions = 2,
    stop_sessions = 3,
    reserved_fetch = 4, // OWAMP Fetch-Session; not used in TWAMP
    request_tw_session = 5,
    experimentation = 6,
    start_n_sessions = 7,
    start_n_ack = 8,
    stop_n_sessions = 9,
    stop_n_ack = 10,
    request_tw_micro_sessions = 11, // RFC 9533; not implemented here
};

// TWAMP-Modes bits (RFC 4656 §3.1, RFC 5618, RFC 5938, RFC 6038, RFC 7717, RFC 7750, RFC 8186).
namespace mode {
inline constexpr std::uint32_t unauthenticated = 1;
inline constexpr std::uint32_t authenticated = 2;
inline constexpr std::uint32_t encrypted = 4;
inline constexpr std::uint32_t mixed = 8; // unauthenticated test, encrypted control
inline constexpr std::uint32_t individual_session_control = 16;
inline constexpr std::uint32_t reflect_octets = 32;
inline constexpr std::uint32_t symmetrical_size = 64;
inline constexpr std::uint32_t ikev2_derived = 128;
inline constexpr std::uint32_t dscp_ecn_monitoring = 256;
inline constexpr std::uint32_t ptpv2_timestamp = 512;

// The bits that choose how the control and test streams are protected; exactly one is selected.
inline constexpr std::uint32_t security_mask = unauthenticated | authenticated | encrypted | mixed;
// Optional features that need nothing from the control channel's crypto and that the library
// carries out; they may be offered alongside any security mode. Not here, so never offered or
// selected whatever a configuration asks: IKEv2 (128, key handling for a crypto policy), DSCP/ECN
// monitoring (256, RFC 7750) and PTPv2 timestamps (512, RFC 8186), which are not implemented.
inline constexpr std::uint32_t feature_mask =
    individual_session_control | reflect_octets | symmetrical_size;

constexpr int security_bit_count(std::uint32_t m) noexcept
{
    int n = 0;
    for (std::uint32_t b = 1; b <= mixed; b <<= 1)
        if (m & b) ++n;
    return n;
}
} // namespace mode

// Accept field (RFC 4656 §3.3).
enum class accept_code : std::uint8_t {
    ok = 0,
    failure = 1, // reason unspecified (catch-all)
    internal_error = 2,
    not_supported = 3,   // some aspect of the request is not supported
    permanent_limit = 4, // cannot perform: permanent resource limitation
    temporary_limit = 5, // cannot perform: temporary resource limitation
};
inline constexpr std::uint8_t kMaxAcceptCode = 5;

// How decoders treat fields the sender must zero. RFC 4656 §3.1 tells receivers to ignore MBZ
// (and reserved Accept values are read as 1, §3.3), which is what interop needs and the default.
// `strict` is for conformance checks and fuzzing: any non-zero MBZ octet is mbz_not_zero and a
// reserved Accept value is bad_value.
enum class strictness { lenient, strict };

using session_id = std::array<std::uint8_t, 16>;
using hmac_field = std::array<std::uint8_t, 16>;
using address_bytes = std::array<std::uint8_t, 16>; // IPv4 uses the first 4 octets

// ---------------------------------------------------------------------------------------------
// Helpers for field values

// Type-P Descriptor, format 00 (RFC 4656 §3.5): the DSCP sits in bits 2..7 of the first octet.
constexpr std::uint32_t type_p_from_dscp(std::uint8_t dscp) noexcept
{
    return std::uint32_t{static_cast<std::uint8_t>(dscp & 0x3F)} << 24;
}
// The DSCP a Type-P Descriptor asks for, or nullopt if it is not a plain DSCP. RFC form is
// DSCP << 24 with nothing else set. With `accept_low_bits`, a word whose upper 26 bits are zero
// is read as the DSCP itself (0x0000002E): some implementations send it so, and the reading is
// unambiguous because the RFC form never sets those bits.
constexpr std::optional<std::uint8_t> dscp_from_type_p(std::uint32_t type_p,
                                                       bool accept_low_bits = false) noexcept
{
    if ((type_p & ~std::uint32_t{0x3F00'0000}) == 0) return static_cast<std::uint8_t>(type_p >> 24);
    if (accept_low_bits && (type_p & ~std::uint32_t{0x3F}) == 0)
        return static_cast<std::uint8_t>(type_p);
    return std::nullopt;
}

// The Timeout field is a duration in NTP seconds.fraction form (RFC 4656 §3.5, RFC 5357 §3.5),
// not a point in time, so it has no epoch offset. Negative durations clamp to zero.
constexpr ntp_timestamp ntp_from_duration(nanoseconds d) noexcept
{
    const std::int64_t ns = d.count() < 0 ? 0 : d.count();
    const std::int64_t sec = ns / kNsPerSec;
    const auto sub = static_cast<std::uint64_t>(ns % kNsPerSec);
    const std::uint64_t frac = ((sub << 32) + kNsPerSec / 2) / kNsPerSec;
    return {static_cast<std::uint32_t>(sec), static_cast<std::uint32_t>(frac)};
}
constexpr nanoseconds duration_from_ntp(ntp_timestamp t) noexcept
{
    return nanoseconds{std::int64_t{t.seconds} * kNsPerSec + ntp_fraction_to_ns(t.fraction)};
}

constexpr bool is_zero(std::span<const std::uint8_t> s) noexcept
{
    return std::all_of(s.begin(), s.end(), [](std::uint8_t b) { return b == 0; });
}

constexpr address_bytes make_address_v4(std::uint8_t a, std::uint8_t b, std::uint8_t c,
                                        std::uint8_t d) noexcept
{
    return {a, b, c, d};
}

// SID as RFC 4656 §3.5 recommends: 4 octets of the generating host's IPv4 address (for IPv6 the
// last 4 octets of the address), the 8-octet NTP time of creation, 4 random octets.
constexpr session_id make_sid(std::uint8_t ipvn, const address_bytes& address, ntp_timestamp now,
                              const std::array<std::uint8_t, 4>& random) noexcept
{
    session_id sid{};
    const std::size_t from = ipvn == 6 ? 12 : 0;
    for (std::size_t i = 0; i < 4; ++i)
        sid[i] = address[from + i];
    wire::store64(sid.data() + 4, now.to_u64());
    for (std::size_t i = 0; i < 4; ++i)
        sid[12 + i] = random[i];
    return sid;
}

// ---------------------------------------------------------------------------------------------
// Messages

// Server Greeting, S->C, 64 octets, never encrypted (RFC 4656 §3.1).
struct server_greeting {
    static constexpr std::size_t wire_size = kServerGreetingSize;
    std::uint32_t modes = 0; // 0: the server refuses the connection
    std::array<std::uint8_t, 16> challenge{};
    std::array<std::uint8_t, 16> salt{};
    std::uint32_t count = 0; // PBKDF2 iteration count
    friend bool operator==(const server_greeting&, const server_greeting&) = default;
};

// Set-Up-Response, C->S, 164 octets (RFC 4656 §3.1). KeyID, Token and Client-IV are unused (zero)
// in unauthenticated mode.
struct setup_response {
    static constexpr std::size_t wire_size = kSetupResponseSize;
    std::uint32_t mode = 0; // 0: the client declines to continue
    std::array<std::uint8_t, 80> key_id{};
    std::array<std::uint8_t, 64> token{};
    std::array<std::uint8_t, 16> client_iv{};
    friend bool operator==(const setup_response&, const setup_response&) = default;
};

// Server-Start, S->C, 48 octets (RFC 4656 §3.1). No HMAC of its own: its last block is covered by
// the HMAC of the server's next message (RFC 5357 §3.2).
struct server_start {
    static constexpr std::size_t wire_size = kServerStartSize;
    accept_code accept = accept_code::ok;
    std::array<std::uint8_t, 16> server_iv{};
    ntp_timestamp start_time{}; // when the server instance started; zero if Accept != 0
    friend bool operator==(const server_start&, const server_start&) = default;
};

// Request-TW-Session, C->S, command 5, 112 octets (RFC 5357 §3.5, RFC 6038 §4.2).
struct request_tw_session {
    static constexpr std::size_t wire_size = kRequestTwSessionSize;
    std::uint8_t ipvn = 4;
    // Conf-Sender, Conf-Receiver, Number of Schedule Slots and Number of Packets MUST be zero in
    // TWAMP; they are kept so that a server can answer a request that sets them with Accept 3.
    std::uint8_t conf_sender = 0;
    std::uint8_t conf_receiver = 0;
    std::uint32_t schedule_slots = 0;
    std::uint32_t packets = 0;
    std::uint16_t sender_port = 0;
    std::uint16_t receiver_port = 0;
    address_bytes sender_address{};   // all zero: use the control connection's address
    address_bytes receiver_address{}; // all zero: use the control connection's address
    session_id sid{};                 // zero in requests; the server assigns it
    std::uint32_t padding_length = 0;
    ntp_timestamp start_time{}; // zero: start when Start-Sessions arrives
    ntp_timestamp timeout{};    // a duration, see ntp_from_duration()
    std::uint32_t type_p = 0;   // see type_p_from_dscp()
    // RFC 6038 Reflect Octets (mode 32); MBZ otherwise.
    std::uint16_t octets_to_be_reflected = 0;
    std::uint16_t padding_to_reflect_length = 0;
    hmac_field hmac{};
    friend bool operator==(const request_tw_session&, const request_tw_session&) = default;
};

// Accept-Session, S->C, 48 octets (RFC 4656 §3.5, RFC 5357 §3.5 with EID 1587, RFC 6038 §4.3).
struct accept_session {
    static constexpr std::size_t wire_size = kAcceptSessionSize;
    accept_code accept = accept_code::ok;
    std::uint16_t port = 0; // the reflector port to send to; 0 on rejection
    session_id sid{};
    std::uint16_t reflected_octets = 0; // RFC 6038: copy of Octets to be reflected
    std::uint16_t server_octets = 0;    // RFC 6038: 0 = nothing to carry
    hmac_field hmac{};
    friend bool operator==(const accept_session&, const accept_session&) = default;
};

// Start-Sessions, C->S, command 2, 32 octets (RFC 4656 §3.7).
struct start_sessions {
    static constexpr std::size_t wire_size = kStartSessionsSize;
    hmac_field hmac{};
    friend bool operator==(const start_sessions&, const start_sessions&) = default;
};

// Start-Ack, S->C, 32 octets (RFC 4656 §3.7).
struct start_ack {
    static constexpr std::size_t wire_size = kStartAckSize;
    accept_code accept = accept_code::ok;
    hmac_field hmac{};
    friend bool operator==(const start_ack&, const start_ack&) = default;
};

// TWAMP Stop-Sessions, C->S, command 3, 32 octets (RFC 5357 §3.8): no session records.
struct stop_sessions {
    static constexpr std::size_t wire_size = kStopSessionsSize;
    accept_code accept = accept_code::ok; // non-zero: results should be considered invalid
    std::uint32_t number_of_sessions = 0;
    hmac_field hmac{};
    friend bool operator==(const stop_sessions&, const stop_sessions&) = default;
};

// RFC 5938 §3.2: command 7. N (>= 1) SIDs follow the first block.
struct start_n_sessions {
    std::vector<session_id> sids;
    hmac_field hmac{};
    friend bool operator==(const start_n_sessions&, const start_n_sessions&) = default;
};
// RFC 5938 §3.3: command 8, one Accept for all listed SIDs.
struct start_n_ack {
    accept_code accept = accept_code::ok;
    std::vector<session_id> sids;
    hmac_field hmac{};
    friend bool operator==(const start_n_ack&, const start_n_ack&) = default;
};
// RFC 5938 §3.4: command 9. Octet 1 is MBZ (there is no Accept in this message).
struct stop_n_sessions {
    std::vector<session_id> sids;
    hmac_field hmac{};
    friend bool operator==(const stop_n_sessions&, const stop_n_sessions&) = default;
};
// RFC 5938 §3.5: command 10.
struct stop_n_ack {
    accept_code accept = accept_code::ok;
    std::vector<session_id> sids;
    hmac_field hmac{};
    friend bool operator==(const stop_n_ack&, const stop_n_ack&) = default;
};

// ---------------------------------------------------------------------------------------------
// Sizes

// A message of one size says so (wire_size); an RFC 5938 message is a base and one block per SID.
template <class Msg>
requires requires
{
    Msg::wire_size;
}
constexpr std::size_t encoded_size(const Msg&) noexcept
{
    return Msg::wire_size;
}
template <class Msg>
concept session_list_message =
    std::same_as<Msg, start_n_sessions> || std::same_as<Msg, start_n_ack> ||
    std::same_as<Msg, stop_n_sessions> || std::same_as<Msg, stop_n_ack>;
template <session_list_message Msg> std::size_t encoded_size(const Msg& m) noexcept
{
    return kNMessageBaseSize + kBlockSize * m.sids.size();
}

static_assert(kRequestTwSessionSize % kBlockSize == 0 && kAcceptSessionSize % kBlockSize == 0 &&
              kServerStartSize % kBlockSize == 0 && kStartSessionsSize % kBlockSize == 0 &&
              kServerGreetingSize % kBlockSize == 0);
static_assert(kSetupResponseSize == 4 + 80 + 64 + 16);

namespace detail {

inline std::error_code check_input_size(std::size_t have, std::size_t want) noexcept
{
    if (have < want) return errc::truncated;
    if (have > want) return errc::bad_length;
    return {};
}

// RFC 4656 §3.3: a receiver reads every reserved Accept value as 1; strict mode refuses them.
inline std::error_code read_accept(std::uint8_t raw, strictness s, accept_code& out) noexcept
{
    if (raw <= kMaxAcceptCode) {
        out = static_cast<accept_code>(raw);
        return {};
    }
    if (s == strictness::strict) return errc::bad_value;
    out = accept_code::failure;
    return {};
}

inline bool mbz_ok(wire::reader& r, std::size_t n, strictness s) noexcept
{
    const bool zero = r.zeros(n);
    return zero || s == strictness::lenient;
}

inline bool valid_accept(accept_code a) noexcept
{
    return static_cast<std::uint8_t>(a) <= kMaxAcceptCode;
}

// Shared layout of the four RFC 5938 messages. `has_accept` selects whether octet 1 is Accept.
inline std::error_code encode_n(std::uint8_t cmd, std::optional<accept_code> accept,
                                const std::vector<session_id>& sids, const hmac_field& hmac,
                                std::span<std::uint8_t> out) noexcept
{
    if (sids.empty() || sids.size() > kMaxSessionsPerNMessage) return errc::bad_length;
    if (accept && !valid_accept(*accept)) return errc::bad_value;
    const std::size_t size = kNMessageBaseSize + kBlockSize * sids.size();
    if (out.size() < size) return errc::buffer_too_small;
    wire::writer w(out);
    w.u8(cmd);
    w.u8(accept ? static_cast<std::uint8_t>(*accept) : 0);
    w.zeros(10);
    w.u32(static_cast<std::uint32_t>(sids.size()));
    for (const auto& sid : sids)
        w.bytes(sid);
    w.bytes(hmac);
    return {};
}

inline std::error_code decode_n(std::span<const std::uint8_t> in, std::uint8_t cmd,
                                accept_code* accept, std::vector<session_id>& sids,
                                hmac_field& hmac, strictness s) noexcept
{
    if (in.size() < kBlockSize) return errc::truncated;
    if (in[0] != cmd) return errc::bad_value;
    const std::uint32_t n = wire::load32(in.data() + 12);
    // RFC 5938: N >= 1 and N == the number of SIDs present; never size anything from N alone.
    if (n == 0 || n > kMaxSessionsPerNMessage) return errc::bad_length;
    if (auto ec = check_input_size(in.size(), n_message_size(n))) return ec;
    wire::reader r(in);
    r.skip(1);
    const std::uint8_t second = r.u8();
    accept_code a = accept_code::ok;
    if (accept) {
        if (auto ec = read_accept(second, s, a)) return ec;
    } else if (second != 0 && s == strictness::strict) {
        return errc::mbz_not_zero;
    }
    if (!mbz_ok(r, 10, s)) return errc::mbz_not_zero;
    r.skip(4);
    std::vector<session_id> out_sids(n);
    for (auto& sid : out_sids)
        sid = r.array<16>();
    hmac = r.array<16>();
    if (!r.ok()) return errc::truncated;
    if (accept) *accept = a;
    sids = std::move(out_sids);
    return {};
}

} // namespace detail

// ---------------------------------------------------------------------------------------------
// Encoders: write exactly encoded_size(msg) octets at the start of `out`.

inline std::error_code encode(const server_greeting& m, std::span<std::uint8_t> out) noexcept
{
    if (out.size() < kServerGreetingSize) return errc::buffer_too_small;
    wire::writer w(out);
    w.zeros(12);
    w.u32(m.modes);
    w.bytes(m.challenge);
    w.bytes(m.salt);
    w.u32(m.count);
    w.zeros(12);
    return {};
}

inline std::error_code encode(const setup_response& m, std::span<std::uint8_t> out) noexcept
{
    if (out.size() < kSetupResponseSize) return errc::buffer_too_small;
    wire::writer w(out);
    w.u32(m.mode);
    w.bytes(m.key_id);
    w.bytes(m.token);
    w.bytes(m.client_iv);
    return {};
}

inline std::error_code encode(const server_start& m, std::span<std::uint8_t> out) noexcept
{
    if (!detail::valid_accept(m.accept)) return errc::bad_value;
    if (out.size() < kServerStartSize) return errc::buffer_too_small;
    wire::writer w(out);
    w.zeros(15);
    w.u8(static_cast<std::uint8_t>(m.accept));
    w.bytes(m.server_iv);
    w.u64(m.start_time.to_u64());
    w.zeros(8);
    return {};
}

inline std::error_code encode(const request_tw_session& m, std::span<std::uint8_t> out) noexcept
{
    if (m.ipvn != 4 && m.ipvn != 6) return errc::bad_value;
    if (out.size() < kRequestTwSessionSize) return errc::buffer_too_small;
    const std::size_t addr_len = m.ipvn == 4 ? 4 : 16;
    wire::writer w(out);
    w.u8(static_cast<std::uint8_t>(command::request_tw_session));
    w.u8(m.ipvn);
    w.u8(m.conf_sender);
    w.u8(m.conf_receiver);
    w.u32(m.schedule_slots);
    w.u32(m.packets);
    w.u16(m.sender_port);
    w.u16(m.receiver_port);
    w.bytes(std::span(m.sender_address).first(addr_len));
    w.zeros(16 - addr_len);
    w.bytes(std::span(m.receiver_address).first(addr_len));
    w.zeros(16 - addr_len);
    w.bytes(m.sid);
    w.u32(m.padding_length);
    w.u64(m.start_time.to_u64());
    w.u64(m.timeout.to_u64());
    w.u32(m.type_p);
    w.u16(m.octets_to_be_reflected);
    w.u16(m.padding_to_reflect_length);
    w.zeros(4);
    w.bytes(m.hmac);
    return {};
}

inline std::error_code encode(const accept_session& m, std::span<std::uint8_t> out) noexcept
{
    if (!detail::valid_accept(m.accept)) return errc::bad_value;
    if (out.size() < kAcceptSessionSize) return errc::buffer_too_small;
    wire::writer w(out);
    w.u8(static_cast<std::uint8_t>(m.accept));
    w.u8(0);
    w.u16(m.port);
    w.bytes(m.sid);
    w.u16(m.reflected_octets);
    w.u16(m.server_octets);
    w.zeros(8);
    w.bytes(m.hmac);
    return {};
}

inline std::error_code encode(const start_sessions& m, std::span<std::uint8_t> out) noexcept
{
    if (out.size() < kStartSessionsSize) return errc::buffer_too_small;
    wire::writer w(out);
    w.u8(static_cast<std::uint8_t>(command::start_sessions));
    w.zeros(15);
    w.bytes(m.hmac);
    return {};
}

inline std::error_code encode(const start_ack& m, std::span<std::uint8_t> out) noexcept
{
    if (!detail::valid_accept(m.accept)) return errc::bad_value;
    if (out.size() < kStartAckSize) return errc::buffer_too_small;
    wire::writer w(out);
    w.u8(static_cast<std::uint8_t>(m.accept));
    w.zeros(15);
    w.bytes(m.hmac);
    return {};
}

inline std::error_code encode(const stop_sessions& m, std::span<std::uint8_t> out) noexcept
{
    if (!detail::valid_accept(m.accept)) return errc::bad_value;
    if (out.size() < kStopSessionsSize) return errc::buffer_too_small;
    wire::writer w(out);
    w.u8(static_cast<std::uint8_t>(command::stop_sessions));
    w.u8(static_cast<std::uint8_t>(m.accept));
    w.zeros(2);
    w.u32(m.number_of_sessions);
    w.zeros(8);
    w.bytes(m.hmac);
    return {};
}

inline std::error_code encode(const start_n_sessions& m, std::span<std::uint8_t> out) noexcept
{
    return detail::encode_n(static_cast<std::uint8_t>(command::start_n_sessions), std::nullopt,
                            m.sids, m.hmac, out);
}
inline std::error_code encode(const start_n_ack& m, std::span<std::uint8_t> out) noexcept
{
    return detail::encode_n(static_cast<std::uint8_t>(command::start_n_ack), m.accept, m.sids,
                            m.hmac, out);
}
inline std::error_code encode(const stop_n_sessions& m, std::span<std::uint8_t> out) noexcept
{
    return detail::encode_n(static_cast<std::uint8_t>(command::stop_n_sessions), std::nullopt,
                            m.sids, m.hmac, out);
}
inline std::error_code encode(const stop_n_ack& m, std::span<std::uint8_t> out) noexcept
{
    return detail::encode_n(static_cast<std::uint8_t>(command::stop_n_ack), m.accept, m.sids,
                            m.hmac, out);
}

// ---------------------------------------------------------------------------------------------
// Decoders: `in` must hold exactly one message (fewer octets: truncated; more: bad_length).
// On error the output object is left unspecified.

inline std::error_code decode(std::span<const std::uint8_t> in, server_greeting& m,
                              strictness s = strictness::lenient) noexcept
{
    if (auto ec = detail::check_input_size(in.size(), kServerGreetingSize)) return ec;
    wire::reader r(in);
    // The first 12 octets are "Unused" rather than MBZ; strict mode still wants them zero.
    if (!detail::mbz_ok(r, 12, s)) return errc::mbz_not_zero;
    m.modes = r.u32();
    m.challenge = r.array<16>();
    m.salt = r.array<16>();
    m.count = r.u32();
    if (!detail::mbz_ok(r, 12, s)) return errc::mbz_not_zero;
    return r.ok() ? std::error_code{} : make_error_code(errc::truncated);
}

inline std::error_code decode(std::span<const std::uint8_t> in, setup_response& m,
                              strictness = strictness::lenient) noexcept
{
    if (auto ec = detail::check_input_size(in.size(), kSetupResponseSize)) return ec;
    wire::reader r(in);
    m.mode = r.u32();
    m.key_id = r.array<80>();
    m.token = r.array<64>();
    m.client_iv = r.array<16>();
    return r.ok() ? std::error_code{} : make_error_code(errc::truncated);
}

inline std::error_code decode(std::span<const std::uint8_t> in, server_start& m,
                              strictness s = strictness::lenient) noexcept
{
    if (auto ec = detail::check_input_size(in.size(), kServerStartSize)) return ec;
    wire::reader r(in);
    if (!detail::mbz_ok(r, 15, s)) return errc::mbz_not_zero;
    if (auto ec = detail::read_accept(r.u8(), s, m.accept)) return ec;
    m.server_iv = r.array<16>();
    m.start_time = ntp_timestamp::from_u64(r.u64());
    if (!detail::mbz_ok(r, 8, s)) return errc::mbz_not_zero;
    return r.ok() ? std::error_code{} : make_error_code(errc::truncated);
}

// Leaves Conf-Sender, Conf-Receiver, the schedule counts and the SID as received: they are not
// MBZ but fields TWAMP requires to be zero, and a server answers them with Accept 3 (RFC 5357
// §3.5) rather than dropping the connection. An IPVN other than 4 or 6 is bad_value. For IPv4
// the 12 octets after each address are ignored (zeroed in `m`) as RFC 4656 §3.5 asks.
inline std::error_code decode(std::span<const std::uint8_t> in, request_tw_session& m,
                              strictness s = strictness::lenient) noexcept
{
    if (auto ec = detail::check_input_size(in.size(), kRequestTwSessionSize)) return ec;
    if (in[0] != static_cast<std::uint8_t>(command::request_tw_session)) return errc::bad_value;
    wire::reader r(in);
    r.skip(1);
    const std::uint8_t v = r.u8();
    if ((v & 0xF0) != 0 && s == strictness::strict) return errc::mbz_not_zero;
    m.ipvn = v & 0x0F;
    if (m.ipvn != 4 && m.ipvn != 6) return errc::bad_value;
    m.conf_sender = r.u8();
    m.conf_receiver = r.u8();
    m.schedule_slots = r.u32();
    m.packets = r.u32();
    m.sender_port = r.u16();
    m.receiver_port = r.u16();
    const std::size_t addr_len = m.ipvn == 4 ? 4 : 16;
    for (auto* addr : {&m.sender_address, &m.receiver_address}) {
        *addr = {};
        auto a = r.bytes(addr_len);
        std::copy(a.begin(), a.end(), addr->begin());
        if (!detail::mbz_ok(r, 16 - addr_len, s)) return errc::mbz_not_zero;
    }
    m.sid = r.array<16>();
    m.padding_length = r.u32();
    m.start_time = ntp_timestamp::from_u64(r.u64());
    m.timeout = ntp_timestamp::from_u64(r.u64());
    m.type_p = r.u32();
    m.octets_to_be_reflected = r.u16();
    m.padding_to_reflect_length = r.u16();
    if (!detail::mbz_ok(r, 4, s)) return errc::mbz_not_zero;
    m.hmac = r.array<16>();
    return r.ok() ? std::error_code{} : make_error_code(errc::truncated);
}

inline std::error_code decode(std::span<const std::uint8_t> in, accept_session& m,
                              strictness s = strictness::lenient) noexcept
{
    if (auto ec = detail::check_input_size(in.size(), kAcceptSessionSize)) return ec;
    wire::reader r(in);
    if (auto ec = detail::read_accept(r.u8(), s, m.accept)) return ec;
    if (!detail::mbz_ok(r, 1, s)) return errc::mbz_not_zero;
    m.port = r.u16();
    m.sid = r.array<16>();
    m.reflected_octets = r.u16();
    m.server_octets = r.u16();
    if (!detail::mbz_ok(r, 8, s)) return errc::mbz_not_zero;
    m.hmac = r.array<16>();
    return r.ok() ? std::error_code{} : make_error_code(errc::truncated);
}

inline std::error_code decode(std::span<const std::uint8_t> in, start_sessions& m,
                              strictness s = strictness::lenient) noexcept
{
    if (auto ec = detail::check_input_size(in.size(), kStartSessionsSize)) return ec;
    if (in[0] != static_cast<std::uint8_t>(command::start_sessions)) return errc::bad_value;
    wire::reader r(in);
    r.skip(1);
    if (!detail::mbz_ok(r, 15, s)) return errc::mbz_not_zero;
    m.hmac = r.array<16>();
    return r.ok() ? std::error_code{} : make_error_code(errc::truncated);
}

inline std::error_code decode(std::span<const std::uint8_t> in, start_ack& m,
                              strictness s = strictness::lenient) noexcept
{
    if (auto ec = detail::check_input_size(in.size(), kStartAckSize)) return ec;
    wire::reader r(in);
    if (auto ec = detail::read_accept(r.u8(), s, m.accept)) return ec;
    if (!detail::mbz_ok(r, 15, s)) return errc::mbz_not_zero;
    m.hmac = r.array<16>();
    return r.ok() ? std::error_code{} : make_error_code(errc::truncated);
}

inline std::error_code decode(std::span<const std::uint8_t> in, stop_sessions& m,
                              strictness s = strictness::lenient) noexcept
{
    if (auto ec = detail::check_input_size(in.size(), kStopSessionsSize)) return ec;
    if (in[0] != static_cast<std::uint8_t>(command::stop_sessions)) return errc::bad_value;
    wire::reader r(in);
    r.skip(1);
    if (auto ec = detail::read_accept(r.u8(), s, m.accept)) return ec;
    if (!detail::mbz_ok(r, 2, s)) return errc::mbz_not_zero;
    m.number_of_sessions = r.u32();
    if (!detail::mbz_ok(r, 8, s)) return errc::mbz_not_zero;
    m.hmac = r.array<16>();
    return r.ok() ? std::error_code{} : make_error_code(errc::truncated);
}

inline std::error_code decode(std::span<const std::uint8_t> in, start_n_sessions& m,
                              strictness s = strictness::lenient)
{
    return detail::decode_n(in, static_cast<std::uint8_t>(command::start_n_sessions), nullptr,
                            m.sids, m.hmac, s);
}
inline std::error_code decode(std::span<const std::uint8_t> in, start_n_ack& m,
                              strictness s = strictness::lenient)
{
    return detail::decode_n(in, static_cast<std::uint8_t>(command::start_n_ack), &m.accept, m.sids,
                            m.hmac, s);
}
inline std::error_code decode(std::span<const std::uint8_t> in, stop_n_sessions& m,
                              strictness s = strictness::lenient)
{
    return detail::decode_n(in, static_cast<std::uint8_t>(command::stop_n_sessions), nullptr,
                            m.sids, m.hmac, s);
}
inline std::error_code decode(std::span<const std::uint8_t> in, stop_n_ack& m,
                              strictness s = strictness::lenient)
{
    return detail::decode_n(in, static_cast<std::uint8_t>(command::stop_n_ack), &m.accept, m.sids,
                            m.hmac, s);
}

// ---------------------------------------------------------------------------------------------
// Framing for incremental readers

// The first octet of a command-numbered message (every client command, Start-N-Ack, Stop-N-Ack).
constexpr std::uint8_t peek_command(std::span<const std::uint8_t> first_block) noexcept
{
    return first_block.empty() ? 0 : first_block[0];
}

// The full length of a command-numbered message, known from its first 16-octet block: the RFC
// 5938 messages carry N in octets 12..15. Unknown, forbidden and reserved commands are
// `unsupported` (their length cannot be known); N == 0 or N above kMaxSessionsPerNMessage is
// bad_length. Needs at least 16 octets (else truncated).
inline std::error_code command_message_size(std::span<const std::uint8_t> first_block,
                                            std::size_t& size) noexcept
{
    if (first_block.size() < kBlockSize) return errc::truncated;
    switch (static_cast<command>(first_block[0])) {
    case command::start_sessions:
        size = kStartSessionsSize;
        return {};
    case command::stop_sessions:
        size = kStopSessionsSize;
        return {};
    case command::request_tw_session:
        size = kRequestTwSessionSize;
        return {};
    case command::start_n_sessions:
    case command::start_n_ack:
    case command::stop_n_sessions:
    case command::stop_n_ack: {
        const std::uint32_t n = wire::load32(first_block.data() + 12);
        if (n == 0 || n > kMaxSessionsPerNMessage) return errc::bad_length;
        size = n_message_size(n);
        return {};
    }
    default:
        return errc::unsupported;
    }
}

// ---------------------------------------------------------------------------------------------
// Crypto hook shared by the control state machines
//
// Every control octet after the Set-Up-Response passes through a policy object, always in whole
// 16-octet blocks and in stream order, as RFC 4656 §3.2/§3.4 needs:
//   seal(blocks, true)     outbound message whose last block is its HMAC field: add the other
//                          blocks to the running HMAC, write the HMAC into the last block, start
//                          a new HMAC, encrypt all blocks in place (the CBC chain never restarts).
//   seal(blocks, false)    outbound blocks with no HMAC of their own (Server-Start octets
//                          32..47): add them to the running HMAC and encrypt them.
//   open_block(block)      inbound: decrypt one block in place and add the plaintext to the
//                          running HMAC. Called as soon as each block is complete, so the
//                          first block of a command can be read before its length is known;
//                          never called for an HMAC field.
//   verify(hmac_field)     inbound: decrypt the HMAC field in place and compare it with the
//                          running HMAC, then start a new one; errc::auth_failed on mismatch.
// Every call returns a std::error_code; the machines close the connection on any error.
// select_mode() tells the policy which mode was agreed (before any of the above is used);
// security_modes says which security bits (1, 2, 4, 8) the policy can run, so the machines never
// offer or pick one it cannot. This matches control_cipher in crypto.hpp (protect /
// encrypt_blocks / decrypt_blocks / verify), which a keyed policy can wrap one object per
// direction.
template <class P>
concept control_security_policy = requires(P& p, std::span<std::uint8_t> blocks,
                                           std::span<std::uint8_t, kBlockSize> block,
                                           std::uint32_t m)
{
    {
        P::security_modes
        } -> std::convertible_to<std::uint32_t>;
    p.select_mode(m);
    {
        p.seal(blocks, true)
        } -> std::same_as<std::error_code>;
    {
        p.open_block(block)
        } -> std::same_as<std::error_code>;
    {
        p.verify(block)
        } -> std::same_as<std::error_code>;
};

// Unauthenticated mode (1): nothing is encrypted and the HMAC fields stay zero (RFC 4656 §3.2:
// in open mode they have MBZ semantics, so nothing is checked either).
struct open_security {
    static constexpr std::uint32_t security_modes = mode::unauthenticated;
    void select_mode(std::uint32_t) noexcept {}
    std::error_code seal(std::span<std::uint8_t>, bool) noexcept { return {}; }
    std::error_code open_block(std::span<std::uint8_t, kBlockSize>) noexcept { return {}; }
    std::error_code verify(std::span<std::uint8_t, kBlockSize>) noexcept { return {}; }
};
static_assert(control_security_policy<open_security>);

// A policy for the protected modes that derives its keys from a shared secret also takes part
// in the set-up (RFC 4656 §3.1):
//   client_setup(greeting, response)        client: fill KeyID and Token, start the outbound
//                                           chain at Client-IV; an error declines (Mode 0).
//   server_iv(iv)                           client: start the inbound chain at Server-IV.
//   server_setup(greeting, response, iv)    server: check KeyID and Token, start both chains;
//                                           anything but Accept 0 refuses the client.
// clang-format off
template <class P>
concept keyed_control_security_policy =
    control_security_policy<P> &&
    requires(P& p, const server_greeting& g, setup_response& sr, const setup_response& csr,
             const std::array<std::uint8_t, 16>& iv) {
        { p.client_setup(g, sr) } -> std::same_as<std::error_code>;
        { p.server_iv(iv) } -> std::same_as<std::error_code>;
        { p.server_setup(g, csr, iv) } -> std::same_as<accept_code>;
    };

// A policy says it is keyed by naming the crypto_policy it derives keys with (crypto_type) or by
// declaring any one of the set-up hooks.
template <class P>
concept declares_key_setup =
    requires { typename P::crypto_type; } || requires { &P::client_setup; } ||
    requires { &P::server_iv; } || requires { &P::server_setup; };
// clang-format on

// What the state machines (and the asio controller and server) accept: a control security
// policy that, if it says it is keyed, has every set-up hook with the right signature. A
// misspelled or mistyped hook is a compile error, never a silently unauthenticated connection.
template <class P>
concept control_machine_policy = control_security_policy<P> &&
    (keyed_control_security_policy<P> || !declares_key_setup<P>);
static_assert(control_machine_policy<open_security>);

// A keyed policy built on a crypto_policy (crypto.hpp) names it as crypto_type: the server draws
// Challenge, Salt and Server-IV from its CSPRNG, and the transports key test packets with it.
// clang-format off
template <class P>
concept crypto_backed_policy =
    keyed_control_security_policy<P> && requires(std::span<std::uint8_t> out) {
        { P::crypto_type::random_bytes(out) } -> std::same_as<std::error_code>;
    };
// clang-format on

// Random octets for challenges, salts, IVs and SIDs; injectable so tests are deterministic.
using random_source = std::function<void(std::span<std::uint8_t>)>;

// Terminal event of both state machines. `ec` is empty for an orderly close (for example the
// client declined with Mode 0); `accept` is set when the close follows a non-zero Accept.
struct connection_closed {
    std::error_code ec;
    std::optional<accept_code> accept;
    std::string_view reason; // static text
};

// The default random_source: the platform's non-deterministic generator.
inline void system_random(std::span<std::uint8_t> out)
{
    thread_local std::random_device rd;
    for (auto& b : out)
        b = static_cast<std::uint8_t>(rd());
}

} // namespace twamp::control
