// Attention over the KV cache against a naive reference: GQA, causal mask, sliding window,
// ring-buffered cache, F16 cache storage.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "apr/nn/attention.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::nn;

namespace {

/// softmax(q·k/√d)·v for query position `position` over keys (first..position], all f32.
std::vector<float> naive_head(const float* q, const std::vector<float>& keys, const std::vector<float>& values, size_t kv_width,
                              size_t kv_offset, size_t head_dim, size_t position, size_t window) {
  const size_t first = window != 0 && position + 1 > window ? position + 1 - window : 0;
  std::vector<double> scores;
  double max = -1e300;
  for (size_t j = first; j <= position; ++j) {
    double s = 0;
    for (size_t d = 0; d < head_dim; ++d) s += static_cast<double>(q[d]) * keys[j * kv_width + kv_offset + d];
    s /= std::sqrt(static_cast<double>(head_dim));
    scores.push_back(s);
    max = std::max(max, s);
  }
  double total = 0;
  for (double& s : scores) total += (s = std::exp(s - max));
  std::vector<float> out(head_dim, 0.0f);
  for (size_t j = first; j <= position; ++j) {
    for (size_t d = 0; d < head_dim; ++d) out[d] += static_cast<float>(scores[j - first] / total) * values[j * kv_width + kv_offset + d];
  }
  return out;
}

}  // namespace

TEST_CASE("attend equals the naive reference for GQA with and without a window", "[attention]") {
  // groups of 4 and of 7 (Qwen2-0.5B: 14 heads over 2 kv heads, chunked 4 + 3); 40 keys = 2×16 + tail
  const AttentionShape base = GENERATE(AttentionShape{8, 2, 24, 0}, AttentionShape{14, 2, 64, 0});
  const size_t positions = 40;
  const size_t kv_width = base.n_kv_heads * base.head_dim;
  const size_t q_width = base.n_heads * base.head_dim;
  const auto keys = test::random_floats(positions * kv_width, 1);
  const auto values = test::random_floats(positions * kv_width, 2);
  const auto queries = test::random_floats(positions * q_width, 3, -3.0f, 3.0f);
  ThreadPool pool(2);
  for (size_t window : {size_t{0}, size_t{8}}) {
    for (DType dtype : {DType::f32, DType::f16}) {
      AttentionShape shape = base;
      shape.window = window;
      const size_t chunk = 16;
      // a windowed layer gets only window + chunk slots: the ring buffer must wrap correctly
      KvCacheLayer cache(window == 0 ? positions : window + chunk, shape.n_kv_heads, shape.head_dim, dtype);
      AttentionScratch scratch(pool.size(), positions, shape.n_heads / shape.n_kv_heads, shape.head_dim);
      std::vector<float> out(positions * q_width);
      for (size_t start = 0; start < positions; start += chunk) {
        const size_t n = std::min(chunk, positions - start);
        for (size_t t = start; t < start + n; ++t) cache.store(t, &keys[t * kv_width], &values[t * kv_width]);
        attend(&queries[start * q_width], n, start, cache, shape, &out[start * q_width], scratch, pool);
      }
      // f16 storage rounds keys and values: 2^-11 relative, so outputs agree to ~1e-3
      const float tolerance = dtype == DType::f16 ? 2e-3f : 1e-5f;
      for (size_t t = 0; t < positions; ++t) {
        for (size_t h = 0; h < shape.n_heads; ++h) {
          const size_t kv_head = h / (shape.n_heads / shape.n_kv_heads);
          const auto expected = naive_head(&queries[t * q_width + h * shape.head_dim], keys, values, kv_width,
                                           kv_head * shape.head_dim, shape.head_dim, t, window);
          for (size_t d = 0; d < shape.head_dim; ++d) {
            REQUIRE(out[t * q_width + h * shape.head_dim + d] == Approx(expected[d]).margin(tolerance));
          }
        }
      }
    }
  }
}

