// seeds:
// repo seeds: tests/text/data/tekken-micro.json
// libFuzzer target: the tekken.json parser on arbitrary text; a file that loads must encode and
// decode a fixed sentence back to itself.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "apr/text/tekken.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tokenizer = apr::text::tekken_from_json(text, "fuzz-tekken.json");
  if (!tokenizer) return 0;
  constexpr std::string_view kSentence = "Hello world, 2024 caf\xc3\xa9!";
  const auto ids = tokenizer->encode(kSentence, false);
  if (tokenizer->decode(ids) != kSentence) __builtin_trap();
  return 0;
}
