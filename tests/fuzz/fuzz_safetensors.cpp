// seeds: qwen2/qwen2-v512/model.safetensors whisper/refs/a_hello.safetensors
// libFuzzer target: the SafeTensors parser on arbitrary bytes, then every tensor decoded.
#include <cstddef>
#include <cstdint>
#include <span>

#include "apr/format/safetensors.hpp"
#include "apr/format/tensor_values.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  auto parsed = apr::format::parse_safetensors(bytes, "fuzz.safetensors");
  if (!parsed) return 0;
  for (const auto& view : parsed->tensors) {
    if (view.numel() < (1u << 20)) (void)apr::format::tensor_to_f32(view);
  }
  return 0;
}
