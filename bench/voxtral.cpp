// bench/voxtral: VoxtralRealtime<W> at real dims (a model `apr synth voxtral` writes: random
// weights at Voxtral Mini 4B Realtime's dims), loaded into each weight dtype: encoder
// milliseconds per second of audio (log-mel frames → audio embeddings, the padded signal),
// decoder milliseconds per token (and the prompt prefill), and the real-time factor of
// streaming the audio in 80 ms chunks at the model's transcription delay (wall time over audio
// time; below 1 keeps up; the left pad every stream starts with runs once beforehand and is
// reported as stream_start_ms), with the encoder run on every chunk and batched over more audio
// (--encoder-batch-ms). Medians of several runs. The decoder's per-token weight bytes and
// the copy bandwidth measured here give its bandwidth bound. Prints JSON.
// usage: bench_voxtral MODEL [--dtypes q8_0,q4_0] [--audio WAV] [--seconds 10] [--runs 3] [--threads 2] [--delay-ms 480]
//                     [--encoder-batch-ms 80,480,960]
// Without --audio the signal is seconds of seeded tones and noise.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/audio_io.hpp"
#include "apr/models/voxtral_load.hpp"
#include "bench_support.hpp"

using namespace apr;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
using bench::median;
using bench::seconds_since;

/// `seconds` of 16 kHz audio: a few gliding tones under noise, seeded.
std::vector<float> synthetic_audio(double seconds) {
  std::vector<float> samples(static_cast<size_t>(seconds * 16000.0));
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  for (size_t i = 0; i < samples.size(); ++i) {
    const double t = static_cast<double>(i) / 16000.0;
    const double tone = 0.2 * std::sin(2.0 * M_PI * (220.0 + 40.0 * std::sin(t)) * t) + 0.1 * std::sin(2.0 * M_PI * 1100.0 * t);
    samples[i] = static_cast<float>(tone * (0.5 + 0.5 * std::sin(2.0 * M_PI * 3.0 * t))) + noise(rng);
  }
  return samples;
}

/// Bytes of weights the decoder reads per token in dtype `dtype`: every decoder matrix and the tied head.
double decoder_bytes_per_token(const models::VoxtralConfig& config, DType dtype) {
  const auto& s = config.decoder;
  const uint64_t q = s.n_heads * s.head_dim, kv = s.n_kv_heads * s.head_dim;
  auto bytes = [&](uint64_t rows, uint64_t cols) { return static_cast<double>(rows * dtype_bytes(dtype, cols).value_or(0)); };
  const double layer = bytes(q, s.dim) + 2 * bytes(kv, s.dim) + bytes(s.dim, q) + 2 * bytes(s.hidden_dim, s.dim) + bytes(s.dim, s.hidden_dim);
  return static_cast<double>(s.n_layers) * layer + bytes(config.vocab_size, s.dim);
}

