/// @file apr_writer.hpp
/// @brief APR v2 writer: aprender's exact byte layout, streamed tensor by tensor, written to a
/// temporary file and renamed into place (a failure never leaves a partial file).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <utility>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/format/apr_layout.hpp"
#include "apr/format/crc32.hpp"

namespace apr::format {

/// Receives a tensor's bytes while they are written, counting them and updating the file CRC.
class ByteSink {
 public:
  /// Appends `bytes`.
  Result<void> write(std::span<const std::byte> bytes) {
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
      return make_error(ErrorCode::io, "{}: write failed: {}", path_, std::strerror(errno));
    }
    crc_ = crc32_update(crc_, bytes);
    written_ += bytes.size();
    return ok();
  }
  /// Bytes written so far.
  [[nodiscard]] uint64_t written() const noexcept { return written_; }
  /// CRC-32 of everything written so far.
  [[nodiscard]] uint32_t crc() const noexcept { return crc_; }

 private:
  friend class AtomicFile;
  ByteSink(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  std::FILE* file_;
  std::string path_;
  uint32_t crc_ = 0;
  uint64_t written_ = 0;
};

/// A file written under a temporary name and renamed to its final path on commit(); destroyed
/// without commit, the temporary file is removed.
class AtomicFile {
 public:
  /// Creates `path.tmp.PID` next to `path` (PID: this process id).
  static Result<std::unique_ptr<AtomicFile>> create(const std::string& path) {
    const std::string temporary = fmt::format("{}.tmp.{}", path, ::getpid());
    std::FILE* file = std::fopen(temporary.c_str(), "wb");
    if (file == nullptr) return make_error(ErrorCode::io, "{}: cannot create: {}", temporary, std::strerror(errno));
    return std::unique_ptr<AtomicFile>(new AtomicFile(path, temporary, file));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (sink_.file_ != nullptr) {
      std::fclose(sink_.file_);
      std::remove(temporary_.c_str());
    }
  }
  /// Where bytes go.
  ByteSink& sink() noexcept { return sink_; }
  /// Flushes, syncs and renames the temporary file to the final path.
  Result<void> commit() {
    std::FILE* file = std::exchange(sink_.file_, nullptr);
    const bool flushed = std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
    const int saved = errno;
    const bool closed = std::fclose(file) == 0;
    if (!flushed || !closed || std::rename(temporary_.c_str(), path_.c_str()) != 0) {
      const int error = !flushed ? saved : errno;
      std::remove(temporary_.c_str());
      return make_error(ErrorCode::io, "{}: cannot finish writing: {}", path_, std::strerror(error));
    }
    return ok();
  }

 private:
  AtomicFile(std::string path, std::string temporary, std::FILE* file)
      : path_(std::move(path)), temporary_(std::move(temporary)), sink_(file, path_) {}
  std::string path_;
  std::string temporary_;
  ByteSink sink_;
};

/// One tensor to write: its index entry and a function that streams exactly `size` bytes.
struct AprWriteTensor {
  std::string name;                                  ///< tensor name (≤ 256 bytes)
  DType dtype = DType::f32;                          ///< element type
  Shape shape;                                       ///< dims, outermost first
  uint64_t size = 0;                                 ///< bytes the writer will produce
  std::optional<uint8_t> code;                       ///< dtype code to store (default: apr's code for dtype)
  std::function<Result<void>(ByteSink&)> write;      ///< streams the bytes

