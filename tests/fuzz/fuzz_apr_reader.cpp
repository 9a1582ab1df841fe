// seeds: apr/*.apr apr/real/*.apr
// libFuzzer target: the APR v2 parser on arbitrary bytes, then every tensor's values decoded.
#include <cstddef>
#include <cstdint>
#include <span>

#include "apr/format/apr_reader.hpp"
#include "apr/format/tensor_values.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  auto parsed = apr::format::parse_apr(bytes, "fuzz.apr");
  if (!parsed) return 0;
  for (const auto& view : parsed->views) {
    if (view.numel() < (1u << 20)) (void)apr::format::tensor_to_f32(view);
  }
  return 0;
}
