// tests/fuzz/make_corpus.cpp — writes the seed corpus of every fuzz target.
//
// Usage: twamp_fuzz_make_corpus OUTDIR   (normally tests/fuzz/corpus)
// Sources: the captures in tests/data (TWAMP-Test packets, both TWAMP-Control byte streams) and
// messages built with the library's encoders (the unit tests' golden messages: RFC 5938 messages,
// IPv6 requests, STAMP packets with TLVs), the daemon configuration documents of
// tests/daemon/fixtures and deploy/twamp.json, and authenticated STAMP TLV sets. Each seed is laid
// out as its target's input format describes (see the comment at the top of each fuzz_<name>.cpp).
// Files are named after what they hold; the output directories are emptied first, so the result is
// reproducible.
#include "pcap.hpp"

#include "twamp/control.hpp"
#include "twamp/control_server.hpp"
#include "twamp/reflector_session.hpp"
#include "twamp/stamp_tlvs.hpp"
#include "twamp/test_packet.hpp"

#include "fuzz_common.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace twamp;
using namespace twamp::control;
using bytes = std::vector<std::uint8_t>;

fs::path g_out;

void write(const std::string& target, const std::string& name, const bytes& b)
{
    const fs::path dir = g_out / target;
    std::ofstream f(dir / name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void append(bytes& to, std::span<const std::uint8_t> b)
{
    to.insert(to.end(), b.begin(), b.end());
}

template <class M> bytes enc(const M& m)
{
    bytes out(encoded_size(m));
    (void)encode(m, out);
    return out;
}

// Operations tape for the control targets: pairs (kind, argument), read from the back.
struct tape {
    bytes ops;
    tape& op(std::uint8_t kind, std::uint8_t arg = 0)
    {
        ops.push_back(kind);
        ops.push_back(arg);
        return *this;
    }
    // Receive `n` octets in chunks of at most `chunk`.
    tape& recv(std::size_t n, std::size_t chunk = 256)
    {
        while (n > 0) {
            const std::size_t c = std::min({n, chunk, std::size_t{256}});
            op(0, static_cast<std::uint8_t>(c - 1));
            n -= c;
        }
        return *this;
    }
};

bytes assemble(const bytes& config, const bytes& stream, const tape& t)
{
    bytes out = config;
    append(out, stream);
    out.insert(out.end(), t.ops.rbegin(), t.ops.rend());
    return out;
}

std::string num(std::size_t i)
{
    std::string s = std::to_string(i);
    return s.size() < 3 ? std::string(3 - s.size(), '0') + s : s;
}

struct capture {
    bytes to_client, to_server;                          // control byte streams
    std::vector<bytes> client_segments, server_segments; // as captured
    std::vector<bytes> sender_pkts, reflector_pkts;      // UDP, split by the first packet's source
};

capture load(const std::string& name)
{
    capture c;
    std::uint16_t sender_port = 0;
    bool have_sender = false;
    for (auto& p : twamp_test::read_pcap(std::string(TWAMP_TEST_DATA_DIR) + "/" + name)) {
        if (p.payload.empty()) continue;
        if (p.udp) {
            if (!have_sender) {
                sender_port = p.src_port;
                have_sender = true;
            }
            (p.src_port == sender_port ? c.sender_pkts : c.reflector_pkts).push_back(p.payload);
        } else if (p.src_port == 18620 || p.src_port == 862) {
            append(c.to_client, p.payload);
            c.server_segments.push_back(p.payload);
        } else {
            append(c.to_server, p.payload);
            c.client_segments.push_back(p.payload);
        }
    }
    return c;
}

bytes stamp_sender(std::uint32_t seq, std::size_t len, std::uint16_t ssid)
{
    sender_packet p;
    p.seq = seq;
    p.timestamp = to_ntp(nanoseconds{twamp_fuzz::kEpochNs}).to_u64();
    p.err = {true, false, 0, 1};
    p.ssid = ssid;
    bytes b(len);
    (void)encode_sender(p, test_format::stamp, len, b);
    if (len > kStampBaseLen) (void)write_stamp_extra_padding(std::span(b).subspan(kStampBaseLen));
    return b;
}

// A STAMP request whose TLV area holds the given TLVs (type, value length).
bytes stamp_with_tlvs(const std::vector<std::pair<std::uint8_t, std::uint16_t>>& tlvs)
{
    bytes b = stamp_sender(7, kStampBaseLen, 0x0102);
    for (auto [type, len] : tlvs) {
        b.push_back(0);
        b.push_back(type);
        b.push_back(static_cast<std::uint8_t>(len >> 8));
        b.push_back(static_cast<std::uint8_t>(len));
        for (std::uint16_t i = 0; i < len; ++i)
            b.push_back(static_cast<std::uint8_t>(i));
    }
    return b;
}

void gen_test_packet(const std::vector<capture>& caps)
{
    std::set<bytes> seen;
    std::size_t i = 0;
    for (const auto& c : caps)
        for (const auto* v : {&c.sender_pkts, &c.reflector_pkts})
            for (std::size_t k = 0; k < v->size() && k < 3; ++k)
                if ((*v)[k].size() <= 256 && seen.insert((*v)[k]).second)
                    write("test_packet", "capture-" + num(i++), (*v)[k]);
    write("test_packet", "stamp-sender-44", stamp_sender(1, 44, 0xABCD));
    write("test_packet", "stamp-sender-tlv-100", stamp_sender(2, 100, 0xABCD));
    reflector_packet r;
    r.seq = 5;
    r.sender_seq = 9;
    r.ssid = 0x1234;
    r.err = {true, true, 1, 2};
    bytes rb(44);
    (void)encode_reflector_base(r, test_format::stamp, rb);
    write("test_packet", "stamp-reflector-44", rb);
    rb.resize(38); // twampy's short reply
    write("test_packet", "twamp-reflector-38", rb);
    write("test_packet", "short-13", bytes(13, 0xFF));
}

void gen_reflector(const std::vector<capture>& caps)
{
    // Requests: captured senders plus STAMP ones.
    std::vector<bytes> reqs;
    for (const auto& c : caps)
        for (std::size_t k = 0; k < c.sender_pkts.size() && k < 2; ++k)
            if (c.sender_pkts[k].size() <= 256) reqs.push_back(c.sender_pkts[k]);
    reqs.push_back(stamp_sender(1, 44, 0x10));
    reqs.push_back(stamp_sender(2, 80, 0x10));
    reqs.push_back(stamp_with_tlvs({{1, 4}, {3, 8}, {9, 200}}));
    reqs.push_back(bytes(14, 0)); // shortest TWAMP Light request
    auto record = [](bytes& out, const bytes& req, std::uint8_t peer, std::uint8_t step,
                     std::uint8_t outsel) {
        out.push_back(static_cast<std::uint8_t>(req.size() >> 8));
        out.push_back(static_cast<std::uint8_t>(req.size()));
        out.push_back(peer);
        out.push_back(64);
        out.push_back(step);
        out.push_back(outsel);
        append(out, req);
    };
    // Config octets: flags (stateless 1, format 2*k, strict 8), err, max_sessions, refwait, min.
    const std::vector<std::pair<std::string, bytes>> configs = {
        {"auto", {0x00, 0x00, 0x07, 0x20, 0x00}},   {"twamp", {0x02, 0x80, 0x01, 0x01, 0x00}},
        {"stamp", {0x04, 0x40, 0x03, 0x05, 0x00}},  {"stateless", {0x01, 0x00, 0x07, 0x20, 0x00}},
        {"strict", {0x08, 0x00, 0x07, 0x20, 0x00}}, {"minreply", {0x00, 0x00, 0x07, 0x20, 0xC8}},
    };
    for (std::size_t ci = 0; ci < configs.size(); ++ci) {
        bytes f = configs[ci].second;
        for (std::size_t k = 0; k < reqs.size(); ++k)
            record(f, reqs[(k + ci) % reqs.size()], static_cast<std::uint8_t>(k * 5 + ci),
                   static_cast<std::uint8_t>(k * 20), static_cast<std::uint8_t>(100 + k * 30));
        write("reflector", configs[ci].first, f);
    }
    // One request per file, for easy minimisation.
    for (std::size_t k = 0; k < reqs.size(); ++k) {
        bytes f = {0x00, 0x00, 0x07, 0x20, 0x00};
        record(f, reqs[k], 0, 0, 128);
        write("reflector", "single-" + num(k), f);
    }
}

void gen_sender(const std::vector<capture>& caps)
{
    // Config: flags (stamp 1, ptp 2, ssid 4, window bits 4..5), timeout ms, multiplier, scale.
    // Probes then the captured replies (whose sender sequence numbers start at 0).
    for (std::size_t ci = 0; ci < caps.size(); ++ci) {
        const auto& c = caps[ci];
        if (c.reflector_pkts.empty() || c.reflector_pkts[0].size() > 256) continue;
        bytes f = {0x00, 200, 1, 0};
        const std::size_t n = std::min<std::size_t>(c.reflector_pkts.size(), 4);
        for (std::size_t k = 0; k < n; ++k) {
            f.push_back(0); // probe
            f.push_back(static_cast<std::uint8_t>(k == 0 ? 27 : 0));
        }
        for (std::size_t k = 0; k < n; ++k) {
            const bytes& r = c.reflector_pkts[k];
            f.push_back(4); // time step
            f.push_back(40);
            f.push_back(1); // reply
            f.push_back(static_cast<std::uint8_t>(r.size() >> 8));
            f.push_back(static_cast<std::uint8_t>(r.size()));
            f.push_back(60);
            append(f, r);
        }
        write("sender", "capture-" + num(ci), f);
    }
    // Synthetic: probes, echoes (in time, late, duplicate), unsend, ring wrap.
    const std::vector<std::pair<std::string, bytes>> configs = {
        {"twamp", {0x00, 50, 1, 0}},
        {"stamp", {0x05, 50, 1, 0}},
        {"ptp", {0x02, 50, 1, 0}},
        {"stamp-ptp-w128", {0x37, 255, 0, 63}},
    };
    for (const auto& [name, cfg] : configs) {
        bytes f = cfg;
        auto echo = [&f](std::uint8_t back, std::uint8_t delay) {
            const bytes e = {2, back, delay, 3, 0x80, 0x01, 200, 1, 10, 0, 100, 60, 0};
            append(f, e);
        };
        for (int k = 0; k < 20; ++k) {
            f.push_back(0);
            f.push_back(static_cast<std::uint8_t>(k % 3 == 0 ? 0 : 16));
        }
        echo(0, 30); // newest, in time
        echo(3, 30); // older
        echo(3, 30); // duplicate
        f.push_back(4);
        f.push_back(250); // long pause: later echoes are late
        echo(5, 0);
        f.push_back(0);
        f.push_back(1);
        f.push_back(3); // unsend the probe just made
        echo(0, 0);     // for the unsent probe
        echo(200, 0);   // never sent
        write("sender", name, f);
    }
}

void gen_stamp_tlv()
{
    auto tlvs_of = [](const bytes& pkt) { return bytes(pkt.begin() + kStampBaseLen, pkt.end()); };
    write("stamp_tlv", "extra-padding", tlvs_of(stamp_sender(1, 100, 0)));
    write("stamp_tlv", "unknown-types", tlvs_of(stamp_with_tlvs({{1, 4}, {3, 8}, {0x20, 0}})));
    write("stamp_tlv", "hmac-tlv", tlvs_of(stamp_with_tlvs({{1, 12}, {8, 16}})));
    bytes malformed = tlvs_of(stamp_with_tlvs({{1, 4}, {5, 12}}));
    malformed.resize(malformed.size() - 3);
    write("stamp_tlv", "malformed-length", malformed);
    bytes zero_type = tlvs_of(stamp_with_tlvs({{1, 4}}));
    append(zero_type, bytes(20, 0));
    write("stamp_tlv", "then-zero-padding", zero_type);
    write("stamp_tlv", "flags-set", {0xE0, 1, 0, 0, 0x80, 7, 0, 1, 0xAA});
    write("stamp_tlv", "header-only", {0, 1, 0, 0});
}

void gen_control_messages(const capture& open, const std::vector<capture>& protected_caps)
{
    std::size_t i = 0;
    for (const auto& s : open.server_segments)
        write("control_messages", "open-server-" + num(i++), s);
    i = 0;
    for (const auto& s : open.client_segments)
        write("control_messages", "open-client-" + num(i++), s);
    // The clear set-up messages of the protected modes (greeting, Set-Up-Response with Token).
    i = 0;
    for (const auto& c : protected_caps) {
        if (c.to_client.size() >= kServerGreetingSize)
            write("control_messages", "protected-greeting-" + num(i),
                  bytes(c.to_client.begin(), c.to_client.begin() + kServerGreetingSize));
        if (c.to_server.size() >= kSetupResponseSize)
            write("control_messages", "protected-setup-" + num(i),
                  bytes(c.to_server.begin(), c.to_server.begin() + kSetupResponseSize));
        ++i;
    }
    // Golden messages from the unit tests' shapes.
    request_tw_session r6;
    r6.ipvn = 6;
    r6.sender_port = 862;
    r6.receiver_port = 5000;
    r6.sender_address = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    r6.receiver_address = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    r6.padding_length = 1000;
    r6.timeout = ntp_from_duration(std::chrono::seconds(2));
    r6.type_p = type_p_from_dscp(46);
    r6.octets_to_be_reflected = 2;
    r6.padding_to_reflect_length = 100;
    write("control_messages", "request-ipv6-dscp-reflect", enc(r6));
    accept_session rej;
    rej.accept = accept_code::not_supported;
    write("control_messages", "accept-session-rejected", enc(rej));
    stop_sessions st;
    st.accept = accept_code::failure;
    st.number_of_sessions = 3;
    write("control_messages", "stop-sessions-invalid", enc(st));
    session_id a{}, b{};
    a.fill(0x11);
    b.fill(0x22);
    start_n_sessions sn;
    sn.sids = {a, b};
    write("control_messages", "start-n-sessions-2", enc(sn));
    start_n_ack sna;
    sna.accept = accept_code::failure;
    sna.sids = {a};
    write("control_messages", "start-n-ack-1", enc(sna));
    stop_n_sessions stn;
    stn.sids = {b};
    write("control_messages", "stop-n-sessions-1", enc(stn));
    stop_n_ack stna;
    stna.sids = {a, b};
    write("control_messages", "stop-n-ack-2", enc(stna));
    server_greeting g;
    g.modes = mode::unauthenticated | mode::individual_session_control | mode::reflect_octets;
    g.count = 1024;
    write("control_messages", "greeting-features", enc(g));
    server_start ss;
    ss.accept = accept_code::temporary_limit;
    write("control_messages", "server-start-rejected", enc(ss));
}

// What the control_server harness builds from its 6 config octets, for the plain cases used
// below (default port policy, counter_random, IPv4) — so SIDs can be predicted.
server_config server_cfg(const bytes& c)
{
    server_config cfg;
    cfg.modes =
        mode::unauthenticated |
        (static_cast<std::uint32_t>(c[0]) << 4 &
         (mode::individual_session_control | mode::reflect_octets | mode::symmetrical_size));
    cfg.max_sessions = 1 + (c[1] & 7);
    cfg.servwait = std::chrono::milliseconds(c[2] * 100);
    cfg.accept_low_dscp = (c[3] & 1) != 0;
    cfg.server_octets = (c[3] & 2) ? 0x1234 : 0;
    cfg.count = 1024u << (c[5] & 3);
    cfg.random = twamp_fuzz::counter_random{};
    return cfg;
}

request_tw_session plain_request(std::uint16_t port)
{
    request_tw_session r;
    r.sender_port = port;
    r.receiver_port = port;
    r.padding_length = 27;
    r.timeout = ntp_from_duration(std::chrono::seconds(2));
    return r;
}

void gen_control_server(const capture& open)
{
    const bytes plain_cfg = {0x00, 0x07, 0x0A, 0x01, 0x00, 0x01};
    // The captured twping client, in various chunkings.
    {
        tape t;
        for (const auto& s : open.client_segments)
            t.recv(s.size());
        write("control_server", "open-per-message", assemble(plain_cfg, open.to_server, t));
        tape one;
        one.recv(open.to_server.size(), 1);
        write("control_server", "open-bytewise", assemble(plain_cfg, open.to_server, one));
        tape odd;
        odd.recv(100).op(1, 40).op(3, 10).recv(77).op(2).recv(13).op(1, 40).op(2).recv(500);
        write("control_server", "open-odd-chunks", assemble(plain_cfg, open.to_server, odd));
        tape idle;
        idle.recv(164).op(3, 20).op(1, 255).op(1, 255).op(2).recv(500);
        write("control_server", "open-servwait", assemble(plain_cfg, open.to_server, idle));
    }
    // Individual session control (mode 16): two requests, Start-N for both, Stop-N for one,
    // with the SIDs the server will assign (run the same server to learn them).
    {
        const bytes cfg16 = {0x01, 0x07, 0x0A, 0x01, 0x00, 0x01};
        connection_addresses conn;
        conn.client = make_address_v4(192, 0, 2, 1);
        conn.server = make_address_v4(192, 0, 2, 2);
        const nanoseconds now{twamp_fuzz::kEpochNs};
        control_server<open_security> s(server_cfg(cfg16), conn, now);
        setup_response sr;
        sr.mode = mode::unauthenticated | mode::individual_session_control;
        bytes stream = enc(sr);
        const bytes r1 = enc(plain_request(5001)), r2 = enc(plain_request(5002));
        append(stream, r1);
        append(stream, r2);
        s.receive(stream, now);
        std::vector<session_id> sids;
        while (auto e = s.next_event())
            if (auto* a = std::get_if<server_events::session_accepted>(&*e)) sids.push_back(a->sid);
        if (sids.size() == 2) {
            start_n_sessions sn;
            sn.sids = sids;
            stop_n_sessions stn;
            stn.sids = {sids[1]};
            append(stream, enc(sn));
            append(stream, enc(stn));
            tape t;
            t.recv(164).recv(112).recv(112).op(3, 255).recv(64).op(1, 10).recv(48).op(3, 255);
            write("control_server", "mode16-start-stop-n", assemble(cfg16, stream, t));
            tape t2;
            t2.recv(stream.size(), 37);
            write("control_server", "mode16-chunks-37", assemble(cfg16, stream, t2));
        } else {
            std::fprintf(stderr, "mode 16 seed: expected 2 sessions, got %zu\n", sids.size());
        }
    }
    // Reflect Octets (mode 32) with an IPv6 request and a DSCP in the low bits.
    {
        const bytes cfg32 = {0x02, 0x07, 0x0A, 0x03, 0x00, 0x01};
        setup_response sr;
        sr.mode = mode::unauthenticated | mode::reflect_octets;
        bytes stream = enc(sr);
        request_tw_session r = plain_request(6000);
        r.octets_to_be_reflected = 2;
        r.padding_to_reflect_length = 10;
        r.type_p = 46;
        append(stream, enc(r));
        r.ipvn = 6;
        append(stream, enc(r));
        append(stream, enc(start_sessions{}));
        stop_sessions st;
        st.number_of_sessions = 1;
        append(stream, enc(st));
        tape t;
        t.recv(stream.size(), 48);
        write("control_server", "mode32-reflect-octets", assemble(cfg32, stream, t));
    }
    // Refusals: bad mode, unknown command, N = 0, Mode 0.
    {
        setup_response sr;
        sr.mode = mode::authenticated;
        tape t;
        t.recv(164);
        write("control_server", "mode-not-offered", assemble(plain_cfg, enc(sr), t));
        sr.mode = 0;
        write("control_server", "client-declines", assemble(plain_cfg, enc(sr), t));
        sr.mode = mode::unauthenticated;
        bytes stream = enc(sr);
        bytes junk(32, 0);
        junk[0] = 6; // Experimentation
        append(stream, junk);
        tape t2;
        t2.recv(164).recv(32);
        write("control_server", "unknown-command", assemble(plain_cfg, stream, t2));
        sr.mode = mode::unauthenticated | mode::individual_session_control;
        bytes n0 = enc(sr);
        bytes startn(32, 0);
        startn[0] = 7;
        append(n0, startn);
        write("control_server", "start-n-zero", assemble({0x01, 7, 10, 1, 0, 1}, n0, t2));
    }
}

void gen_control_client(const capture& open)
{
    const bytes cfg = {0x00, 0x00, 0x0A, 0x03};
    // The captured twampd: greeting, Server-Start, Accept-Session, Start-Ack.
    {
        tape t;
        t.recv(64).op(7, 41).recv(48).op(3, 0).op(7, 28).recv(48).op(4).op(7, 8).recv(32).op(5, 0);
        write("control_client", "open-session", assemble(cfg, open.to_client, t));
        tape b;
        b.recv(112, 1).op(3, 0).recv(48, 5).op(4).recv(32, 3).op(1, 50).op(2).op(5, 0);
        write("control_client", "open-bytewise", assemble(cfg, open.to_client, b));
        tape slow;
        slow.recv(64).op(1, 255).op(2).recv(400);
        write("control_client", "open-timeout", assemble(cfg, open.to_client, slow));
    }
    // Mode 16: two sessions, Start-N-Ack for both, Stop-N-Ack (split by Accept) for them.
    {
        server_greeting g;
        g.modes = mode::unauthenticated | mode::individual_session_control | mode::reflect_octets;
        g.count = 1024;
        bytes stream = enc(g);
        append(stream, enc(server_start{}));
        session_id s1{}, s2{};
        s1.fill(0xA1);
        s2.fill(0xB2);
        accept_session a;
        a.port = 7001;
        a.sid = s1;
        append(stream, enc(a));
        a.port = 7002;
        a.sid = s2;
        append(stream, enc(a));
        start_n_ack sa;
        sa.sids = {s1, s2};
        append(stream, enc(sa));
        stop_n_ack ok, bad;
        ok.sids = {s1};
        bad.accept = accept_code::failure;
        bad.sids = {s2};
        append(stream, enc(ok));
        append(stream, enc(bad));
        const bytes cfg16 = {0x06, 0x01, 0x0A, 0x03}; // features 16 + 32, 16 required
        tape t;
        t.recv(64).recv(48).op(3, 0).op(3, 8).recv(96).op(6, 0x03).recv(64).op(6, 0x83).recv(96);
        write("control_client", "mode16-start-stop-n", assemble(cfg16, stream, t));
    }
    // Rejections: Modes 0, Server-Start Accept 1, a rejected session, a failed Start-Ack.
    {
        server_greeting g0;
        tape t;
        t.recv(64);
        write("control_client", "modes-0", assemble(cfg, enc(g0), t));
        server_greeting g;
        g.modes = mode::unauthenticated;
        g.count = 1024;
        bytes s1 = enc(g);
        server_start bad;
        bad.accept = accept_code::failure;
        append(s1, enc(bad));
        tape t1;
        t1.recv(64).recv(48);
        write("control_client", "server-start-rejected", assemble(cfg, s1, t1));
        bytes s2 = enc(g);
        append(s2, enc(server_start{}));
        accept_session rej;
        rej.accept = accept_code::temporary_limit;
        append(s2, enc(rej));
        accept_session ok;
        ok.port = 9000;
        ok.sid.fill(3);
        append(s2, enc(ok));
        start_ack sa;
        sa.accept = accept_code::internal_error;
        append(s2, enc(sa));
        tape t2;
        t2.recv(112).op(3, 0).op(3, 1).recv(96).op(4).recv(32);
        write("control_client", "rejections", assemble(cfg, s2, t2));
    }
}

void gen_crypto(const std::vector<capture>& protected_caps)
{
    std::size_t i = 0;
    for (const auto& c : protected_caps) {
        for (std::size_t k = 0; k < 2 && k < c.sender_pkts.size(); ++k) {
            bytes f = {0};
            append(f, c.sender_pkts[k]);
            write("crypto", "test-sender-" + num(i), f);
            bytes r = {0};
            if (k < c.reflector_pkts.size()) {
                append(r, c.reflector_pkts[k]);
                write("crypto", "test-reflector-" + num(i), r);
            }
            ++i;
        }
        // The protected control stream after the clear Set-Up-Response.
        if (c.to_server.size() > kSetupResponseSize) {
            bytes f = {1};
            f.insert(f.end(), c.to_server.begin() + kSetupResponseSize, c.to_server.end());
            write("crypto", "control-client-stream-" + num(i), f);
        }
        if (c.to_client.size() > kServerGreetingSize + kServerStartSize) {
            bytes f = {2 + 8}; // round trip with Server-Start first
            f.insert(f.end(), c.to_client.begin() + kServerGreetingSize, c.to_client.end());
            write("crypto", "control-roundtrip-" + num(i), f);
        }
    }
    bytes plain = {2};
    for (int k = 0; k < 200; ++k)
        plain.push_back(static_cast<std::uint8_t>(k * 7));
    write("crypto", "control-roundtrip-plain", plain);
    bytes shortp = {3, 1, 2, 3};
    write("crypto", "test-short", shortp);
}

// The configuration loader: the RFC 8913 Appendix A documents of the loader's tests and the
// deployment example (every section, including twamp-daemon:stamp and twamp-daemon:daemon).
void gen_config()
{
    const fs::path data(TWAMP_TEST_DATA_DIR);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(data / ".." / "daemon" / "fixtures"))
        if (e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    files.push_back(data / ".." / ".." / "deploy" / "twamp.json");
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        const bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::string name =
            f.filename() == "twamp.json" ? "deploy_twamp.json" : f.filename().string();
        write("config", name, b);
    }
}

// TLV sets of authenticated STAMP: config octet (bit 0 seal the HMAC TLV, bit 1 short key,
// bit 2 flip a bit), a 112-octet base, the set.
void gen_stamp_tlv_set()
{
    bytes base(112, 0);
    wire::store32(base.data(), 7);
    wire::store64(base.data() + 16, 0xE8F1A2B300000000ull);
    wire::store16(base.data() + 24, 0x8001);
    wire::store16(base.data() + 26, 0x1234);
    auto tlv = [](std::uint8_t type, const bytes& value) {
        bytes t = {0, type, static_cast<std::uint8_t>(value.size() >> 8),
                   static_cast<std::uint8_t>(value.size())};
        append(t, value);
        return t;
    };
    auto cat = [](std::initializer_list<bytes> parts) {
        bytes r;
        for (const auto& p : parts)
            append(r, p);
        return r;
    };
    const bytes hmac = tlv(8, bytes(16, 0));
    auto pad = [&](std::size_t n) { return tlv(1, bytes(n, 0)); };
    const bytes b8 = {0, 1, 2, 3, 4, 5, 6, 7};
    const std::vector<std::tuple<std::string, std::uint8_t, bytes>> seeds = {
        {"empty", 0, {}},
        {"padding", 0, pad(20)},
        {"hmac_only", 1, hmac},
        {"unknown_then_hmac", 1, cat({tlv(3, b8), hmac})},
        {"hmac_then_padding", 1, cat({tlv(4, {1, 2, 3, 4}), hmac, pad(8)})},
        {"hmac_misplaced", 1, cat({hmac, tlv(5, {'a', 'b', 'c', 'd'})})},
        {"hmac_bad_value", 0, cat({tlv(3, {'x', 'y', 'z', 'w'}), hmac})},
        {"hmac_wrong_length", 1, tlv(8, bytes(12, 0))},
        {"overrun", 1, cat({tlv(3, {'a', 'b'}), {0, 7, 1, 0, 'a', 'b', 'c'}})},
        {"type0_end", 1, cat({hmac, {0, 0, 0, 4}, bytes(8, 0)})},
        {"short_key_tampered", 7, cat({tlv(6, bytes(6, 0)), hmac, {5, 3}})},
        {"two_hmac", 1, cat({hmac, pad(4), hmac})},
    };
    for (const auto& [name, c0, set] : seeds)
        write("stamp_tlv_set", name, cat({{c0}, base, set}));
}

// stamp_tlvs: a context prefix (fuzz_stamp_tlvs.cpp reads it), then a TLV set: what our
// sender writes for each TLV and for all of them, and hand-built malformed and unknown ones.
void gen_stamp_tlvs()
{
    auto cat = [](std::initializer_list<bytes> parts) {
        bytes b;
        for (const auto& p : parts)
            b.insert(b.end(), p.begin(), p.end());
        return b;
    };
    // cfg 0x08 (IPv4, DS field read, stateful, previous reply), ports 40000 -> 862, DS AF21 +
    // ECT(0), counters 7/6, previous seq 5, DSCP 46 refused, 198.51.100.7 -> 192.0.2.2.
    const bytes v4ctx = {0x08, 0x9C, 0x40, 0x03, 0x5E, 0x4A, 7,   6, 0, 5,
                         46,   198,  51,   100,  7,    1,    192, 0, 2, 2};
    // cfg 0x41 (IPv6, return addresses honoured), no previous reply, no destination read.
    bytes v6ctx = {0x41, 0x9C, 0x40, 0x03, 0x5E, 0xB8, 1, 1, 10, 0x20, 0x01, 0x0d, 0xb8};
    v6ctx.resize(v6ctx.size() + 11, 0);
    v6ctx.push_back(7);
    v6ctx.push_back(0); // no destination
    auto request = [](const twamp::stamp_tlv_request& r) {
        bytes b(twamp::stamp_tlv_request_size(r));
        std::size_t n = 0;
        (void)twamp::write_stamp_tlvs(r, 41, b, n);
        return b;
    };
    twamp::stamp_tlv_request all;
    all.location = true;
    all.timestamp_info = true;
    all.cos_dscp1 = 46;
    all.direct_measurement = true;
    all.access = twamp::stamp_tlv_request::access_report{1, 2};
    all.follow_up = true;
    all.destination_node = twamp::tlv_address{false, {192, 0, 2, 2}};
    all.return_path = twamp::stamp_tlv_request::return_path_request{};
    all.return_path->return_address = twamp::tlv_address{false, {203, 0, 113, 5}};
    all.return_path->mpls_labels = {0x00010140u};
    write("stamp_tlvs", "all-v4", cat({v4ctx, request(all)}));
    write("stamp_tlvs", "all-v6", cat({v6ctx, request(all)}));
    twamp::stamp_tlv_request cc;
    cc.return_path = twamp::stamp_tlv_request::return_path_request{};
    cc.return_path->control_code = 0;
    write("stamp_tlvs", "return-path-no-reply", cat({v4ctx, request(cc)}));
    write("stamp_tlvs", "integrity-marked",
          cat({v4ctx, {0xA0, 3, 0, 4, 0, 0, 0, 0, 0x80, 5, 0, 12}, bytes(12, 0)}));
    write("stamp_tlvs", "malformed-then-more",
          cat({v4ctx, {0x80, 4, 0, 3, 0xB8, 0, 0, 0x80, 3, 0, 4, 0, 0, 0, 0}}));
    write("stamp_tlvs", "location-bad-sub",
          cat({v4ctx, {0x80, 2, 0, 10, 0, 0, 0, 0, 0, 7, 0, 16, 0, 0}}));
    write("stamp_tlvs", "unknown-hmac-padding",
          cat({v4ctx,
               {0x80, 200, 0, 2, 1, 2, 0x80, 8, 0, 16},
               bytes(16, 0x55),
               {0x80, 1, 0, 4, 0, 0, 0, 0}}));
    // The DSCP octet's two high bits: member-link ID 5 (RFC 9534) and Reflected Test Packet
    // Control on; cfg bit 0x04 (stateless) also gives the target a budget of DSCP octet x 8.
    bytes lag = v4ctx;
    lag[10] = 46 | 0xC0;
    bytes lag_budget = lag;
    lag_budget[0] = 0x0C;
    twamp::stamp_tlv_request ms;
    ms.micro_session = twamp::stamp_tlv_request::micro_session_request{0x1234, 5};
    ms.reflected_control = twamp::reflected_control_request{300, 4, 1000, false};
    write("stamp_tlvs", "micro-session-reflected-control", cat({lag, request(ms)}));
    write("stamp_tlvs", "reflected-control-budget", cat({lag_budget, request(ms)}));
    write("stamp_tlvs", "reflected-control-off", cat({v4ctx, request(ms)}));
    write("stamp_tlvs", "micro-session-other-member-short",
          cat({lag, {0x80, 11, 0, 4, 0x12, 0x34, 0, 9, 0x80, 11, 0, 3, 1, 2, 3}}));
    write("stamp_tlvs", "reflected-control-sub-tlvs",
          cat({lag, {0x80, 12, 0, 14, 0, 200, 0, 3, 0, 0, 0, 0, 0, 11, 0, 2, 24, 0}}));
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    g_out = argv[1];
    for (const char* t :
         {"test_packet", "reflector", "sender", "stamp_tlv", "control_messages", "control_server",
          "control_client", "crypto", "config", "stamp_tlv_set", "stamp_tlvs"}) {
        const fs::path dir = g_out / t;
        fs::create_directories(dir);
        for (const auto& e : fs::directory_iterator(dir))
            if (e.is_regular_file()) fs::remove(e.path());
    }
    const capture open = load("twping-twampd-open.pcap");
    const std::vector<capture> test_caps = {load("twampy-sender-responder.pcap"), open,
                                            load("twping-twampd-mixed.pcap"),
                                            load("twping-twampd-test-dscp-ef.pcap")};
    const std::vector<capture> protected_caps = {load("twping-twampd-authenticated.pcap"),
                                                 load("twping-twampd-encrypted.pcap")};
    gen_test_packet(test_caps);
    gen_reflector(test_caps);
    gen_sender(test_caps);
    gen_stamp_tlv();
    gen_control_messages(open, protected_caps);
    gen_control_server(open);
    gen_control_client(open);
    gen_crypto(protected_caps);
    gen_config();
    gen_stamp_tlv_set();
    gen_stamp_tlvs();
    for (const char* t :
         {"test_packet", "reflector", "sender", "stamp_tlv", "control_messages", "control_server",
          "control_client", "crypto", "config", "stamp_tlv_set", "stamp_tlvs"}) {
        std::size_t n = 0, total = 0;
        for (const auto& e : fs::directory_iterator(g_out / t)) {
            ++n;
            total += static_cast<std::size_t>(e.file_size());
        }
        std::printf("%-18s %3zu files %7zu octets\n", t, n, total);
    }
    return 0;
}
