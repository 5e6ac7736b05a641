// output.hpp — how the sender and the controller print their report: twampy's table (default),
// --json or --telegraf.
#pragma once

#include "cli_common.hpp"

#include "twamp/report/influx.hpp"
#include "twamp/report/json.hpp"
#include "twamp/report/table.hpp"

#include <cstdio>
#include <string>

namespace twamp_cli {

struct output_options {
    bool json = false;
    bool telegraf = false;
};

inline void add_output_options(CLI::App* sc, output_options& o)
{
    sc->add_flag("--json", o.json, "Print the report as JSON");
    sc->add_flag("--telegraf", o.telegraf, "Print InfluxDB line protocol (for Telegraf)");
}

inline void check_output_options(const output_options& o)
{
    if (o.json && o.telegraf) throw usage_error("--json and --telegraf: choose one output format");
}

inline void emit_report(const twamp::session_stats& st, const twamp::report::session_info& info,
                        const output_options& o)
{
    std::string out;
    if (o.json) out = twamp::report::to_json(st, info).dump(2) + "\n";
    else if (o.telegraf) out = twamp::report::influx(st, info);
    else out = twamp::report::table(st, info);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
}

} // namespace twamp_cli
