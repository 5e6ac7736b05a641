// twamp/asio/reflector.hpp — a TWAMP Light / STAMP Session-Reflector on an asio event loop.
//
// RFC 5357 Appendix I, RFC 8762 §4.3. The receive → reflect → send path runs on buffers allocated
// at construction: recvmmsg fills a batch with kernel receive timestamps (T2) and TTLs, the core
// builds every reply, T3 is taken once right before sendmmsg and written into each reply. No
// allocation, no logging and no locking happen per packet. Replies go back to the source address
// and port of the request (NAT-safe), with TTL 255 and either the configured DS field or, when
// none is configured, the DSCP the request arrived with.
//
// Time (twamp/clock.hpp): T2 is the kernel's wall-clock receive time and T3 the clock policy's
// wall_now(); the session window and REFWAIT run on its mono_now(). Each packet's monotonic
// receive time is the batch's mono_now() less the packet's age (how long ago the kernel stamped
// it, bounded to [0, kMaxReceiveAge]), so a wall-clock step moves neither the window nor REFWAIT.
// A flow whose window is open at both ends (TWAMP Light, STAMP) takes the batch's mono_now()
// itself: the age only ever mattered at a window's edge, and the clock is then not read again.
#pragma once

#include "twamp/asio/address.hpp"
#include "twamp/asio/clock.hpp"
#include "twamp/asio/test_guard.hpp"
#include "twamp/asio/tx_timestamps.hpp"
#include "twamp/asio/udp.hpp"
#include "twamp/clock.hpp"
#include "twamp/histogram.hpp"
#include "twamp/reflector_session.hpp"

#include <asio.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

namespace twamp::net {

struct reflector_options {
    asio::ip::udp::endpoint local{asio::ip::address_v6::any(), 862};
    socket_options sock{};
    reflector_config core{};
    std::size_t batch = 32;
    std::size_t max_datagram = 9216 + 512; // jumbo frames; larger datagrams are counted and dropped
    // REFWAIT sweep and clock-state refresh period.
    std::chrono::nanoseconds housekeeping{std::chrono::seconds{10}};
    // Kernel send timestamps (tx_timestamps.hpp) of the replies: with them a Follow-Up Telemetry
    // TLV (RFC 8972 §4.7) reports when the kernel (or the NIC) sent the previous reply instead
    // of the T3 read before the send. T3 in the reply itself is always that read.
    timestamping_mode tx_timestamping = timestamping_mode::user;
};

struct reflector_io_counters {
    std::uint64_t oversize = 0;       // larger than max_datagram
    std::uint64_t not_accepted = 0;   // from another sender, or outside the session's active time
    std::uint64_t outside_window = 0; // received before the Start Time or after the Timeout
    std::uint64_t send_errors = 0;    // sendmmsg refused a reply
    std::uint64_t receive_errors = 0;
    std::uint64_t kernel_timestamps = 0; // T2 from SO_TIMESTAMPNS
    std::uint64_t auth_failures = 0;     // protected requests that failed their HMAC: dropped
    std::uint64_t tx_kernel_stamps = 0;  // replies whose kernel send time was read
    std::uint64_t follow_up_kernel = 0;  // of them, reported by a Follow-Up Telemetry TLV
    // Reflected Test Packet Control (STAMP TLV 12): replies after the first sent, and dropped
    // because the port's queue of later replies (kLaterReplies) was full or the send failed.
    std::uint64_t extra_replies_sent = 0;
    std::uint64_t extra_replies_dropped = 0;
};

// Replies a port holds for later (Reflected Test Packet Control: replies 1..count-1 of a
// request, sent `interval` apart): at most this many at a time, the rest dropped and counted.
inline constexpr std::size_t kLaterReplies = 64;

// A packet older than this when read (the wall clock was stepped forward between the kernel's
// stamp and our read, or the loop stalled) counts as this old.
inline constexpr nanoseconds kMaxReceiveAge = std::chrono::seconds{1};

// A window open at either end.
inline constexpr nanoseconds kOpenFrom{std::numeric_limits<nanoseconds::rep>::min()};
inline constexpr nanoseconds kOpenUntil{std::numeric_limits<nanoseconds::rep>::max()};

// The state of one reflected test session on a port: its core (sequence numbers, STAMP TLV
// state), protection, sender filter, time window, reply DS field and counters. A TWAMP Light or
// STAMP reflector has one flow for its socket; a TWAMP server's shared port has one per session
// (shared_reflector.hpp). Nothing in it is allocated per packet.
struct reflector_flow {
    explicit reflector_flow(const reflector_config& c) : core(c) {}

