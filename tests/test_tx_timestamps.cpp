// Kernel send timestamps (twamp/asio/tx_timestamps.hpp): enabling them truthfully, reading the
// error queue, matching stamps to datagrams by key; and the Session-Sender using them as T1.
// Loopback only: Linux gives software send stamps there. Every wait is a bounded loop; no
// assertion is about how long anything took, only about order and plausibility.
#include "twamp/asio/tx_timestamps.hpp"

#include "twamp/asio/reflector.hpp"
#include "twamp/asio/sender.hpp"

#include <doctest/doctest.h>

#include <poll.h>

#include <set>
#include <vector>

using namespace twamp;
using namespace twamp::net;

namespace {

// A bound loopback UDP socket (port chosen by the kernel), closed at the end of the scope.
struct udp_fd {
    int fd = -1;
    sockaddr_in addr{};
    udp_fd()
    {
        fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        socklen_t len = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    }
    ~udp_fd() { ::close(fd); }
    udp_fd(const udp_fd&) = delete;
    udp_fd& operator=(const udp_fd&) = delete;
    bool send_to(const udp_fd& peer) const
    {
        const char msg[8] = "probe";
        return ::sendto(fd, msg, sizeof msg, 0, reinterpret_cast<const sockaddr*>(&peer.addr),
                        sizeof peer.addr) == static_cast<ssize_t>(sizeof msg);
    }
};

// Waits (bounded: at most `rounds` polls of 10 ms) for the error queue to be readable.
bool wait_error_queue(int fd, int rounds = 100)
{
    for (int i = 0; i < rounds; ++i) {
        pollfd p{fd, 0, 0};
        if (::poll(&p, 1, 10) > 0 && (p.revents & POLLERR)) return true;
    }
    return false;
}

// Reads the error queue until `want` stamps came or the bounded wait gives up.
std::vector<tx_stamp> read_stamps(int fd, std::size_t want, std::size_t* errors = nullptr)
{
    std::vector<tx_stamp> out;
    for (int round = 0; round < 50 && out.size() < want; ++round) {
        if (!wait_error_queue(fd, 10)) continue;
        const auto r = drain_tx_error_queue(fd, [&](const tx_stamp& s) { out.push_back(s); });
        if (errors) *errors += r.errors;
    }
    return out;
}

} // namespace

TEST_CASE("timestamping modes parse and print")
{
    for (auto m : {timestamping_mode::automatic, timestamping_mode::hardware,
                   timestamping_mode::software, timestamping_mode::user})
        CHECK(parse_timestamping_mode(to_string(m)) == m);
    CHECK_FALSE(parse_timestamping_mode("Auto").has_value());
    CHECK_FALSE(parse_timestamping_mode("").has_value());
    CHECK(std::string(to_string(tx_source::hardware)) == "hardware");
}

