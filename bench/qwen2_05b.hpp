// Shared by the Qwen2 benchmarks: Qwen2-0.5B's dims and the seed of its synthetic weights.
#pragma once

#include <cstdint>

#include "apr/models/qwen2_config.hpp"

namespace apr::bench {

/// Seed of the random weights every Qwen2 benchmark (and its GGUF export) uses.
inline constexpr uint64_t kQwen2WeightSeed = 42;

/// Qwen2-0.5B's dims (tied embeddings, 24 layers, GQA 14/2 heads of 64).
inline models::Qwen2Config qwen2_05b() {
  models::Qwen2Config c;
  c.vocab_size = 151936;
  c.hidden_size = 896;
  c.intermediate_size = 4864;
  c.num_hidden_layers = 24;
  c.num_attention_heads = 14;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.rope_theta = 1000000.0f;
  c.rms_norm_eps = 1e-6f;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 32768;
  return c;
}

}  // namespace apr::bench
