// apr inspect / tensors / validate: what a model file holds, tensor by tensor, and whether it is sound.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "apr/format/apr_layout.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_shards.hpp"
#include "apr/format/apr_v1.hpp"
#include "apr/format/crypto.hpp"
#include "apr/format/detect.hpp"
#include "apr/format/tensor_values.hpp"
#include "apr/models/mixture_of_experts.hpp"
#include "apr/models/model_text.hpp"
#include "apr/models/moe_input.hpp"
#include "cli.hpp"
#include "model_file.hpp"

namespace apr::cli {
namespace {

std::string flag_names(uint16_t flags) {
  static const std::pair<uint16_t, const char*> names[] = {
      {format::apr_v2::kLz4Compressed, "LZ4_COMPRESSED"}, {format::apr_v2::kZstdCompressed, "ZSTD_COMPRESSED"},
      {format::apr_v2::kEncrypted, "ENCRYPTED"},         {format::apr_v2::kSigned, "SIGNED"},
      {format::apr_v2::kSharded, "SHARDED"},             {format::apr_v2::kQuantized, "QUANTIZED"},
      {format::apr_v2::kHasFilterbank, "HAS_FILTERBANK"}, {format::apr_v2::kHasModelCard, "HAS_MODEL_CARD"},
      {format::apr_v2::kStreaming, "STREAMING"},         {format::apr_v2::kHasVocab, "HAS_VOCAB"},
      {format::apr_v2::kLayoutRowMajor, "LAYOUT_ROW_MAJOR"}, {format::apr_v2::kLayoutColumnMajor, "LAYOUT_COLUMN_MAJOR"}};
  std::string out;
  for (const auto& [bit, name] : names) {
    if (flags & bit) out += (out.empty() ? "" : "|") + std::string(name);
  }
  return out.empty() ? "none" : out;
}

/// apr validate's signature, encryption and compression checks of an APR file: adds what passed
/// and failed, fills `state`, and returns how to open the file (nullopt: encrypted and no
/// passphrase, so only the structure and footer are checked, here).
std::optional<format::AprOpenOptions> check_apr_security(const std::string& path, const std::string& public_key, const std::string& passphrase_file,
                                                         nlohmann::json& state, std::vector<std::string>& passed, std::vector<std::string>& problems) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return format::AprOpenOptions{};
  auto contents = format::parse_apr(mapped->bytes(), path);
  if (!contents) return format::AprOpenOptions{};
  std::set<std::string> codecs;
  for (const auto& entry : contents->entries) {
    if (entry.payload && entry.payload->codec != format::Codec::none) codecs.insert(std::string(format::codec_name(entry.payload->codec)));
  }
  const bool encrypted = contents->flags & format::apr_v2::kEncrypted;
  state = {{"signed", contents->signature.has_value()}, {"encrypted", encrypted}, {"compressed_with", codecs}};
  if (contents->signature) state["signer_key"] = format::to_hex(contents->signature->public_key);
  if (!public_key.empty()) {
    auto key = format::read_public_key(public_key);
    auto verified = key ? format::verify_apr_signature(*contents, mapped->bytes(), *key, path) : Result<void>(key.error());
    if (verified) passed.push_back(fmt::format("Ed25519 signature by {}", format::to_hex(*key)));
    else problems.push_back(verified.error().message);
    state["signature"] = verified ? "verified" : "INVALID";
  } else if (contents->signature) {
    state["signature"] = "present, not verified (give --public-key)";
  }
  if (!encrypted) return format::AprOpenOptions{};
  state["encryption"] = contents->metadata.value("encryption", nlohmann::json::object());
  auto passphrase = read_passphrase(passphrase_file);
  if (passphrase) return format::passphrase_options(*passphrase, path);
  state["tensors"] = "encrypted: not decoded (give --passphrase-file or APR_PASSPHRASE)";
  passed.push_back("structure: header, metadata, index, payload headers, offsets, sizes, alignment, overlaps");
  const uint32_t crc = format::crc32(mapped->bytes().first(contents->footer_offset));
  if (crc == contents->footer_checksum) passed.push_back("footer CRC-32");
  else problems.push_back(fmt::format("{}: footer checksum at offset {:#x} is {:#010x}, the file's CRC-32 is {:#010x}", path, contents->footer_offset, contents->footer_checksum, crc));
  return std::nullopt;
}

/// Experts and top-k of a mixture-of-experts model (from the file's metadata, or the config.json
/// of its folder), or null for a dense one.
nlohmann::json experts_summary(const std::string& path, const format::TensorFile& file) {
  nlohmann::json config = file.metadata();
  std::error_code ec;
  const auto folder = std::filesystem::is_directory(path, ec) ? std::filesystem::path(path) : std::filesystem::path(path).parent_path();
  if (!config.contains("num_experts") && std::filesystem::exists(folder / "config.json", ec)) {
    std::ifstream in(folder / "config.json");
    config = nlohmann::json::parse(in, nullptr, false);
  }
  if (!config.is_object() || !config.contains("num_experts") || !config["num_experts"].is_number_unsigned() || config["num_experts"] == 0) return nullptr;
  nlohmann::json summary = {{"num_experts", config["num_experts"]}, {"top_k", config.value("num_experts_per_tok", nlohmann::json())}};
  for (const char* key : {"moe_intermediate_size", "shared_expert_intermediate_size", "norm_topk_prob"}) {
    if (config.contains(key)) summary[key] = config[key];
  }
  return summary;
}

/// What --router-stats routes by default: ordinary English, enough tokens to spread over experts.
constexpr const char* kRoutingSample =
    "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step. "
    "Numbers such as 3.14159 and 2024, code like for (int i = 0; i < n; ++i), and names like Marie Curie.";

/// Runs `prompt` (or `prompt_ids` when given) through the language model at `path` and returns
/// its router statistics.
Result<nlohmann::json> routing_statistics(const std::string& path, const std::string& prompt, std::vector<int32_t> ids) {
  auto loaded = models::load_language_model(path);
  if (!loaded) return std::move(loaded).error();
  if (loaded->model->expert_statistics().is_null()) {
    return make_error(ErrorCode::invalid_argument, "{}: --router-stats needs a mixture-of-experts model (this is {})", path, loaded->model->architecture());
  }
  if (ids.empty()) {
    auto tokenizer = models::tokenizer_for(*loaded);
    if (!tokenizer) return tokenizer.error().with_context("--router-stats (give --prompt-ids for a model without a tokenizer)");
    ids = tokenizer->encode(prompt);
  }
  if (ids.empty()) return make_error(ErrorCode::invalid_argument, "--prompt: no tokens to route");
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= loaded->model->vocab_size()) {
      return make_error(ErrorCode::invalid_argument, "--prompt-ids: id {} is outside the vocabulary of {}", id, loaded->model->vocab_size());
    }
  }
  auto sequence = loaded->model->new_sequence(ids.size());
  std::vector<float> logits(loaded->model->vocab_size());
  if (auto status = loaded->model->forward(*sequence, ids, logits); !status) return std::move(status).error();
  return loaded->model->expert_statistics();
}