TEST_CASE("tx_key_ring: stamps find their datagram by key, in fixed memory")
{
    tx_key_ring<std::uint32_t> ring(16);
    const nanoseconds t0{1'000'000'000};
    for (std::uint32_t i = 0; i < 10; ++i)
        ring.sent(t0 + nanoseconds{i * 1000}, 100 + i);
    CHECK(ring.pending() == 10);
    CHECK(ring.next_key() == 10);
    // Out of order, as a hardware queue may deliver them.
    for (std::uint32_t k : {3U, 0U, 9U}) {
        const auto m = ring.take(k, t0 + nanoseconds{k * 1000 + 500});
        REQUIRE(m);
        CHECK(m->value == 100 + k);
        CHECK(m->user_time == t0 + nanoseconds{k * 1000});
    }
    CHECK_FALSE(ring.take(3, t0 + nanoseconds{3500})); // read twice
    CHECK(ring.stats().unmatched == 1);
    // Before the user-space read: refused (a clock that is not the system clock).
    CHECK_FALSE(ring.take(5, t0 - nanoseconds{1'000'000}));
    CHECK(ring.stats().implausible == 1);
    // More than a second after it: refused too.
    CHECK_FALSE(ring.take(6, t0 + nanoseconds{2'000'000'000}));
    CHECK(ring.stats().implausible == 2);
    CHECK(ring.pending() == 7); // the refused ones stay, waiting for a right stamp
    // Capacity: 16 more datagrams push the 7 still pending out, counted.
    for (std::uint32_t i = 0; i < 16; ++i)
        ring.sent(t0, i);
    CHECK(ring.stats().expired == 7);
    CHECK(ring.pending() == 16);
    CHECK_FALSE(ring.take(1, t0 + nanoseconds{1500})); // forgotten
}

TEST_CASE("tx_key_ring: a refused send, on kernels that take a key for it and on those that do "
          "not")
{
    const nanoseconds t0{5'000'000'000};
    SUBCASE("no key taken (current kernels)")
    {
        tx_key_ring<int> ring(64);
        ring.sent(t0, 0);                       // key 0
        ring.send_failed();                     // no key
        ring.sent(t0 + nanoseconds{10'000}, 1); // key 1
        auto m = ring.take(1, t0 + nanoseconds{12'000});
        REQUIRE(m);
        CHECK(m->value == 1);
        m = ring.take(0, t0 + nanoseconds{2'000});
        REQUIRE(m);
        CHECK(m->value == 0);
        CHECK(ring.stats().keys_skipped == 0);
    }
    SUBCASE("a key taken (older kernels): found one key further")
    {
        tx_key_ring<int> ring(64);
        ring.sent(t0, 0);                       // kernel key 0
        ring.send_failed();                     // kernel key 1, nothing sent
        ring.sent(t0 + nanoseconds{10'000}, 1); // kernel key 2
        ring.sent(t0 + nanoseconds{20'000}, 2); // kernel key 3
        auto m = ring.take(0, t0 + nanoseconds{2'000});
        REQUIRE(m);
        CHECK(m->value == 0);
        m = ring.take(2, t0 + nanoseconds{12'000});
        REQUIRE(m);
        CHECK(m->value == 1);
        CHECK(ring.stats().keys_skipped == 1);
        m = ring.take(3, t0 + nanoseconds{22'000}); // the skew is kept
        REQUIRE(m);
        CHECK(m->value == 2);
    }
}

TEST_CASE("software send stamps on loopback: one per datagram, keyed in order, after the "
          "user-space read")
{
    udp_fd tx, rx;
    REQUIRE(tx.fd >= 0);
    const auto ts = enable_tx_timestamps(tx.fd, timestamping_mode::software, "lo");
#if TWAMP_TX_TIMESTAMPS
    REQUIRE(ts.enabled == tx_source::software);
    CHECK_FALSE(ts.unmet());
    CHECK(ts.note.empty());
    constexpr std::uint32_t kN = 64;
    tx_key_ring<std::uint32_t> ring(128);
    for (std::uint32_t i = 0; i < kN; ++i) {
        const nanoseconds user = realtime_now();
        REQUIRE(tx.send_to(rx));
        ring.sent(user, 1000 + i);
    }
    const auto stamps = read_stamps(tx.fd, kN);
    REQUIRE(stamps.size() == kN);
    std::set<std::uint32_t> keys;
    std::set<std::uint32_t> values;
    for (const auto& s : stamps) {
        CHECK(s.source == tx_source::software);
        keys.insert(s.key);
        const auto m = ring.take(s.key, s.time);
        REQUIRE(m);
        CHECK(m->value == 1000 + s.key); // the stamp with key k is the k-th datagram's
        CHECK(s.time >= m->user_time);
        CHECK(s.time - m->user_time < std::chrono::seconds{1});
        values.insert(m->value);
    }
    CHECK(keys.size() == kN);
    CHECK(*keys.begin() == 0);
    CHECK(*keys.rbegin() == kN - 1);
    CHECK(values.size() == kN);
    CHECK(ring.pending() == 0);
#else
    CHECK(ts.enabled == tx_source::user);
    CHECK(ts.unmet());
#endif
}

TEST_CASE("the error queue is read in batches, bounded by the limit, nothing lost between passes")
{
    udp_fd tx, rx;
    REQUIRE(tx.fd >= 0);
    const auto ts = enable_tx_timestamps(tx.fd, timestamping_mode::software, "lo");
#if TWAMP_TX_TIMESTAMPS
    REQUIRE(ts.enabled == tx_source::software);
    // 45 datagrams: more than two batches of 16; loopback stamps them inside the send call.
    constexpr std::uint32_t kN = 45;
    for (std::uint32_t i = 0; i < kN; ++i)
        REQUIRE(tx.send_to(rx));
    REQUIRE(wait_error_queue(tx.fd));
    std::vector<std::uint32_t> keys;
    const auto on_stamp = [&](const tx_stamp& s) { keys.push_back(s.key); };
    // A limit that is not a multiple of the batch: exactly 20 read, and more said to be left.
    const auto first = drain_tx_error_queue(tx.fd, on_stamp, 20);
    CHECK(first.stamps == 20);
    CHECK(first.errors == 0);
    CHECK(first.more);
    // The rest in one pass: 25, and the queue is empty.
    const auto second = drain_tx_error_queue(tx.fd, on_stamp);
    CHECK(second.stamps == kN - 20);
    CHECK_FALSE(second.more);
    REQUIRE(keys.size() == kN);
    for (std::uint32_t i = 0; i < kN; ++i)
        CHECK(keys[i] == i); // in order, none twice, none skipped
    const auto third = drain_tx_error_queue(tx.fd, on_stamp);
    CHECK(third.stamps == 0);
    CHECK_FALSE(third.more);
#else
    CHECK(ts.enabled == tx_source::user);
#endif
}

TEST_CASE("user mode enables nothing: the error queue stays empty")
{
    udp_fd tx, rx;
    const auto ts = enable_tx_timestamps(tx.fd, timestamping_mode::user, "lo");
    CHECK(ts.enabled == tx_source::user);
    CHECK_FALSE(ts.kernel());
    CHECK_FALSE(ts.unmet());
    for (int i = 0; i < 8; ++i)
        REQUIRE(tx.send_to(rx));
    // Every datagram has arrived (a software stamp would have been queued before that).
    int got = 0;
    for (int round = 0; round < 100 && got < 8; ++round) {
        pollfd p{rx.fd, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) continue;
        char buf[64];
        while (::recv(rx.fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
            ++got;
    }
    REQUIRE(got == 8);
    std::size_t stamps = 0;
    const auto r = drain_tx_error_queue(tx.fd, [&](const tx_stamp&) { ++stamps; });
    CHECK(stamps == 0);
    CHECK(r.errors == 0);
}

TEST_CASE("a descriptor that takes no SO_TIMESTAMPING degrades to user and says why")
{
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const auto autom = enable_tx_timestamps(pipe_fds[0], timestamping_mode::automatic, "");
    CHECK(autom.enabled == tx_source::user);
    CHECK_FALSE(autom.unmet()); // auto takes what there is
    CHECK_FALSE(autom.note.empty());
    const auto sw = enable_tx_timestamps(pipe_fds[0], timestamping_mode::software, "");
    CHECK(sw.enabled == tx_source::user);
    CHECK(sw.unmet());
    CHECK_FALSE(sw.note.empty());
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
}

TEST_CASE("hardware on loopback: unmet, with the reason; auto falls back to software")
{
    udp_fd s;
    const auto hw = enable_tx_timestamps(s.fd, timestamping_mode::hardware, "lo");
    CHECK(hw.enabled == tx_source::user);
    CHECK(hw.unmet());
    CHECK(hw.note.find("lo") != std::string::npos);
    udp_fd s2;
    const auto autom = enable_tx_timestamps(s2.fd, timestamping_mode::automatic, "lo");
#if TWAMP_TX_TIMESTAMPS
    CHECK(autom.enabled == tx_source::software);
#else
    CHECK(autom.enabled == tx_source::user);
#endif
    CHECK(interface_for(asio::ip::make_address("127.0.0.1")) == "lo");
    CHECK(interface_for(asio::ip::address_v4::any()).empty());
}

TEST_CASE("ICMP errors on the same queue are still counted as errors, stamps as stamps")
{
#if TWAMP_TX_TIMESTAMPS
    udp_fd tx;
    int one = 1;
    REQUIRE(::setsockopt(tx.fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one) == 0);
    REQUIRE(enable_tx_timestamps(tx.fd, timestamping_mode::software, "").kernel());
    sockaddr_in closed{};
    {
        udp_fd gone; // a port nobody listens on once this closes
        closed = gone.addr;
    }
    const char msg[4] = "x";
    REQUIRE(::sendto(tx.fd, msg, sizeof msg, 0, reinterpret_cast<const sockaddr*>(&closed),
                     sizeof closed) > 0);
    std::size_t errors = 0;
    std::vector<tx_stamp> stamps;
    for (int round = 0; round < 50 && (stamps.empty() || errors == 0); ++round) {
        if (!wait_error_queue(tx.fd, 10)) continue;
        const auto r = drain_tx_error_queue(tx.fd, [&](const tx_stamp& s) { stamps.push_back(s); });
        errors += r.errors;
    }
    REQUIRE(stamps.size() == 1);
    CHECK(stamps[0].key == 0);
    // ICMP port unreachable (the kernel may rate-limit it, but not the first one).
    CHECK(errors == 1);
#endif
}

TEST_CASE("udp_sender with software stamps: T1 for the delays is the kernel's, per probe")
{
    asio::io_context io;
    reflector_options ro;
    ro.local = {asio::ip::make_address("127.0.0.1"), 0};
    udp_reflector refl(io, ro);
    REQUIRE_FALSE(refl.open());
    refl.start();

    sender_options so;
    so.remote = refl.local_endpoint();
    so.local = {asio::ip::make_address("127.0.0.1"), 0};
    so.count = 50;
    so.interval = std::chrono::microseconds{200};
    so.core.timeout = std::chrono::seconds{2};
    so.timestamping = timestamping_mode::software;
    udp_sender sender(io, so);
    REQUIRE_FALSE(sender.open());
#if TWAMP_TX_TIMESTAMPS
    REQUIRE(sender.timestamping().enabled == tx_source::software);
#endif
    std::vector<reply_sample> samples;
    sender.on_reply([&](const reply_result& r) {
        if (r.status == reply_status::sample) samples.push_back(r.sample);
    });
    sender.start([&] {
        refl.stop();
        io.stop();
    });
    io.run_for(std::chrono::seconds{20}); // bounded; the session ends long before
    REQUIRE(sender.finished());
    REQUIRE(samples.size() == 50);
#if TWAMP_TX_TIMESTAMPS
    std::set<std::uint32_t> seqs;
    for (const auto& m : samples) {
        CHECK(m.t1_source == timestamp_source::kernel);
        CHECK(m.t1 >= m.t1_wire);
        CHECK(m.t1 - m.t1_wire < std::chrono::seconds{1});
        CHECK(m.t4_source == timestamp_source::kernel);
        CHECK(m.t2_source == timestamp_source::unknown); // no Timestamp Information TLV asked
        CHECK(m.roundtrip_ns == ((m.t4 - m.t1) - (m.t3 - m.t2)).count());
        seqs.insert(m.sender_seq);
    }
    CHECK(seqs.size() == 50);
    const auto& src = sender.session().timestamp_sources();
    CHECK(src.get(0, timestamp_source::kernel) == 50);
    CHECK(src.get(0, timestamp_source::user) == 0);
    CHECK(sender.session().t1_kernel_minus_user().count() == 50);
    CHECK(sender.session().t1_kernel_minus_user().min() >= 0);
    CHECK(sender.tx_stamp_counters().matched == 50);
    CHECK(sender.tx_stamps_pending() == 0);
#endif
}

TEST_CASE("udp_sender in user mode: T1 is the user-space read, and no stamp is awaited")
{
    asio::io_context io;
    reflector_options ro;
    ro.local = {asio::ip::make_address("127.0.0.1"), 0};
    udp_reflector refl(io, ro);
    REQUIRE_FALSE(refl.open());
    refl.start();
    sender_options so;
    so.remote = refl.local_endpoint();
    so.local = {asio::ip::make_address("127.0.0.1"), 0};
    so.count = 20;
    so.interval = std::chrono::microseconds{200};
    so.timestamping = timestamping_mode::user;
    udp_sender sender(io, so);
    REQUIRE_FALSE(sender.open());
    CHECK(sender.timestamping().enabled == tx_source::user);
    std::size_t n = 0;
    sender.on_reply([&](const reply_result& r) {
        if (r.status != reply_status::sample) return;
        ++n;
        CHECK(r.sample.t1_source == timestamp_source::user);
        CHECK(r.sample.t1 == r.sample.t1_wire);
    });
    sender.start([&] {
        refl.stop();
        io.stop();
    });
    io.run_for(std::chrono::seconds{20});
    REQUIRE(n == 20);
    CHECK(sender.session().timestamp_sources().get(0, timestamp_source::user) == 20);
    CHECK(sender.session().t1_kernel_minus_user().count() == 0);
    CHECK(sender.tx_stamp_counters().sent == 0);
}

namespace {

// One STAMP exchange with a reflector on loopback: a request with SSID 7 and a Follow-Up
// Telemetry TLV, the reply's T3 (as sent) and what its Follow-Up TLV reported.
struct follow_up_exchange {
    std::uint64_t t3 = 0;
    std::uint32_t seq = 0;
    std::optional<stamp_tlv_report::follow_up_info> follow_up;
};

follow_up_exchange exchange(asio::ip::udp::socket& c, const asio::ip::udp::endpoint& to,
                            udp_reflector& r, std::uint32_t seq)
{
    std::array<std::uint8_t, 256> req{};
    sender_packet s;
    s.seq = seq;
    s.ssid = 7;
    stamp_tlv_request want;
    want.follow_up = true;
    const std::size_t tlv_len = stamp_tlv_request_size(want);
    REQUIRE_FALSE(encode_sender(s, test_format::stamp, kStampBaseLen + tlv_len, req));
    std::size_t written = 0;
    REQUIRE_FALSE(write_stamp_tlvs(want, seq, std::span(req).subspan(kStampBaseLen), written));
    c.send_to(asio::buffer(req.data(), kStampBaseLen + written), to);
    follow_up_exchange x;
    std::array<std::uint8_t, 512> buf{};
    for (int i = 0; i < 2000; ++i) {
        r.drain();
        std::error_code ec;
        const std::size_t n = c.receive(asio::buffer(buf), 0, ec);
        if (ec) {
            ::usleep(100);
            continue;
        }
        reflector_packet p;
        REQUIRE_FALSE(decode_reflector(std::span(buf).first(n), test_format::stamp, p));
        x.t3 = p.timestamp;
        x.seq = p.seq;
        x.follow_up =
            read_stamp_tlvs(std::span(buf).subspan(kStampBaseLen, n - kStampBaseLen)).follow_up;
        return x;
    }
    FAIL("no reply");
    return x;
}

void run_follow_up(timestamping_mode mode)
{
    asio::io_context io;
    reflector_options o;
    o.local = {asio::ip::make_address("127.0.0.1"), 0};
    o.core.format = reflector_format::stamp;
    o.tx_timestamping = mode;
    udp_reflector r(io, o);
    REQUIRE_FALSE(r.open());
    asio::ip::udp::socket c(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    c.non_blocking(true);
    const asio::ip::udp::endpoint to = r.local_endpoint();

    const auto first = exchange(c, to, r, 1);
    const auto second = exchange(c, to, r, 2);
    REQUIRE(second.follow_up);
    // The second reply reports the first one: its sequence number, and when it was sent.
    CHECK(second.follow_up->seq == first.seq);
    const nanoseconds t3 = from_ntp(ntp_timestamp::from_u64(first.t3));
    const nanoseconds sent = from_ntp(ntp_timestamp::from_u64(second.follow_up->timestamp));
    if (mode == timestamping_mode::user) {
        // No kernel stamp: the T3 read before the send.
        CHECK(second.follow_up->timestamp == first.t3);
        CHECK(r.io_counters().follow_up_kernel == 0);
    } else {
        // The kernel's stamp, taken in the send call after T3 was read.
        CHECK(r.tx_timestamps().enabled == tx_source::software);
        CHECK(second.follow_up->timestamp != first.t3);
        CHECK(sent >= t3 - nanoseconds{1});
        CHECK(sent - t3 < std::chrono::milliseconds{100});
        CHECK(second.follow_up->method ==
              static_cast<std::uint8_t>(stamp_tlv::timestamp_method::sw_local));
        CHECK(r.io_counters().follow_up_kernel >= 1);
        CHECK(r.io_counters().tx_kernel_stamps >= 1);
    }
}

} // namespace

TEST_CASE("reflector: Follow-Up Telemetry reports the kernel's send time of the previous reply")
{
    run_follow_up(timestamping_mode::software);
}

TEST_CASE("reflector in user mode: Follow-Up Telemetry reports the previous reply's T3")
{
    run_follow_up(timestamping_mode::user);
}
