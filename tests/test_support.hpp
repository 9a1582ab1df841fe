// Helpers shared by the tests: fixture paths, temp files, file bytes, random data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace apr::test {

/// Absolute path of a file under the shared reference fixtures.
inline std::string fixture(const std::string& relative) { return std::string(APR_FIXTURES_DIR) + "/" + relative; }

/// Absolute path of a file under the repository's trained models (models/, see tools/train).
inline std::string model_file(const std::string& relative) { return std::string(APR_MODELS_DIR) + "/" + relative; }

/// A path in the build tree's scratch directory for files a test writes.
inline std::string temp_path(const std::string& name) { return std::string(APR_TEST_TMP_DIR) + "/" + name; }

/// The bytes of the file at `path` (empty when it cannot be read).
inline std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* first = reinterpret_cast<const std::byte*>(text.data());
  return {first, first + text.size()};
}

/// `n` floats drawn uniformly from [lo, hi) with a fixed seed.
inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace apr::test
