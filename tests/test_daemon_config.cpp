// The `twamp daemon` configuration loader: RFC 8913 Appendix A examples load, bad documents
// give errors with their instance paths, values land in the model.
#include "twamp/daemon/config.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace twamp::daemon;

namespace {

std::string fixture(const char* name)
{
    return std::string(TWAMP_TEST_DATA_DIR) + "/../daemon/fixtures/" + name;
}

std::vector<config_error> load(const std::string& text, config& c)
{
    return load_config_text(text, c);
}

std::string joined(const std::vector<config_error>& e)
{
    std::string s;
    for (const auto& x : e)
        s += x.text() + "\n";
    return s;
}

} // namespace

TEST_CASE("every RFC 8913 Appendix A example loads")
{
    for (const char* f :
         {"rfc8913_a1_client_ipv4.json", "rfc8913_a1_client_ipv6.json",
          "rfc8913_a2_server_ipv4.json", "rfc8913_a2_server_ipv6.json",
          "rfc8913_a3_session_sender.json", "rfc8913_a4_session_reflector_ipv4.json",
          "rfc8913_a4_session_reflector_ipv6.json"}) {
        config c;
        const auto errs = load_config_file(fixture(f), c);
        INFO(f << ": " << joined(errs));
        CHECK(errs.empty());
    }
}

TEST_CASE("A.1 values reach the model")
{
    config c;
    REQUIRE(load_config_file(fixture("rfc8913_a1_client_ipv4.json"), c).empty());
    REQUIRE(c.client.present);
    REQUIRE(c.client.mode_preference_chain.size() == 2);
    CHECK(c.client.mode_preference_chain[0].mode == 2);
    CHECK(c.client.mode_preference_chain[1].mode == 1);
    REQUIRE(c.client.key_chain.size() == 2);
    CHECK(c.client.key_chain[0].key_id == "KeyClient1ToRouterA");
    CHECK(std::string(c.client.key_chain[0].secret.begin(), c.client.key_chain[0].secret.end()) ==
          "secret1");
    CHECK(std::string(c.client.key_chain[1].secret.begin(), c.client.key_chain[1].secret.end()) ==
          "secret2\r\n");
    REQUIRE(c.client.connections.size() == 1);
    const auto& cc = c.client.connections[0];
    CHECK(cc.server_ip == "203.0.113.2");
    CHECK(cc.server_tcp_port == 862);
    CHECK(cc.control_packet_dscp == 32);
    REQUIRE(cc.requests.size() == 2);
    CHECK(cc.requests[1].padding_length == 128u);
    CHECK(cc.requests[1].reflector_udp_port == 55001);
    CHECK(cc.requests[1].timeout == 2); // the YANG default
    // client-ip and control-packet-dscp are modelled but this daemon does not act on them.
    const auto ns = unsupported(c);
    CHECK(joined(ns).find("/ietf-twamp:twamp/client/ctrl-connection[name='RouterA']/client-ip: "
                          "not supported") != std::string::npos);
}

TEST_CASE("A.2 and A.3 values reach the model")
{
    config c;
    REQUIRE(load_config_file(fixture("rfc8913_a2_server_ipv6.json"), c).empty());
    CHECK(c.server.servwait == 1800);
    CHECK(c.server.modes == 3u);
    CHECK(c.server.count == 15);
    CHECK(c.server.key_chain.size() == 2);
    config s;
    REQUIRE(load_config_file(fixture("rfc8913_a3_session_sender.json"), s).empty());
    REQUIRE(s.session_sender.sessions.size() == 2);
    CHECK(s.session_sender.sessions[0].periodic_interval == doctest::Approx(1.0));
    CHECK(s.session_sender.sessions[1].lambda == doctest::Approx(1.0));
    CHECK(s.session_sender.sessions[1].fill_mode == "random");
    CHECK(joined(unsupported(s)).find("test-session[name='Test2']/fill-mode: not supported") !=
          std::string::npos);
    config r;
    REQUIRE(
        load_config_text(R"({"ietf-twamp:twamp":{"session-reflector":{"admin-state":false}}})", r)
            .empty());
    CHECK(joined(unsupported(r)) ==
          "/ietf-twamp:twamp/session-reflector/admin-state: not supported: the server always "
          "reflects the sessions it accepts; set server/admin-state false to stop offering "
          "TWAMP\n");
}

