// tests/support/control_pump.hpp — driving the sans-I/O TWAMP-Control state machines
// (twamp/control_client.hpp, twamp/control_server.hpp) in memory: what a machine has queued to
// send, moved into a vector or into the other machine, and the events it has queued.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace twamp_test {

// Everything `m` has queued to send, taken out of it.
template <class Machine> std::vector<std::uint8_t> take_output(Machine& m)
{
    const auto out = m.pending_output();
    std::vector<std::uint8_t> v(out.begin(), out.end());
    m.consume_output(v.size());
    return v;
}

// Moves everything `from` has queued into `to`, `chunk` octets per receive() call; returns how
// many octets moved.
template <class From, class To, class Time>
std::size_t transfer(From& from, To& to, Time now,
                     std::size_t chunk = std::numeric_limits<std::size_t>::max())
{
    const auto bytes = take_output(from);
    for (std::size_t i = 0; i < bytes.size(); i += chunk)
        to.receive(std::span(bytes).subspan(i, std::min(chunk, bytes.size() - i)), now);
    return bytes.size();
}

// Moves octets both ways until neither machine has anything to send.
template <class Client, class Server, class Time>
void pump(Client& c, Server& s, Time now,
          std::size_t chunk = std::numeric_limits<std::size_t>::max())
{
    while (transfer(s, c, now, chunk) + transfer(c, s, now, chunk) > 0) {
    }
}

// Every event `m` has queued, taken out of it.
template <class Machine> auto drain(Machine& m)
{
    std::vector<std::decay_t<decltype(*m.next_event())>> out;
    while (auto e = m.next_event())
        out.push_back(std::move(*e));
    return out;
}

// The events of one alternative.
template <class T, class Events> std::vector<T> all_of_type(const Events& events)
{
    std::vector<T> out;
    for (const auto& e : events)
        if (auto* p = std::get_if<T>(&e)) out.push_back(*p);
    return out;
}

} // namespace twamp_test
