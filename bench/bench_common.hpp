// bench/bench_common.hpp — shared main() for the benchmark programs: runs Google Benchmark as
// usual and then prints "ours / baseline" ratios for pairs of benchmarks measured in the same run.
//
// The ratios are computed from the same numbers the normal report shows (real time per iteration,
// or a named counter such as items_per_second), from the median aggregate when repetitions are
// requested and from the single run otherwise. A ratio whose two sides were not both run (a
// --benchmark_filter excluded one) is skipped. --benchmark_format=json still works: the regular
// report goes to stdout as JSON and the ratio table to stderr (the deprecated CSV format is not
// offered; use --benchmark_out_format=csv with --benchmark_out for CSV).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

namespace twamp_bench {

// One comparison: `ours` against `baseline`, both full benchmark names as printed.
// With an empty `counter` the time per iteration (ns) is compared, real and CPU time both;
// otherwise the named counter.
struct ratio_pair {
    std::string ours;
    std::string baseline;
    std::string counter; // "" = time per iteration; e.g. "items_per_second"
};

inline std::vector<ratio_pair>& ratio_pairs()
{
    static std::vector<ratio_pair> v;
    return v;
}

inline void add_ratio(std::string ours, std::string baseline, std::string counter = {})
{
    ratio_pairs().push_back({std::move(ours), std::move(baseline), std::move(counter)});
}

class ratio_reporter final : public benchmark::BenchmarkReporter {
public:
    ratio_reporter(std::unique_ptr<benchmark::BenchmarkReporter> inner, std::ostream& table)
        : inner_(std::move(inner)), table_(table)
    {
    }

    bool ReportContext(const Context& context) override { return inner_->ReportContext(context); }

    void ReportRuns(const std::vector<Run>& reports) override
    {
        inner_->ReportRuns(reports);
        for (const Run& r : reports) {
            if (r.error_occurred) continue;
            const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
            if (r.run_type == Run::RT_Aggregate && !median) continue;
            const std::string name = r.run_name.str();
            auto it = seen_.find(name);
            if (it != seen_.end() && it->second.from_median && !median) continue;
            sample s;
            s.from_median = median;
            s.ns = r.GetAdjustedRealTime() * to_ns(r.time_unit);
            s.cpu_ns = r.GetAdjustedCPUTime() * to_ns(r.time_unit);
            for (const auto& [k, c] : r.counters)
                s.counters[k] = c.value;
            seen_[name] = std::move(s);
        }
    }

    void Finalize() override
    {
        inner_->Finalize();
        print_ratios();
    }

private:
    struct sample {
        bool from_median = false;
        double ns = 0;
        double cpu_ns = 0;
        std::map<std::string, double> counters;
    };

    static double to_ns(benchmark::TimeUnit u)
    {
        switch (u) {
        case benchmark::kNanosecond:
            return 1.0;
        case benchmark::kMicrosecond:
            return 1e3;
        case benchmark::kMillisecond:
            return 1e6;
        case benchmark::kSecond:
            return 1e9;
        }
        return 1.0;
    }

    bool value(const std::string& name, const std::string& counter, double& out) const
    {
        auto it = seen_.find(name);
        if (it == seen_.end()) return false;
        if (counter.empty() || counter == "cpu") {
            out = counter.empty() ? it->second.ns : it->second.cpu_ns;
            return true;
        }
        auto c = it->second.counters.find(counter);
        if (c == it->second.counters.end()) return false;
        out = c->second;
        return true;
    }

    void print_ratios()
    {
        bool header = false;
        for (const ratio_pair& p : ratio_pairs()) {
            double a = 0, b = 0, ac = 0, bc = 0;
            if (!value(p.ours, p.counter, a) || !value(p.baseline, p.counter, b) || b == 0)
                continue;
            const bool time = p.counter.empty();
            if (time && (!value(p.ours, "cpu", ac) || !value(p.baseline, "cpu", bc) || bc == 0))
                continue;
            if (!header) {
                table_ << "\nRatios against the in-run baselines (ours / baseline; for time "
                          "ratio > 1 means ours is slower, for rates ratio < 1 means ours is "
                          "slower)\n";
                header = true;
            }
            char line[512];
            if (time)
                std::snprintf(
                    line, sizeof line,
                    "  %-50s real ns %9.4g / %-9.4g = %6.3f   cpu ns %9.4g / %-9.4g = %6.3f"
                    "  (vs %s)\n",
                    p.ours.c_str(), a, b, a / b, ac, bc, ac / bc, p.baseline.c_str());
            else
                std::snprintf(line, sizeof line, "  %-50s %s %9.4g / %-9.4g = %6.3f  (vs %s)\n",
                              p.ours.c_str(), p.counter.c_str(), a, b, a / b, p.baseline.c_str());
            table_ << line;
        }
        table_.flush();
    }

    std::unique_ptr<benchmark::BenchmarkReporter> inner_;
    std::ostream& table_;
    std::map<std::string, sample> seen_;
};

// Parses --benchmark_format and --benchmark_color before Initialize() consumes it, so the wrapped
// reporter can honour it.
inline int run_main(int argc, char** argv)
{
    std::string format = "console", color = "auto";
    auto flag = [](const char* arg, const char* name, std::string& out) {
        if (std::strncmp(arg, name, std::strlen(name)) == 0) out = arg + std::strlen(name);
    };
    for (int i = 1; i < argc; ++i) {
        flag(argv[i], "--benchmark_format=", format);
        flag(argv[i], "--benchmark_color=", color);
    }
    const bool use_color = color == "true" || color == "yes" || color == "1" ||
                           (color == "auto" && ::isatty(STDOUT_FILENO) != 0);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    std::unique_ptr<benchmark::BenchmarkReporter> inner;
    if (format == "json")
        inner = std::make_unique<benchmark::JSONReporter>();
    else
        inner = std::make_unique<benchmark::ConsoleReporter>(
            use_color ? benchmark::ConsoleReporter::OO_ColorTabular
                      : benchmark::ConsoleReporter::OO_Tabular);
    ratio_reporter rep(std::move(inner), format == "json" ? std::cerr : std::cout);
    benchmark::RunSpecifiedBenchmarks(&rep);
    benchmark::Shutdown();
    return 0;
}

} // namespace twamp_bench
