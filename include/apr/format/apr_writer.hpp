/// @file apr_writer.hpp
/// @brief APR v2 writer: aprender's exact byte layout, streamed tensor by tensor, written to a
/// temporary file and renamed into place (a failure never leaves a partial file); optionally
/// with compressed and/or encrypted tensor payloads (apr extension, apr_payload.hpp).
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
#include "apr/core/aligned_buffer.hpp"
#include "apr/format/apr_layout.hpp"
#include "apr/format/apr_payload.hpp"
#include "apr/format/crc32.hpp"

namespace apr::format {

/// Receives a tensor's bytes while they are written, counting them and updating the file CRC.
class ByteSink {
 public:
  /// A sink that fills `target` (more bytes than it holds are an error); `name` is for messages.
  static ByteSink into(std::span<std::byte> target, std::string name) {
    ByteSink sink(nullptr, std::move(name));
    sink.memory_ = target;
    return sink;
  }
  /// Appends `bytes`.
  Result<void> write(std::span<const std::byte> bytes) {
    if (file_ == nullptr) {
      if (bytes.size() > memory_.size() - written_) return make_error(ErrorCode::internal, "{}: more than the {} bytes announced", path_, memory_.size());
      std::copy(bytes.begin(), bytes.end(), memory_.begin() + static_cast<std::ptrdiff_t>(written_));
    } else if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
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
  std::span<std::byte> memory_;
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
  /// Replaces already written bytes at `offset` with `bytes` (the sink's count and CRC stay as they were).
  Result<void> overwrite(uint64_t offset, std::span<const std::byte> bytes) {
    std::FILE* file = sink_.file_;
    const bool done = ::fseeko(file, static_cast<off_t>(offset), SEEK_SET) == 0 && std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size() &&
                      ::fseeko(file, 0, SEEK_END) == 0;
    if (!done) return make_error(ErrorCode::io, "{}: rewrite at {:#x} failed: {}", path_, offset, std::strerror(errno));
    return ok();
  }
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

/// Writes `text` to `path` through an AtomicFile: the old file or the whole new one, never a part.
inline Result<void> write_file_atomically(const std::string& path, std::string_view text) {
  auto file = AtomicFile::create(path);
  if (!file) return std::move(file).error();
  if (auto status = (*file)->sink().write(std::as_bytes(std::span(text.data(), text.size()))); !status) return status;
  return (*file)->commit();
}

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
/// With `encoding`, each tensor is held in memory one at a time, encoded (apr_payload.hpp) and
/// its index entry rewritten once the data is out.
inline Result<void> write_apr(const std::string& path, std::string_view metadata_text, std::vector<AprWriteTensor> tensors,
                              uint16_t flags = 0, const AprEncoding* encoding = nullptr) {
  using namespace apr_v2;
  std::sort(tensors.begin(), tensors.end(), [](const AprWriteTensor& a, const AprWriteTensor& b) { return a.name < b.name; });
  std::vector<std::byte> index;
  auto put = [&](const void* data, size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    index.insert(index.end(), p, p + size);
  };
  uint64_t offset = 0;
  std::vector<size_t> code_at(tensors.size());  // where each entry's dtype code sits in `index`
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
    code_at[i] = index.size();
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
  set(6, static_cast<uint16_t>(flags | kLayoutRowMajor | (encoding != nullptr ? encoding->flags() : 0)));
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
  const uint32_t prefix_crc = sink.crc();
  if (status) status = sink.write(index);
  if (status) status = pad(index.size());
  if (encoding != nullptr) {
    uint32_t data_crc = 0;
    uint64_t data_size = 0;
    for (size_t i = 0; i < tensors.size() && status; ++i) {
      const AprWriteTensor& t = tensors[i];
      AlignedBuffer raw;
      try {
        raw = AlignedBuffer(static_cast<size_t>(t.size));
      } catch (const std::bad_alloc&) {
        return make_error(ErrorCode::io, "{}: tensor '{}': cannot hold its {} bytes to encode them", path, t.name, t.size);
      }
      ByteSink memory = ByteSink::into(raw.bytes(), fmt::format("{}: tensor '{}'", path, t.name));
      if (status = t.write(memory); !status) break;
      if (memory.written() != t.size) return make_error(ErrorCode::internal, "{}: tensor '{}' produced {} bytes, its index entry says {}", path, t.name, memory.written(), t.size);
      auto encoded = encode_payload(*encoding, t.name, static_cast<uint8_t>(index[code_at[i]]), raw.bytes());
      if (!encoded) return std::move(encoded).error().with_context(path);
      const std::span<const std::byte> stored = *encoded ? std::span<const std::byte>(**encoded) : std::span<const std::byte>(raw.bytes());
      if (*encoded) index[code_at[i]] = std::byte{kEncodedCode};
      const size_t fields = code_at[i] + 2 + 8 * t.shape.ndim();  // the entry's offset, then its size
      const uint64_t stored_size = stored.size();
      std::memcpy(index.data() + fields, &data_size, 8);
      std::memcpy(index.data() + fields + 8, &stored_size, 8);
      const auto padding = std::span(kZeros).first(align64(stored_size) - stored_size);
      if (status = sink.write(stored); status) status = sink.write(padding);
      data_crc = crc32_update(crc32_update(data_crc, stored), padding);
      data_size += align64(stored_size);
    }
    if (!status) return status;
    // the index now holds the real offsets and sizes: put it in place and fold it into the footer CRC
    index.resize(align64(index.size()));
    if (status = (*file)->overwrite(index_offset, index); !status) return status;
    const uint32_t footer = crc32_concat(crc32_concat(prefix_crc, crc32(index), index.size()), data_crc, data_size);
    status = sink.write(std::as_bytes(std::span(&footer, 1)));
    if (!status) return status;
    return (*file)->commit();
  }
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
