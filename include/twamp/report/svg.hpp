// twamp/report/svg.hpp — a smokeping-like SVG chart of the per-interval round-trip time.
//
// Per interval: the p5–p95 spread as a grey band ("smoke"), the median as a line whose colour
// says the interval's loss (green none, blue ≤ 2 %, purple ≤ 10 %, orange ≤ 50 %, red more), and
// intervals with every probe lost shaded red. Axes are labelled with units (µs, ms or s, picked
// from the data; time in s since the start). A standalone SVG 1.1 document, no scripts and no
// external resources, so any browser shows it.
#pragma once

#include "twamp/intervals.hpp"
#include "twamp/report/info.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace twamp::report {

inline std::string xml_escape(std::string_view v)
{
    std::string out;
    for (char c : v) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

// Loss colour bands, as in the legend.
inline const char* svg_loss_colour(double loss_pct)
{
    if (loss_pct <= 0) return "#1a9850";
    if (loss_pct <= 2) return "#1f78b4";
    if (loss_pct <= 10) return "#984ea3";
    if (loss_pct <= 50) return "#ff7f00";
    return "#e31a1c";
}

namespace detail {
// A step of 1, 2 or 5 × 10^k giving about `target` ticks over `range`.
inline double nice_step(double range, int target)
{
    if (!(range > 0)) return 1;
    const double raw = range / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}
inline std::string fmt(const char* f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}
inline std::string tick_label(double v, double step)
{
    const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}
} // namespace detail

inline std::string svg_chart(const std::vector<interval_summary>& bins, std::int64_t period_ns,
                             const session_info& info)
{
    using detail::fmt;
    const double W = 960, H = 440, left = 80, right = 24, top = 56, bottom = 96;
    const double pw = W - left - right, ph = H - top - bottom;
    const double period_s = static_cast<double>(std::max<std::int64_t>(period_ns, 1)) / 1e9;
    const double span_s = std::max<double>(1.0, static_cast<double>(bins.size())) * period_s;

    double ymax_ns = 0;
    for (const auto& b : bins)
        if (b.roundtrip.count) ymax_ns = std::max({ymax_ns, b.roundtrip.p95, b.roundtrip.p50});
    if (!(ymax_ns > 0)) ymax_ns = 1000; // no data: a 1 µs scale, still a valid chart
    const char* unit = "µs";
    double scale = 1e3; // ns per unit
    if (ymax_ns >= 2e9) {
        unit = "s";
        scale = 1e9;
    } else if (ymax_ns >= 2e6) {
        unit = "ms";
        scale = 1e6;
    }
    const double ystep = detail::nice_step(ymax_ns * 1.1 / scale, 5);
    const double ytop = std::ceil(ymax_ns * 1.1 / scale / ystep) * ystep; // in units
    const double xstep = detail::nice_step(span_s, 10);

    auto X = [&](double s) { return left + pw * s / span_s; };
    auto Y = [&](double ns) { return top + ph * (1 - std::clamp(ns / scale / ytop, 0.0, 1.0)); };

    std::string o;
    o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    o += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + fmt("%.0f", W) +
         "\" height=\"" + fmt("%.0f", H) + "\" viewBox=\"0 0 " + fmt("%.0f", W) + " " +
         fmt("%.0f", H) + "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n";
    o += "<rect x=\"0\" y=\"0\" width=\"" + fmt("%.0f", W) + "\" height=\"" + fmt("%.0f", H) +
         "\" fill=\"#ffffff\"/>\n";
    std::string title = "Round-trip time " + info.sender_address + " \xE2\x86\x92 " +
                        info.reflector_address + ":" + std::to_string(info.reflector_port);
    o += "<text x=\"" + fmt("%.1f", left) + "\" y=\"24\" font-size=\"16\" font-weight=\"bold\">" +
         xml_escape(title) + "</text>\n";
    char sub[200];
    std::snprintf(sub, sizeof sub,
                  "median line, p5\xE2\x80\x93p95 band, one bin per %g s, %zu bins", period_s,
                  bins.size());
    o += "<text x=\"" + fmt("%.1f", left) + "\" y=\"42\" fill=\"#555555\">" + xml_escape(sub) +
         "</text>\n";

    // Grid and axes.
    o += "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
    for (double v = 0; v <= ytop + ystep / 2; v += ystep)
        o += "<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + fmt("%.1f", Y(v * scale)) +
             "\" x2=\"" + fmt("%.1f", left + pw) + "\" y2=\"" + fmt("%.1f", Y(v * scale)) +
             "\"/>\n";
    for (double t = 0; t <= span_s + xstep / 2; t += xstep)
        o += "<line x1=\"" + fmt("%.1f", X(t)) + "\" y1=\"" + fmt("%.1f", top) + "\" x2=\"" +
             fmt("%.1f", X(t)) + "\" y2=\"" + fmt("%.1f", top + ph) + "\"/>\n";
    o += "</g>\n";

    // 100 % loss: the whole column shaded red.
    for (const auto& b : bins) {
        if (b.sent == 0 || b.received > 0) continue;
        const double x0 = X(static_cast<double>(b.index) * period_s),
                     x1 = X(static_cast<double>(b.index + 1) * period_s);
        o += "<rect x=\"" + fmt("%.2f", x0) + "\" y=\"" + fmt("%.1f", top) + "\" width=\"" +
             fmt("%.2f", x1 - x0) + "\" height=\"" + fmt("%.1f", ph) +
             "\" fill=\"#e31a1c\" fill-opacity=\"0.18\"/>\n";
    }
    // The smoke: p5-p95 per interval.
    o += "<g fill=\"#9e9e9e\" fill-opacity=\"0.55\">\n";
    for (const auto& b : bins) {
        if (!b.roundtrip.count) continue;
        const double x0 = X(static_cast<double>(b.index) * period_s),
                     x1 = X(static_cast<double>(b.index + 1) * period_s);
        const double y0 = Y(b.roundtrip.p95), y1 = Y(b.roundtrip.p5);
        o += "<rect x=\"" + fmt("%.2f", x0) + "\" y=\"" + fmt("%.2f", y0) + "\" width=\"" +
             fmt("%.2f", x1 - x0) + "\" height=\"" + fmt("%.2f", std::max(1.0, y1 - y0)) + "\"/>\n";
    }
    o += "</g>\n";
    // The median: a thin dark line through the interval centres, then a thick stroke per interval
    // in its loss colour.
    // The line breaks where an interval has no sample, so a gap never looks measured.
    std::string pts;
    auto flush = [&] {
        if (!pts.empty())
            o += "<polyline fill=\"none\" stroke=\"#333333\" stroke-width=\"1\" points=\"" + pts +
                 "\"/>\n";
        pts.clear();
    };
    for (const auto& b : bins) {
        if (!b.roundtrip.count) {
            flush();
            continue;
        }
        pts += fmt("%.2f", X((static_cast<double>(b.index) + 0.5) * period_s)) + "," +
               fmt("%.2f", Y(b.roundtrip.p50)) + " ";
    }
    flush();
    for (const auto& b : bins) {
        if (!b.roundtrip.count) continue;
        const double x0 = X(static_cast<double>(b.index) * period_s),
                     x1 = X(static_cast<double>(b.index + 1) * period_s);
        const double y = Y(b.roundtrip.p50);
        o += "<line x1=\"" + fmt("%.2f", x0) + "\" y1=\"" + fmt("%.2f", y) + "\" x2=\"" +
             fmt("%.2f", x1) + "\" y2=\"" + fmt("%.2f", y) + "\" stroke=\"" +
             svg_loss_colour(b.loss_pct()) + "\" stroke-width=\"3\"/>\n";
    }

    // Axes, ticks and labels.
    o += "<g stroke=\"#333333\" stroke-width=\"1\">\n";
    o += "<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + fmt("%.1f", top) + "\" x2=\"" +
         fmt("%.1f", left) + "\" y2=\"" + fmt("%.1f", top + ph) + "\"/>\n";
    o += "<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + fmt("%.1f", top + ph) + "\" x2=\"" +
         fmt("%.1f", left + pw) + "\" y2=\"" + fmt("%.1f", top + ph) + "\"/>\n";
    o += "</g>\n";
    o += "<g fill=\"#333333\">\n";
    for (double v = 0; v <= ytop + ystep / 2; v += ystep)
        o += "<text x=\"" + fmt("%.1f", left - 6) + "\" y=\"" + fmt("%.1f", Y(v * scale) + 4) +
             "\" text-anchor=\"end\">" + detail::tick_label(v, ystep) + "</text>\n";
    for (double t = 0; t <= span_s + xstep / 2; t += xstep)
        o += "<text x=\"" + fmt("%.1f", X(t)) + "\" y=\"" + fmt("%.1f", top + ph + 16) +
             "\" text-anchor=\"middle\">" + detail::tick_label(t, xstep) + "</text>\n";
    o += "</g>\n";
    o += "<text x=\"" + fmt("%.1f", left + pw / 2) + "\" y=\"" + fmt("%.1f", top + ph + 36) +
         "\" text-anchor=\"middle\" font-size=\"13\">Time since start (s)</text>\n";
    o += "<text transform=\"translate(22," + fmt("%.1f", top + ph / 2) +
         ") rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">Round-trip time (" + unit +
         ")</text>\n";

    // Legend.
    const double ly = H - 22;
    double lx = left;
    o += "<text x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", ly + 4) + "\">loss:</text>\n";
    lx += 40;
    const std::pair<const char*, double> legend[] = {{"0", 0},
                                                     {"\xE2\x89\xA4 2%", 1},
                                                     {"\xE2\x89\xA4 10%", 5},
                                                     {"\xE2\x89\xA4 50%", 20},
                                                     {"> 50%", 80}};
    for (const auto& [label, pct] : legend) {
        o += "<line x1=\"" + fmt("%.1f", lx) + "\" y1=\"" + fmt("%.1f", ly) + "\" x2=\"" +
             fmt("%.1f", lx + 22) + "\" y2=\"" + fmt("%.1f", ly) + "\" stroke=\"" +
             svg_loss_colour(pct) + "\" stroke-width=\"3\"/>\n";
        o += "<text x=\"" + fmt("%.1f", lx + 28) + "\" y=\"" + fmt("%.1f", ly + 4) + "\">" +
             xml_escape(label) + "</text>\n";
        lx += 90;
    }
    o += "<rect x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", ly - 6) +
         "\" width=\"22\" height=\"12\" fill=\"#9e9e9e\" fill-opacity=\"0.55\"/>\n";
    o += "<text x=\"" + fmt("%.1f", lx + 28) + "\" y=\"" + fmt("%.1f", ly + 4) +
         "\">p5\xE2\x80\x93p95</text>\n";
    lx += 90;
    o += "<rect x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", ly - 6) +
         "\" width=\"22\" height=\"12\" fill=\"#e31a1c\" fill-opacity=\"0.18\"/>\n";
    o += "<text x=\"" + fmt("%.1f", lx + 28) + "\" y=\"" + fmt("%.1f", ly + 4) +
         "\">all lost</text>\n";
    o += "</svg>\n";
    return o;
}

} // namespace twamp::report
