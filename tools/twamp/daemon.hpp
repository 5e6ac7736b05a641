// daemon.hpp — registers the `twamp daemon` sub-command.
#pragma once

#include "subcommand.hpp"

namespace twamp_cli {
std::vector<subcommand> register_daemon(CLI::App& app);
} // namespace twamp_cli
