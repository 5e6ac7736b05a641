// control.hpp — registers the full TWAMP sub-commands (server, controller, controlclient).
#pragma once

#include "subcommand.hpp"

namespace twamp_cli {
std::vector<subcommand> register_control(CLI::App& app);
} // namespace twamp_cli
