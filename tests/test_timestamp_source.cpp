// Where T1-T4 came from (twamp/timestamp_source.hpp): the TLV method mapping, the
// Session-Sender's kernel T1 (sender_session.hpp) and what the JSON and table reports say.
#include "twamp/timestamp_source.hpp"

#include "twamp/report/json.hpp"
#include "twamp/report/table.hpp"
#include "twamp/sender_session.hpp"

#include <doctest/doctest.h>

#include <array>
#include <vector>

using namespace twamp;

namespace {

// A TWAMP Light reply to probe `seq` with T2/T3 (ns) as given.
std::vector<std::uint8_t> reply_for(std::uint32_t seq, nanoseconds t2, nanoseconds t3)
{
    reflector_packet p;
    p.seq = seq;
    p.sender_seq = seq;
    p.timestamp = to_ntp(t3).to_u64();
    p.receive_timestamp = to_ntp(t2).to_u64();
    p.err = error_estimate{true, false, 0, 1};
    p.sender_err = p.err;
    p.sender_ttl = 255;
    std::vector<std::uint8_t> out(kReflectorUnauthLen);
    REQUIRE_FALSE(encode_reflector_base(p, test_format::twamp, out));
    return out;
}

} // namespace

TEST_CASE("names and the Timestamp Information methods")
{
    CHECK(std::string(to_string(timestamp_source::kernel)) == "kernel");
    CHECK(std::string(to_string(timestamp_source::control_plane)) == "control_plane");
    CHECK(from_tlv_method(1) == timestamp_source::hardware);
    CHECK(from_tlv_method(2) == timestamp_source::software);
    CHECK(from_tlv_method(3) == timestamp_source::control_plane);
    CHECK(from_tlv_method(0) == timestamp_source::unknown);
    CHECK(from_tlv_method(9) == timestamp_source::unknown);
    timestamp_source_counts c;
    c.add(timestamp_source::kernel, timestamp_source::unknown, timestamp_source::unknown,
          timestamp_source::kernel);
    c.add(timestamp_source::user, timestamp_source::hardware, timestamp_source::software,
          timestamp_source::kernel);
    CHECK(c.get(0, timestamp_source::kernel) == 1);
    CHECK(c.get(0, timestamp_source::user) == 1);
    CHECK(c.get(1, timestamp_source::hardware) == 1);
    CHECK(c.get(2, timestamp_source::software) == 1);
    CHECK(c.get(3, timestamp_source::kernel) == 2);
    CHECK(c.total(3) == 2);
}

TEST_CASE("session_sender: the kernel's send time is T1 for the delays, the wire keeps its own")
{
    sender_config cfg;
    session_sender s(cfg);
    std::array<std::uint8_t, 64> buf{};
    const nanoseconds base{1'700'000'000'000'000'000};
    // Probe 0: a kernel stamp 3 us after the user-space read. Probe 1: none.
    REQUIRE(s.make_probe(instant{base, base}, kReflectorUnauthLen, buf) != 0);
    REQUIRE(s.make_probe(instant{base + nanoseconds{1000000}, base + nanoseconds{1000000}},
                         kReflectorUnauthLen, buf) != 0);
    CHECK(s.set_kernel_t1(0, base + nanoseconds{3000}) ==
          session_sender::kernel_t1_result::applied);
    CHECK(s.set_kernel_t1(7, base) == session_sender::kernel_t1_result::not_tracked);

    const nanoseconds t2 = base + nanoseconds{50000}, t3 = base + nanoseconds{60000};
    const nanoseconds t4 = base + nanoseconds{110000};
    auto r0 = s.on_reply(reply_for(0, t2, t3), instant{t4, t4}, 64, timestamp_source::kernel);
    REQUIRE(r0.status == reply_status::sample);
    CHECK(r0.sample.t1 == base + nanoseconds{3000});
    CHECK(r0.sample.t1_wire == base);
    CHECK(r0.sample.t1_source == timestamp_source::kernel);
    CHECK(r0.sample.t4_source == timestamp_source::kernel);
    CHECK(r0.sample.t2_source == timestamp_source::unknown);
    // NTP rounding aside, the outbound delay starts at the kernel's time.
    CHECK(std::abs(r0.sample.outbound_ns - 47000) < 2);

    const nanoseconds t4b = base + nanoseconds{1200000};
    auto r1 = s.on_reply(reply_for(1, t2 + nanoseconds{1000000}, t3 + nanoseconds{1000000}),
                         instant{t4b, t4b}, 64, timestamp_source::user);
    REQUIRE(r1.status == reply_status::sample);
    CHECK(r1.sample.t1 == r1.sample.t1_wire);
    CHECK(r1.sample.t1_source == timestamp_source::user);
    // A stamp read after its reply: counted, the sample keeps the user-space T1.
    CHECK(s.set_kernel_t1(1, base + nanoseconds{1002000}) ==
          session_sender::kernel_t1_result::after_reply);
    CHECK(s.stamps_after_reply() == 1);

    const auto& src = s.timestamp_sources();
    CHECK(src.get(0, timestamp_source::kernel) == 1);
    CHECK(src.get(0, timestamp_source::user) == 1);
    CHECK(src.get(3, timestamp_source::kernel) == 1);
    CHECK(src.get(3, timestamp_source::user) == 1);
    CHECK(src.get(1, timestamp_source::unknown) == 2);
    CHECK(s.t1_kernel_minus_user().count() == 2);
    CHECK(s.t1_kernel_minus_user().min() == 2000);
    CHECK(s.t1_kernel_minus_user().max() == 3000);
}