    session_reflector core;
    std::unique_ptr<test_guard> guard;
    reflector_io_counters io{};
    // The DS field of every reply; unset: the port's rule (its socket option when configured,
    // otherwise the DSCP the request arrived with).
    std::optional<int> reply_tos{};
    bool active = true;
    bool filter_peer = false;
    std::array<std::uint8_t, 16> peer_addr{};
    // A TWAMP session's sender as Request-TW-Session named it: every request of the session is
    // counted under it (one sequence of reflected packets, RFC 5357 §4.2.1) even when a NAT
    // changed the source port. Unset: each source address and port is its own sender.
    std::optional<peer_key> session_key{};
    nanoseconds last_activity{0};
    nanoseconds last_activity_mono{0};
    nanoseconds window_from{kOpenFrom};
    nanoseconds window_until{kOpenUntil};

    // Answer only this sender's address (any port, so a NAT on the way does no harm).
    void accept_only_address(const asio::ip::address& sender)
    {
        peer_addr = address_key(sender);
        filter_peer = true;
    }
};

// The receive → reflect → send path of one UDP socket. `Directory` finds the flow a request
// belongs to (`reflector_flow* find(const peer_key&)`, nullptr: nobody's, counted and dropped)
// and visits every flow (`for_each(f)`) for housekeeping.
template <clock_policy Clock, class Directory> class basic_reflector_port {
public:
    basic_reflector_port(asio::io_context& io, reflector_options o, Clock clock = {})
        : opts_(std::move(o)), clock_(std::move(clock)), dir_(opts_.core), sock_(io), timer_(io),
          later_timer_(io), rx_(opts_.batch, opts_.max_datagram),
          tx_(opts_.batch, opts_.max_datagram + 64)
    {
    }
    ~basic_reflector_port() { stop(); }
    basic_reflector_port(const basic_reflector_port&) = delete;
    basic_reflector_port& operator=(const basic_reflector_port&) = delete;

    // Opens and binds the socket. Call once before start().
    std::error_code open()
    {
        err_ = system_error_estimate();
        dir_.for_each([&](reflector_flow& f) { f.core.set_error_estimate(err_); });
        auto ec = open_udp_socket(sock_, opts_.local, opts_.sock);
        if (!ec) {
            fd_ = sock_.native_handle();
            local_ = sock_.local_endpoint(ec);
        }
        if (!ec && opts_.tx_timestamping != timestamping_mode::user) {
            tx_ts_ = enable_tx_timestamps(fd_, opts_.tx_timestamping,
                                          interface_for(opts_.local.address()));
            if (tx_ts_.kernel()) {
                ring_.emplace(4 * opts_.batch);
                t3_diff_.emplace();
            }
        }
        if (!ec) {
            // What STAMP TLVs report as the request's destination (Location, Destination Node
            // Address): the bound address, when it is one; the port always.
            const auto local = local_endpoint();
            rx_info_.destination_port = local.port();
            rx_info_.destination.reset();
            if (!local.address().is_unspecified())
                rx_info_.destination = to_tlv_address(local.address());
        }
        return ec;
    }

    // The bound address and port (after open()).
    asio::ip::udp::endpoint local_endpoint() const { return local_; }

    void start()
    {
        running_ = true;
        wait_readable();
        arm_housekeeping();
    }

    // Stops the event-loop mode and closes the socket. From the thread that runs the port (or,
    // after run_dedicated() returned, the owner's); request_stop() is the one for other threads.
    void stop()
    {
        running_ = false;
        std::error_code ec;
        timer_.cancel();
        later_timer_.cancel();
        if (dedicated_) {
            if (fd_ >= 0) ::close(fd_);
        } else {
            sock_.cancel(ec);
            sock_.close(ec);
        }
        fd_ = -1;
        if (wake_read_ >= 0) ::close(std::exchange(wake_read_, -1));
        if (const int w = wake_write_.exchange(-1); w >= 0) ::close(w);
    }

    // The dedicated mode: serves the port on the calling thread until request_stop(), instead of
    // start() and an event loop. The socket leaves the event loop's reactor first: an epoll
    // registration stays on the socket's wait queue, so every datagram the socket sends or
    // receives wakes it (two locked wake-ups per reflected packet, about 12 % of the closed-loop
    // packet rate on loopback: bench_reflector_loop). Here the socket is waited on with poll()
    // only when nothing is queued, like a plain echo server; housekeeping (REFWAIT) and later
    // replies run on their deadlines in the same loop. Call after open(); returns an error when
    // the socket cannot leave the reactor, or the wake-up pipe cannot be made.
    std::error_code run_dedicated()
    {
        if (fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);
        if (!dedicated_) {
            if (wake_read_ < 0) { // once, even when the release below fails and is retried
                int w[2];
                if (::pipe(w) != 0) return {errno, std::system_category()};
                for (int d : w) {
                    (void)::fcntl(d, F_SETFL, ::fcntl(d, F_GETFL) | O_NONBLOCK);
                    (void)::fcntl(d, F_SETFD, FD_CLOEXEC);
                }
                wake_read_ = w[0];
                wake_write_.store(w[1]); // seen by request_stop() unless it set the flag first
            }
            std::error_code ec;
            (void)sock_.release(ec); // deregisters from the reactor; the descriptor stays open
            if (ec) return ec;
            dedicated_ = true;
        }
        running_ = true;
        pollfd p[2] = {{fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
        nanoseconds now = clock_.mono_now();
        nanoseconds next_housekeeping = now + opts_.housekeeping;
        while (!stop_requested_.load()) {
            nanoseconds due = next_housekeeping;
            if (later_used_ && later_next_) due = std::min(due, *later_next_);
            p[0].revents = p[1].revents = 0;
            const int r = wait_for(p, std::max(due - now, nanoseconds{0}));
            ++wakeups_;
            bool drained = false;
            if (r > 0 && (p[0].revents & POLLERR) && !ring_) {
                // Nothing of ours reads the error queue without send stamps: empty it, or a
                // level-triggered poll() would report it forever.
                (void)drain_error_queue(fd_);
            }
            if (r > 0 && (p[0].revents & (POLLIN | POLLERR))) {
                drain();
                drained = true;
            }
            if (r > 0 && p[1].revents) {
                char b[64];
                while (::read(wake_read_, b, sizeof b) > 0) {
                }
            }
            // drain() read the monotonic clock for its batch; otherwise read it now.
            now = drained ? last_mono_ : clock_.mono_now();
            if (now >= next_housekeeping) {
                housekeep(now);
                next_housekeeping = now + opts_.housekeeping;
            }
            if (later_used_ && later_next_ && *later_next_ <= now) (void)send_later(fd_);
        }
        stop_requested_.store(false);
        running_ = false;
        return {};
    }

    // Ends run_dedicated() on whatever thread runs it; safe from any thread, and before the
    // loop starts (it then returns at once).
    void request_stop() noexcept
    {
        stop_requested_.store(true);
        if (const int w = wake_write_.load(); w >= 0) {
            const char b = 1;
            (void)!::write(w, &b, 1);
        }
    }

    // What the port counted before a request reached a flow (oversize, receive errors, requests
    // no flow claims as not_accepted), send errors of whole batches and kernel send stamps.
    const reflector_io_counters& port_counters() const noexcept { return port_io_; }
    // How often run_dedicated() woke up (data, a deadline, a stop request): an idle port wakes
    // once per housekeeping period, never more.
    std::uint64_t dedicated_wakeups() const noexcept { return wakeups_; }
    // The socket (for a caller's own poll loop, or to set options).
    int native_handle() noexcept { return fd_; }
    // What open() enabled of opts.tx_timestamping.
    const tx_timestamping& tx_timestamps() const noexcept { return tx_ts_; }
    // With kernel send stamps: kernel send time − T3 (the read before the send), ns, per reply.
    const log_histogram* t3_kernel_minus_user() const noexcept
    {
        return t3_diff_ ? &*t3_diff_ : nullptr;
    }

    // Runs the receive → reflect → send path once over whatever is queued (at most `rounds`
    // batches). Public so tests and benchmarks can drive it without the reactor.
    std::size_t drain(int rounds = 8) noexcept
    {
        const int fd = fd_;
        std::size_t total = 0;
        read_tx_stamps(fd);
        for (int r = 0; r < rounds; ++r) {
            std::error_code ec;
            const std::size_t n = rx_.receive(fd, ec);
            if (ec) ++port_io_.receive_errors;
            if (n == 0) break;
            // The kernel stamps on CLOCK_REALTIME whatever the policy: ages are taken on it.
            const nanoseconds mono = clock_.mono_now();
            last_mono_ = mono;
            std::optional<nanoseconds> stamped; // CLOCK_REALTIME now, read when first needed
            for (std::size_t i = 0; i < n; ++i) {
                const rx_meta& m = rx_.meta(i);
                if (m.truncated) {
                    ++port_io_.oversize;
                    continue;
                }
                const peer_key source = key_of(m.from);
                reflector_flow* f = dir_.find(source);
                if (!f) {
                    ++port_io_.not_accepted;
                    continue;
                }
                if (!f->active || (f->filter_peer && source.addr != f->peer_addr)) {
                    ++f->io.not_accepted;
                    continue;
                }
                instant rx{m.rx_time, mono};
                if (f->window_from != kOpenFrom || f->window_until != kOpenUntil) {
                    if (!stamped) stamped = realtime_now();
                    rx.mono -= std::clamp(*stamped - m.rx_time, nanoseconds{0}, kMaxReceiveAge);
                }
                if (rx.mono < f->window_from || rx.mono >= f->window_until) {
                    ++f->io.not_accepted;
                    ++f->io.outside_window;
                    continue;
                }
                if (m.kernel_time) ++f->io.kernel_timestamps;
                const peer_key& from = f->session_key ? *f->session_key : source;
                reflector_rx_info info = rx_info_;
                if (m.tos >= 0) info.tos = static_cast<std::uint8_t>(m.tos);
                stamp_tlv_outcome tlv;
                const std::size_t slot = tx_.size();
                const std::uint8_t ttl = m.ttl ? m.ttl : 255;
                std::size_t len = 0;
                const std::uint8_t* open_reply = nullptr;
                staged_len_[slot] = 0;
                if (f->guard) {
                    // Open (verify, decrypt) the request; reflect the open form into a staging
                    // slot; the reply is translated and sealed once T3 is known.
                    auto req = rx_.data(i);
                    const std::size_t k = f->guard->open_request(req, open_rx_);
                    if (k == 0) {
                        ++f->io.auth_failures;
                        continue;
                    }
                    auto stage = staging(slot);
                    len = f->core.reflect(std::span(open_rx_).first(k), from, rx, ttl, stage, &info,
                                          &tlv);
                    if (len == 0) continue;
                    open_reply = stage.data();
                    staged_len_[slot] = len;
                    plain_rx_[slot] = req;
                } else {
                    len = f->core.reflect(rx_.data(i), from, rx, ttl, tx_.slot(slot), &info, &tlv);
                    if (len == 0) continue;
                    open_reply = tx_.slot(slot).data();
                }
                // Reflected (and, when protected, authenticated): it may refresh REFWAIT.
                f->last_activity = m.rx_time;
                f->last_activity_mono = rx.mono;
                int tos = opts_.sock.tos ? -1 : (m.tos >= 0 ? (m.tos & 0xFC) : -1);
                if (f->reply_tos) tos = *f->reply_tos;
                // STAMP Class of Service (RFC 8972 §4.4): the DSCP the reply must leave with.
                if (tlv.reply_dscp) tos = *tlv.reply_dscp << 2;
                slot_flow_[slot] = f;
                follow_up_[slot] = {tlv.follow_up, from,
                                    tlv.follow_up ? wire::load16(open_reply + 14)
                                                  : std::uint16_t{0}};
                sockaddr_storage to = m.from;
                socklen_t to_len = m.from_len;
                sockaddr_storage rp{};
                socklen_t rp_len = 0;
                if (tlv.reply_to && to_sockaddr(*tlv.reply_to, m.from, rp, rp_len)) {
                    to = rp; // RFC 9503 Return Address, policy allowing
                    to_len = rp_len;
                }
                tx_.push(len, to, to_len, tos);
                if (tlv.reflected_control && tlv.reflected_control->count > 1)
                    hold_later(*f, *tlv.reflected_control, std::span(open_reply, len),
                               f->guard ? wire::const_byte_span(plain_rx_[slot])
                                        : wire::const_byte_span{},
                               to, to_len, tos, mono);
            }
            if (tx_.size()) total += send_batch(fd);
            if (later_used_) total += send_later(fd);
            if (n < rx_.capacity()) break;
        }
        return total;
    }

protected:
    // A flow is going away: drop the later replies it still has queued.
    void forget_flow(const reflector_flow& f) noexcept
    {
        for (auto& l : later_)
            if (l.used && l.flow == &f) {
                l.used = false;
                --later_used_;
                ++port_io_.extra_replies_dropped;
            }
    }

    // Protected flows need staging room for their open replies; allocated once, when the first
    // protected flow appears.
    void enable_staging()
    {
        if (!open_rx_.empty()) return;
        open_rx_.resize(opts_.max_datagram + 64);
        open_tx_.resize(opts_.batch * (opts_.max_datagram + 64));
    }
    error_estimate error_estimate_now() const noexcept { return err_; }

    reflector_options opts_;
    Clock clock_;
    Directory dir_;

private:
    std::span<std::uint8_t> staging(std::size_t slot) noexcept
    {
        return std::span(open_tx_).subspan(slot * (opts_.max_datagram + 64),
                                           opts_.max_datagram + 64);
    }

    // Replies 1..count-1 of a request with a Reflected Test Packet Control TLV: copies of reply
    // 0 (build_reflected_reply) due at `now` + k × interval, in the port's fixed queue; what does
    // not fit is dropped and counted (the session's budget was charged for it already). The
    // queue's buffers are allocated the first time it is used, never on later requests.
    void hold_later(reflector_flow& f, const stamp_tlv_outcome::reflected_control_outcome& rc,
                    wire::const_byte_span reply0, wire::const_byte_span request_plain,
                    const sockaddr_storage& to, socklen_t to_len, int tos, nanoseconds now)
    {
        if (later_.empty()) {
            later_.resize(kLaterReplies);
            for (auto& l : later_)
                l.reply.resize(opts_.max_datagram + 64);
        }
        std::size_t at = 0;
        for (std::uint16_t k = 1; k < rc.count; ++k) {
            while (at < later_.size() && later_[at].used)
                ++at;
            if (at == later_.size()) {
                port_io_.extra_replies_dropped += rc.count - k;
                break;
            }
            later_reply& l = later_[at];
            l.len = build_reflected_reply(reply0, rc, k, l.reply);
            if (l.len == 0) {
                ++port_io_.extra_replies_dropped;
                continue;
            }
            l.plain.assign(request_plain.begin(), request_plain.end());
            l.due = now + nanoseconds{std::int64_t{rc.interval_ns} * k};
            l.flow = &f;
            l.to = to;
            l.to_len = to_len;
            l.tos = tos;
            l.used = true;
            ++later_used_;
        }
    }

    // Sends the later replies that are due (T3 and sealing as for any reply), then sets the
    // timer for the next one.
    std::size_t send_later(int fd) noexcept
    {
        std::size_t sent = 0;
        const nanoseconds now = clock_.mono_now();
        std::optional<nanoseconds> next;
        for (;;) {
            std::size_t queued = 0;
            for (auto& l : later_) {
                if (!l.used) continue;
                if (l.due > now) {
                    next = next ? std::min(*next, l.due) : l.due;
                    continue;
                }
                if (queued == tx_.capacity()) {
                    next = now; // more are due: the next pass
                    continue;
                }
                const std::size_t slot = tx_.size();
                reflector_flow& f = *l.flow;
                slot_flow_[slot] = &f;
                follow_up_[slot] = {};
                if (f.guard) {
                    std::copy_n(l.reply.data(), l.len, staging(slot).data());
                    staged_len_[slot] = l.len;
                    plain_rx_[slot] = l.plain;
                } else {
                    std::copy_n(l.reply.data(), l.len, tx_.slot(slot).data());
                    staged_len_[slot] = 0;
                }
                tx_.push(l.len, l.to, l.to_len, l.tos);
                l.used = false;
                --later_used_;
                ++queued;
            }
            if (queued == 0) break;
            const std::size_t n = send_batch(fd);
            port_io_.extra_replies_sent += n;
            port_io_.extra_replies_dropped += queued - n;
            sent += n;
            if (!next || *next > now) break;
            next.reset();
        }
        later_next_ = next;
        if (next && running_ && !dedicated_) {
            later_timer_.expires_after(std::max(*next - clock_.mono_now(), nanoseconds{0}));
            later_timer_.async_wait(
                [this, life = std::weak_ptr<char>(life_)](const std::error_code& ec) {
                    if (life.expired() || ec || !running_) return;
                    if (later_used_) send_later(fd_);
                });
        }
        return sent;
    }

    // T3, then sealing, Follow-Up notes and one sendmmsg for everything the batch reflected.
    std::size_t send_batch(int fd) noexcept
    {
        // T3: as late as we can take it in user space, once for the whole batch.
        const nanoseconds t3 = clock_.wall_now();
        const std::uint64_t w_ntp = to_ntp(t3).to_u64(), w_ptp = to_ptp_truncated(t3);
        for (std::size_t i = 0; i < tx_.size(); ++i) {
            reflector_flow& f = *slot_flow_[i];
            const std::uint64_t w = f.core.config().err.ptp ? w_ptp : w_ntp;
            if (staged_len_[i] == 0) {
                stamp_reflector_timestamp(tx_.slot(i), w);
            } else {
                // Sealing needs T3 first in encrypted mode.
                auto stage = staging(i).first(staged_len_[i]);
                stamp_reflector_timestamp(stage, w);
                const std::size_t n = f.guard->seal_reply(stage, plain_rx_[i], tx_.slot(i));
                if (n == 0) {
                    ++f.io.send_errors;
                    tx_.set_length(i, 0);
                    continue;
                }
                tx_.set_length(i, n);
            }
            // Follow-Up Telemetry (RFC 8972 §4.7): the next reply reports this T3.
            if (follow_up_[i].pending)
                f.core.note_sent(follow_up_[i].from, follow_up_[i].ssid, w,
                                 f.core.config().t3_method);
        }
        std::error_code ec;
        const std::size_t queued = tx_.live();
        const std::size_t n = tx_.size();
        const std::size_t sent = tx_.send(fd, ec);
        port_io_.send_errors += queued - sent;
        if (ring_) {
            // Each datagram the kernel took gets the next stamp key, in message order.
            for (std::size_t i = 0; i < n; ++i) {
                if (tx_.failed(i)) {
                    ring_->send_failed();
                } else if (tx_.sent_data(i).size() != 0) {
                    const auto& fu = follow_up_[i];
                    ring_->sent(t3,
                                sent_reply{fu.pending ? slot_flow_[i] : nullptr, fu.from, fu.ssid});
                }
            }
            read_tx_stamps(fd); // on most paths the stamps are queued by now
        }
        return sent;
    }

    // Send stamps of earlier replies: a reply that answered a Follow-Up Telemetry TLV has its
    // kernel send time noted for the next one. The error queue must be read whenever stamps
    // are on (it keeps the socket readable otherwise), bounded per call.
    void read_tx_stamps(int fd) noexcept
    {
        if (!ring_) return;
        (void)drain_tx_error_queue(fd, [&](const tx_stamp& s) {
            const auto m = ring_->take(s.key, s.time);
            if (!m) return;
            ++port_io_.tx_kernel_stamps;
            t3_diff_->add((s.time - m->user_time).count());
            if (!m->value.flow) return;
            reflector_flow& f = *m->value.flow;
            const std::uint64_t w =
                f.core.config().err.ptp ? to_ptp_truncated(s.time) : to_ntp(s.time).to_u64();
            f.core.note_sent(m->value.from, m->value.ssid, w,
                             s.source == tx_source::hardware
                                 ? stamp_tlv::timestamp_method::hw_assist
                                 : stamp_tlv::timestamp_method::sw_local);
            ++port_io_.follow_up_kernel;
        });
    }

    // A TLV address with the request's port, in the request's address family (an IPv4 address
    // on an IPv6 socket as ::ffff:a.b.c.d). False when it cannot be reached from this socket.
    static bool to_sockaddr(const tlv_address& a, const sockaddr_storage& like,
                            sockaddr_storage& out, socklen_t& len) noexcept
    {
        out = sockaddr_storage{};
        if (like.ss_family == AF_INET) {
            if (a.v6) return false;
            sockaddr_in s4{};
            s4.sin_family = AF_INET;
            s4.sin_port = reinterpret_cast<const sockaddr_in*>(&like)->sin_port;
            std::memcpy(&s4.sin_addr, a.octets.data(), 4);
            std::memcpy(&out, &s4, sizeof s4);
            len = sizeof s4;
            return true;
        }
        sockaddr_in6 s6{};
        s6.sin6_family = AF_INET6;
        s6.sin6_port = reinterpret_cast<const sockaddr_in6*>(&like)->sin6_port;
        auto* b = reinterpret_cast<std::uint8_t*>(&s6.sin6_addr);
        if (a.v6) {
            std::memcpy(b, a.octets.data(), 16);
        } else {
            b[10] = b[11] = 0xFF;
            std::memcpy(b + 12, a.octets.data(), 4);
        }
        std::memcpy(&out, &s6, sizeof s6);
        len = sizeof s6;
        return true;
    }

    static peer_key key_of(const sockaddr_storage& s) noexcept
    {
        peer_key k;
        if (s.ss_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(&s);
            k.addr[10] = k.addr[11] = 0xFF;
            std::memcpy(k.addr.data() + 12, &a->sin_addr, 4);
            k.port = ntohs(a->sin_port);
        } else {
            const auto* a = reinterpret_cast<const sockaddr_in6*>(&s);
            std::memcpy(k.addr.data(), &a->sin6_addr, 16);
            k.port = ntohs(a->sin6_port);
        }
        return k;
    }

    // Handlers hold a weak reference to life_, never only `this`: a completion already queued
    // when the owner destroys this port in the same event-loop pass (a session ended by a
    // timer, a connection closed) finds the reference expired and returns without touching us.
    void wait_readable()
    {
        sock_.async_wait(asio::ip::udp::socket::wait_read,
                         [this, life = std::weak_ptr<char>(life_)](const std::error_code& ec) {
                             if (life.expired() || ec || !running_) return;
                             drain();
                             wait_readable();
                         });
    }

    void arm_housekeeping()
    {
        timer_.expires_after(opts_.housekeeping);
        timer_.async_wait([this, life = std::weak_ptr<char>(life_)](const std::error_code& ec) {
            if (life.expired() || ec || !running_) return;
            housekeep(clock_.mono_now());
            arm_housekeeping();
        });
    }

    // REFWAIT and the clock's error estimate, every opts_.housekeeping.
    void housekeep(nanoseconds now)
    {
        err_ = system_error_estimate();
        dir_.for_each([&](reflector_flow& f) {
            f.core.expire(now);
            f.core.set_error_estimate(err_);
        });
    }

    // The dedicated loop's wait: the socket and the wake-up pipe, at most `timeout`.
    static int wait_for(pollfd (&p)[2], nanoseconds timeout) noexcept
    {
        int r;
#if defined(__linux__)
        const timespec ts{static_cast<time_t>(timeout.count() / kNsPerSec),
                          static_cast<long>(timeout.count() % kNsPerSec)};
        do {
            r = ::ppoll(p, 2, &ts, nullptr);
        } while (r < 0 && errno == EINTR);
#else
        const auto ms = (timeout.count() + 999'999) / 1'000'000; // rounded up
        do {
            r = ::poll(p, 2, static_cast<int>(std::min<std::int64_t>(ms, 3'600'000)));
        } while (r < 0 && errno == EINTR);
#endif
        return r;
    }

    asio::ip::udp::socket sock_;
    int fd_ = -1; // the socket, in either mode
    asio::ip::udp::endpoint local_{};
    bool dedicated_ = false; // run_dedicated(): the socket left the reactor
    int wake_read_ = -1;     // request_stop() → run_dedicated(): a pipe
    std::atomic<int> wake_write_{-1};
    std::atomic<bool> stop_requested_{false};
    nanoseconds last_mono_{0};              // the monotonic time drain() read for its last batch
    std::optional<nanoseconds> later_next_; // when the next later reply is due
    std::uint64_t wakeups_ = 0;             // run_dedicated()'s returns from poll()
    asio::steady_timer timer_;
    asio::steady_timer later_timer_;
    rx_batch rx_;
    tx_batch tx_;
    reflector_io_counters port_io_;
    error_estimate err_{};
    bool running_ = false;
    // Per reply slot of a batch: its flow, its staged (open) length when the flow is protected
    // (0 otherwise) and the request it answers, and whether a Follow-Up Telemetry TLV was
    // answered for (from, SSID).
    struct follow_up_note {
        bool pending = false;
        peer_key from{};
        std::uint16_t ssid = 0;
    };
    std::vector<reflector_flow*> slot_flow_ = std::vector<reflector_flow*>(opts_.batch);
    std::vector<std::size_t> staged_len_ = std::vector<std::size_t>(opts_.batch);
    std::vector<wire::const_byte_span> plain_rx_ = std::vector<wire::const_byte_span>(opts_.batch);
    std::vector<follow_up_note> follow_up_ = std::vector<follow_up_note>(opts_.batch);
    std::vector<std::uint8_t> open_rx_;
    std::vector<std::uint8_t> open_tx_;
    reflector_rx_info rx_info_{};
    // Kernel send stamps: what was enabled, and the replies sent whose stamp has not been read
    // (flow set only when a Follow-Up Telemetry TLV asked for it).
    struct sent_reply {
        reflector_flow* flow = nullptr;
        peer_key from{};
        std::uint16_t ssid = 0;
    };
    tx_timestamping tx_ts_{};
    std::optional<tx_key_ring<sent_reply>> ring_;
    std::optional<log_histogram> t3_diff_;
    // Later replies (Reflected Test Packet Control); empty until first needed.
    struct later_reply {
        bool used = false;
        nanoseconds due{0};
        reflector_flow* flow = nullptr;
        std::size_t len = 0;
        std::vector<std::uint8_t> reply;
        std::vector<std::uint8_t> plain; // the request as opened, for sealing (protected flows)
        sockaddr_storage to{};
        socklen_t to_len = 0;
        int tos = -1;
    };
    std::vector<later_reply> later_;
    std::size_t later_used_ = 0;
    std::shared_ptr<char> life_ = std::make_shared<char>(0);
};

namespace detail {
// The directory of a port with one flow that answers every request (TWAMP Light, STAMP); its
// flow takes the port's reflector_options::core.
struct single_flow_directory {
    explicit single_flow_directory(const reflector_config& c) : flow(c) {}
    reflector_flow flow;
    reflector_flow* find(const peer_key&) noexcept { return &flow; }
    template <class F> void for_each(F&& f) { f(flow); }
};
} // namespace detail

// A TWAMP Light / STAMP reflector: one socket, one flow.
template <clock_policy Clock = system_clock_policy>
class basic_udp_reflector : public basic_reflector_port<Clock, detail::single_flow_directory> {
    using port = basic_reflector_port<Clock, detail::single_flow_directory>;

public:
    basic_udp_reflector(asio::io_context& io, reflector_options o, Clock clock = {})
        : port(io, std::move(o), std::move(clock))
    {
    }

    const session_reflector& session() const noexcept { return flow().core; }

    // TWAMP sessions (RFC 5357 §4.2): answer only this sender's address (any port, so a NAT on
    // the way does no harm), and only while active. Packets that fail either test are counted
    // and dropped. TWAMP Light leaves both open.
    void accept_only_address(const asio::ip::address& sender)
    {
        flow().accept_only_address(sender);
    }
    // The DS field of every reply (the session's Type-P DSCP), instead of copying the request's.
    std::error_code set_tos(int tos)
    {
        this->opts_.sock.tos = tos;
        const int fd = this->native_handle();
        std::error_code ec;
        if (this->opts_.local.address().is_v6()) {
            ec = detail::set_opt(fd, IPPROTO_IPV6, IPV6_TCLASS, tos);
            (void)detail::set_opt(fd, IPPROTO_IP, IP_TOS, tos); // IPv4-mapped traffic
        } else {
            ec = detail::set_opt(fd, IPPROTO_IP, IP_TOS, tos);
        }
        return ec;
    }
    void set_symmetric(bool on) noexcept { flow().core.set_symmetric(on); }
    // Authenticated / encrypted requests and replies (see test_guard.hpp).
    void set_guard(std::unique_ptr<test_guard> g)
    {
        flow().guard = std::move(g);
        this->enable_staging();
    }
    void set_active(bool on) noexcept { flow().active = on; }
    bool active() const noexcept { return flow().active; }
    // The session's time window (RFC 5357 §3.5, §3.8): while active, a request is reflected only
    // if its receive time is in [from, until). Compared per packet, so replies start at the
    // Start Time and end at Stop-Sessions + Timeout exactly, not on some later timer tick.
    // set_window_mono() takes monotonic times (the clock policy's mono_now()); set_window() takes
    // wall times and turns them into monotonic ones now, so a later wall-clock step does not
    // move the window. nanoseconds::min() / max() stay open ends.
    void set_window_mono(nanoseconds from, nanoseconds until) noexcept
    {
        flow().window_from = from;
        flow().window_until = until;
    }
    void set_window(nanoseconds from, nanoseconds until) noexcept
    {
        const instant now = now_of(this->clock_);
        const auto to_mono = [&](nanoseconds t) {
            if (t == nanoseconds::min() || t == nanoseconds::max()) return t;
            return now.mono + (t - now.wall);
        };
        set_window_mono(to_mono(from), to_mono(until));
    }
    // Wall-clock receive time of the last request from the agreed sender that passed
    // authentication and was reflected, 0 before the first; last_activity_mono() is the same
    // moment on the monotonic clock (REFWAIT).
    nanoseconds last_activity() const noexcept { return flow().last_activity; }
    nanoseconds last_activity_mono() const noexcept { return flow().last_activity_mono; }
    // The flow's counters and the port's, added up.
    reflector_io_counters io_counters() const noexcept
    {
        reflector_io_counters c = flow().io;
        const reflector_io_counters& p = this->port_counters();
        c.oversize += p.oversize;
        c.not_accepted += p.not_accepted;
        c.outside_window += p.outside_window;
        c.send_errors += p.send_errors;
        c.receive_errors += p.receive_errors;
        c.kernel_timestamps += p.kernel_timestamps;
        c.tx_kernel_stamps += p.tx_kernel_stamps;
        c.follow_up_kernel += p.follow_up_kernel;
        c.extra_replies_sent += p.extra_replies_sent;
        c.extra_replies_dropped += p.extra_replies_dropped;
        c.auth_failures += p.auth_failures;
        return c;
    }

private:
    reflector_flow& flow() noexcept { return this->dir_.flow; }
    const reflector_flow& flow() const noexcept { return this->dir_.flow; }
};

// The reflector on the system's clocks (what every tool uses).
using udp_reflector = basic_udp_reflector<>;

} // namespace twamp::net