/// Routes the input rows of the JSON file `input_path` (an array of rows, or {"inputs": rows})
/// through the mixture-of-experts ensemble at `path` and returns its router statistics.
Result<nlohmann::json> ensemble_routing_statistics(const std::string& path, const std::string& input_path) {
  if (input_path.empty()) {
    return make_error(ErrorCode::invalid_argument, "{}: --router-stats of a mixture-of-experts ensemble needs --input ROWS.json (an array of input rows)", path);
  }
  auto ensemble = models::MixtureOfExperts::open(path);
  if (!ensemble) return std::move(ensemble).error();
  auto text = text::read_text_file(input_path);
  if (!text) return std::move(text).error();
  auto body = nlohmann::json::parse(*text, nullptr, false);
  if (body.is_discarded()) return make_error(ErrorCode::format, "{}: not valid JSON", input_path);
  const nlohmann::json& rows = body.is_object() && body.contains("inputs") ? body["inputs"] : body;
  auto inputs = models::moe_input_rows(rows, (*ensemble)->input_size(), input_path);
  if (!inputs) return std::move(inputs).error();
  auto prediction = (*ensemble)->predict_batch(*inputs, rows.size());
  if (!prediction) return std::move(prediction).error().with_context(path);
  return (*ensemble)->statistics_json();
}

