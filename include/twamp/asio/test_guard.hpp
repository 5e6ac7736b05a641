// twamp/asio/test_guard.hpp — protection of test packets in the transport: authenticated and
// encrypted TWAMP-Test (RFC 4656 §4.1.2, RFC 5357 §4.1.2/§4.2.1) and authenticated STAMP
// (RFC 8762 §4.2.2/§4.3.2, HMAC-SHA-256/128 over octets 0..95).
//
// The session cores work on the open layouts; a guard sits between them and the socket: it
// verifies and opens what arrives (a packet that fails is counted and dropped, never reflected
// and never a delay sample) and translates and seals what leaves. One virtual call per packet
// selects the mode; the AES and HMAC work dwarfs it.
#pragma once

#include "twamp/control.hpp"
#include "twamp/crypto.hpp"
#include "twamp/test_packet_auth.hpp"

#include <memory>
#include <optional>
#include <vector>

namespace twamp::net {

// A keyed control policy whose session keys also key the test packets (RFC 4656 §4.1.2 and §6,
// RFC 5357 §4.1.2): it names its crypto_policy and hands out the AES and HMAC session keys.
// clang-format off
template <class P>
concept test_keying_policy =
    control::crypto_backed_policy<P> && crypto_policy<typename P::crypto_type> &&
    requires(const P& p) {
        { p.aes_session_key() } -> std::same_as<const aes_key&>;
        { p.hmac_session_key() } -> std::same_as<const hmac_key&>;
    };
// clang-format on

// What the asio controller and TWAMP server accept: a policy the state machines accept that, if
// it is keyed, can also protect the test sessions, so a keyed policy never silently leaves the
// test packets open in authenticated or encrypted mode.
template <class P>
concept transport_control_policy = control::control_machine_policy<P> &&
    (test_keying_policy<P> || !control::keyed_control_security_policy<P>);

class test_guard {
public:
    virtual ~test_guard() = default;
    virtual protected_format format() const noexcept = 0;
    // Octets a protected probe has beyond the open one of the same padding.
    std::size_t sender_overhead() const noexcept
    {
        return protected_sender_base(format()) - open_sender_base(format());
    }
    // Session-Sender: seal an open probe into `out`; receive: open a reply into `open_out`.
    // 0 means "refused" (too short, or authentication failed).
    virtual std::size_t seal_probe(wire::const_byte_span open, wire::byte_span out) = 0;
    virtual std::size_t open_reply(wire::byte_span wire_in, wire::byte_span open_out) = 0;
    // Session-Reflector: open a request (in place, then translated into `open_out`), seal a reply.
    virtual std::size_t open_request(wire::byte_span wire_in, wire::byte_span open_out) = 0;
    virtual std::size_t seal_reply(wire::const_byte_span open_reply,
                                   wire::const_byte_span request_plain, wire::byte_span out) = 0;
};

// TWAMP-Test with per-SID keys derived from the control connection's session keys.
template <crypto_policy C> class twamp_test_guard final : public test_guard {
public:
    twamp_test_guard(test_protection p, std::span<const std::uint8_t, 16> aes_sk,
                     std::span<const std::uint8_t, 32> hmac_sk,
                     std::span<const std::uint8_t, 16> sid)
        : prot_(p)
    {
        ok_ = !keys_.init(aes_sk, hmac_sk, sid);
    }
    bool ready() const noexcept { return ok_; }
    protected_format format() const noexcept override { return protected_format::twamp; }

    std::size_t seal_probe(wire::const_byte_span open, wire::byte_span out) override
    {
        const std::size_t n = sender_to_protected(open, protected_format::twamp, out);
        if (n == 0 || keys_.seal_sender(out.first(n), prot_)) return 0;
        return n;
    }
    std::size_t open_reply(wire::byte_span in, wire::byte_span open_out) override
    {
        if (in.size() < test_reflector_base_size || keys_.open_reflector(in, prot_)) return 0;
        return reflector_from_protected(in, protected_format::twamp, open_out);
    }
    std::size_t open_request(wire::byte_span in, wire::byte_span open_out) override
    {
        if (in.size() < test_sender_base_size || keys_.open_sender(in, prot_)) return 0;
        return sender_from_protected(in, protected_format::twamp, open_out);
    }
    std::size_t seal_reply(wire::const_byte_span open_reply, wire::const_byte_span request_plain,
                           wire::byte_span out) override
    {
        const std::size_t n =
            reflector_to_protected(open_reply, request_plain, protected_format::twamp, out);
        if (n == 0 || keys_.seal_reflector(out.first(n), prot_)) return 0;
        return n;
    }

private:
    test_protection prot_;
    test_session_crypto<C> keys_;
    bool ok_ = false;
};

// Authenticated STAMP with a pre-shared key.
template <crypto_policy C> class stamp_auth_guard final : public test_guard {
public:
    explicit stamp_auth_guard(std::vector<std::uint8_t> key) : key_(std::move(key)) {}
    ~stamp_auth_guard() override { wipe_bytes(key_); }
    protected_format format() const noexcept override { return protected_format::stamp; }

    std::size_t seal_probe(wire::const_byte_span open, wire::byte_span out) override
    {
        const std::size_t n = sender_to_protected(open, protected_format::stamp, out);
        if (n == 0 || stamp_seal<C>(key_, out.first(n))) return 0;
        return n;
    }
    std::size_t open_reply(wire::byte_span in, wire::byte_span open_out) override
    {
        if (in.size() < kStampAuthLen || stamp_verify<C>(key_, in)) return 0;
        return reflector_from_protected(in, protected_format::stamp, open_out);
    }
    std::size_t open_request(wire::byte_span in, wire::byte_span open_out) override
    {
        if (in.size() < kStampAuthLen || stamp_verify<C>(key_, in)) return 0;
        // RFC 8972 §4.8: an HMAC TLV must verify (and follow every TLV but Extra Padding);
        // otherwise the TLVs are not to be used and each copy goes back with the I flag.
        bool misplaced = false;
        if (const auto at = find_hmac_tlv(in, misplaced)) {
            if (misplaced || stamp_verify_tlv_hmac<C>(key_, in, kStampAuthLen, *at)) {
                ++tlv_hmac_failures_;
                for_each_stamp_tlv(in.subspan(kStampAuthLen), [&](const stamp_tlv_header& t) {
                    in[kStampAuthLen + t.offset + test_layout::tlv::flags.offset] |=
                        stamp_tlv::kFlagI;
                });
            }
        }
        return sender_from_protected(in, protected_format::stamp, open_out);
    }
    std::size_t seal_reply(wire::const_byte_span open_reply, wire::const_byte_span request_plain,
                           wire::byte_span out) override
    {
        const std::size_t n =
            reflector_to_protected(open_reply, request_plain, protected_format::stamp, out);
        if (n == 0) return 0;
        // The reply's own HMAC TLV: a TLV we understand (not U), recomputed over the reply's
        // TLVs unless the request's failed (then it goes back flagged I, as received).
        bool misplaced = false;
        if (const auto at = find_hmac_tlv(out.first(n), misplaced)) {
            namespace T = test_layout::tlv;
            std::uint8_t& flags = out[*at + T::flags.offset];
            flags &= static_cast<std::uint8_t>(~stamp_tlv::kFlagU);
            if (!(flags & stamp_tlv::kFlagI) &&
                wire::load16(out.data() + *at + T::length.offset) == T::hmac_value_size)
                (void)stamp_seal_tlv_hmac<C>(key_, out.first(n), kStampAuthLen, *at);
        }
        if (stamp_seal<C>(key_, out.first(n))) return 0;
        return n;
    }
    // Requests whose RFC 8972 HMAC TLV failed (their TLVs were returned with the I flag).
    std::uint64_t tlv_hmac_failures() const noexcept { return tlv_hmac_failures_; }

private:
    // Offset of the HMAC TLV after the 112-octet base, if any; `misplaced` when a TLV other than
    // Extra Padding follows it.
    static std::optional<std::size_t> find_hmac_tlv(wire::const_byte_span pkt, bool& misplaced)
    {
        std::optional<std::size_t> at;
        if (pkt.size() < kStampAuthLen) return at;
        for_each_stamp_tlv(pkt.subspan(kStampAuthLen), [&](const stamp_tlv_header& t) {
            if (!t.fits) return;
            if (t.type == stamp_tlv::kTypeHmac)
                at = kStampAuthLen + t.offset;
            else if (at && t.type != stamp_tlv::kTypeExtraPadding)
                misplaced = true;
        });
        return at;
    }

    std::uint64_t tlv_hmac_failures_ = 0;
    std::vector<std::uint8_t> key_;
};

} // namespace twamp::net
