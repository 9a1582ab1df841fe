// Built with only single_include/ on the include path (plus system libraries): loads the
// qwen2-v512 fixture folder and checks greedy decoding against transformers' 16 tokens.
// usage: single_header_consumer FIXTURES_DIR
#include <apr/apr.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = std::string(argv[1]) + "/qwen2/qwen2-v512";
  auto loaded = apr::models::load_language_model(dir);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    return 1;
  }
  std::ifstream in(dir + "/refs.json");
  const auto refs = nlohmann::json::parse(in);
  const auto prompt = refs["greedy"]["prompt_ids"].get<std::vector<int32_t>>();
  const auto expected = refs["greedy"]["generated_ids"].get<std::vector<int32_t>>();
  apr::runtime::GenerationOptions options;
  options.sampling = apr::runtime::SamplingOptions::greedy();
  options.max_tokens = expected.size();
  auto sequence = loaded->model->new_sequence(prompt.size() + expected.size());
  auto generated = apr::runtime::generate(*loaded->model, *sequence, prompt, options);
  if (!generated || generated->tokens != expected) {
    std::fprintf(stderr, "greedy tokens differ from the reference\n");
    return 1;
  }
  std::printf("single header: %zu greedy tokens match transformers\n", expected.size());
  return 0;
}
