// fuzz_flow_table — the shared reflector port's demultiplexer (asio/shared_reflector.hpp,
// detail::flow_table) against a plain model, under any sequence of attach, detach and lookups.
//
// Each operation is 3 octets: op, address index (4 addresses, two of them IPv4), port (0-7, 0 =
// unknown Sender Port). Invariants: attach happens only when compatible() says so, and then no
// two sessions of the table can be confused; find() returns the session filed under exactly the
// sender when there is one, the only session of the sender's address when it is alone there,
// and nothing otherwise; for_each() and size() agree with the model; detaching what is not there
// changes nothing.
#include "fuzz_common.hpp"

#include "twamp/asio/shared_reflector.hpp"

#include <array>
#include <map>
#include <memory>
#include <vector>

namespace {

twamp::peer_key key_of(std::uint8_t a, std::uint16_t port)
{
    static const std::array<asio::ip::address, 4> addrs{
        asio::ip::make_address("192.0.2.1"), asio::ip::make_address("192.0.2.2"),
        asio::ip::make_address("2001:db8::1"), asio::ip::make_address("::ffff:192.0.2.3")};
    return twamp::net::sender_key(addrs[a % addrs.size()], port);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using twamp::net::reflector_flow;
    twamp::reflector_config cfg;
    cfg.max_sessions = 1;
    twamp::net::detail::flow_table table(cfg);
    // The model: sender -> flow, in insertion order per address.
    std::map<std::pair<std::array<std::uint8_t, 16>, std::uint16_t>, reflector_flow*> model;
    std::vector<std::unique_ptr<reflector_flow>> pool;

    twamp_fuzz::fuzz_input in(data, size);
    for (int steps = 0; steps < 256 && in.remaining() >= 3; ++steps) {
        const std::uint8_t op = in.u8() % 4;
        const twamp::peer_key k = key_of(in.u8(), static_cast<std::uint16_t>(in.u8() % 8));
        std::size_t same_addr = 0;
        bool unknown_there = false, exact_there = false;
        reflector_flow* only = nullptr;
        for (const auto& [mk, f] : model)
            if (mk.first == k.addr) {
                ++same_addr;
                unknown_there |= mk.second == 0;
                exact_there |= mk.second == k.port;
                only = f;
            }
        switch (op) {
        case 0: { // attach when compatible
            const bool expect = same_addr == 0 || (k.port != 0 && !unknown_there && !exact_there);
            FUZZ_CHECK(table.compatible(k) == expect);
            if (!expect) break;
            pool.push_back(std::make_unique<reflector_flow>(cfg));
            table.attach(k, *pool.back());
            model[{k.addr, k.port}] = pool.back().get();
            break;
        }
        case 1: // detach (also what is not there)
            table.detach(k);
            model.erase({k.addr, k.port});
            break;
        default: { // find
            reflector_flow* want = nullptr;
            if (same_addr == 1)
                want = only;
            else if (auto it = model.find({k.addr, k.port}); it != model.end())
                want = it->second;
            FUZZ_CHECK(table.find(k) == want);
            FUZZ_CHECK(table.at(k) == (exact_there ? model.at({k.addr, k.port}) : nullptr));
            break;
        }
        }
        FUZZ_CHECK(table.size() == model.size());
        std::size_t visited = 0;
        table.for_each([&](reflector_flow&) { ++visited; });
        FUZZ_CHECK(visited == model.size());
    }
    return 0;
}
