// bench/whisper: encoder milliseconds per 30 s window and decoder milliseconds per token of
// Whisper<W> at the released dims (random F16 weights from synthesize_whisper, loaded into each
// weight dtype), medians of several runs, and the log-mel front end on 30 s of audio (80 and 128
// bands, no padding: the spectrogram of one window). Prints JSON.
// usage: bench_whisper [--sizes tiny,base] [--dtypes f32,f16,q8_0] [--runs 5] [--tokens 32] [--threads 2] [--kv-dtype f16]
//                      [--write-ggml DIR]
// The KV storage defaults to f16, as whisper.cpp's does. With --write-ggml nothing is timed: the
// same weights are written as whisper.cpp model files DIR/ggml-SIZE-DTYPE.bin (bench/peers/whisper.sh).
#include <sys/resource.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/audio/mel.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/models/synth.hpp"
#include "bench_support.hpp"
#include "whisper_ggml.hpp"

using namespace apr;
using nlohmann::json;

namespace {

/// Seed of the synthetic weights (bench/peers/whisper.sh exports the same ones).
constexpr uint64_t kWhisperWeightSeed = 20261124;

json bench_model(const models::WhisperModel& model, int runs, size_t tokens) {
  const auto& config = model.config();
  std::vector<float> mel(config.num_mel_bins * config.input_frames());
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (float& v : mel) v = value(rng);
  auto audio = model.new_audio();
  const double encode_s = bench::median_seconds([&] { (void)model.encode(mel, *audio); }, runs);

  // decoder: the 4-token SOT prompt, then `tokens` single-token steps (argmax fed back)
  auto state = model.new_decoder_state(1);
  std::vector<float> logits(config.vocab_size);
  const std::vector<int32_t> prompt{50258, 50259, 50359, 50363};
  const double decode_s = bench::median_seconds(
      [&] {
        state->reset();
        (void)model.decode(*state, *audio, prompt, 1, logits);
        for (size_t t = 0; t < tokens; ++t) {
          const auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end() - 1501) - logits.begin());
          (void)model.decode(*state, *audio, std::span(&next, 1), 1, logits);
        }
      },
      runs);
  // the prompt pass alone, to take it out of the per-token figure
  const double prompt_s = bench::median_seconds(
      [&] {
        state->reset();
        (void)model.decode(*state, *audio, prompt, 1, logits);
      },
      runs);
  return {{"encode_ms", encode_s * 1e3}, {"decode_ms_per_token", (decode_s - prompt_s) * 1e3 / static_cast<double>(tokens)},
          {"prompt_ms", prompt_s * 1e3}};
}

/// Milliseconds for the log-mel of 30 s of noise with `n_mels` bands over `pool`.
json bench_log_mel(size_t n_mels, ThreadPool& pool, int runs) {
  auto front_end = audio::LogMel::create(n_mels);
  if (!front_end) return {{"error", front_end.error().message}};
  std::vector<float> samples(audio::kWindowSamples);
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (float& s : samples) s = noise(rng);
  const double seconds = bench::median_seconds([&] { (void)front_end->compute(samples, 0, pool); }, runs);
  return {{"n_mels", n_mels}, {"audio_seconds", 30}, {"ms", seconds * 1e3}};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> sizes{"tiny", "base"}, dtypes{"f32", "f16", "q8_0"};
  int runs = 5;
  size_t tokens = 32, threads = 2;
  DType kv_dtype = DType::f16;
  std::string ggml_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--sizes") sizes = bench::split_list(value);
    else if (flag == "--dtypes") dtypes = bench::split_list(value);
    else if (flag == "--runs") runs = std::stoi(value);
    else if (flag == "--tokens") tokens = std::stoul(value);
    else if (flag == "--threads") threads = std::stoul(value);
    else if (flag == "--kv-dtype" && (value == "f32" || value == "f16")) kv_dtype = value == "f16" ? DType::f16 : DType::f32;
    else if (flag == "--write-ggml") ggml_dir = value;
    else {
      fmt::print(stderr, "usage: {} [--sizes tiny,base] [--dtypes f32,f16,q8_0] [--runs 5] [--tokens 32] [--threads 2] [--kv-dtype f16|f32] [--write-ggml DIR]\n",
                 argv[0]);
      return 2;
    }
  }
  ThreadPool pool(threads);
  json report = {{"model", "whisper dims, random weights"}, {"threads", threads}, {"runs", runs},
                 {"kv_dtype", std::string(to_string(kv_dtype))}, {"results", json::array()}};
  if (ggml_dir.empty()) {
    report["log_mel"] = {bench_log_mel(80, pool, std::max(runs, 5)), bench_log_mel(128, pool, std::max(runs, 5))};
    fmt::print(stderr, "log-mel {}\n", report["log_mel"].dump());
  }
  for (const auto& size : sizes) {
    auto config = models::whisper_dims(size);
    if (!config) {
      fmt::print(stderr, "{}\n", config.error().message);
      return 2;
    }
    auto file = models::synthesize_whisper(*config, kWhisperWeightSeed);
    if (!file) {
      fmt::print(stderr, "{}\n", file.error().message);
      return 1;
    }
    for (const auto& name : dtypes) {
      const auto dtype = parse_dtype(name);
      if (!dtype || !is_weight_dtype(*dtype)) {
        fmt::print(stderr, "unknown dtype {}\n", name);
        return 2;
      }
      if (!ggml_dir.empty()) {
        const std::string path = fmt::format("{}/ggml-{}-{}.bin", ggml_dir, size, name);
        if (auto written = bench::write_whisper_ggml(**file, *config, *dtype, path); !written) {
          fmt::print(stderr, "{}\n", written.error().message);
          return 1;
        }
        fmt::print(stderr, "wrote {}\n", path);
        continue;
      }
      auto model = models::make_whisper(*file, *config, *dtype, {.pool = &pool, .kv_dtype = kv_dtype});
      if (!model) {
        fmt::print(stderr, "{}\n", model.error().message);
        return 1;
      }
      json result = bench_model(**model, runs, tokens);
      result["size"] = size;
      result["dtype"] = name;
      fmt::print(stderr, "{}\n", result.dump());
      report["results"].push_back(std::move(result));
    }
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  report["peak_rss_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
  std::puts(report.dump(1).c_str());
  return 0;
}
