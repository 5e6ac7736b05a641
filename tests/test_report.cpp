#include "twamp/report/table.hpp"
#include "twamp/report/influx.hpp"
#include "twamp/report/json.hpp"

#include <doctest/doctest.h>

#include <ostream>
#include <sstream>
#include <string>
#include <vector>

using namespace twamp;

namespace {
session_stats sample_stats()
{
    session_stats s;
    s.sent = 10;
    s.received = 9;
    s.distinct_replies = 9;
    s.have_reflector_seq = true;
    s.min_reflector_seq = 0;
    s.max_reflector_seq = 8; // the reflector saw 9: the missing one was lost outbound
    for (std::int64_t v : {150'000, 250'000, 2'500'000}) s.outbound.add(v);
    for (std::int64_t v : {800, 900, 1000}) s.inbound.add(v);
    for (std::int64_t v : {12'000'000'000, 12'500'000'000, 70'000'000'000}) s.roundtrip.add(v);
    return s;
}
std::vector<std::string> lines(const std::string& s)
{
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}
} // namespace

TEST_CASE("duration cells switch units exactly as twampy does")
{
    CHECK(report::format_ms(0.0005) == "       0us");
    CHECK(report::format_ms(0.999) == "     999us");
    CHECK(report::format_ms(1.0) == "    1000us");
    CHECK(report::format_ms(1.5) == "    1.50ms");
    CHECK(report::format_ms(1000.0) == " 1000.00ms");
    CHECK(report::format_ms(1500.0) == "   1.50sec");
    CHECK(report::format_ms(12000.0) == "   12.0sec");
    CHECK(report::format_ms(90000.0) == "    1.5min");
    CHECK(report::format_ms(-0.25) == "    -250us");
    CHECK(report::format_ms(-2.0) == "   -2.00ms");
}

TEST_CASE("the summary table has twampy's rows and columns")
{
    const auto t = lines(report::table(sample_stats()));
    REQUIRE(t.size() == 9);
    CHECK(t[0] == std::string(79, '='));
    CHECK(t[1] == "Direction         Min         Max         Avg          Jitter     Loss");
    CHECK(t[2] == std::string(79, '-'));
    // Every cell is 10 characters; jitter: 100000/16 = 6250, then 6250 + (2250000-6250)/16 ns.
    CHECK(t[3] == "  Outbound:         150us      2.50ms       966us       146us     10.0%");
    CHECK(t[4] == "  Inbound:            0us         1us         0us         0us      0.0%");
    CHECK(t[5] == "  Roundtrip:      12.0sec      1.2min     31.5sec     3.62sec     10.0%");
    CHECK(t[7] == "                                                    Jitter Algorithm [RFC1889]");
    CHECK(t[8] == std::string(79, '='));
}

TEST_CASE("no replies: twampy's 100% loss line; anomalies get a note below the table")
{
    session_stats s;
    s.sent = 5;
    auto t = report::table(s);
    CHECK(t.find("  NO STATS AVAILABLE (100% loss)\n") != std::string::npos);
    s = sample_stats();
    s.late = 1;
    s.duplicates = 2;
    s.outbound.add(-5);
    report::session_info info;
    info.interrupted = true;
    t = report::table(s, info);
    CHECK(t.find("late 1, duplicates 2") != std::string::npos);
    CHECK(t.find("below zero (outbound 1, inbound 0)") != std::string::npos);
    CHECK(t.find("interrupted") != std::string::npos);
}

TEST_CASE("JSON report: required keys, microseconds, loss split")
{
    report::session_info info;
    info.sender_address = "127.0.0.1";
    info.sender_port = 20000;
    info.reflector_address = "::1";
    info.reflector_port = 20001;
    const auto j = report::to_json(sample_stats(), info);
    CHECK(j["schema_version"] == report::kJsonSchemaVersion);
    for (const char* k : {"sent", "received", "lost", "late", "duplicates", "reordered"}) CHECK(j.contains(k));
    CHECK(j["sent"] == 10);
    CHECK(j["lost"] == 1);
    for (const char* dir : {"outbound", "inbound", "roundtrip"}) {
        for (const char* k : {"min_us", "max_us", "avg_us", "jitter_us", "loss_pct"}) CHECK(j[dir].contains(k));
    }
    CHECK(j["outbound"]["min_us"].get<double>() == doctest::Approx(150.0));
    CHECK(j["inbound"]["min_us"].get<double>() == doctest::Approx(0.8)); // not rounded
    CHECK(j["outbound"]["loss_pct"].get<double>() == doctest::Approx(10.0));
    CHECK(j["inbound"]["loss_pct"].get<double>() == doctest::Approx(0.0));
    CHECK(j["reflector"]["address"] == "::1");
    // Without samples the delay keys are null, never a made-up 0.
    session_stats empty;
    empty.sent = 3;
    const auto e = report::to_json(empty, info);
    CHECK(e["roundtrip"]["min_us"].is_null());
    CHECK(e["roundtrip"]["loss_pct"].get<double>() == doctest::Approx(100.0));
}

TEST_CASE("Influx line protocol: one line per direction, tags escaped, integer counters")
{
    report::session_info info;
    info.sender_address = "10.0.0.1";
    info.sender_port = 20000;
    info.reflector_address = "a b,c=d";
    info.reflector_port = 862;
    info.end_time_ns = 1'700'000'000'000'000'000;
    const auto l = lines(report::influx(sample_stats(), info));
    REQUIRE(l.size() == 3);
    CHECK(l[0] ==
          "twamp,sender=10.0.0.1,sender_port=20000,reflector=a\\ b\\,c\\=d,reflector_port=862,"
          "direction=outbound min=150.000,max=2500.000,avg=966.667,jitter=146.484,loss=10.000,"
          "sent=10i,received=9i,duplicates=0i,reordered=0i,late=0i 1700000000000000000");
    CHECK(l[1].find("direction=inbound min=0.800,") != std::string::npos);
    CHECK(l[2].find("direction=roundtrip ") != std::string::npos);
    // No samples: the delay fields are left out rather than reported as zero.
    session_stats empty;
    empty.sent = 1;
    const auto e = lines(report::influx(empty, info));
    CHECK(e[0].find(" loss=100.000,sent=1i") != std::string::npos);
    CHECK(e[0].find("min=") == std::string::npos);
}
