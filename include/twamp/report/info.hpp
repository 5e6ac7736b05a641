// twamp/report/info.hpp — what a report says about the session besides its statistics.
#pragma once

#include <cstdint>
#include <string>

namespace twamp::report {

struct session_info {
    std::string mode = "twamp-light"; // "twamp-light", "stamp" or "twamp"
    std::string sender_address;
    std::uint16_t sender_port = 0;
    std::string reflector_address;
    std::uint16_t reflector_port = 0;
    std::uint16_t ssid = 0;          // STAMP only
    std::uint32_t scheduled = 0;     // probes the schedule asked for
    bool interrupted = false;        // stopped early by a signal
    std::int64_t end_time_ns = 0;    // Unix-epoch ns when the report was made (Influx timestamp)
};

} // namespace twamp::report