/// Prints an ensemble's router statistics.
void print_ensemble_routing(const nlohmann::json& routing) {
  fmt::print("  routing of {} inputs (top-{} of {} experts): load-balance loss {:.4f}, entropy {:.3f}, capacity overflow {}\n",
             routing["inputs"].dump(), routing["top_k"].dump(), routing["num_experts"].dump(), routing["load_balance_loss"].get<double>(),
             routing["routing_entropy"].get<double>(), routing["capacity_overflow"].dump());
  fmt::print("    routings per expert {}\n", routing["tokens_per_expert"].dump());
}

/// Prints router statistics as a table per layer.
void print_routing(const nlohmann::json& routing) {
  fmt::print("  routing of {} tokens: load-balance loss {:.4f}, entropy {:.3f}, capacity overflow {}\n",
             routing["layers"].empty() ? 0 : routing["layers"][0]["tokens"].get<size_t>(), routing["load_balance_loss"].get<double>(),
             routing["routing_entropy"].get<double>(), routing["capacity_overflow"].dump());
  for (const auto& layer : routing["layers"]) {
    fmt::print("    layer {:3}: tokens per expert {}\n", layer["layer"].get<size_t>(), layer["tokens_per_expert"].dump());
  }
}

/// `apr inspect` of an APR v1 file: its header, metadata and verified checksum (and signature).
int inspect_apr_v1(const std::string& path, bool json) {
  auto file = format::AprV1File::open(path);
  if (!file) return report(file.error());
  nlohmann::json out = file->summary();
  out["path"] = path;
  if (file->contents().is_signed()) {
    auto verified = format::verify_apr_v1_signature(file->contents(), path);
    if (!verified) return report(verified.error());
    out["signature"] = {{"algorithm", "ed25519"}, {"public_key", format::to_hex(file->contents().public_key)}, {"verified", true}};
  }
  if (json) {
    print_json(out);
    return int{kOk};
  }
  fmt::print("{} (APR v1 {}, a classic ML model: {})\n", path, out["version"].get<std::string>(), out["model_type"].get<std::string>());
  fmt::print("  metadata {} bytes, payload {} bytes ({} when decompressed), compression {}, checksum {} ok\n", out["metadata_size"].get<uint32_t>(),
             out["payload_size"].get<uint32_t>(), out["uncompressed_size"].get<uint32_t>(), out["compression"].get<std::string>(),
             out["checksum"].get<std::string>());
  if (!out["flags"].empty()) fmt::print("  flags: {}\n", fmt::join(out["flags"].get<std::vector<std::string>>(), ", "));
  if (out.contains("signature")) fmt::print("  signed by {} (signature verified)\n", out["signature"]["public_key"].get<std::string>());
  for (const auto& [key, value] : out["metadata"].items()) fmt::print("  {}: {}\n", key, value.is_string() ? value.get<std::string>() : value.dump());
  return int{kOk};
}

}  // namespace

