/// @file pareto.hpp
/// @brief Pareto report for variants of a model (dtype levels): size, quality and speed, the
/// frontier, a Markdown table and an SVG scatter plot.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace apr::eval {

/// One variant of a model: smaller, better (lower perplexity/KL) and faster is better.
struct Variant {
  std::string name;            ///< e.g. "q4_0"
  double size_bytes = 0;       ///< file size
  double perplexity = 0;       ///< lower is better
  double kl_divergence = 0;    ///< mean KL vs the reference precision, lower is better
  double tokens_per_second = 0;  ///< decode speed, higher is better
  bool on_frontier = false;    ///< set by mark_pareto_frontier
};

/// True when `a` is at least as good as `b` on size, perplexity and speed and better on one.
inline bool dominates(const Variant& a, const Variant& b) {
  const bool no_worse = a.size_bytes <= b.size_bytes && a.perplexity <= b.perplexity && a.tokens_per_second >= b.tokens_per_second;
  const bool better = a.size_bytes < b.size_bytes || a.perplexity < b.perplexity || a.tokens_per_second > b.tokens_per_second;
  return no_worse && better;
}

/// Marks every variant that no other variant dominates.
inline void mark_pareto_frontier(std::vector<Variant>& variants) {
  for (auto& candidate : variants) {
    candidate.on_frontier = std::none_of(variants.begin(), variants.end(),
                                         [&](const Variant& other) { return &other != &candidate && dominates(other, candidate); });
  }
}

/// A Markdown table of the variants (frontier marked), sorted by size.
inline std::string pareto_markdown(std::vector<Variant> variants) {
  std::sort(variants.begin(), variants.end(), [](const Variant& a, const Variant& b) { return a.size_bytes < b.size_bytes; });
  std::string out = "| variant | size (MB) | perplexity | KL vs reference | decode tok/s | Pareto |\n|---|---:|---:|---:|---:|:---:|\n";
  for (const auto& v : variants) {
    out += fmt::format("| {} | {:.1f} | {:.3f} | {:.5f} | {:.1f} | {} |\n", v.name, v.size_bytes / 1e6, v.perplexity,
                       v.kl_divergence, v.tokens_per_second, v.on_frontier ? "yes" : "");
  }
  return out;
}

/// An SVG scatter plot of perplexity (y) against size (x), frontier points filled and joined.
inline std::string pareto_svg(std::vector<Variant> variants, int width = 640, int height = 420) {
  const double margin = 60;
  if (variants.empty()) return fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}"/>)", width, height);
  auto [min_size, max_size] = std::minmax_element(variants.begin(), variants.end(), [](auto& a, auto& b) { return a.size_bytes < b.size_bytes; });
  auto [min_ppl, max_ppl] = std::minmax_element(variants.begin(), variants.end(), [](auto& a, auto& b) { return a.perplexity < b.perplexity; });
  const double x0 = min_size->size_bytes, x1 = std::max(max_size->size_bytes, x0 * 1.0001 + 1);
  const double y0 = min_ppl->perplexity, y1 = std::max(max_ppl->perplexity, y0 * 1.0001 + 1e-9);
  auto px = [&](double size) { return margin + (size - x0) / (x1 - x0) * (width - 2 * margin); };
  auto py = [&](double ppl) { return height - margin - (ppl - y0) / (y1 - y0) * (height - 2 * margin); };
  std::string svg = fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">)", width, height);
  svg += fmt::format(R"(<rect width="{}" height="{}" fill="white"/>)", width, height);
  svg += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="black"/><line x1="{0}" y1="{3}" x2="{0}" y2="{1}" stroke="black"/>)",
                     margin, height - margin, width - margin, margin);
  svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">size (MB)</text>)", width / 2, height - 15);
  svg += fmt::format(R"svg(<text x="15" y="{}" transform="rotate(-90 15 {})" text-anchor="middle">perplexity</text>)svg", height / 2, height / 2);
  std::sort(variants.begin(), variants.end(), [](const Variant& a, const Variant& b) { return a.size_bytes < b.size_bytes; });
  std::string frontier;
  for (const auto& v : variants) {
    if (v.on_frontier) frontier += fmt::format("{:.1f},{:.1f} ", px(v.size_bytes), py(v.perplexity));
  }
  if (!frontier.empty()) svg += fmt::format(R"(<polyline points="{}" fill="none" stroke="steelblue" stroke-dasharray="4 3"/>)", frontier);
  for (const auto& v : variants) {
    svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="5" fill="{}" stroke="steelblue"/>)", px(v.size_bytes), py(v.perplexity),
                       v.on_frontier ? "steelblue" : "white");
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}">{} ({:.0f} tok/s)</text>)", px(v.size_bytes) + 8, py(v.perplexity) - 8, v.name,
                       v.tokens_per_second);
  }
  return svg + "</svg>\n";
}

}  // namespace apr::eval
