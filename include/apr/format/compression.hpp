/// @file compression.hpp
/// @brief lz4 (block) and zstd (frame) compression of byte spans, with sizes checked both ways.
///
/// Without liblz4 and libzstd headers (a WebAssembly build) the codec names still parse and
/// stored payloads still copy, but compressing or decompressing is an `unsupported` error.
#pragma once

#if __has_include(<lz4.h>) && __has_include(<zstd.h>)
#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>
/// Set when liblz4 and libzstd are compiled in.
#define APR_HAS_CODECS 1
#else
/// Set when liblz4 and libzstd are compiled in.
#define APR_HAS_CODECS 0
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "apr/core/result.hpp"

namespace apr::format {

/// True when lz4 and zstd payloads can be encoded and decoded in this build.
inline constexpr bool kHasCodecs = APR_HAS_CODECS != 0;

/// A compression codec; the values are the codec byte of an APR encoded payload.
enum class Codec : uint8_t {
  none = 0,  ///< stored as is
  lz4 = 1,   ///< one LZ4 block (liblz4's block format, no frame)
  zstd = 2,  ///< one zstd frame with its content size
};

/// "none", "lz4" or "zstd".
constexpr std::string_view codec_name(Codec codec) {
  switch (codec) {
    case Codec::none: return "none";
    case Codec::lz4: return "lz4";
    case Codec::zstd: return "zstd";
  }
  return "unknown";
}

/// The codec named `name` ("none", "lz4", "zstd"), if any.
constexpr std::optional<Codec> parse_codec(std::string_view name) {
  if (name == "none") return Codec::none;
  if (name == "lz4") return Codec::lz4;
  if (name == "zstd") return Codec::zstd;
  return std::nullopt;
}

/// The level used when none is given: zstd 3 (its own default), lz4 0 (the fast compressor).
constexpr int default_level(Codec codec) { return codec == Codec::zstd ? 3 : 0; }

/// The levels `codec` accepts: zstd 1..22, lz4 0 (fast) or 1..12 (LZ4 HC).
constexpr bool valid_level(Codec codec, int level) {
  if (codec == Codec::zstd) return level >= 1 && level <= 22;
  if (codec == Codec::lz4) return level >= 0 && level <= 12;  // LZ4HC_CLEVEL_MAX
  return level == 0;
}

/// Largest input a single LZ4 block can hold (about 2 GB).
inline constexpr uint64_t kMaxLz4Input = 0x7E000000;
#if APR_HAS_CODECS
static_assert(kMaxLz4Input == LZ4_MAX_INPUT_SIZE && LZ4HC_CLEVEL_MAX == 12, "liblz4's limits changed");
#endif

/// `input` compressed with `codec` at `level`; codec none and inputs lz4 cannot hold are errors.
inline Result<std::vector<std::byte>> compress(Codec codec, int level, std::span<const std::byte> input) {
  if (!valid_level(codec, level)) return make_error(ErrorCode::invalid_argument, "compression level {} is not valid for {}", level, codec_name(codec));
  if (codec != Codec::none && !kHasCodecs) return make_error(ErrorCode::unsupported, "this build has no {} codec (built without liblz4/libzstd)", codec_name(codec));
#if APR_HAS_CODECS
  std::vector<std::byte> out;
  if (codec == Codec::lz4) {
    if (input.size() > kMaxLz4Input) return make_error(ErrorCode::unsupported, "{} bytes do not fit one LZ4 block (at most {})", input.size(), kMaxLz4Input);
    const int size = static_cast<int>(input.size());
    out.resize(static_cast<size_t>(LZ4_compressBound(size)));
    const auto* source = reinterpret_cast<const char*>(input.data());
    auto* target = reinterpret_cast<char*>(out.data());
    const int written = level == 0 ? LZ4_compress_default(source, target, size, static_cast<int>(out.size()))
                                   : LZ4_compress_HC(source, target, size, static_cast<int>(out.size()), level);
    if (written <= 0 && !input.empty()) return make_error(ErrorCode::internal, "LZ4 compression of {} bytes failed", input.size());
    out.resize(static_cast<size_t>(written));
    return out;
  }
  if (codec == Codec::zstd) {
    out.resize(ZSTD_compressBound(input.size()));
    const size_t written = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), level);
    if (ZSTD_isError(written)) return make_error(ErrorCode::internal, "zstd compression of {} bytes failed: {}", input.size(), ZSTD_getErrorName(written));
    out.resize(written);
    return out;
  }
#endif
  return make_error(ErrorCode::invalid_argument, "compress() needs a codec (lz4 or zstd)");
}

/// Decompresses `input` into exactly `output.size()` bytes; corrupt input, or input that decodes
/// to any other size, is an error saying what the codec reported.
inline Result<void> decompress(Codec codec, std::span<const std::byte> input, std::span<std::byte> output) {
  if (codec != Codec::none && !kHasCodecs) {
    return make_error(ErrorCode::unsupported, "{} payloads cannot be decoded here (built without liblz4/libzstd); store the tensors uncompressed (apr convert --compress none)",
                      codec_name(codec));
  }
#if APR_HAS_CODECS
  if (codec == Codec::lz4) {
    if (input.size() > kMaxLz4Input || output.size() > kMaxLz4Input) {
      return make_error(ErrorCode::format, "lz4 block of {} bytes decoding to {} exceeds the LZ4 block limit", input.size(), output.size());
    }
    const int got = LZ4_decompress_safe(reinterpret_cast<const char*>(input.data()), reinterpret_cast<char*>(output.data()),
                                        static_cast<int>(input.size()), static_cast<int>(output.size()));
    if (got < 0) return make_error(ErrorCode::format, "lz4 data is corrupt (LZ4_decompress_safe failed at input byte {})", -got - 1);
    if (static_cast<size_t>(got) != output.size()) {
      return make_error(ErrorCode::format, "lz4 data decompresses to {} bytes, expected {}", got, output.size());
    }
    return ok();
  }
  if (codec == Codec::zstd) {
    const unsigned long long content = ZSTD_getFrameContentSize(input.data(), input.size());
    if (content == ZSTD_CONTENTSIZE_ERROR) return make_error(ErrorCode::format, "zstd data is not a zstd frame");
    if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != output.size()) {
      return make_error(ErrorCode::format, "zstd frame says it decompresses to {} bytes, expected {}", content, output.size());
    }
    const size_t got = ZSTD_decompress(output.data(), output.size(), input.data(), input.size());
    if (ZSTD_isError(got)) return make_error(ErrorCode::format, "zstd data is corrupt: {}", ZSTD_getErrorName(got));
    if (got != output.size()) return make_error(ErrorCode::format, "zstd data decompresses to {} bytes, expected {}", got, output.size());
    return ok();
  }
#endif
  if (input.size() != output.size()) return make_error(ErrorCode::format, "{} stored bytes for {} decoded bytes", input.size(), output.size());
  std::copy(input.begin(), input.end(), output.begin());
  return ok();
}

}  // namespace apr::format