TEST_CASE("out-of-range values give the instance path")
{
    config c;
    const auto e = load(R"({"ietf-twamp:twamp":{"client":{"ctrl-connection":[
        {"name":"pe1","server-ip":"192.0.2.1","server-tcp-port":70000}]}}})",
                        c);
    REQUIRE(e.size() == 1);
    CHECK(e[0].text() ==
          "/ietf-twamp:twamp/client/ctrl-connection[name='pe1']/server-tcp-port: 70000 is out of "
          "range");
}

TEST_CASE("unknown members, bad types, missing keys and duplicates are errors")
{
    config c;
    auto e = load(R"({"ietf-twamp:twamp":{"server":{"servwait":0,"bogus":1}}})", c);
    CHECK(joined(e).find("/ietf-twamp:twamp/server/bogus: unknown member") != std::string::npos);
    CHECK(joined(e).find("/ietf-twamp:twamp/server/servwait: 0 is out of range") !=
          std::string::npos);
    e = load(R"({"ietf-twamp:twamp":{},"other:root":{}})", c);
    CHECK(joined(e).find("/other:root: unknown member") != std::string::npos);
    e = load(R"({"ietf-twamp:twamp":{"client":{"ctrl-connection":[{"name":"a"}]}}})", c);
    CHECK(joined(e).find("ctrl-connection[name='a']/server-ip: mandatory leaf is missing") !=
          std::string::npos);
    e = load(R"({"twamp-daemon:stamp":{"session-sender":{"test-session":[
        {"name":"x","reflector-ip":"127.0.0.1"},{"name":"x","reflector-ip":"127.0.0.1"}]}}})",
             c);
    CHECK(joined(e).find("/twamp-daemon:stamp/session-sender/test-session[name='x']: duplicate") !=
          std::string::npos);
    e = load(R"({"twamp-daemon:stamp":{"session-sender":{"test-session":[
        {"name":"x","reflector-ip":"127.0.0.300","periodic-interval":"0.1234567"}]}}})",
             c);
    CHECK(joined(e).find("test-session[name='x']/reflector-ip: \"127.0.0.300\" is not an IP") !=
          std::string::npos);
    CHECK(joined(e).find("test-session[name='x']/periodic-interval: \"0.1234567\" is not a "
                         "decimal64") != std::string::npos);
    e = load(R"({"ietf-twamp:twamp":{"server":{"modes":"open"}}})", c);
    CHECK(joined(e).find("/ietf-twamp:twamp/server/modes: 'open' is not a twamp-modes bit") !=
          std::string::npos);
    e = load(R"({"ietf-twamp:twamp":{"server":{"key-chain":[{"key-id":"k","secret-key":"@@"}]}}})",
             c);
    CHECK(joined(e).find("key-chain[key-id='k']/secret-key: is not base64") != std::string::npos);
    e = load("{not json", c);
    REQUIRE(e.size() == 1);
    CHECK(e[0].path == "/");
}

