// bench/tokenizer: single-thread encode speed of a byte-level BPE tokenizer on a mixed corpus of
// at least --mb megabytes built from text this machine has (license texts and package docs under
// /usr/share, in English, plus the multilingual, emoji and code lines of the tokenizer fixtures).
// Prints JSON with the median of several runs.
// usage: bench_tokenizer TOKENIZER [--mb 10] [--runs 3] [--fixtures DIR]
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/text/load_tokenizer.hpp"
#include "bench_support.hpp"

using namespace apr;
namespace fs = std::filesystem;

namespace {

/// Text files under `root` (plain text only: no gzip), in a stable order.
std::vector<fs::path> text_files(const fs::path& root) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec) || it->path().extension() == ".gz" || it->file_size(ec) > (1u << 20)) continue;
    files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// The corpus: fixture lines interleaved with machine text until `bytes` are reached.
std::string corpus(size_t bytes, const std::string& fixtures) {
  std::vector<std::string> lines;
  for (const char* name : {"qwen_public.jsonl", "gpt2_public.jsonl"}) {
    std::ifstream in(fixtures + "/tokenizer/" + name);
    std::string line;
    while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line).value("text", std::string()));
  }
  std::string out;
  size_t next_line = 0;
  for (const char* root : {"/usr/share/common-licenses", "/usr/share/doc"}) {
    for (const auto& path : text_files(root)) {
      std::ifstream in(path, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      out += text.str();
      if (!lines.empty()) out += lines[next_line++ % lines.size()] + "\n";
      if (out.size() >= bytes) return out;
    }
  }
  while (out.size() < bytes && !lines.empty()) out += lines[next_line++ % lines.size()] + "\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: {} TOKENIZER [--mb 10] [--runs 3] [--fixtures DIR]\n", argv[0]);
    return 2;
  }
  size_t megabytes = 10;
  int runs = 3;
  std::string fixtures = "../shared/fixtures";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--mb") megabytes = std::stoul(argv[i + 1]);
    else if (flag == "--runs") runs = std::stoi(argv[i + 1]);
    else if (flag == "--fixtures") fixtures = argv[i + 1];
  }
  auto tokenizer = text::load_tokenizer(argv[1]);
  if (!tokenizer) {
    fmt::print(stderr, "{}\n", tokenizer.error().message);
    return 3;
  }
  const std::string text = corpus(megabytes << 20, fixtures);
  size_t tokens = 0;
  const double seconds = bench::median_seconds([&] { tokens = tokenizer->encode(text, false).size(); }, runs);
  const double mb = static_cast<double>(text.size()) / 1e6;
  nlohmann::json report = {{"tokenizer", argv[1]}, {"corpus_bytes", text.size()}, {"tokens", tokens}, {"seconds", seconds},
                           {"mb_per_s", mb / seconds}, {"tokens_per_s", static_cast<double>(tokens) / seconds}, {"threads", 1}};
  std::puts(report.dump(1).c_str());
  return 0;
}
