/// @file apr_layout_map.hpp
/// @brief map_apr_layout(): where every header field and tensor index entry of an APR v2 file
/// lies, read leniently (only bounds are checked), so tools can label the bytes of files the
/// strict reader refuses (unsorted index, unaligned data, bad checksums).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/core/byte_reader.hpp"
#include "apr/format/apr_layout.hpp"

namespace apr::format {

/// One labelled field: bytes [offset, offset + size) of the file and what they hold.
struct AprField {
  uint64_t offset = 0;  ///< first byte in the file
  uint64_t size = 0;    ///< bytes
  std::string label;    ///< what the field is ("magic", "tensor_count", "name", …)
  std::string value;    ///< its decoded value as text
};

/// One tensor index entry and the fields it is made of.
struct AprEntryLayout {
  uint64_t entry_offset = 0;   ///< where the entry starts in the file
  uint64_t entry_size = 0;     ///< its bytes
  std::string name;            ///< tensor name
  uint8_t code = 0;            ///< dtype code as stored
  std::vector<uint64_t> dims;  ///< dims, outermost first
  uint64_t data_offset = 0;    ///< stored offset, relative to the data section
  uint64_t size = 0;           ///< stored byte size
  std::vector<AprField> fields;  ///< name length, name, dtype, ndim, dims, offset, size
};

/// The layout of an APR v2 file as far as its bytes allow reading it.
struct AprLayoutMap {
  std::vector<AprField> header;          ///< the 64-byte header, field by field
  uint64_t metadata_offset = 0;          ///< metadata JSON start
  uint64_t metadata_size = 0;            ///< metadata JSON bytes
  uint64_t index_offset = 0;             ///< tensor index start
  uint64_t data_offset = 0;              ///< data section start
  uint32_t tensor_count = 0;             ///< entries the header announces
  std::vector<AprEntryLayout> entries;   ///< the entries that could be read
  uint64_t footer_offset = 0;            ///< where the footer CRC lies (file size − 4)
  std::string problem;                   ///< why reading stopped early (empty when it did not)
};

/// Maps the header and index of the APR v2 bytes `bytes`; reading stops (with `problem` set) at
/// the first field that would run past the data it belongs to.
inline AprLayoutMap map_apr_layout(std::span<const std::byte> bytes) {
  using namespace apr_v2;
  AprLayoutMap map;
  if (bytes.size() < kHeaderSize + kFooterSize) {
    map.problem = fmt::format("{} bytes: shorter than a header and footer ({})", bytes.size(), kHeaderSize + kFooterSize);
    return map;
  }
  auto u8 = [&](size_t at) { return static_cast<uint8_t>(bytes[at]); };
  auto u16 = [&](size_t at) { return load_unaligned<uint16_t>(bytes.data() + at); };
  auto u32 = [&](size_t at) { return load_unaligned<uint32_t>(bytes.data() + at); };
  auto u64 = [&](size_t at) { return load_unaligned<uint64_t>(bytes.data() + at); };
  std::string magic;
  for (size_t i = 0; i < 4; ++i) magic += u8(i) >= 0x20 && u8(i) < 0x7f ? std::string(1, static_cast<char>(u8(i))) : fmt::format("\\x{:02x}", u8(i));
  map.tensor_count = u32(8);
  map.metadata_offset = u64(12);
  map.metadata_size = u32(20);
  map.index_offset = u64(24);
  map.data_offset = u64(32);
  map.footer_offset = bytes.size() - kFooterSize;
  map.header = {
      {0, 4, "magic", fmt::format("\"{}\"", magic)},
      {4, 1, "version_major", fmt::format("{}", u8(4))},
      {5, 1, "version_minor", fmt::format("{}", u8(5))},
      {6, 2, "flags", fmt::format("{:#06x}", u16(6))},
      {8, 4, "tensor_count", fmt::format("{}", map.tensor_count)},
      {12, 8, "metadata_offset", fmt::format("{:#x}", map.metadata_offset)},
      {20, 4, "metadata_size", fmt::format("{}", map.metadata_size)},
      {24, 8, "tensor_index_offset", fmt::format("{:#x}", map.index_offset)},
      {32, 8, "data_offset", fmt::format("{:#x}", map.data_offset)},
      {kChecksumOffset, 4, "header_checksum", fmt::format("{:#010x}", u32(kChecksumOffset))},
      {44, 20, "reserved", "must be zero"},
  };
  if (map.index_offset > map.footer_offset || map.data_offset > map.footer_offset || map.data_offset < map.index_offset) {
    map.problem = fmt::format("index {:#x} and data {:#x} offsets do not lie in order inside the file", map.index_offset, map.data_offset);
    return map;
  }
  ByteReader reader(bytes.first(static_cast<size_t>(map.data_offset)), "index");
  (void)reader.seek(map.index_offset);
  for (uint32_t i = 0; i < map.tensor_count; ++i) {
    AprEntryLayout entry;
    entry.entry_offset = reader.offset();
    auto field = [&](uint64_t size, std::string label, std::string value) {
      entry.fields.push_back({reader.offset() - size, size, std::move(label), std::move(value)});
    };
    auto name_length = reader.read<uint16_t>("name length");
    if (!name_length) {
      map.problem = fmt::format("entry {} at {:#x}: truncated", i, entry.entry_offset);
      return map;
    }
    field(2, "name_length", fmt::format("{}", *name_length));
    auto name = reader.take_string(*name_length, "name");
    if (!name) {
      map.problem = fmt::format("entry {} at {:#x}: name of {} bytes runs past the index", i, entry.entry_offset, *name_length);
      return map;
    }
    entry.name = std::string(*name);
    field(*name_length, "name", fmt::format("\"{}\"", entry.name));
    auto code = reader.read<uint8_t>("dtype");
    auto ndim = code ? reader.read<uint8_t>("ndim") : code;
    if (!code || !ndim || *ndim > kMaxDims) {
      map.problem = fmt::format("entry {} '{}': truncated or more than {} dims", i, entry.name, kMaxDims);
      return map;
    }
    entry.code = *code;
    entry.fields.push_back({reader.offset() - 2, 1, "dtype", fmt::format("code {}", entry.code)});
    field(1, "ndim", fmt::format("{}", *ndim));
    for (uint8_t d = 0; d < *ndim; ++d) {
      auto dim = reader.read<uint64_t>("dim");
      if (!dim) {
        map.problem = fmt::format("entry {} '{}': truncated in its dims", i, entry.name);
        return map;
      }
      entry.dims.push_back(*dim);
      field(8, fmt::format("dim[{}]", d), fmt::format("{}", *dim));
    }
    auto offset = reader.read<uint64_t>("offset");
    auto size = offset ? reader.read<uint64_t>("size") : offset;
    if (!offset || !size) {
      map.problem = fmt::format("entry {} '{}': truncated before offset/size", i, entry.name);
      return map;
    }
    entry.data_offset = *offset;
    entry.size = *size;
    entry.fields.push_back({reader.offset() - 16, 8, "offset", fmt::format("{:#x} (file {:#x})", entry.data_offset, map.data_offset + entry.data_offset)});
    field(8, "size", fmt::format("{}", entry.size));
    entry.entry_size = reader.offset() - entry.entry_offset;
    map.entries.push_back(std::move(entry));
  }
  return map;
}

}  // namespace apr::format
