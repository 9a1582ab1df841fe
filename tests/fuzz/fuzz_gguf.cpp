// seeds: qwen2/formats/qwen2-v512-q4_0.gguf qwen2/formats/qwen2-v512-f16.gguf
// libFuzzer target: the GGUF parser on arbitrary bytes, then every small tensor decoded and the
// metadata turned into JSON.
#include <cstddef>
#include <cstdint>
#include <span>

#include "apr/format/gguf.hpp"
#include "apr/format/tensor_values.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  auto parsed = apr::format::parse_gguf(bytes, "fuzz.gguf");
  if (!parsed) return 0;
  for (const auto& entry : parsed->entries) (void)entry.value.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  for (const auto& view : parsed->tensors) {
    if (view.numel() < (1u << 20)) (void)apr::format::tensor_to_f32(view);
  }
  return 0;
}
