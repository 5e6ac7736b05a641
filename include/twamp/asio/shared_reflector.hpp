// twamp/asio/shared_reflector.hpp — one UDP port reflecting for many TWAMP test sessions.
//
// RFC 5357 leaves the reflector's port to the server, and nothing stops it from naming the same
// port in many Accept-Session answers. A shared port demultiplexes each request onto a session
// (a reflector_flow) by the sender's address and port as the Request-TW-Session announced them
// (TWAMP-Test packets carry no SID). When only one session from an address uses the port, any
// port of that address reaches it, so a NAT that rewrites the sender's port does no harm, as
// with a socket per session. Two sessions can share a port only when their senders can be told
// apart (compatible()): different addresses, or the same address with different known ports.
//
// Each session costs its flow (the reflector core with a small table, its window and counters)
// and two table entries; the socket, the batches and the staging buffers belong to the port.
#pragma once

#include "twamp/asio/reflector.hpp"

#include <bit>
#include <cstdint>
#include <cstring>
#include <unordered_map>

namespace twamp::net {

namespace detail {
// Keyed hashes of sender addresses and (address, port) pairs: the key is drawn once per process
// (session_reflector::process_hash_key), so a client cannot choose sender ports that collide.
inline std::uint64_t mix_address(const std::array<std::uint8_t, 16>& addr,
                                 std::uint64_t key) noexcept
{
    std::uint64_t a, b;
    std::memcpy(&a, addr.data(), 8);
    std::memcpy(&b, addr.data() + 8, 8);
    std::uint64_t h = (a ^ std::rotl(key, 17)) * 0xFF51AFD7ED558CCDull;
    h = (h ^ (h >> 33) ^ b ^ key) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}
struct address_hash {
    std::size_t operator()(const std::array<std::uint8_t, 16>& a) const noexcept
    {
        return static_cast<std::size_t>(mix_address(a, session_reflector::process_hash_key()));
    }
};
struct peer_hash {
    std::size_t operator()(const peer_key& k) const noexcept
    {
        const std::uint64_t key = session_reflector::process_hash_key();
        const std::uint64_t h = (mix_address(k.addr, key) ^ k.port) * 0x9E3779B97F4A7C15ull;
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
};

// The flows of a shared port, by sender.
class flow_table {
public:
    explicit flow_table(const reflector_config&) {}

    reflector_flow* find(const peer_key& k) const noexcept
    {
        const auto a = by_address_.find(k.addr);
        if (a == by_address_.end()) return nullptr;
        if (a->second.count == 1) return a->second.only; // alone from its address: any port
        const auto e = exact_.find(k);
        return e == exact_.end() ? nullptr : e->second;
    }
    // The flow filed under exactly `k`, if any.
    reflector_flow* at(const peer_key& k) const noexcept
    {
        const auto e = exact_.find(k);
        return e == exact_.end() ? nullptr : e->second;
    }

    // Whether a session whose sender is `k` (port 0: not known) can be told apart from the
    // sessions here: its address is new, or its port is known and no other session from that
    // address has it or has an unknown one.
    bool compatible(const peer_key& k) const noexcept
    {
        const auto a = by_address_.find(k.addr);
        if (a == by_address_.end()) return true;
        if (k.port == 0 || a->second.unknown_port) return false;
        return !exact_.contains(k);
    }

    // Call only when compatible(k).
    void attach(const peer_key& k, reflector_flow& f)
    {
        exact_.emplace(k, &f);
        address_entry& a = by_address_[k.addr];
        ++a.count;
        a.only = &f;
        a.unknown_port = k.port == 0;
    }

    void detach(const peer_key& k) noexcept
    {
        if (exact_.erase(k) == 0) return;
        const auto a = by_address_.find(k.addr);
        if (a == by_address_.end()) return;
        if (--a->second.count == 0) {
            by_address_.erase(a);
            return;
        }
        a->second.unknown_port = false; // a session of unknown port never shares its address
        if (a->second.count == 1)       // the one left now answers any port of its address
            for (const auto& [key, flow] : exact_)
                if (key.addr == k.addr) a->second.only = flow;
    }

    std::size_t size() const noexcept { return exact_.size(); }
    template <class F> void for_each(F&& f)
    {
        for (auto& [k, flow] : exact_)
            f(*flow);
    }

private:
    struct address_entry {
        std::size_t count = 0;
        reflector_flow* only = nullptr; // meaningful when count == 1
        bool unknown_port = false;
    };
    std::unordered_map<peer_key, reflector_flow*, peer_hash> exact_;
    std::unordered_map<std::array<std::uint8_t, 16>, address_entry, address_hash> by_address_;
};
} // namespace detail

// A reflector port shared by test sessions. The owner keeps each flow alive while it is
// attached and detaches it before destroying it.
template <clock_policy Clock = system_clock_policy>
class basic_shared_reflector : public basic_reflector_port<Clock, detail::flow_table> {
    using port = basic_reflector_port<Clock, detail::flow_table>;

public:
    // Kernel send stamps stay off: a stamp may be read after its session's flow is gone, and
    // TWAMP-Test carries no Follow-Up Telemetry to report them in.
    basic_shared_reflector(asio::io_context& io, reflector_options o, Clock clock = {})
        : port(io, without_tx_stamps(std::move(o)), std::move(clock))
    {
    }

    // A new flow for a session of this port: the port's reflector_options::core, its clock
    // error estimate, inactive until the session starts, answering only `sender`'s address.
    std::unique_ptr<reflector_flow> make_flow(const peer_key& sender) const
    {
        auto f = std::make_unique<reflector_flow>(this->opts_.core);
        f->core.set_error_estimate(this->error_estimate_now());
        f->active = false;
        f->filter_peer = true;
        f->peer_addr = sender.addr;
        f->session_key = sender;
        return f;
    }

    bool compatible(const peer_key& sender) const noexcept { return this->dir_.compatible(sender); }
    void attach(const peer_key& sender, reflector_flow& f)
    {
        if (f.guard) this->enable_staging();
        this->dir_.attach(sender, f);
    }
    // Protection is set after attach (it needs the SID): make room for it.
    void protect(reflector_flow& f, std::unique_ptr<test_guard> g)
    {
        f.guard = std::move(g);
        if (f.guard) this->enable_staging();
    }
    void detach(const peer_key& sender) noexcept
    {
        if (const reflector_flow* f = this->dir_.at(sender)) this->forget_flow(*f);
        this->dir_.detach(sender);
    }
    std::size_t flows() const noexcept { return this->dir_.size(); }

private:
    static reflector_options without_tx_stamps(reflector_options o)
    {
        o.tx_timestamping = timestamping_mode::user;
        return o;
    }
};

using shared_reflector = basic_shared_reflector<>;

// The key a shared port files a session under: the Sender Address and Sender Port of its
// Request-TW-Session (port 0 when the client did not say).
inline peer_key sender_key(const asio::ip::address& sender, std::uint16_t sender_port) noexcept
{
    return peer_key{address_key(sender), sender_port};
}

} // namespace twamp::net
