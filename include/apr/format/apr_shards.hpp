/// @file apr_shards.hpp
/// @brief Sharded APR models: a manifest (`<stem>.apr.index.json`, aprender's ShardManifest as
/// pretty JSON) naming complete v2 shard files `<stem>-00001-of-00003.apr`, each with a
/// `sharding` block in its metadata. Writing streams every tensor once; opening the manifest
/// gives one TensorFile over all shards, after checking that each shard exists, is the shard
/// the manifest says, and holds exactly the tensors listed for it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/mapped_file.hpp"
#include "apr/core/result.hpp"
#include "apr/format/apr_layout.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/tensor_file.hpp"

namespace apr::format {

/// One shard's entry in a manifest.
struct AprShardEntry {
  std::string filename;              ///< file beside the manifest
  uint32_t index = 0;                ///< 0-based position
  uint64_t size = 0;                 ///< file size in bytes
  std::vector<std::string> tensors;  ///< names stored in it (sorted)
};

/// aprender's ShardManifest: version "2.0", shard and tensor counts, total tensor bytes, the
/// shards, and the weight map (tensor name -> shard index).
struct AprShardManifest {
  uint64_t total_size = 0;                     ///< bytes of tensor data over all shards
  std::vector<AprShardEntry> shards;           ///< in index order
  std::map<std::string, uint32_t> weight_map;  ///< tensor -> shard index

