// Quantizes a row to Q8_0 and back through the packaged headers.
#include <apr/apr.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  std::vector<float> row(64);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(static_cast<float>(i));
  std::vector<apr::BlockQ8_0> blocks(row.size() / 32);
  apr::quantize_row<apr::Q8_0>(row.data(), blocks.data(), row.size());
  std::vector<float> back(row.size());
  apr::dequantize_row<apr::Q8_0>(blocks.data(), back.data(), back.size());
  for (size_t i = 0; i < row.size(); ++i) {
    if (std::fabs(back[i] - row[i]) > 0.01f) return 1;
  }
  std::printf("apr package ok\n");
  return 0;
}
