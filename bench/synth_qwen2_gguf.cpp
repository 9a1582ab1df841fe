// bench/synth_qwen2_gguf: writes the synthetic Qwen2-0.5B weights bench_qwen2 runs (same dims, same
// seed) as a GGUF file llama.cpp loads (models::write_qwen2_gguf), so both are timed on the very
// same weights. The tokenizer is a stand-in llama.cpp accepts: the 256 byte-level GPT-2 tokens,
// <|endoftext|> and padding tokens up to the vocab size; llama-bench prompts are random ids.
// usage: synth_qwen2_gguf --dtype f32|f16|q8_0|q4_0 -o FILE.gguf
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/models/qwen2_gguf.hpp"
#include "apr/models/synth.hpp"
#include "qwen2_05b.hpp"
#include "stand_in_tokenizer.hpp"

using namespace apr;

int main(int argc, char** argv) {
  std::string dtype_name, path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dtype") dtype_name = argv[i + 1];
    else if (flag == "-o") path = argv[i + 1];
  }
  const auto dtype = parse_dtype(dtype_name);
  if (!dtype || path.empty()) {
    fmt::print(stderr, "usage: synth_qwen2_gguf --dtype f32|f16|q8_0|q4_0 -o FILE.gguf\n");
    return 2;
  }
  const auto config = bench::qwen2_05b();
  auto file = models::synthesize_qwen2(config, *dtype, bench::kQwen2WeightSeed);
  if (!file) {
    fmt::print(stderr, "{}\n", file.error().message);
    return 1;
  }
  auto written = models::write_qwen2_gguf(**file, config, path, *dtype, fmt::format("apr synthetic qwen2-0.5b {}", to_string(*dtype)),
                                          bench::stand_in_tokenizer(config.vocab_size));
  if (!written) {
    fmt::print(stderr, "{}\n", written.error().message);
    return 1;
  }
  return 0;
}