TEST_CASE("reports: JSON and the extended table say which source each timestamp came from")
{
    session_stats st;
    report::session_info info;
    // Unknown (a report built from statistics alone, or the controller): null, no table line.
    CHECK(report::to_json(st, info)["timestamps"].is_null());
    CHECK(report::table_extended(st, info, {}).find("timestamps:") == std::string::npos);

    info.timestamps_known = true;
    info.timestamping_requested = "auto";
    info.timestamping_enabled = "software";
    info.timestamp_sources.n[0][static_cast<std::size_t>(timestamp_source::kernel)] = 9;
    info.timestamp_sources.n[0][static_cast<std::size_t>(timestamp_source::user)] = 1;
    info.timestamp_sources.n[1][static_cast<std::size_t>(timestamp_source::software)] = 10;
    info.timestamp_sources.n[2][static_cast<std::size_t>(timestamp_source::hardware)] = 10;
    info.timestamp_sources.n[3][static_cast<std::size_t>(timestamp_source::kernel)] = 10;
    info.t1_kernel_stamps = 10;
    info.t1_kernel_minus_user_p50_ns = 1500;
    info.t1_kernel_minus_user_p99_ns = 7000;
    info.t1_kernel_minus_user_max_ns = 9000;
    info.t1_stamps_after_reply = 1;
    const auto j = report::to_json(st, info)["timestamps"];
    REQUIRE(j.is_object());
    CHECK(j["requested"] == "auto");
    CHECK(j["t1_enabled"] == "software");
    CHECK(j["note"].is_null());
    CHECK(j["sources"]["t1"]["kernel"] == 9);
    CHECK(j["sources"]["t1"]["user"] == 1);
    CHECK(j["sources"]["t2"]["software"] == 10);
    CHECK(j["sources"]["t3"]["hardware"] == 10);
    CHECK(j["sources"]["t4"]["kernel"] == 10);
    CHECK(j["sources"]["t4"]["user"] == 0);
    CHECK(j["t1_kernel_minus_user"]["p50_ns"] == 1500.0);
    CHECK(j["t1_kernel_minus_user"]["p99_ns"] == 7000.0);
    CHECK(j["t1_kernel_minus_user"]["samples"] == 10);
    CHECK(j["t1_stamps_after_reply"] == 1);

    const std::string t = report::table_extended(st, info, {});
    CHECK(t.find("  timestamps: T1 user 1, kernel 9; T2 software 10; T3 hardware 10; T4 kernel "
                 "10\n") != std::string::npos);
    CHECK(t.find("send timestamps: software (asked auto); kernel - user T1 p50 1.5us, p99 7.0us") !=
          std::string::npos);
    // twampy's table is not touched.
    CHECK(report::table(st, info).find("timestamps") == std::string::npos);
}
