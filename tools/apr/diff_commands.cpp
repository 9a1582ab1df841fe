// apr diff: two model files compared: metadata, then tensor by tensor (presence, shape, dtype,
// values with max-abs / relative statistics), across formats (GGUF names read as Hugging Face's).
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apr/eval/value_difference.hpp"
#include "cli.hpp"
#include "model_file.hpp"

namespace apr::cli {
namespace {

/// A metadata value shortened for a line of text.
std::string short_value(const nlohmann::json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return text.size() > 60 ? fmt::format("{}... ({} bytes)", text.substr(0, 57), text.size()) : text;
}

}  // namespace

void register_diff_commands(CLI::App& app, Registry& registry) {
  struct Flags {
    std::string first, second, filter;
    double tolerance = 0;
    size_t limit = 0;
    bool no_values = false, json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* diff = app.add_subcommand("diff", "Compare two model files: metadata and every tensor's shape, dtype and values (exit 1 when they differ)");
  diff->add_option("file1", flags->first, "reference: APR, SafeTensors (or index), GGUF file or model folder")->required();
  diff->add_option("file2", flags->second, "compared file (any of those formats)")->required();
  diff->add_option("--tolerance", flags->tolerance, "largest max-abs difference of values still counted as equal")->check(CLI::NonNegativeNumber);
  diff->add_option("--filter", flags->filter, "only tensors whose name contains this text");
  diff->add_option("--limit", flags->limit, "show at most this many tensor rows (all are compared)");
  diff->add_flag("--no-values", flags->no_values, "compare names, shapes and dtypes only, not values");
  diff->add_flag("--json", flags->json, "print JSON");
  registry.add(diff, [flags] {
    auto a = open_any(flags->first);
    if (!a) return report(a.error());
    auto b = open_any(flags->second);
    if (!b) return report(b.error());
    const bool same_format = (*a)->format() == (*b)->format();
    nlohmann::json metadata = nlohmann::json::array();
    const nlohmann::json& ma = (*a)->metadata();
    const nlohmann::json& mb = (*b)->metadata();
    for (const auto& [key, value] : ma.items()) {
      if (!mb.contains(key)) metadata.push_back({{"key", key}, {"only_in", 1}, {"value1", value}});
      else if (mb[key] != value) metadata.push_back({{"key", key}, {"value1", value}, {"value2", mb[key]}});
    }
    for (const auto& [key, value] : mb.items()) {
      if (!ma.contains(key)) metadata.push_back({{"key", key}, {"only_in", 2}, {"value2", value}});
    }

    const auto ta = tensors_by_hf_name(**a), tb = tensors_by_hf_name(**b);
    std::vector<std::string> names;
    for (const auto& [name, tensor] : ta) names.push_back(name);
    for (const auto& [name, tensor] : tb) {
      if (!ta.contains(name)) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    nlohmann::json rows = nlohmann::json::array();
    size_t compared = 0, differing = 0, equal = 0;
    double worst = 0;
    for (const std::string& name : names) {
      if (!flags->filter.empty() && name.find(flags->filter) == std::string::npos) continue;
      const auto ia = ta.find(name), ib = tb.find(name);
      nlohmann::json row = {{"name", name}};
      if (ia == ta.end() || ib == tb.end()) {
        row["status"] = ia == ta.end() ? "only_in_2" : "only_in_1";
        rows.push_back(row);
        ++differing;
        continue;
      }
      const TensorView& x = *ia->second;
      const TensorView& y = *ib->second;
      row["dtype1"] = std::string(to_string(x.dtype));
      row["dtype2"] = std::string(to_string(y.dtype));
      row["shape1"] = std::vector<uint64_t>(x.shape.dims().begin(), x.shape.dims().end());
      row["shape2"] = std::vector<uint64_t>(y.shape.dims().begin(), y.shape.dims().end());
      ++compared;
      if (!(x.shape == y.shape)) {
        row["status"] = "shape";
        rows.push_back(row);
        ++differing;
        continue;
      }
      if (flags->no_values) {
        row["status"] = x.dtype == y.dtype ? "same_layout" : "dtype";
        if (x.dtype != y.dtype) ++differing;
        else ++equal;
        rows.push_back(row);
        continue;
      }
      auto va = format::tensor_to_f32(x);
      auto vb = format::tensor_to_f32(y);
      if (!va || !vb) {
        row["status"] = "undecodable";
        row["error"] = (!va ? va.error() : vb.error()).message;
        rows.push_back(row);
        ++differing;
        continue;
      }
      const auto d = eval::compare_values(*va, *vb);
      row["max_abs"] = d.max_abs;
      row["mean_abs"] = d.mean_abs;
      row["rms"] = d.rms;
      row["relative"] = d.relative;
      row["cosine"] = d.cosine;
      row["differing_values"] = d.differing;
      row["nan_mismatch"] = d.nan_mismatch;
      worst = std::max(worst, d.max_abs);
      const bool beyond = d.max_abs > flags->tolerance || d.nan_mismatch > 0;
      row["status"] = d.differing == 0 ? "identical" : beyond ? "values" : "within_tolerance";
      if (beyond) ++differing;
      else ++equal;
      rows.push_back(row);
    }
    // metadata keys differ between formats by design (GGUF keys vs. HF config fields): only the
    // same format's metadata counts as a difference
    const bool same = differing == 0 && (!same_format || metadata.empty());
    if (flags->json) {
      print_json({{"file1", flags->first}, {"file2", flags->second}, {"format1", std::string((*a)->format())}, {"format2", std::string((*b)->format())},
                  {"metadata", metadata}, {"metadata_compared", same_format}, {"tensors", rows}, {"tensors_compared", compared},
                  {"tensors_differing", differing}, {"tensors_equal", equal}, {"max_abs", worst}, {"tolerance", flags->tolerance}, {"same", same}});
      return same ? int{kOk} : int{kValidationFailed};
    }
    fmt::print("{} ({}) vs {} ({})\n", flags->first, (*a)->format(), flags->second, (*b)->format());
    fmt::print("metadata: {} difference(s){}\n", metadata.size(), same_format ? "" : " (formats differ: listed, not counted)");
    for (const auto& m : metadata) {
      if (m.contains("only_in")) {
        fmt::print("  {} only in file{}: {}\n", m["key"].get<std::string>(), m["only_in"].get<int>(), short_value(m.contains("value1") ? m["value1"] : m["value2"]));
      } else {
        fmt::print("  {}: {} -> {}\n", m["key"].get<std::string>(), short_value(m["value1"]), short_value(m["value2"]));
      }
    }
    size_t shown = 0;
    for (const auto& row : rows) {
      if (row["status"] == "identical" || row["status"] == "same_layout") continue;
      if (flags->limit != 0 && shown++ == flags->limit) {
        fmt::print("  ... (--limit {})\n", flags->limit);
        break;
      }
      const std::string status = row["status"];
      const std::string name = row["name"];
      if (status.starts_with("only_in")) fmt::print("  {:58} only in file{}\n", name, status.back());
      else if (status == "shape") fmt::print("  {:58} shape {} vs {}\n", name, row["shape1"].dump(), row["shape2"].dump());
      else if (status == "dtype") fmt::print("  {:58} dtype {} vs {}\n", name, row["dtype1"].get<std::string>(), row["dtype2"].get<std::string>());
      else if (status == "undecodable") fmt::print("  {:58} {}\n", name, row["error"].get<std::string>());
      else {
        fmt::print("  {:58} {:7}/{:7} max-abs {:.3e} mean-abs {:.3e} rel {:.3e} cos {:.6f}{}\n", name, row["dtype1"].get<std::string>(),
                   row["dtype2"].get<std::string>(), row["max_abs"].get<double>(), row["mean_abs"].get<double>(),
                   row["relative"].is_number() ? row["relative"].get<double>() : 0.0, row["cosine"].get<double>(),
                   status == "within_tolerance" ? "  (within tolerance)" : "");
      }
    }
    fmt::print("{} tensors compared, {} equal{}, {} differing; max-abs {:.3e}: {}\n", compared, equal,
               flags->tolerance > 0 ? fmt::format(" within {:g}", flags->tolerance) : "", differing, worst, same ? "SAME" : "DIFFERENT");
    return same ? int{kOk} : int{kValidationFailed};
  });
}

}  // namespace apr::cli
