// twamp — the command-line front end: twampy-compatible sub-commands over the twamp library.
//
//   twamp responder [local-ip:port]                 TWAMP Light / STAMP Session-Reflector
//   twamp sender [remote-ip:port] [local-ip:port]   TWAMP Light / STAMP Session-Sender
//   twamp server [local-ip:port]                    TWAMP Server + Session-Reflector
//   twamp controller [remote-ip:port] [local]       TWAMP Control-Client + Session-Sender
//   twamp controlclient [sender] [server]           TWAMP Control-Client for another sender
//   twamp dscptable                                 DSCP names, values and TOS octets
//   twamp daemon --config FILE                      all of them as a service (RFC 8913 JSON)
//
// Exit status: 0 success; 1 the sender got no reply at all; 2 bad command line; 3 a run-time
// error (address, socket). Ctrl-C (SIGINT) or SIGTERM stop a sender early (it still prints what
// it measured; a second signal ends it without waiting for outstanding replies) and stop a
// responder cleanly.
#include "cli_common.hpp"
#include "control.hpp"
#include "daemon.hpp"
#include "light.hpp"

#include "twamp/dscp.hpp"
#include "twamp/version.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>

using namespace twamp_cli;

int main(int argc, char** argv)
{
    CLI::App app{"twamp " TWAMP_VERSION_STRING
                 " — TWAMP, TWAMP Light and STAMP active measurement (RFC 5357, RFC 8762)"};
    app.set_version_flag("-V,--version", std::string("twamp ") + TWAMP_VERSION_STRING);
    app.require_subcommand(1);

    std::vector<subcommand> commands = register_light(app);
    for (auto& c : register_control(app))
        commands.push_back(std::move(c));
    for (auto& c : register_daemon(app))
        commands.push_back(std::move(c));

    auto* dscptable = app.add_subcommand("dscptable", "Print the DSCP table");
    common_options dopt;
    add_debug_options(dscptable, dopt);
    commands.push_back({dscptable, [] {
                            std::fputs(twamp::dscp_table().c_str(), stdout);
                            return kExitOk;
                        }});

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "twamp: %s\n", e.what());
        return kExitUsage;
    }

    try {
        for (auto& c : commands)
            if (*c.app) return c.run();
    } catch (const usage_error& e) {
        std::fprintf(stderr, "twamp: %s\n", e.what());
        return kExitUsage;
    } catch (const run_failure& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return kExitRuntime;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "twamp: %s\n", e.what());
        return kExitRuntime;
    }
    return kExitUsage;
}