void register_file_commands(CLI::App& app, Registry& registry) {
  {
    struct Flags {
      std::string path;
      bool json = false;
      bool router_stats = false;
      std::string input;
      std::string prompt = kRoutingSample;
      std::vector<int32_t> prompt_ids;
    };
    auto flags = std::make_shared<Flags>();
    auto* inspect = app.add_subcommand("inspect", "Show a model file's header, metadata, tensor count, parameters and size by dtype");
    inspect->add_option("file", flags->path, "APR, SafeTensors (or index) file, or model folder")->required();
    inspect->add_flag("--json", flags->json, "print JSON");
    inspect->add_flag("--router-stats", flags->router_stats, "MoE models: run --prompt (ensembles: --input rows) and report the routing (tokens per expert, load-balance loss, entropy, overflow)");
    inspect->add_option("--prompt", flags->prompt, "text routed for --router-stats (default: a short English paragraph)");
    inspect->add_option("--prompt-ids", flags->prompt_ids, "token ids routed for --router-stats instead of text (models without a tokenizer)")->delimiter(',');
    inspect->add_option("--input", flags->input, "mixture-of-experts ensembles: a JSON file of input rows routed for --router-stats");
    registry.add(inspect, [flags] {
      if (auto detected = format::detect_format(flags->path); detected && *detected == format::FileFormat::apr_v1) return inspect_apr_v1(flags->path, flags->json);
      auto file = open_any(flags->path);
      if (!file) return report(file.error());
      std::map<std::string, std::tuple<size_t, uint64_t, uint64_t>> by_dtype;  // tensors, params, bytes
      uint64_t params = 0, bytes = 0;
      for (const auto& t : (*file)->tensors()) {
        auto& [count, p, b] = by_dtype[std::string(to_string(t.dtype))];
        ++count;
        p += t.numel();
        b += t.bytes.size();
        params += t.numel();
        bytes += t.bytes.size();
      }
      nlohmann::json out = {{"path", flags->path}, {"format", std::string((*file)->format())}, {"tensor_count", (*file)->tensors().size()},
                            {"parameters", params}, {"tensor_bytes", bytes}, {"metadata", (*file)->metadata()}};
      if (auto experts = experts_summary(flags->path, **file); !experts.is_null()) out["experts"] = experts;
      if (flags->router_stats) {
        const auto& type = (*file)->metadata().contains("model_type") ? (*file)->metadata()["model_type"] : nlohmann::json();
        const bool ensemble = type.is_string() && type.get<std::string>() == models::kMixtureOfExpertsType;
        auto routing = ensemble ? ensemble_routing_statistics(flags->path, flags->input)
                                : routing_statistics(flags->path, flags->prompt, flags->prompt_ids);
        if (!routing) return report(routing.error());
        out["router_statistics"] = std::move(routing).value();
      }
      for (const auto& [dtype, entry] : by_dtype) {
        out["dtypes"][dtype] = {{"tensors", std::get<0>(entry)}, {"parameters", std::get<1>(entry)}, {"bytes", std::get<2>(entry)}};
      }
      if (const auto* apr_file = dynamic_cast<const format::AprFile*>(file->get())) {
        const auto& c = apr_file->contents();
        out["header"] = {{"version", fmt::format("{}.{}", c.version_major, c.version_minor)}, {"flags", c.flags},
                         {"flag_names", flag_names(c.flags)}, {"metadata_offset", c.metadata_offset}, {"metadata_size", c.metadata_size},
                         {"tensor_index_offset", c.index_offset}, {"data_offset", c.data_offset},
                         {"header_checksum", fmt::format("{:#010x}", c.header_checksum)}, {"footer_checksum", fmt::format("{:#010x}", c.footer_checksum)},
                         {"file_size", apr_file->bytes().size()}};
      }
      if (flags->json) {
        print_json(out);
        return int{kOk};
      }
      fmt::print("{} ({})\n", flags->path, out["format"].get<std::string>());
      if (out.contains("header")) {
        const auto& h = out["header"];
        fmt::print("  version {}, flags {} ({}), data at {:#x}, file {} bytes\n", h["version"].get<std::string>(), h["flags"].get<int>(),
                   h["flag_names"].get<std::string>(), h["data_offset"].get<uint64_t>(), h["file_size"].get<uint64_t>());
      }
      fmt::print("  {} tensors, {} parameters, {:.1f} MB of tensor data\n", out["tensor_count"].get<size_t>(), params, bytes / 1e6);
      for (const auto& [dtype, entry] : by_dtype) {
        fmt::print("    {:7} {:5} tensors {:12} params {:10.1f} MB\n", dtype, std::get<0>(entry), std::get<1>(entry), std::get<2>(entry) / 1e6);
      }
      if (out.contains("experts")) {
        fmt::print("  mixture of experts: {} experts, top-{} per token\n", out["experts"]["num_experts"].dump(), out["experts"]["top_k"].dump());
      }
      if (out.contains("router_statistics")) {
        if (out["router_statistics"].contains("layers")) print_routing(out["router_statistics"]);
        else print_ensemble_routing(out["router_statistics"]);
      }
      for (const auto& [key, value] : (*file)->metadata().items()) {
        if (value.is_null()) continue;
        std::string text = value.is_string() ? value.get<std::string>() : value.dump();
        if (text.size() > 100) text = text.substr(0, 97) + "...";
        for (char& c : text) {
          if (c == '\n') c = ' ';
        }
        fmt::print("  {}: {}\n", key, text);
      }
      return int{kOk};
    });
  }
  {
    struct Flags {
      std::string path, filter;
      size_t limit = 0;
      bool stats = false, json = false;
    };
    auto flags = std::make_shared<Flags>();
    auto* tensors = app.add_subcommand("tensors", "List tensors: name, dtype, shape, size, offset (and statistics)");
    tensors->add_option("file", flags->path, "APR, SafeTensors (or index) file, or model folder")->required();
    tensors->add_option("--filter", flags->filter, "only names containing this text");
    tensors->add_option("--limit", flags->limit, "at most this many tensors");
    tensors->add_flag("--stats", flags->stats, "mean, std, min, max, NaN and Inf counts per tensor");
    tensors->add_flag("--json", flags->json, "print JSON");
    registry.add(tensors, [flags] {
      auto file = open_any(flags->path);
      if (!file) return report(file.error());
      nlohmann::json out = nlohmann::json::array();
      size_t shown = 0;
      for (const auto& t : (*file)->tensors()) {
        if (!flags->filter.empty() && t.name.find(flags->filter) == std::string_view::npos) continue;
        if (flags->limit != 0 && shown == flags->limit) break;
        ++shown;
        nlohmann::json row = {{"name", std::string(t.name)}, {"dtype", std::string(to_string(t.dtype))},
                              {"shape", std::vector<uint64_t>(t.shape.dims().begin(), t.shape.dims().end())}, {"bytes", t.bytes.size()}};
        if (auto offset = (*file)->data_offset(t)) row["offset"] = *offset;
        if (flags->stats) {
          auto stats = tensor_stats(t);
          if (stats) {
            row["stats"] = {{"mean", stats->mean}, {"std", stats->std}, {"min", stats->min}, {"max", stats->max}, {"nan", stats->nan}, {"inf", stats->inf}};
          } else {
            row["stats"] = {{"error", stats.error().message}};
          }
        }
        if (flags->json) {
          out.push_back(row);
          continue;
        }
        fmt::print("{:60} {:7} {:20} {:>12}", t.name, to_string(t.dtype), to_string(t.shape), t.bytes.size());
        if (row.contains("offset")) fmt::print(" @{:#x}", row["offset"].get<uint64_t>());
        if (flags->stats && row["stats"].contains("mean")) {
          const auto& s = row["stats"];
          fmt::print("  mean {:+.4g} std {:.4g} min {:+.4g} max {:+.4g} nan {} inf {}", s["mean"].get<double>(), s["std"].get<double>(),
                     s["min"].get<double>(), s["max"].get<double>(), s["nan"].get<size_t>(), s["inf"].get<size_t>());
        }
        fmt::print("\n");
      }
      if (flags->json) print_json(out);
      return int{kOk};
    });
  }
  {
    struct Flags {
      std::string path, public_key, passphrase_file;
      bool json = false;
    };
    auto flags = std::make_shared<Flags>();
    auto* validate = app.add_subcommand("validate", "Check a model file's structure and checksums (exit 1 listing the problems)");
    validate->add_option("file", flags->path, "APR or SafeTensors file")->required();
    validate->add_option("--public-key", flags->public_key, "APR: also verify the file's Ed25519 signature against this key file");
    validate->add_option("--passphrase-file", flags->passphrase_file, "APR: decrypt an encrypted file's tensors to check them (else $APR_PASSPHRASE)");
    validate->add_flag("--json", flags->json, "print JSON");
    registry.add(validate, [flags] {
      std::vector<std::string> problems;
      std::vector<std::string> passed;
      std::error_code ec;
      if (!std::filesystem::exists(flags->path, ec)) return report(make_error(ErrorCode::not_found, "{}: no such file", flags->path));
      nlohmann::json security;
      std::optional<format::AprOpenOptions> options = format::AprOpenOptions{};
      if (auto detected = format::detect_format(flags->path); detected && *detected == format::FileFormat::apr_v2) {
        options = check_apr_security(flags->path, flags->public_key, flags->passphrase_file, security, passed, problems);
      }
      Result<std::unique_ptr<format::TensorFile>> file = std::unique_ptr<format::TensorFile>();
      if (options && !security.is_null()) {
        auto apr_file = format::AprFile::open(flags->path, *options);
        if (apr_file) file = std::unique_ptr<format::TensorFile>(std::move(apr_file).value());
        else file = std::move(apr_file).error();
      } else if (options) {
        file = open_any(flags->path);
      }
      if (options && !file) {
        if (file.error().code == ErrorCode::io || file.error().code == ErrorCode::not_found) return report(file.error());
        problems.push_back(file.error().message);
      } else if (options) {  // without options the file is encrypted and its structure was checked above
        passed.push_back("structure: header, metadata, index, offsets, sizes, alignment, overlaps");
        if (const auto* apr_file = dynamic_cast<const format::AprFile*>(file->get())) {
          if (auto checksum = apr_file->verify_checksum()) passed.push_back("footer CRC-32");
          else problems.push_back(checksum.error().message);
        }
        if (const auto* sharded = dynamic_cast<const format::AprShardedFile*>(file->get())) {
          passed.push_back(fmt::format("manifest: {} shards, each the shard it says, no tensor missing or duplicated", sharded->shards().size()));
          if (auto checksums = sharded->verify_checksums()) passed.push_back("footer CRC-32 of every shard");
          else problems.push_back(checksums.error().message);
        }
        for (const auto& t : (*file)->tensors()) {
          auto stats = tensor_stats(t);
          if (stats && (stats->nan > 0 || stats->inf > 0)) {
            problems.push_back(fmt::format("tensor '{}' has {} NaN and {} Inf values", t.name, stats->nan, stats->inf));
          }
        }
        passed.push_back("no NaN or Inf in tensors apr can decode");
      }
      const bool valid = problems.empty();
      if (flags->json) {
        print_json({{"path", flags->path}, {"valid", valid}, {"problems", problems}, {"checks_passed", passed}, {"security", security}});
      } else {
        if (!security.is_null()) {
          fmt::print("signed: {}{}, encrypted: {}, compressed: {}\n", security["signed"].get<bool>() ? "yes" : "no",
                     security.contains("signature") ? fmt::format(" ({})", security["signature"].get<std::string>()) : std::string(),
                     security["encrypted"].get<bool>() ? (security.contains("tensors") ? "yes (tensors not decoded: no passphrase)" : "yes (AES-256-GCM, decrypted)") : "no",
                     security["compressed_with"].empty() ? std::string("no") : fmt::format("{}", fmt::join(security["compressed_with"].get<std::vector<std::string>>(), ", ")));
        }
        for (const auto& p : passed) fmt::print("ok: {}\n", p);
        for (const auto& p : problems) fmt::print("FAIL: {}\n", p);
        fmt::print("{}: {}\n", flags->path, valid ? "valid" : "INVALID");
      }
      return valid ? int{kOk} : int{kValidationFailed};
    });
  }
}

}  // namespace apr::cli
