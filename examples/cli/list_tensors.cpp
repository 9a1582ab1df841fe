// Lists the tensors of any model file apr reads (APR, SafeTensors, GGUF) with the format layer:
// name, dtype, shape and the mean of each tensor's values.
//
// usage: list_tensors FILE
#include <apr/apr.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  auto file = apr::format::open_tensor_file(argv[1]);
  if (!file) {
    std::fprintf(stderr, "error: %s\n", file.error().message.c_str());
    return 3;
  }
  for (const apr::TensorView& view : (*file)->tensors()) {
    const std::string shape = apr::to_string(view.shape);
    auto values = apr::format::tensor_to_f32(view);
    double mean = 0.0;
    if (values) {
      for (float v : *values) mean += v;
      mean /= values->empty() ? 1.0 : static_cast<double>(values->size());
    }
    std::printf("%-48s %-6s %-16s mean %+.5f\n", std::string(view.name).c_str(), std::string(apr::to_string(view.dtype)).c_str(), shape.c_str(), mean);
  }
  return 0;
}