TEST_CASE("KV cache slots wrap at capacity; keys are stored transposed per head", "[attention]") {
  KvCacheLayer cache(3, 2, 1, DType::f32);  // 3 slots, 2 kv heads of 1 value
  const float k0[] = {1, 2}, v0[] = {3, 4}, k3[] = {5, 6}, v3[] = {7, 8};
  cache.store(0, k0, v0);
  cache.store(3, k3, v3);  // same slot as position 0
  REQUIRE(cache.key_at(0, 0, 0) == 5.0f);
  REQUIRE(cache.key_at(3, 1, 0) == 6.0f);
  REQUIRE(reinterpret_cast<const float*>(cache.keys_transposed(1))[0] == 6.0f);  // head 1, dim 0, slot 0
  REQUIRE(reinterpret_cast<const float*>(cache.value(3))[1] == 8.0f);
}

TEST_CASE("KV cache copy_from copies the first slots between layers of different capacity", "[attention]") {
  for (const DType dtype : {DType::f32, DType::f16}) {
    KvCacheLayer big(10, 2, 3, dtype), compact(4, 2, 3, dtype), again(10, 2, 3, dtype);
    for (size_t p = 0; p < 4; ++p) {
      const float key[] = {float(p), float(p) + 0.5f, 1, 2, 3, float(p) * 2}, value[] = {4, 5, 6, float(p), 8, 9};
      big.store(p, key, value);
    }
    compact.copy_from(big, 4);
    again.copy_from(compact, 4);
    for (size_t p = 0; p < 4; ++p) {
      for (size_t h = 0; h < 2; ++h) {
        for (size_t d = 0; d < 3; ++d) CHECK(again.key_at(p, h, d) == big.key_at(p, h, d));
      }
      CHECK(std::memcmp(again.value(p), big.value(p), 6 * big.element_bytes()) == 0);
    }
    CHECK(again.key_at(4, 0, 0) == 0.0f);  // slots past the copy stay empty
  }
}

TEST_CASE("attend gives a row the same bits in a block of rows as alone", "[attention]") {
  // one query head per kv head (Voxtral's encoder), groups of 4 and 7; 37 rows: blocks of 4 and a
  // partial one, keys in whole vectors and in scalar tails
  const AttentionShape base = GENERATE(AttentionShape{4, 4, 64, 0}, AttentionShape{8, 2, 24, 0}, AttentionShape{14, 2, 64, 0});
  const size_t positions = 37, chunk = 16;
  const size_t kv_width = base.n_kv_heads * base.head_dim, q_width = base.n_heads * base.head_dim;
  const auto keys = test::random_floats(positions * kv_width, 4);
  const auto values = test::random_floats(positions * kv_width, 5);
  const auto queries = test::random_floats(positions * q_width, 6, -3.0f, 3.0f);
  ThreadPool pool(2);
  for (size_t window : {size_t{0}, size_t{8}}) {
    for (DType dtype : {DType::f32, DType::f16}) {
      AttentionShape shape = base;
      shape.window = window;
      const size_t capacity = window == 0 ? positions : window + chunk;
      AttentionScratch scratch(pool.size(), positions, shape.n_heads / shape.n_kv_heads, shape.head_dim);
      KvCacheLayer blocked_cache(capacity, shape.n_kv_heads, shape.head_dim, dtype), single_cache(capacity, shape.n_kv_heads, shape.head_dim, dtype);
      std::vector<float> blocked(positions * q_width), single(positions * q_width);
      for (size_t start = 0; start < positions; start += chunk) {
        const size_t n = std::min(chunk, positions - start);
        for (size_t t = start; t < start + n; ++t) blocked_cache.store(t, &keys[t * kv_width], &values[t * kv_width]);
        attend(&queries[start * q_width], n, start, blocked_cache, shape, &blocked[start * q_width], scratch, pool);
      }
      for (size_t t = 0; t < positions; ++t) {
        single_cache.store(t, &keys[t * kv_width], &values[t * kv_width]);
        attend(&queries[t * q_width], 1, t, single_cache, shape, &single[t * q_width], scratch, pool);
      }
      INFO("heads " << shape.n_heads << "/" << shape.n_kv_heads << ", window " << window << ", " << to_string(dtype));
      CHECK(std::memcmp(blocked.data(), single.data(), blocked.size() * sizeof(float)) == 0);
    }
  }
}
