// light.hpp — registers the TWAMP Light / STAMP sub-commands (responder, sender).
#pragma once

#include "subcommand.hpp"

namespace twamp_cli {
std::vector<subcommand> register_light(CLI::App& app);
} // namespace twamp_cli
