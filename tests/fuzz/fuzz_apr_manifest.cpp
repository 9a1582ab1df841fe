// seeds:
// repo seeds: tests/fuzz/seeds/model.apr.index.json
// libFuzzer target: the APR shard-manifest parser on arbitrary text, and its re-serialisation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "apr/format/apr_shards.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto manifest = apr::format::parse_apr_manifest(text, "fuzz.apr.index.json");
  if (!manifest) return 0;
  // what parses must serialise to a manifest that parses to the same thing
  const std::string again = manifest->to_json_text();
  auto reparsed = apr::format::parse_apr_manifest(again, "again");
  if (!reparsed || reparsed->to_json_text() != again) __builtin_trap();
  return 0;
}