  /// A tensor whose bytes are an existing view (e.g. of another mapped file).
  static AprWriteTensor from_view(const TensorView& view, std::optional<uint8_t> code = std::nullopt) {
    return {std::string(view.name), view.dtype, view.shape, view.bytes.size(), code,
            [bytes = view.bytes](ByteSink& sink) { return sink.write(bytes); }};
  }
};

/// Metadata JSON text as aprender writes it: its keys in order (null when absent), then any
/// other keys of `fields` in name order; compact.
inline std::string apr_metadata_text(const nlohmann::json& fields) {
  nlohmann::ordered_json out;
  for (std::string_view key : apr_v2::kMetadataKeys) {
    const std::string k(key);
    out[k] = fields.contains(k) ? nlohmann::ordered_json(fields[k]) : nlohmann::ordered_json(nullptr);
  }
  if (!fields.contains("model_type") || fields["model_type"].is_null()) out["model_type"] = "";
  for (const auto& [key, value] : fields.items()) {
    if (!out.contains(key)) out[key] = value;
  }
  return out.dump();
}

/// Writes an APR v2 file at `path` with `metadata_text` (JSON, stored as given) and `tensors`
/// (sorted by name here), streaming each tensor's bytes once; `flags` is OR-ed with the row-major bit.
inline Result<void> write_apr(const std::string& path, std::string_view metadata_text, std::vector<AprWriteTensor> tensors,
                              uint16_t flags = 0) {
  using namespace apr_v2;
  std::sort(tensors.begin(), tensors.end(), [](const AprWriteTensor& a, const AprWriteTensor& b) { return a.name < b.name; });
  std::vector<std::byte> index;
  auto put = [&](const void* data, size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    index.insert(index.end(), p, p + size);
  };
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const AprWriteTensor& t = tensors[i];
    if (i > 0 && t.name == tensors[i - 1].name) return make_error(ErrorCode::invalid_argument, "{}: tensor '{}' given twice", path, t.name);
    if (t.name.size() > kMaxNameLength) return make_error(ErrorCode::invalid_argument, "{}: tensor name '{}' is longer than {} bytes", path, t.name, kMaxNameLength);
    const auto code = t.code ? t.code : dtype_code(t.dtype);
    if (!code) return make_error(ErrorCode::unsupported, "{}: tensor '{}': APR has no code for {}", path, t.name, to_string(t.dtype));
    const auto name_length = static_cast<uint16_t>(t.name.size());
    const auto ndim = static_cast<uint8_t>(t.shape.ndim());
    put(&name_length, 2);
    put(t.name.data(), t.name.size());
    put(&*code, 1);
    put(&ndim, 1);
    for (uint64_t dim : t.shape.dims()) put(&dim, 8);
    put(&offset, 8);
    put(&t.size, 8);
    offset += align64(t.size);
  }
  const uint64_t index_offset = kHeaderSize + align64(metadata_text.size());
  const uint64_t data_offset = index_offset + align64(index.size());
  std::array<std::byte, kHeaderSize> header{};
  auto set = [&](size_t at, const auto& value) { std::memcpy(header.data() + at, &value, sizeof value); };
  set(0, kMagic);
  header[4] = std::byte{2};
  header[5] = std::byte{0};
  set(6, static_cast<uint16_t>(flags | kLayoutRowMajor));
  set(8, static_cast<uint32_t>(tensors.size()));
  set(12, static_cast<uint64_t>(kHeaderSize));
  set(20, static_cast<uint32_t>(metadata_text.size()));
  set(24, index_offset);
  set(32, data_offset);
  set(kChecksumOffset, crc32_update(crc32(std::span(header).first(kChecksumOffset)), std::span(header).subspan(kChecksumOffset + 4)));

  auto file = AtomicFile::create(path);
  if (!file) return std::move(file).error();
  ByteSink& sink = (*file)->sink();
  static constexpr std::array<std::byte, kAlignment> kZeros{};
  auto pad = [&](uint64_t size) { return sink.write(std::span(kZeros).first(align64(size) - size)); };
  Result<void> status = sink.write(header);
  if (status) status = sink.write(std::as_bytes(std::span(metadata_text.data(), metadata_text.size())));
  if (status) status = pad(metadata_text.size());
  if (status) status = sink.write(index);
  if (status) status = pad(index.size());
  for (const AprWriteTensor& t : tensors) {
    if (!status) break;
    const uint64_t before = sink.written();
    status = t.write(sink);
    if (status && sink.written() - before != t.size) {
      status = make_error(ErrorCode::internal, "{}: tensor '{}' produced {} bytes, its index entry says {}", path, t.name, sink.written() - before, t.size);
    }
    if (status) status = pad(t.size);
  }
  if (!status) return status;
  const uint32_t footer = sink.crc();
  status = sink.write(std::as_bytes(std::span(&footer, 1)));
  if (!status) return status;
  return (*file)->commit();
}

}  // namespace apr::format