/// The figures of one weight dtype.
template <WeightDtype W>
Result<json> bench_dtype(std::shared_ptr<const format::TensorFile> file, const models::VoxtralConfig& config, ThreadPool& pool,
                         std::span<const float> samples, int runs, double bandwidth_gbs, const std::vector<size_t>& encoder_batches_ms) {
  auto start = Clock::now();
  auto loaded = models::VoxtralRealtime<W>::load(file, config, &pool);
  if (!loaded) return std::move(loaded).error();
  const double load_s = seconds_since(start);
  const auto& model = **loaded;
  auto front_end = audio::LogMel::create(config.num_mel_bins);
  if (!front_end) return std::move(front_end).error();
  auto mel = models::voxtral_log_mel(samples, config, *front_end, pool);
  if (!mel) return std::move(mel).error();
  const double padded_seconds = static_cast<double>(mel->frames) / 100.0;

  // encoder: the padded signal's log-mel (band-major, as encode() takes it) to audio embeddings
  std::vector<float> embeddings;
  std::vector<double> encoder_s;
  for (int r = 0; r < runs; ++r) {
    start = Clock::now();
    auto encoded = model.encode(mel->values, mel->frames);
    if (!encoded) return std::move(encoded).error();
    auto adapted = model.adapt(*encoded);
    if (!adapted) return std::move(adapted).error();
    encoder_s.push_back(seconds_since(start));
    embeddings = std::move(adapted).value();
  }

  // decoder: the prompt in one pass, then one step per audio position left (argmax fed back)
  const size_t d = config.decoder.dim, positions = embeddings.size() / d;
  if (positions <= model.prompt_length()) return make_error(ErrorCode::invalid_argument, "the audio gives no positions after the prompt");
  std::vector<double> prompt_s, step_s;
  size_t steps = 0;
  for (int r = 0; r < runs; ++r) {
    auto state = model.start_decoder();
    start = Clock::now();
    model.decode_prompt(state, embeddings);
    prompt_s.push_back(seconds_since(start));
    start = Clock::now();
    steps = 0;
    while (state.position < positions) {
      model.decode_step(state, std::span<const float>(embeddings).subspan(state.position * d, d));
      ++steps;
    }
    step_s.push_back(seconds_since(start) / static_cast<double>(steps));
  }

  // streaming: the left pad once (VoxtralStreamStart, as a transcriber does before its first
  // stream), then per stream 80 ms chunks as they would arrive and the end, for each encoder batch
  std::vector<double> start_s;
  std::optional<models::VoxtralStreamStart<W>> stream_start;
  for (int r = 0; r < runs; ++r) {
    start = Clock::now();
    auto computed = models::VoxtralStreamStart<W>::compute(model, *front_end, pool);
    if (!computed) return std::move(computed).error();
    start_s.push_back(seconds_since(start));
    stream_start.emplace(std::move(computed).value());
  }
  const double audio_seconds = static_cast<double>(samples.size()) / 16000.0;
  json streams = json::array();
  std::vector<int32_t> first_ids;
  for (const size_t batch_ms : encoder_batches_ms) {
    std::vector<double> stream_s, worst_chunk_ms;
    bool same_ids = true;
    size_t stream_ids = 0;
    for (int r = 0; r < runs; ++r) {
      start = Clock::now();  // a stream's construction counts: it sets up the caches
      models::VoxtralStream<W> stream(*stream_start, pool, {.encoder_batch_tokens = batch_ms / (config.samples_per_token / 16)});
      double worst = 0.0;
      for (size_t at = 0; at < samples.size(); at += config.samples_per_token) {
        const auto chunk_start = Clock::now();
        auto fed = stream.feed(samples.subspan(at, std::min(config.samples_per_token, samples.size() - at)));
        if (!fed) return std::move(fed).error();
        worst = std::max(worst, seconds_since(chunk_start) * 1e3);
      }
      if (auto rest = stream.finish(); !rest) return std::move(rest).error();
      stream_s.push_back(seconds_since(start));
      worst_chunk_ms.push_back(worst);
      stream_ids = stream.ids().size();
      if (first_ids.empty()) first_ids = stream.ids();
      same_ids = same_ids && stream.ids() == first_ids;
    }
    // random weights leave near-ties that float rounding (the encoder's kernels differ with the
    // batch's row count) can flip, so whether the ids matched is reported, not required
    streams.push_back({{"encoder_batch_ms", batch_ms},
                       {"rtf", median(stream_s) / audio_seconds},
                       {"worst_chunk_ms", median(worst_chunk_ms)},
                       {"ids", stream_ids},
                       {"same_ids_as_first_batch", same_ids}});
  }
  const double step_ms = median(step_s) * 1e3;
  const double bytes = decoder_bytes_per_token(config, W::dtype);
  const double bound_tok_s = bandwidth_gbs * 1e9 / bytes;
  return json{{"dtype", std::string(to_string(W::dtype))},
              {"load_s", load_s},
              {"audio_s", audio_seconds},
              {"padded_audio_s", padded_seconds},
              {"encoder_ms_per_audio_s", median(encoder_s) * 1e3 / padded_seconds},
              {"decoder_prompt_tokens", model.prompt_length()},
              {"decoder_prompt_ms", median(prompt_s) * 1e3},
              {"decoder_steps", steps},
              {"decoder_ms_per_token", step_ms},
              {"decoder_tok_s", 1e3 / step_ms},
              {"decoder_weight_gb_per_token", bytes / 1e9},
              {"decoder_bound_tok_s", bound_tok_s},
              {"decoder_of_bound", 1e3 / step_ms / bound_tok_s},
              {"stream_delay_ms", config.delay_ms()},
              {"stream_start_ms", median(start_s) * 1e3},
              {"streams", streams}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    fmt::print(stderr, "usage: {} MODEL [--dtypes q8_0,q4_0] [--audio WAV] [--seconds 10] [--runs 3] [--threads 2] [--delay-ms 480] [--encoder-batch-ms 80,480,960]\n", argv[0]);
    return 2;
  }
  const std::string model_path = argv[1];
  std::vector<std::string> dtypes{"q8_0", "q4_0"};
  std::string audio_path;
  double seconds = 10.0;
  int runs = 3;
  size_t threads = 2, delay_ms = 480;
  std::vector<size_t> encoder_batches_ms{80, 480, 960};
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--dtypes") dtypes = bench::split_list(value);
    else if (flag == "--audio") audio_path = value;
    else if (flag == "--seconds") seconds = std::stod(value);
    else if (flag == "--runs") runs = std::max(1, std::stoi(value));
    else if (flag == "--threads") threads = std::stoul(value);
    else if (flag == "--delay-ms") delay_ms = std::stoul(value);
    else if (flag == "--encoder-batch-ms") {
      encoder_batches_ms.clear();
      for (const auto& ms : bench::split_list(value)) encoder_batches_ms.push_back(std::stoul(ms));
    }
    else {
      fmt::print(stderr, "unknown flag {}\n", flag);
      return 2;
    }
  }
  std::vector<float> samples;
  if (audio_path.empty()) {
    samples = synthetic_audio(seconds);
  } else {
    auto audio = audio::read_audio(audio_path);
    if (!audio) {
      fmt::print(stderr, "{}\n", audio.error().message);
      return 1;
    }
    samples = std::move(audio->samples);
  }
  ThreadPool pool(threads);
  const double bandwidth = bench::copy_bandwidth_gbs(pool);
  json report = {{"model", model_path}, {"threads", threads}, {"runs", runs}, {"copy_bandwidth_gbs", bandwidth}, {"results", json::array()}};
  for (const auto& name : dtypes) {
    const auto dtype = parse_dtype(name);
    if (!dtype || !is_weight_dtype(*dtype)) {
      fmt::print(stderr, "unknown dtype {}\n", name);
      return 2;
    }
    // opened per dtype, so each load converts from the file as a user's would
    auto opened = models::open_voxtral(model_path, delay_ms);
    if (!opened) {
      fmt::print(stderr, "{}\n", opened.error().message);
      return 1;
    }
    auto result = visit_dtype(*dtype, [&](auto tag) { return bench_dtype<decltype(tag)>(opened->file, opened->config, pool, samples, runs, bandwidth, encoder_batches_ms); });
    if (!result) {
      fmt::print(stderr, "{}: {}\n", name, result.error().message);
      return 1;
    }
    fmt::print(stderr, "{}\n", result->dump());
    report["results"].push_back(std::move(result).value());
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  report["peak_rss_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
  std::puts(report.dump(1).c_str());
  return 0;
}
