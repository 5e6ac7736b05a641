#include "twamp/report/influx.hpp"
#include "twamp/report/json.hpp"
#include "twamp/report/per_packet.hpp"
#include "twamp/report/prometheus.hpp"
#include "twamp/report/svg.hpp"
#include "twamp/report/table.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <ostream>
#include <regex>
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
    // Probes 0 and 9 (send ordinals) were answered: the missing one lies between them, where
    // the direction split is exact.
    s.first_answered_ordinal = 0;
    s.last_answered_ordinal = 9;
    for (std::int64_t v : {150'000, 250'000, 2'500'000})
        s.outbound.add(v);
    for (std::int64_t v : {800, 900, 1000})
        s.inbound.add(v);
    for (std::int64_t v : {12'000'000'000, 12'500'000'000, 70'000'000'000})
        s.roundtrip.add(v);
    return s;
}
std::vector<std::string> lines(const std::string& s)
{
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
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
    for (const char* k : {"sent", "received", "lost", "late", "duplicates", "reordered"})
        CHECK(j.contains(k));
    CHECK(j["sent"] == 10);
    CHECK(j["lost"] == 1);
    for (const char* dir : {"outbound", "inbound", "roundtrip"}) {
        for (const char* k : {"min_us", "max_us", "avg_us", "jitter_us", "loss_pct"})
            CHECK(j[dir].contains(k));
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
    report::report_options two;
    two.percentiles = {50, 99.9};
    const auto l2 = lines(report::influx(sample_stats(), info, two));
    // Outbound delays 150000, 250000, 2500000 ns, derived by hand:
    // stddev: mean 966666.67, population sd 1084999.0 ns.
    // jitter (RFC 3550 6.4.1, J += (|D| - J) / 16 over consecutive delays): D = 100000 gives
    //   J = 6250; D = 2250000 gives J = 6250 + (2250000 - 6250) / 16 = 146484.375 ns.
    // Percentiles by nearest rank (ceil(p n / 100) of n = 3): p50 is rank 2 (250000), p99.9 is
    //   rank 3 (2500000). The histogram (histogram.hpp) splits each octave [2^e, 2^(e+1)) above
    //   2^7 into 128 buckets of 2^(e-7) ns and reads a bucket as the midpoint of its lowest and
    //   highest value:
    //   250000 is in [2^17, 2^18): width 1024, bucket [244 * 1024, 245 * 1024) = [249856, 250880),
    //   read 249856 + 1023 / 2 = 250367.5 ns; 2500000 is in [2^21, 2^22): width 16384, bucket
    //   [152 * 16384, 153 * 16384) = [2490368, 2506752), read 2490368 + 16383 / 2 = 2498559.5 ns.
    CHECK(l2[0] ==
          "twamp,sender=10.0.0.1,sender_port=20000,reflector=a\\ b\\,c\\=d,reflector_port=862,"
          "direction=outbound min=150.000,max=2500.000,avg=966.667,jitter=146.484,stddev=1084.999,"
          "p50=250.368,p99_9=2498.559,loss=10.000,"
          "sent=10i,received=9i,duplicates=0i,reordered=0i,late=0i 1700000000000000000");
    CHECK(l[0].find(",p50=") != std::string::npos);
    CHECK(l[0].find(",p90=") != std::string::npos);
    CHECK(l[0].find(",p99_9=") != std::string::npos);
    CHECK(l[1].find("direction=inbound min=0.800,") != std::string::npos);
    CHECK(l[2].find("direction=roundtrip ") != std::string::npos);
    // No samples: the delay fields are left out rather than reported as zero.
    session_stats empty;
    empty.sent = 1;
    const auto e = lines(report::influx(empty, info));
    // Nothing came back: the round trip lost everything, and no loss can be put on a direction.
    CHECK(e[2].find(" loss=100.000,sent=1i") != std::string::npos);
    CHECK(e[0].find(" loss=0.000,sent=1i") != std::string::npos);
    CHECK(e[0].find("min=") == std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Extended metrics, JSON schema, Prometheus, per-packet CSV, intervals, SVG.

namespace {
// The subset of JSON Schema (2020-12) that docs/report.schema.json uses: type, const, enum,
// minimum, maximum, properties, required, additionalProperties, items, oneOf, local $ref.
void validate(const nlohmann::json& root, const nlohmann::json& sc, const nlohmann::json& v,
              const std::string& at, std::vector<std::string>& errs)
{
    if (sc.contains("$ref")) {
        const std::string ref = sc["$ref"];
        REQUIRE(ref.rfind("#/$defs/", 0) == 0);
        validate(root, root["$defs"][ref.substr(8)], v, at, errs);
        return;
    }
    if (sc.contains("type")) {
        auto is = [&](const std::string& t) {
            if (t == "object") return v.is_object();
            if (t == "array") return v.is_array();
            if (t == "string") return v.is_string();
            if (t == "boolean") return v.is_boolean();
            if (t == "null") return v.is_null();
            if (t == "integer") return v.is_number_integer();
            if (t == "number") return v.is_number();
            return false;
        };
        bool ok = false;
        if (sc["type"].is_array()) {
            for (const auto& t : sc["type"])
                ok = ok || is(t.get<std::string>());
        } else {
            ok = is(sc["type"].get<std::string>());
        }
        if (!ok) {
            errs.push_back(at + ": type " + sc["type"].dump() + " expected, got " + v.dump());
            return;
        }
    }
    if (sc.contains("const") && v != sc["const"])
        errs.push_back(at + ": const " + sc["const"].dump());
    if (sc.contains("enum") &&
        std::find(sc["enum"].begin(), sc["enum"].end(), v) == sc["enum"].end())
        errs.push_back(at + ": not in enum: " + v.dump());
    if (v.is_number() && sc.contains("minimum") && v.get<double>() < sc["minimum"].get<double>())
        errs.push_back(at + ": below minimum");
    if (v.is_number() && sc.contains("maximum") && v.get<double>() > sc["maximum"].get<double>())
        errs.push_back(at + ": above maximum");
    if (sc.contains("oneOf")) {
        int matches = 0;
        for (const auto& alt : sc["oneOf"]) {
            std::vector<std::string> e;
            validate(root, alt, v, at, e);
            matches += e.empty();
        }
        if (matches != 1) errs.push_back(at + ": oneOf matched " + std::to_string(matches));
    }
    if (v.is_object()) {
        if (sc.contains("required"))
            for (const auto& k : sc["required"])
                if (!v.contains(k.get<std::string>()))
                    errs.push_back(at + ": missing " + k.get<std::string>());
        for (const auto& [k, x] : v.items()) {
            if (sc.contains("properties") && sc["properties"].contains(k)) {
                validate(root, sc["properties"][k], x, at + "/" + k, errs);
            } else if (sc.contains("additionalProperties")) {
                const auto& ap = sc["additionalProperties"];
                if (ap.is_boolean()) {
                    if (!ap.get<bool>()) errs.push_back(at + ": unexpected key " + k);
                } else {
                    validate(root, ap, x, at + "/" + k, errs);
                }
            }
        }
    }
    if (v.is_array() && sc.contains("items"))
        for (std::size_t i = 0; i < v.size(); ++i)
            validate(root, sc["items"], v[i], at + "/" + std::to_string(i), errs);
}

nlohmann::json load_schema()
{
    std::ifstream in(std::string(TWAMP_TEST_DATA_DIR) + "/../../docs/report.schema.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

std::vector<std::string> schema_errors(const nlohmann::json& doc, const char* def = nullptr)
{
    const auto schema = load_schema();
    std::vector<std::string> errs;
    validate(schema, def ? schema["$defs"][def] : schema, doc, "", errs);
    return errs;
}

session_stats rich_stats()
{
    session_stats s = sample_stats();
    for (std::int64_t v : {-2000, 500, -100})
        s.ipdv.roundtrip.add(v);
    s.reordered = 1;
    s.max_reorder_extent = 2;
    s.sender_synchronized = s.reflector_synchronized = true;
    s.sender_error_s = 1e-6;
    s.reflector_error_s = 2e-6;
    return s;
}

std::vector<interval_summary> two_intervals()
{
    interval_recorder rec(std::chrono::seconds{1}, std::chrono::seconds{1}, {50, 99.9});
    auto sink = [](const interval_summary&) {};
    for (std::uint32_t q = 0; q < 4; ++q)
        rec.on_sent(q, nanoseconds{1'700'000'000'000'000'000LL + q * 500'000'000LL}, sink);
    for (std::uint32_t q = 0; q < 3; ++q) {
        reply_result r;
        r.status = reply_status::sample;
        r.sample.sender_seq = q;
        r.sample.roundtrip_ns = 1'000'000 * (q + 1);
        rec.on_reply(r);
    }
    rec.finish(sink);
    return rec.closed();
}
} // namespace

TEST_CASE("JSON: the new keys per direction and at the top level, valid against the schema")
{
    report::session_info info;
    info.sender_address = "127.0.0.1";
    info.reflector_address = "127.0.0.1";
    info.scheduled = 10;
    info.skipped = 0;
    info.distribution = "poisson";
    info.seed = 99;
    info.interval_ns = 10'000'000;
    info.report_interval_ns = 1'000'000'000;
    const auto j = report::to_json(rich_stats(), info, {}, two_intervals());
    CHECK(j["schema_version"] == 2);
    for (const char* dir : {"outbound", "inbound", "roundtrip"})
        for (const char* k : {"p50_us", "p90_us", "p95_us", "p99_us", "p999_us", "stddev_us",
                              "pdv_us", "p95_p50_us", "ipdv", "percentiles_us"})
            CHECK_MESSAGE(j[dir].contains(k), dir << "." << k);
    CHECK(j["outbound"]["p50_us"].get<double>() == doctest::Approx(250.0).epsilon(0.004));
    CHECK(j["outbound"]["percentiles_us"]["99.9"].get<double>() ==
          doctest::Approx(2500.0).epsilon(0.004));
    CHECK(j["roundtrip"]["ipdv"]["samples"] == 3);
    CHECK(j["roundtrip"]["ipdv"]["min_us"].get<double>() == doctest::Approx(-2.0));
    CHECK(j["roundtrip"]["ipdv"]["max_us"].get<double>() == doctest::Approx(0.5));
    CHECK(j["outbound"]["synchronized"] == true);
    CHECK(j["outbound"]["error_bound_us"].get<double>() == doctest::Approx(3.0));
    CHECK_FALSE(j["roundtrip"].contains("synchronized"));
    CHECK(j["reordered_ratio"].get<double>() == doctest::Approx(1.0 / 9));
    CHECK(j["max_reorder_extent"] == 2);
    CHECK(j["schedule"]["distribution"] == "poisson");
    CHECK(j["schedule"]["seed"] == 99);
    REQUIRE(j["intervals"].size() == 2);
    CHECK(j["intervals"][0]["sent"] == 2);
    CHECK(j["intervals"][1]["lost"] == 1);
    CHECK(j["intervals"][1]["loss_pct"].get<double>() == doctest::Approx(50.0));
    CHECK(j["intervals"][1]["start_s"].get<double>() == doctest::Approx(1.0));
    const auto errs = schema_errors(j);
    for (const auto& e : errs)
        MESSAGE(e);
    CHECK(errs.empty());

    // An empty session (no reply) is valid too, with nulls.
    session_stats empty;
    empty.sent = 3;
    const auto e = report::to_json(empty, info);
    CHECK(e["roundtrip"]["p99_us"].is_null());
    CHECK(e["intervals"].empty());
    CHECK(schema_errors(e).empty());
    // The validator is not a rubber stamp.
    auto bad = j;
    bad["outbound"]["p50_us"] = "fast";
    CHECK_FALSE(schema_errors(bad).empty());
    bad = j;
    bad.erase("intervals");
    CHECK_FALSE(schema_errors(bad).empty());
    bad = j;
    bad["surprise"] = 1;
    CHECK_FALSE(schema_errors(bad).empty());
    // An interval line as printed with --report-interval --json.
    auto line = report::interval_json(two_intervals()[0], 1'000'000'000);
    line["type"] = "interval";
    CHECK(schema_errors(line, "interval").empty());
}

TEST_CASE("extended table: the twampy table first, then percentiles and the other metrics")
{
    report::report_options o;
    o.percentiles = {50, 99.9};
    report::session_info info;
    info.scheduled = 10;
    const auto plain = report::table(rich_stats(), info);
    const auto ext = report::table_extended(rich_stats(), info, o);
    REQUIRE(ext.rfind(plain, 0) == 0); // unchanged prefix
    const auto more = lines(ext.substr(plain.size()));
    REQUIRE(more.size() >= 10);
    CHECK(more[0] == "  Percentiles         p50       p99.9");
    CHECK(more[1] == "  Outbound:         250us      2.50ms");
    CHECK(more[4].find("Stddev") != std::string::npos);
    CHECK(ext.find("IPDV percentiles (roundtrip): p50=-0.100us p99.9=0.500us") !=
          std::string::npos);
    CHECK(ext.find("reordered 1 (ratio 0.1111, max extent 2)") != std::string::npos);
    CHECK(ext.find("clocks: one-way synchronised") != std::string::npos);
    CHECK(ext.find("error bound +/-3.000us") != std::string::npos);
    CHECK(ext.find("scheduled 10, sent 10, skipped 0") != std::string::npos);
}

TEST_CASE("interval renderings: table row, JSON line, Influx lines")
{
    const auto bins = two_intervals();
    const auto row = report::table_interval_row(bins[1], 1'000'000'000);
    CHECK(row == "  1-2s          "
                 "    3.00ms      3.00ms      3.00ms         0us     50.0%  1/2\n");
    report::session_info info;
    info.sender_address = "10.0.0.1";
    info.reflector_address = "10.0.0.2";
    const auto il = lines(report::influx_interval(bins[0], info));
    REQUIRE(il.size() == 3);
    CHECK(il[2].rfind("twamp_interval,sender=10.0.0.1,", 0) == 0);
    CHECK(il[2].find(",direction=roundtrip min=1000.000,max=2000.000,") != std::string::npos);
    // Interval 0 holds round trips of 1000000 and 2000000 ns. p50 (nearest rank 1 of 2):
    // 1000000 is in [2^19, 2^20), buckets of 4096 ns, bucket [244 * 4096, 245 * 4096) =
    // [999424, 1003520), read as 999424 + 4095 / 2 = 1001471.5 ns: "1001.471" us (1001.4715 is
    // a hair below that as a double). p99.9 (rank 2): 2000000's bucket [1998848, 2007040) reads
    // 2002943.5 ns, above the interval's maximum, so the maximum 2000000 ns is reported.
    CHECK(il[2].find(",p50=1001.471,p99_9=2000.000,") != std::string::npos);
    CHECK(il[2].find("loss=0.000,sent=2i,received=2i,late=0i,interval=0i 1700000001000000000") !=
          std::string::npos);
    CHECK(il[0].find(" min=0.000,") != std::string::npos); // the fixture's outbound delays are 0
    interval_summary empty;
    empty.sent = 1;
    CHECK(lines(report::influx_interval(empty, info))[0].find(" loss=100.000,sent=1i") !=
          std::string::npos);
}

TEST_CASE(
    "Prometheus exposition: strict line grammar, HELP/TYPE before samples, summaries complete")
{
    report::session_info info;
    info.sender_address = "10.0.0.1";
    info.sender_port = 20000;
    info.reflector_address = "a\"b\\c";
    info.reflector_port = 862;
    info.scheduled = 10;
    info.end_time_ns = 1'700'000'000'000'000'000;
    const auto text = report::prometheus(rich_stats(), info);
    const std::regex sample_re(
        R"re(^(twamp_[a-zA-Z0-9_]+)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\} (-?[0-9.eE+-]+|NaN|[+-]Inf)$)re");
    const std::regex help_re(R"(^# HELP (twamp_[a-zA-Z0-9_]+) .+$)");
    const std::regex type_re(
        R"(^# TYPE (twamp_[a-zA-Z0-9_]+) (gauge|counter|summary|histogram|untyped)$)");
    std::map<std::string, std::string> types;
    std::map<std::string, double> values;
    std::smatch m;
    for (const auto& l : lines(text)) {
        if (std::regex_match(l, m, help_re)) continue;
        if (std::regex_match(l, m, type_re)) {
            CHECK_MESSAGE(types.count(m[1]) == 0, "family declared twice: " << l);
            types[m[1]] = m[2];
            continue;
        }
        REQUIRE_MESSAGE(std::regex_match(l, m, sample_re), "bad line: " << l);
        std::string fam = m[1];
        for (const char* suffix : {"_sum", "_count"})
            if (!types.count(fam) && fam.size() > std::strlen(suffix) && fam.ends_with(suffix))
                fam.resize(fam.size() - std::strlen(suffix));
        CHECK_MESSAGE(types.count(fam) == 1, "sample before its TYPE: " << l);
        values[std::string(m[1]) + "{" + std::string(m[2]) + "}"] = std::stod(m[3]);
    }
    CHECK(types["twamp_delay_seconds"] == "summary");
    const std::string lbl = R"(sender="10.0.0.1:20000",reflector="a\"b\\c:862",mode="twamp-light")";
    CHECK(values.at("twamp_probes{" + lbl + ",state=\"sent\"}") == 10);
    CHECK(values.at("twamp_probes{" + lbl + ",state=\"lost\"}") == 1);
    CHECK(values.at("twamp_delay_seconds{" + lbl + ",direction=\"outbound\",quantile=\"0.5\"}") ==
          doctest::Approx(250e-6).epsilon(0.004));
    CHECK(values.at("twamp_delay_seconds_count{" + lbl + ",direction=\"outbound\"}") == 3);
    CHECK(values.at("twamp_delay_seconds_sum{" + lbl + ",direction=\"outbound\"}") ==
          doctest::Approx(2.9e-3));
    CHECK(values.at("twamp_loss_ratio{" + lbl + ",direction=\"roundtrip\"}") ==
          doctest::Approx(0.1));
    CHECK(values.at("twamp_clock_synchronized{" + lbl + "}") == 1);
    // end_time_ns 1.7e18 is 1700000000 s exactly: compared exactly (an Approx with its default
    // epsilon, 1.19e-5 relative, would accept anything within 5.6 hours of it).
    CHECK(values.at("twamp_last_run_timestamp_seconds{" + lbl + "}") == 1'700'000'000.0);
}

TEST_CASE("per-packet CSV rows: every status, ns integers, empty cells for unknowns")
{
    const std::string header = report::kPerPacketHeader;
    const auto columns = std::count(header.begin(), header.end(), ',');
    reply_result r;
    r.status = reply_status::sample;
    r.sample = {7,
                3,
                nanoseconds{1000},
                nanoseconds{1500},
                nanoseconds{1600},
                nanoseconds{2300},
                500,
                700,
                1200,
                254,
                250,
                false};
    CHECK(report::per_packet_row(r) == "7,3,ok,1000,1500,1600,2300,500,700,1200,254,250,0\n");
    r.reorder_extent = 2;
    CHECK(report::per_packet_row(r) ==
          "7,3,reordered,1000,1500,1600,2300,500,700,1200,254,250,2\n");
    r.status = reply_status::duplicate;
    CHECK(report::per_packet_row(r) == "7,3,duplicate,,,,,,,,,,\n");
    r.status = reply_status::late;
    r.sample.sender_ttl = 0; // unknown TTL: empty cell
    CHECK(report::per_packet_row(r) == "7,3,late,1000,1500,1600,2300,500,700,1200,,250,2\n");
    r.status = reply_status::malformed;
    CHECK(report::per_packet_row(r).empty());
    const auto lost = report::per_packet_lost_row(9, nanoseconds{123});
    CHECK(lost == "9,,lost,123,,,,,,,,,\n");
    for (const std::string& row :
         {lost, report::per_packet_row(reply_result{reply_status::duplicate, {}, 0})})
        CHECK(std::count(row.begin(), row.end(), ',') == columns);
}

TEST_CASE("SVG chart: a complete document with axes, units, band and median per interval")
{
    report::session_info info;
    info.sender_address = "10.0.0.1";
    info.reflector_address = "<r&d>";
    info.reflector_port = 862;
    const auto svg = report::svg_chart(two_intervals(), 1'000'000'000, info);
    CHECK(
        svg.rfind(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"",
            0) == 0);
    CHECK(svg.ends_with("</svg>\n"));
    CHECK(svg.find("&lt;r&amp;d&gt;") != std::string::npos); // escaped
    CHECK(svg.find("<r&d>") == std::string::npos);
    CHECK(svg.find("Round-trip time (ms)") != std::string::npos);
    CHECK(svg.find("Time since start (s)") != std::string::npos);
    // Interval 0: no loss (green median); interval 1: 50 % loss (orange).
    CHECK(svg.find("stroke=\"#1a9850\" stroke-width=\"3\"") != std::string::npos);
    CHECK(svg.find("stroke=\"#ff7f00\" stroke-width=\"3\"") != std::string::npos);
    // No data at all still gives a valid, labelled chart.
    const auto none = report::svg_chart({}, 1'000'000'000, info);
    CHECK(none.find("Round-trip time (µs)") != std::string::npos);
    CHECK(none.ends_with("</svg>\n"));
    CHECK(report::svg_loss_colour(0) == std::string("#1a9850"));
    CHECK(report::svg_loss_colour(100) == std::string("#e31a1c"));
}
