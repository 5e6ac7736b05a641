// twamp/detail/control_channel.hpp — the half of a TWAMP-Control connection both ends share.
//
// RFC 4656 §3.2/§3.4 (with RFC 5357 §3): after the Set-Up-Response every control message is a
// run of 16-octet blocks that passes through the Security policy, the HMAC field last. The
// channel owns what the Control-Client and the Server do alike: the input buffer and its
// framing (fill to a target, decrypt each complete block at once so the first one can tell the
// length, verify the HMAC field), the output buffer (encode, seal, never leave a half-protected
// message), the event queue and the one-way close. The state machines keep the protocol:
// which message comes next, what it means and what to answer.
#pragma once

#include <twamp/control.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace twamp::control::detail {

template <control_security_policy Security, class Event> class control_channel {
public:
    explicit control_channel(Security security) : security_(std::move(security)) {}

    Security& security() noexcept { return security_; }

    // --- input framing

    // Appends octets of `data` until the input holds `target`; returns how many were taken.
    std::size_t fill(std::span<const std::uint8_t> data, std::size_t target)
    {
        const std::size_t take = std::min(target - in_.size(), data.size());
        in_.insert(in_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
        return take;
    }
    const std::vector<std::uint8_t>& input() const noexcept { return in_; }
    std::span<std::uint8_t> input_span() noexcept { return in_; }
    bool holds(std::size_t n) const noexcept { return in_.size() == n; }
    bool input_empty() const noexcept { return in_.empty(); }
    // Length of the message being read; zero while its first block is still unread.
    std::size_t want() const noexcept { return want_; }
    void expect(std::size_t size) noexcept { want_ = size; }
    // The octets to read next: the whole message once its length is known, else one block.
    std::size_t target() const noexcept { return want_ ? want_ : kBlockSize; }
    void reset_input() noexcept
    {
        in_.clear();
        want_ = 0;
        opened_ = 0;
    }
    // Hands over the complete message and starts reading the next one.
    std::vector<std::uint8_t> take_input()
    {
        std::vector<std::uint8_t> msg = std::move(in_);
        reset_input();
        return msg;
    }

    // Decrypts each complete block as soon as it is in, so the first block can tell the
    // length, but never the HMAC field: verify_hmac() takes that one. Returns false after a
    // close.
    bool open_blocks()
    {
        const std::size_t limit = want_ ? want_ - kBlockSize : kBlockSize;
        while (opened_ + kBlockSize <= std::min(in_.size(), limit)) {
            const auto block =
                std::span<std::uint8_t, kBlockSize>(in_.data() + opened_, kBlockSize);
            if (auto ec = security_.open_block(block)) {
                close(ec, std::nullopt, "cannot decrypt an inbound block");
                return false;
            }
            opened_ += kBlockSize;
        }
        return true;
    }

    // Checks the HMAC field ending the complete message; closes on a mismatch. Returns false
    // after a close.
    bool verify_hmac()
    {
        if (auto ec = security_.verify(std::span<std::uint8_t, kBlockSize>(
                in_.data() + in_.size() - kBlockSize, kBlockSize))) {
            close(ec, std::nullopt, "HMAC check failed");
            return false;
        }
        return true;
    }

    // --- output

    // Appends `m` in the clear. An encoder failure means the machine built an invalid message:
    // nothing of it is sent, the connection closes with the encoder's error and that is
    // returned.
    template <class Msg> std::error_code queue(const Msg& m)
    {
        const std::size_t at = out_.size();
        out_.resize(at + encoded_size(m));
        if (auto ec = encode(m, std::span(out_).subspan(at))) {
            out_.resize(at);
            close(ec, std::nullopt, "cannot encode an outbound message");
            return ec;
        }
        return {};
    }
    // Appends a message that ends in an HMAC block and hands it to the policy.
    template <class Msg> std::error_code queue_sealed(const Msg& m)
    {
        const std::size_t at = out_.size();
        if (auto ec = queue(m)) return ec;
        return seal_from(at, out_.size() - at, true, "cannot protect an outbound message");
    }
    // Appends `m` and seals `len` octets of it from `offset` as blocks with no HMAC of their
    // own (Server-Start octets 32..47, RFC 5357 §3.2).
    template <class Msg>
    std::error_code queue_partly_sealed(const Msg& m, std::size_t offset, std::size_t len,
                                        std::string_view reason)
    {
        const std::size_t at = out_.size();
        if (auto ec = queue(m)) return ec;
        return seal_from(at, offset + len, false, reason, offset);
    }

    std::span<const std::uint8_t> pending_output() const noexcept { return out_; }
    void consume_output(std::size_t n)
    {
        out_.erase(out_.begin(),
                   out_.begin() + static_cast<std::ptrdiff_t>(std::min(n, out_.size())));
    }

    // --- events and close

    void emit(Event e)
    {
        // After the close event nothing else is reported.
        if (!closed_) events_.push_back(std::move(e));
    }
    std::optional<Event> next_event()
    {
        if (events_.empty()) return std::nullopt;
        Event e = std::move(events_.front());
        events_.pop_front();
        return e;
    }

    // One way: the first close is reported (connection_closed), later ones are ignored.
    void close(std::error_code ec, std::optional<accept_code> accept, std::string_view reason)
    {
        if (closed_) return;
        closed_ = true;
        reset_input();
        events_.push_back(connection_closed{ec, accept, reason});
    }
    bool closed() const noexcept { return closed_; }

private:
    // Seals out_[at + offset, at + end) in place; on failure drops the whole message from
    // `at` (never send a half-protected message) and closes.
    std::error_code seal_from(std::size_t at, std::size_t end, bool ends_with_hmac,
                              std::string_view reason, std::size_t offset = 0)
    {
        if (auto ec = security_.seal(std::span(out_).subspan(at + offset, end - offset),
                                     ends_with_hmac)) {
            out_.resize(at);
            close(ec, std::nullopt, reason);
            return ec;
        }
        return {};
    }

    Security security_;
    std::vector<std::uint8_t> in_;
    std::size_t want_ = 0;
    std::size_t opened_ = 0; // octets of in_ already passed to open_block()
    std::vector<std::uint8_t> out_;
    std::deque<Event> events_;
    bool closed_ = false;
};

// What both state machines expose of their channel, alike: the output to write, the events to
// read, whether the connection is closed, and the Security policy.
template <control_security_policy Security, class Event> class control_endpoint {
public:
    std::span<const std::uint8_t> pending_output() const noexcept { return ch_.pending_output(); }
    void consume_output(std::size_t n) { ch_.consume_output(n); }
    std::optional<Event> next_event() { return ch_.next_event(); }
    bool closed() const noexcept { return ch_.closed(); }
    Security& security() noexcept { return ch_.security(); }

protected:
    explicit control_endpoint(Security security) : ch_(std::move(security)) {}
    control_channel<Security, Event> ch_;
};

} // namespace twamp::control::detail
