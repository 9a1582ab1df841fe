// seeds: apr/real/v1_logistic_regression_mnist.apr apr/real/tsp_att48_not_v2.apr
// libFuzzer target: the APR v1 parser on arbitrary bytes, then the payload decompressed.
#include <cstddef>
#include <cstdint>
#include <span>

#include "apr/format/apr_v1.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  auto parsed = apr::format::parse_apr_v1(bytes, "fuzz.apr");
  if (!parsed || parsed->encrypted() || parsed->header.uncompressed_size > (1u << 24)) return 0;
  (void)apr::format::decompress_apr_v1_payload(parsed->header, parsed->payload, "fuzz.apr");
  return 0;
}
