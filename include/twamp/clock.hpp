// twamp/clock.hpp — the clock policy: wall time for stamps, monotonic time for deadlines.
//
// RFC 4656 §4.1.2 and RFC 5357 §4.1.2 put absolute wall-clock times on the wire (T1, T2, T3,
// Server-Start Start-Time, the Start Time of Request-TW-Session, the time in a SID). Every wait
// the protocol defines (SERVWAIT and REFWAIT, RFC 5357 §3.1; the Timeout after Stop-Sessions,
// §3.8; a client's reply timeout) is a duration, and a duration measured on the wall clock
// stretches or shrinks whenever that clock is stepped (an NTP step, `date -s`). So the library
// reads two clocks: wall_now() for what goes on the wire, mono_now() for every deadline. A wall
// time learnt from the wire (a Start Time) becomes a monotonic deadline the moment it is read:
// mono_now() + (start - wall_now()).
//
// A clock policy is any copyable type with those two functions; the asio adapters take one as a
// defaulted template parameter (system_clock_policy) and a constructor argument, so tests and
// simulations can drive time (manual_clock, or a clock of their own that steps the wall time).
// The sans-I/O machines take no clock: they take an `instant` (both readings) as their `now`.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>

namespace twamp {

// Both readings of one moment: `wall` in nanoseconds since the Unix epoch (UTC), `mono` in
// nanoseconds of a monotonic clock with an arbitrary origin. Built from a single nanoseconds
// value, both readings are that value: what a test that drives time by hand usually wants, and
// what keeps every caller written before the split compiling and behaving as before.
struct instant {
    std::chrono::nanoseconds wall{0};
    std::chrono::nanoseconds mono{0};

    constexpr instant() noexcept = default;
    constexpr instant(std::chrono::nanoseconds wall_, std::chrono::nanoseconds mono_) noexcept
        : wall(wall_), mono(mono_)
    {
    }
    // Implicit on purpose (see above); any duration that converts to nanoseconds without loss.
    template <class Rep, class Period>
    requires std::convertible_to<std::chrono::duration<Rep, Period>, std::chrono::nanoseconds>
    constexpr instant(std::chrono::duration<Rep, Period> both) noexcept : wall(both), mono(both) {}

    friend constexpr bool operator==(const instant&, const instant&) noexcept = default;
};

// What a clock policy provides. Both functions may be called on any thread the adapter runs on.
template <class C>
concept clock_policy = std::copy_constructible<C> && requires(const C& c)
{
    {
        c.wall_now()
        } -> std::same_as<std::chrono::nanoseconds>;
    {
        c.mono_now()
        } -> std::same_as<std::chrono::nanoseconds>;
};

template <clock_policy C> instant now_of(const C& c)
{
    // Monotonic first: a deadline computed from this instant is never later than it should be.
    const auto mono = c.mono_now();
    return {c.wall_now(), mono};
}

// The system's clocks: CLOCK_REALTIME (system_clock, whose epoch is the Unix epoch since C++20)
// and CLOCK_MONOTONIC (steady_clock). Stateless.
struct system_clock_policy {
    std::chrono::nanoseconds wall_now() const noexcept
    {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::system_clock::now().time_since_epoch());
    }
    std::chrono::nanoseconds mono_now() const noexcept
    {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now().time_since_epoch());
    }
};

// A clock that moves only when told. Copies share one time, so a test keeps a copy and moves
// the time of the object it handed the clock to. The two readings move independently: step the
// wall time (set_wall, step_wall) to simulate an NTP step; advance() moves both, as real time
// does. Safe to read and move from different threads.
class manual_clock {
public:
    explicit manual_clock(std::chrono::nanoseconds wall = std::chrono::seconds{1'700'000'000},
                          std::chrono::nanoseconds mono = std::chrono::seconds{1000})
        : s_(std::make_shared<state>())
    {
        s_->wall = wall.count();
        s_->mono = mono.count();
    }

    std::chrono::nanoseconds wall_now() const noexcept
    {
        return std::chrono::nanoseconds{s_->wall};
    }
    std::chrono::nanoseconds mono_now() const noexcept
    {
        return std::chrono::nanoseconds{s_->mono};
    }
    instant now() const noexcept { return now_of(*this); }

    // Real time passes: both readings move by d (d >= 0; the monotonic clock never goes back).
    void advance(std::chrono::nanoseconds d) noexcept
    {
        if (d.count() < 0) return;
        s_->mono += d.count();
        s_->wall += d.count();
    }
    // The wall clock is stepped (either way); monotonic time does not move.
    void step_wall(std::chrono::nanoseconds d) noexcept { s_->wall += d.count(); }
    void set_wall(std::chrono::nanoseconds t) noexcept { s_->wall = t.count(); }

private:
    struct state {
        std::atomic<std::int64_t> wall{0};
        std::atomic<std::int64_t> mono{0};
    };
    std::shared_ptr<state> s_;
};

static_assert(clock_policy<system_clock_policy>);
static_assert(clock_policy<manual_clock>);

} // namespace twamp