  /// The manifest as aprender serialises it (pretty JSON, its key order).
  [[nodiscard]] std::string to_json_text() const {
    nlohmann::ordered_json j;
    j["version"] = "2.0";
    j["shard_count"] = shards.size();
    j["total_size"] = total_size;
    j["tensor_count"] = weight_map.size();
    j["shards"] = nlohmann::ordered_json::array();
    for (const auto& s : shards) j["shards"].push_back({{"filename", s.filename}, {"index", s.index}, {"size", s.size}, {"tensors", s.tensors}});
    j["weight_map"] = nlohmann::ordered_json::object();
    for (const auto& [name, index] : weight_map) j["weight_map"][name] = index;
    return j.dump(2) + "\n";
  }
};

/// Parses and cross-checks a manifest: counts, indices in order, plain file names, every
/// tensor in exactly one shard and the weight map agreeing with the shard lists.
inline Result<AprShardManifest> parse_apr_manifest(std::string_view text, std::string_view source) {
  const auto fail = [&](std::string message) { return Error{ErrorCode::format, fmt::format("{}: {}", source, message)}; };
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("not a JSON object (expected an APR shard manifest)");
  if (!j.contains("version") || j["version"] != "2.0") return fail("version must be \"2.0\"");
  for (const char* key : {"shard_count", "total_size", "tensor_count"}) {
    if (!j.contains(key) || !j[key].is_number_unsigned()) return fail(fmt::format("{} must be a non-negative integer", key));
  }
  if (!j.contains("shards") || !j["shards"].is_array()) return fail("shards must be an array");
  if (!j.contains("weight_map") || !j["weight_map"].is_object()) return fail("weight_map must be an object");
  AprShardManifest m;
  m.total_size = j["total_size"].get<uint64_t>();
  const auto& shards = j["shards"];
  if (j["shard_count"].get<uint64_t>() != shards.size()) return fail(fmt::format("shard_count is {}, but shards lists {}", j["shard_count"].dump(), shards.size()));
  std::map<std::string, uint32_t> owner;
  for (size_t i = 0; i < shards.size(); ++i) {
    const auto& s = shards[i];
    const auto field = [&](const char* key) { return fmt::format("shards[{}].{}", i, key); };
    if (!s.is_object()) return fail(fmt::format("shards[{}] must be an object", i));
    if (!s.contains("filename") || !s["filename"].is_string()) return fail(field("filename") + " must be a string");
    if (!s.contains("index") || !s["index"].is_number_unsigned() || s["index"].get<uint64_t>() != i) return fail(field("index") + fmt::format(" must be {}", i));
    if (!s.contains("size") || !s["size"].is_number_unsigned()) return fail(field("size") + " must be a non-negative integer");
    if (!s.contains("tensors") || !s["tensors"].is_array()) return fail(field("tensors") + " must be an array of names");
    AprShardEntry entry{s["filename"].get<std::string>(), static_cast<uint32_t>(i), s["size"].get<uint64_t>(), {}};
    if (entry.filename.empty() || entry.filename.find('/') != std::string::npos || entry.filename.find('\\') != std::string::npos || entry.filename == "." ||
        entry.filename == "..") {
      return fail(fmt::format("{} '{}' is not a file name beside the manifest", field("filename"), entry.filename));
    }
    for (const auto& name : s["tensors"]) {
      if (!name.is_string()) return fail(field("tensors") + " must be an array of names");
      const auto [at, inserted] = owner.emplace(name.get<std::string>(), static_cast<uint32_t>(i));
      if (!inserted) return fail(fmt::format("tensor '{}' is listed in shards {} and {}", at->first, at->second, i));
      entry.tensors.push_back(at->first);
    }
    m.shards.push_back(std::move(entry));
  }
  for (const auto& [name, index] : j["weight_map"].items()) {
    if (!index.is_number_unsigned()) return fail(fmt::format("weight_map.{} must be a shard index", name));
    const auto it = owner.find(name);
    if (it == owner.end()) return fail(fmt::format("weight_map names tensor '{}', which no shard lists", name));
    if (index.get<uint64_t>() != it->second) return fail(fmt::format("weight_map.{} is {}, but shard {} lists it", name, index.dump(), it->second));
    m.weight_map.emplace(name, it->second);
  }
  if (m.weight_map.size() != owner.size()) {
    for (const auto& [name, index] : owner) {
      if (!m.weight_map.contains(name)) return fail(fmt::format("tensor '{}' of shard {} is missing from weight_map", name, index));
    }
  }
  if (j["tensor_count"].get<uint64_t>() != owner.size()) return fail(fmt::format("tensor_count is {}, but the shards list {} tensors", j["tensor_count"].dump(), owner.size()));
  return m;
}

/// The shard file name for `index` (0-based) of `count`: `<stem>-00001-of-00003.apr`.
inline std::string apr_shard_name(std::string_view stem, size_t index, size_t count) { return fmt::format("{}-{:05d}-of-{:05d}.apr", stem, index + 1, count); }

/// The manifest path for an output path `model.apr`: `model.apr.index.json` beside it.
inline std::string apr_manifest_path(const std::string& output) { return output + ".index.json"; }

/// Writes `tensors` as shards of at most `max_shard_bytes` of tensor data each (a bigger tensor
/// gets a shard of its own) beside `output` (`dir/model.apr` gives `dir/model-0000i-of-0000n.apr`
/// and the manifest `dir/model.apr.index.json`, written last, so a crash never leaves a
/// manifest naming missing shards). Every shard carries `metadata` plus its `sharding` block,
/// except that the tokenizer and model card are stored in the first shard only.
/// Returns the manifest.
inline Result<AprShardManifest> write_apr_sharded(const std::string& output, const nlohmann::json& metadata, std::vector<AprWriteTensor> tensors,
                                                  uint64_t max_shard_bytes, uint16_t flags = 0) {
  if (max_shard_bytes == 0) return make_error(ErrorCode::invalid_argument, "{}: the maximum shard size must be positive", output);
  std::sort(tensors.begin(), tensors.end(), [](const AprWriteTensor& a, const AprWriteTensor& b) { return a.name < b.name; });
  for (size_t i = 1; i < tensors.size(); ++i) {
    if (tensors[i].name == tensors[i - 1].name) return make_error(ErrorCode::invalid_argument, "{}: tensor '{}' given twice", output, tensors[i].name);
  }
  std::vector<std::vector<AprWriteTensor>> groups;
  uint64_t in_group = 0, total = 0;
  for (auto& t : tensors) {
    const uint64_t stored = apr_v2::align64(t.size);
    if (groups.empty() || (in_group > 0 && in_group + stored > max_shard_bytes)) {
      groups.emplace_back();
      in_group = 0;
    }
    in_group += stored;
    total += t.size;
    groups.back().push_back(std::move(t));
  }
  if (groups.empty()) groups.emplace_back();
  const std::filesystem::path path(output);
  std::string stem = path.filename().string();
  if (stem.ends_with(".apr")) stem.resize(stem.size() - 4);
  const std::filesystem::path folder = path.parent_path();
  AprShardManifest manifest;
  manifest.total_size = total;
  for (size_t i = 0; i < groups.size(); ++i) {
    AprShardEntry entry{apr_shard_name(stem, i, groups.size()), static_cast<uint32_t>(i), 0, {}};
    for (const auto& t : groups[i]) {
      entry.tensors.push_back(t.name);
      manifest.weight_map.emplace(t.name, static_cast<uint32_t>(i));
    }
    nlohmann::json fields = metadata;
    if (i > 0) {  // the big text artefacts once, in the first shard (whose metadata the manifest reader uses)
      for (const char* key : {"tokenizer.json", "model_card"}) fields.erase(key);
    }
    fields["sharding"] = {{"shard_count", groups.size()}, {"shard_index", i}, {"total_size", total}, {"pattern", stem + "-{:05d}-of-{:05d}.apr"}};
    const std::string shard_path = (folder / entry.filename).string();
    if (auto status = write_apr(shard_path, apr_metadata_text(fields), std::move(groups[i]), static_cast<uint16_t>(flags | apr_v2::kSharded)); !status) return std::move(status).error();
    std::error_code ec;
    entry.size = std::filesystem::file_size(shard_path, ec);
    if (ec) return make_error(ErrorCode::io, "{}: cannot read the size of the shard just written: {}", shard_path, ec.message());
    manifest.shards.push_back(std::move(entry));
  }
  if (auto status = write_file_atomically(apr_manifest_path(output), manifest.to_json_text()); !status) return std::move(status).error();
  return manifest;
}

/// Whether `text` looks like an APR shard manifest (a JSON object with "shards" and "weight_map").
inline bool is_apr_manifest_text(std::string_view text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_object() && j.contains("shards") && j.contains("weight_map") && j.contains("version");
}

/// A sharded APR model opened through its manifest, as one TensorFile (views into each shard's map).
class AprShardedFile final : public TensorFile {
 public:
  /// Opens the manifest at `path` and every shard, verifying each (options apply to every shard).
  static Result<std::unique_ptr<AprShardedFile>> open(const std::string& path, const AprOpenOptions& options = {}) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return std::move(mapped).error();
    auto manifest = parse_apr_manifest(std::string_view(reinterpret_cast<const char*>(mapped->data()), mapped->size()), path);
    if (!manifest) return std::move(manifest).error();
    std::unique_ptr<AprShardedFile> file(new AprShardedFile(path, std::move(manifest).value()));
    const std::filesystem::path folder = std::filesystem::path(path).parent_path();
    const size_t count = file->manifest_.shards.size();
    uint64_t total = 0;
    for (const AprShardEntry& entry : file->manifest_.shards) {
      const std::string shard_path = (folder / entry.filename).string();
      std::error_code ec;
      if (!std::filesystem::exists(shard_path, ec)) return make_error(ErrorCode::not_found, "{}: shard {} '{}' is missing", path, entry.index, shard_path);
      auto shard = AprFile::open(shard_path, options);
      if (!shard) return std::move(shard).error().with_context(fmt::format("{}: shard {}", path, entry.index));
      if ((*shard)->bytes().size() != entry.size) {
        return make_error(ErrorCode::format, "{}: shard {} '{}' is {} bytes, the manifest says {}", path, entry.index, shard_path, (*shard)->bytes().size(), entry.size);
      }
      const nlohmann::json& meta = (*shard)->metadata();
      const nlohmann::json sharding = meta.contains("sharding") && meta["sharding"].is_object() ? meta["sharding"] : nlohmann::json::object();
      const auto number = [&](const char* key) { return sharding.contains(key) ? sharding[key].dump() : std::string("?"); };
      if (number("shard_index") != std::to_string(entry.index) || number("shard_count") != std::to_string(count)) {
        return make_error(ErrorCode::format, "{}: '{}' says it is shard {} of {}, the manifest lists it as shard {} of {}", path, shard_path,
                          number("shard_index"), number("shard_count"), entry.index, count);
      }
      std::set<std::string_view> listed(entry.tensors.begin(), entry.tensors.end());
      for (const TensorView& view : (*shard)->tensors()) {
        if (!listed.erase(view.name)) return make_error(ErrorCode::format, "{}: shard {} holds tensor '{}', which the manifest does not list for it", path, entry.index, view.name);
        file->views_.push_back(view);
        total += view.bytes.size();
      }
      if (!listed.empty()) return make_error(ErrorCode::format, "{}: tensor '{}' is listed for shard {} but missing from '{}'", path, *listed.begin(), entry.index, shard_path);
      file->shards_.push_back(std::move(shard).value());
    }
    if (total != file->manifest_.total_size) return make_error(ErrorCode::format, "{}: total_size is {}, but the shards hold {} bytes of tensors", path, file->manifest_.total_size, total);
    if (!file->shards_.empty()) file->metadata_ = file->shards_.front()->metadata();
    return file;
  }

  [[nodiscard]] std::string_view format() const override { return "apr"; }
  [[nodiscard]] const std::string& path() const override { return path_; }
  [[nodiscard]] std::span<const TensorView> tensors() const override { return views_; }
  [[nodiscard]] const nlohmann::json& metadata() const override { return metadata_; }
  /// The manifest.
  [[nodiscard]] const AprShardManifest& manifest() const { return manifest_; }
  /// Checks every shard's footer CRC-32 (the full-data checksum), naming the failing shard.
  [[nodiscard]] Result<void> verify_checksums() const {
    for (size_t i = 0; i < shards_.size(); ++i) {
      if (auto status = shards_[i]->verify_checksum(); !status) return std::move(status).error().with_context(fmt::format("{}: shard {}", path_, i));
    }
    return ok();
  }
  /// The opened shards, in index order.
  [[nodiscard]] const std::vector<std::unique_ptr<AprFile>>& shards() const { return shards_; }

 private:
  AprShardedFile(std::string path, AprShardManifest manifest) : path_(std::move(path)), manifest_(std::move(manifest)) {}
  std::string path_;
  AprShardManifest manifest_;
  std::vector<std::unique_ptr<AprFile>> shards_;
  std::vector<TensorView> views_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

}  // namespace apr::format
