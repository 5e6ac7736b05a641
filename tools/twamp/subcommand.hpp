// subcommand.hpp — a parsed sub-command and the function that runs it.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace twamp_cli {
struct subcommand {
    CLI::App* app;
    std::function<int()> run;
};
} // namespace twamp_cli
