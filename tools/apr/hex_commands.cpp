// apr hex: an annotated hex dump. APR files are mapped field by field (header, metadata, every
// index entry, tensor data, footer) even when the strict reader refuses them; GGUF and
// SafeTensors files get their header fields and tensor data labelled.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "apr/core/mapped_file.hpp"
#include "apr/format/apr_layout_map.hpp"
#include "apr/format/detect.hpp"
#include "cli.hpp"

namespace apr::cli {
namespace {

/// A labelled byte range of the file.
struct Region {
  uint64_t offset = 0, size = 0;
  std::string label, value;
};

/// The regions of an APR v2 file, in file order.
std::vector<Region> apr_regions(std::span<const std::byte> bytes, std::string& problem) {
  const format::AprLayoutMap map = format::map_apr_layout(bytes);
  problem = map.problem;
  std::vector<Region> out;
  for (const auto& f : map.header) out.push_back({f.offset, f.size, "header." + f.label, f.value});
  if (map.header.empty()) return out;
  if (map.metadata_offset + map.metadata_size <= bytes.size()) out.push_back({map.metadata_offset, map.metadata_size, "metadata", "JSON"});
  for (size_t i = 0; i < map.entries.size(); ++i) {
    for (const auto& f : map.entries[i].fields) out.push_back({f.offset, f.size, fmt::format("index[{}].{}", i, f.label), f.value});
  }
  for (const auto& entry : map.entries) {
    const uint64_t begin = map.data_offset + entry.data_offset;
    if (begin <= map.footer_offset && entry.size <= map.footer_offset - begin) {
      out.push_back({begin, entry.size, "data." + entry.name, fmt::format("{} bytes", entry.size)});
    }
  }
  out.push_back({map.footer_offset, 4, "footer_checksum", fmt::format("{:#010x}", load_unaligned<uint32_t>(bytes.data() + map.footer_offset))});
  return out;
}

/// The regions of a GGUF or SafeTensors file: its fixed header fields and its tensors' data.
Result<std::vector<Region>> tensor_file_regions(const std::string& path, std::span<const std::byte> bytes, format::FileFormat kind) {
  std::vector<Region> out;
  if (kind == format::FileFormat::gguf && bytes.size() >= 24) {
    out.push_back({0, 4, "header.magic", "\"GGUF\""});
    out.push_back({4, 4, "header.version", fmt::format("{}", load_unaligned<uint32_t>(bytes.data() + 4))});
    out.push_back({8, 8, "header.tensor_count", fmt::format("{}", load_unaligned<uint64_t>(bytes.data() + 8))});
    out.push_back({16, 8, "header.metadata_kv_count", fmt::format("{}", load_unaligned<uint64_t>(bytes.data() + 16))});
  } else if (kind == format::FileFormat::safetensors) {
    const uint64_t length = load_unaligned<uint64_t>(bytes.data());
    out.push_back({0, 8, "header.json_length", fmt::format("{}", length)});
    if (length <= bytes.size() - 8) out.push_back({8, length, "header.json", "JSON"});
  }
  auto file = format::open_tensor_file(path);
  if (!file) return std::move(file).error();
  for (const TensorView& tensor : (*file)->tensors()) {
    if (auto offset = (*file)->data_offset(tensor)) {
      out.push_back({*offset, tensor.bytes.size(), "data." + std::string(tensor.name), fmt::format("{} {} bytes", to_string(tensor.dtype), tensor.bytes.size())});
    }
  }
  return out;
}

/// One hex row: offset, bytes in hex, their printable characters.
std::string hex_row(std::span<const std::byte> bytes, uint64_t offset, size_t width) {
  std::string hex, text;
  for (size_t i = 0; i < width; ++i) {
    if (i < bytes.size()) {
      const auto c = static_cast<unsigned char>(bytes[i]);
      hex += fmt::format("{:02x} ", c);
      text += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.';
    } else {
      hex += "   ";
    }
  }
  return fmt::format("{:08x}  {} |{}|", offset, hex, text);
}

std::string hex_bytes(std::span<const std::byte> bytes) {
  std::string out;
  for (std::byte b : bytes) out += fmt::format("{}{:02x}", out.empty() ? "" : " ", static_cast<unsigned>(b));
  return out;
}

}  // namespace

void register_hex_commands(CLI::App& app, Registry& registry) {
  struct Flags {
    std::string path, tensor;
    int64_t offset = -1;
    size_t limit = 32, width = 16;
    bool header = false, json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* hex = app.add_subcommand("hex", "Annotated hex dump: header fields, index entries and tensor data labelled (APR; GGUF, SafeTensors headers)");
  hex->add_option("file", flags->path, "APR, GGUF or SafeTensors file")->required();
  hex->add_option("--tensor", flags->tensor, "dump this tensor's data");
  hex->add_option("--offset", flags->offset, "dump raw bytes from this file offset")->check(CLI::NonNegativeNumber);
  hex->add_option("--limit", flags->limit, "bytes shown per region (or for --tensor / --offset)");
  hex->add_option("--width", flags->width, "bytes per row")->check(CLI::Range(1, 64));
  hex->add_flag("--header", flags->header, "only the header fields");
  hex->add_flag("--json", flags->json, "print the labelled regions as JSON");
  registry.add(hex, [flags] {
    auto kind = format::detect_format(flags->path);
    if (!kind) return report(kind.error());
    if (*kind != format::FileFormat::apr_v2 && *kind != format::FileFormat::gguf && *kind != format::FileFormat::safetensors) {
      return report(make_error(ErrorCode::format, "{}: hex labels APR v2, GGUF and SafeTensors files (this is none of them)", flags->path));
    }
    auto mapped = MappedFile::open(flags->path);
    if (!mapped) return report(mapped.error());
    const auto bytes = mapped->bytes();
    std::string problem;
    std::vector<Region> regions;
    if (*kind == format::FileFormat::apr_v2) {
      regions = apr_regions(bytes, problem);
    } else {
      auto found = tensor_file_regions(flags->path, bytes, *kind);
      if (!found) return report(found.error());
      regions = std::move(found).value();
    }
    std::stable_sort(regions.begin(), regions.end(), [](const Region& a, const Region& b) { return a.offset < b.offset; });
    if (flags->header) std::erase_if(regions, [](const Region& r) { return !r.label.starts_with("header."); });
    auto label_at = [&](uint64_t offset) {
      for (const Region& r : regions) {
        if (offset >= r.offset && offset < r.offset + r.size) return r.label;
      }
      return std::string("padding");
    };
    // a raw range: --tensor's data or --offset's bytes
    uint64_t begin = 0, size = 0;
    if (!flags->tensor.empty()) {
      const auto found = std::find_if(regions.begin(), regions.end(), [&](const Region& r) { return r.label == "data." + flags->tensor; });
      if (found == regions.end()) return report(make_error(ErrorCode::invalid_argument, "--tensor {}: no such tensor in {}", flags->tensor, flags->path));
      begin = found->offset;
      size = std::min<uint64_t>(found->size, flags->limit);
    } else if (flags->offset >= 0) {
      begin = static_cast<uint64_t>(flags->offset);
      if (begin >= bytes.size()) return report(make_error(ErrorCode::invalid_argument, "--offset {:#x} is past the end of the file ({:#x} bytes)", begin, bytes.size()));
      size = std::min<uint64_t>(bytes.size() - begin, flags->limit);
    }
    if (size > 0) {
      if (flags->json) {
        print_json({{"offset", begin}, {"size", size}, {"region", label_at(begin)}, {"hex", hex_bytes(bytes.subspan(begin, size))}});
        return int{kOk};
      }
      for (uint64_t at = begin; at < begin + size; at += flags->width) {
        const auto row = bytes.subspan(at, std::min<uint64_t>(flags->width, begin + size - at));
        fmt::print("{}  {}\n", hex_row(row, at, flags->width), label_at(at));
      }
      return int{kOk};
    }
    if (flags->json) {
      nlohmann::json out = {{"path", flags->path}, {"file_size", bytes.size()}, {"regions", nlohmann::json::array()}};
      if (!problem.empty()) out["problem"] = problem;
      for (const Region& r : regions) {
        out["regions"].push_back({{"offset", r.offset}, {"size", r.size}, {"label", r.label}, {"value", r.value},
                                  {"hex", hex_bytes(bytes.subspan(r.offset, std::min<uint64_t>(r.size, flags->limit)))}});
      }
      print_json(out);
      return int{kOk};
    }
    fmt::print("{}: {} bytes\n", flags->path, bytes.size());
    for (const Region& r : regions) {
      const bool bulk = r.label.starts_with("data.") || r.label == "metadata" || r.label == "header.json";
      if (!bulk) {  // a field: its first bytes inline with its label and value
        const std::string shown = hex_bytes(bytes.subspan(r.offset, std::min<uint64_t>(r.size, 8))) + (r.size > 8 ? " .." : "");
        fmt::print("{:08x}  {:<26} {:32} {}\n", r.offset, shown, r.label, r.value);
        continue;
      }
      fmt::print("{:08x}  {} ({}, {} bytes)\n", r.offset, r.label, r.value, r.size);
      const uint64_t shown = std::min<uint64_t>(r.size, flags->limit);
      for (uint64_t at = r.offset; at < r.offset + shown; at += flags->width) {
        fmt::print("  {}\n", hex_row(bytes.subspan(at, std::min<uint64_t>(flags->width, r.offset + shown - at)), at, flags->width));
      }
      if (shown < r.size) fmt::print("  ... {} more bytes\n", r.size - shown);
    }
    if (!problem.empty()) fmt::print(stderr, "warning: the layout could not be read to the end: {}\n", problem);
    return int{kOk};
  });
}

}  // namespace apr::cli