TEST_CASE("the daemon sections load with defaults and values")
{
    config c;
    const auto e = load(R"({
      "ietf-twamp:twamp": {"server": {"server-tcp-port": 0}, "session-reflector": {"refwait": 60}},
      "twamp-daemon:stamp": {
        "session-sender": {"test-session": [
          {"name": "a", "reflector-ip": "127.0.0.1", "reflector-udp-port": 20001,
           "number-of-packets": 10, "periodic-interval": "0.01"},
          {"name": "b", "mode": "twamp-light", "reflector-ip": "::1", "repeat": 3,
           "repeat-interval": 5, "lambda": "0.5", "timeout": "1.5"}]},
        "session-reflector": {"reflector": [{"name": "r", "mode": "stamp",
                                              "reflector-udp-port": 20001}]}},
      "twamp-daemon:daemon": {"metrics-listen": "127.0.0.1:9862", "results-file": "/tmp/r.jsonl",
                              "probe-allow": ["127.0.0.0/8"]}})",
                        c);
    INFO(joined(e));
    REQUIRE(e.empty());
    CHECK(c.server.server_tcp_port == 0);
    CHECK(c.session_reflector.refwait == 60);
    REQUIRE(c.stamp.sessions.size() == 2);
    CHECK(c.stamp.sessions[0].repeat == kRepeatForever);
    CHECK(c.stamp.sessions[0].number_of_packets == 10);
    CHECK(c.stamp.sessions[0].periodic_interval == doctest::Approx(0.01));
    CHECK(c.stamp.sessions[1].mode == "twamp-light");
    CHECK(c.stamp.sessions[1].repeat == 3);
    CHECK(c.stamp.sessions[1].timeout == doctest::Approx(1.5));
    REQUIRE(c.stamp.reflectors.size() == 1);
    CHECK(c.stamp.reflectors[0].reflector_udp_port == 20001);
    CHECK(c.daemon.metrics_listen == "127.0.0.1:9862");
    CHECK(c.daemon.probe_allow.size() == 1);
}

TEST_CASE("base64 and IP address checks")
{
    std::vector<std::uint8_t> out;
    CHECK(twamp::daemon::detail::base64_decode("", out));
    CHECK(out.empty());
    CHECK(twamp::daemon::detail::base64_decode("YQ==", out));
    CHECK(out == std::vector<std::uint8_t>{'a'});
    CHECK_FALSE(twamp::daemon::detail::base64_decode("Y===", out));
    CHECK_FALSE(twamp::daemon::detail::base64_decode("YQ=a", out));
    using twamp::daemon::detail::valid_ip;
    CHECK(valid_ip("192.0.2.1"));
    CHECK(valid_ip("2001:db8::1"));
    CHECK(valid_ip("::1"));
    CHECK(valid_ip("::ffff:192.0.2.1"));
    CHECK_FALSE(valid_ip("192.0.2"));
    CHECK_FALSE(valid_ip("1::2::3"));
    CHECK_FALSE(valid_ip("1:2:3:4:5:6:7"));
    CHECK_FALSE(valid_ip("host.example"));
}

TEST_CASE("numbers the JSON parser cannot hold, and -0, are handled (found by fuzz_config)")
{
    twamp::daemon::config c;
    // 1e400 is beyond a double: an error at the root, never an exception.
    std::vector<twamp::daemon::config_error> errs;
    CHECK_NOTHROW(errs = twamp::daemon::load_config_text("1e400", c));
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].path == "/");
    CHECK_NOTHROW(errs = twamp::daemon::load_config_text(
                      R"({"ietf-twamp:twamp":{"server":{"servwait":1e400}}})", c));
    CHECK_FALSE(errs.empty());
    // -0 is 0 (the parser stores it as a signed integer): accepted wherever 0 is.
    const std::string doc =
        R"({"ietf-twamp:twamp":{"session-reflector":{"test-session":[{"sender-ip":"203.0.113.3",)"
        R"("sender-udp-port":54000,"last-sent-seq":ZERO}]}}})";
    auto with = [&](const char* zero) {
        std::string d = doc;
        d.replace(d.find("ZERO"), 4, zero);
        twamp::daemon::config cc;
        return twamp::daemon::load_config_text(d, cc);
    };
    CHECK(with("0").empty());
    CHECK(with("-0").empty());
    CHECK_FALSE(with("-1").empty());
}
