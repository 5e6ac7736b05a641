// twamp/version.hpp — the library version.
#pragma once

#define TWAMP_VERSION_MAJOR 0
#define TWAMP_VERSION_MINOR 1
#define TWAMP_VERSION_PATCH 0
#define TWAMP_VERSION_STRING "0.1.0"

namespace twamp {
inline constexpr const char* version() noexcept
{
    return TWAMP_VERSION_STRING;
}
} // namespace twamp
