// seeds: apr/*.apr apr/real/*.apr
// libFuzzer target: the APR v2 parser on arbitrary bytes, then every encoded (compressed) payload
// of a modest size decoded, then every tensor's values decoded; the same bytes are also tried as
// one encoded payload on its own (header + lz4/zstd data), so the codecs see arbitrary input.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "apr/format/apr_reader.hpp"
#include "apr/format/tensor_values.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  if (auto header = apr::format::parse_payload_header(bytes); header && header->decoded_size < (1u << 22)) {
    std::vector<std::byte> out(header->decoded_size);
    (void)apr::format::decode_payload(*header, "fuzz", bytes, nullptr, out);
  }
  auto parsed = apr::format::parse_apr(bytes, "fuzz.apr");
  if (!parsed) return 0;
  bool small = true;
  for (const auto& entry : parsed->entries) small &= !entry.payload || entry.payload->decoded_size < (1u << 22);
  if (small && !apr::format::decode_apr_payloads(*parsed, bytes, nullptr, "fuzz.apr")) return 0;
  for (const auto& view : parsed->views) {
    if (view.numel() < (1u << 20)) (void)apr::format::tensor_to_f32(view);
  }
  return 0;
}
