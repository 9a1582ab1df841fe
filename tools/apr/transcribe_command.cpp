// apr transcribe: speech to text with a Whisper model, as openai/whisper's command line does it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/ranges.h>

#include "apr/audio/capture.hpp"
#include "apr/audio/vad.hpp"
#include "apr/audio_io.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/models/voxtral_load.hpp"
#include "apr/runtime/transcript_writer.hpp"
#include "apr/runtime/whisper_stream.hpp"
#include "apr/runtime/whisper_transcribe.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "cli.hpp"
#include "model_support.hpp"

namespace apr::cli {
namespace {

struct TranscribeFlags {
  std::string model;
  std::vector<std::string> audio;
  std::string tokenizer;
  std::string language;
  std::string task = "transcribe";
  size_t beam_size = 0;
  size_t best_of = 5;
  std::vector<float> temperatures;
  bool no_timestamps = false;
  bool word_timestamps = false;
  bool no_condition = false;
  std::string initial_prompt;
  std::string output_format = "txt";
  std::string output_dir;
  std::string dtype;
  std::string kv_dtype = "f16";
  size_t threads = 0;
  bool json = false;
  bool vad = false;
  audio::VadOptions vad_options;
  bool mic = false;
  std::string mic_device = "default";
  double duration = 0.0;
  bool list_devices = false;
  bool stream = false;
  size_t delay_ms = 0;
  size_t encoder_batch_ms = 80;
};

/// Set by SIGINT while the microphone is being transcribed.
std::atomic<bool> stop_capture{false};

/// Lists the ALSA capture devices.
int list_devices(bool json) {
  auto devices = audio::list_capture_devices();
  if (!devices) return report(devices.error());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : *devices) out.push_back({{"name", d.name}, {"description", d.description}});
    print_json(out);
    return kOk;
  }
  if (devices->empty()) fmt::print(stderr, "no capture devices (ALSA lists none)\n");
  for (const auto& d : *devices) fmt::print("{}\t{}\n", d.name, d.description);
  return kOk;
}

/// Speech segments of `samples` as clip_timestamps (start, end, … in seconds), reported on stderr.
Result<std::vector<double>> speech_clips(const std::string& path, std::span<const float> samples, const audio::VadOptions& options,
                                         nlohmann::json& report_json) {
  auto segments = audio::detect_speech(samples, options);
  if (!segments) return std::move(segments).error().with_context(path);
  std::vector<double> clips;
  double speech = 0.0;
  report_json = nlohmann::json::array();
  for (const auto& s : *segments) {
    clips.push_back(s.start_seconds(options.sample_rate));
    clips.push_back(s.end_seconds(options.sample_rate));
    speech += clips.back() - clips[clips.size() - 2];
    report_json.push_back({{"start", clips[clips.size() - 2]}, {"end", clips.back()}, {"confidence", s.confidence}});
  }
  fmt::print(stderr, "{}: VAD found {} speech segments, {:.1f} s of {:.1f} s\n", path, segments->size(), speech,
             static_cast<double>(samples.size()) / static_cast<double>(options.sample_rate));
  return clips;
}

/// Transcribes the microphone live: committed segments on stdout as they become final, the
/// tentative text on stderr; Ctrl-C (or --duration) ends the stream, then the rest is printed.
int transcribe_microphone(const TranscribeFlags& flags, runtime::WhisperDecoder& decoder, const audio::LogMel& front_end,
                          const runtime::TranscribeOptions& options, ThreadPool& pool) {
  auto microphone = audio::Microphone::open(flags.mic_device);
  if (!microphone) return report(microphone.error());
  auto stream = runtime::WhisperStream::create(decoder, front_end, options, pool);
  if (!stream) return report(stream.error());
  stop_capture = false;
  auto* previous = std::signal(SIGINT, [](int) { stop_capture = true; });
  fmt::print(stderr, "listening on '{}' (Ctrl-C to stop)\n", flags.mic_device);
  const auto limit = static_cast<size_t>(flags.duration * 16000.0);
  std::vector<float> chunk(8000);
  size_t printed = 0;
  while (!stop_capture && (limit == 0 || stream->samples() < limit)) {
    auto got = microphone->read(std::span<float>(chunk).first(limit == 0 ? chunk.size() : std::min(chunk.size(), limit - stream->samples())));
    if (!got) {
      std::signal(SIGINT, previous);
      return report(got.error());
    }
    auto update = stream->feed(std::span<const float>(chunk).first(*got));
    if (!update) {
      std::signal(SIGINT, previous);
      return report(update.error());
    }
    for (const auto& segment : update->committed) fmt::print("{}\n", segment.text);
    printed += update->committed.size();
    if (!update->tentative.empty()) fmt::print(stderr, "… {}\n", update->tentative);
    std::fflush(stdout);
  }
  std::signal(SIGINT, previous);
  if (stream->samples() == 0) return report(make_error(ErrorCode::io, "capture device '{}': no audio was read", flags.mic_device));
  auto transcript = stream->finish();
  if (!transcript) return report(transcript.error());
  // finish() may redo windows whose frames a louder later passage changed; print what is new
  for (size_t i = std::min(printed, transcript->segments.size()); i < transcript->segments.size(); ++i) fmt::print("{}\n", transcript->segments[i].text);
  fmt::print(stderr, "{:.1f} s of audio from '{}'\n", static_cast<double>(stream->samples()) / 16000.0, flags.mic_device);
  return kOk;
}

/// Transcribes files or the microphone with a Voxtral-Realtime model. With its Tekken tokenizer
/// (tekken.json beside the model, or --tokenizer) it prints text, else the ids (greedy, EOS
/// included); with --stream (and always from the microphone) the audio goes in 80 ms chunks and
/// what each chunk decided is printed at once.
int transcribe_voxtral(const TranscribeFlags& flags, std::optional<DType> dtype, ThreadPool& pool) {
  const auto load_start = std::chrono::steady_clock::now();
  auto loaded = models::load_voxtral(flags.model, dtype, pool, flags.delay_ms > 0 ? std::optional<size_t>(flags.delay_ms) : std::nullopt);
  if (!loaded) return report(loaded.error());
  models::VoxtralTranscriber& model = **loaded;
  std::optional<text::Tokenizer> tokenizer;
  if (auto found = models::voxtral_tokenizer(flags.model, flags.tokenizer)) {
    tokenizer = std::move(found).value();
  } else if (!flags.tokenizer.empty() || found.error().code != ErrorCode::not_found) {
    return report(found.error());
  }
  fmt::print(stderr, "loaded {} (Voxtral, {}, delay {} ms{}) in {:.0f} ms\n", flags.model, to_string(model.weight_dtype()), model.config().delay_ms(),
             tokenizer ? "" : "; no tekken.json, so ids are printed", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count());
  const bool streamed = flags.stream || flags.mic;
  const size_t token_ms = model.config().samples_per_token / 16;
  if (flags.encoder_batch_ms < token_ms || flags.encoder_batch_ms > 2400 || flags.encoder_batch_ms % token_ms != 0) {
    return report(make_error(ErrorCode::invalid_argument, "--encoder-batch-ms {}: expected a multiple of {} ms from {} to 2400", flags.encoder_batch_ms,
                             token_ms, token_ms));
  }

  const models::VoxtralStreamOptions options{.encoder_batch_tokens = flags.encoder_batch_ms / token_ms};

  // one stream: `read` fills a chunk and returns how many samples it holds (0 at the end)
  auto transcribe = [&](const std::string& source, const std::function<Result<size_t>(std::span<float>)>& read, size_t chunk) -> Result<nlohmann::json> {
    const auto start = std::chrono::steady_clock::now();
    std::vector<float> buffer(chunk);
    std::vector<int32_t> ids;
    std::optional<text::StreamDecoder> pieces;
    if (tokenizer) pieces.emplace(tokenizer->stream(true));
    auto take = [&](const std::vector<int32_t>& decided) {
      ids.insert(ids.end(), decided.begin(), decided.end());
      if (!streamed || flags.json) return;
      for (int32_t id : decided) {
        if (pieces) fmt::print("{}", pieces->push(id));
        else fmt::print("{} ", id);
      }
      std::fflush(stdout);
    };
    if (auto started = model.start(options); !started) return std::move(started).error();
    size_t samples = 0;
    for (;;) {
      auto got = read(buffer);
      if (!got) return std::move(got).error();
      if (*got == 0) break;
      samples += *got;
      auto decided = model.feed(std::span<const float>(buffer).first(*got));
      if (!decided) return std::move(decided).error().with_context(source);
      take(*decided);
    }
    auto rest = model.finish();
    if (!rest) return std::move(rest).error().with_context(source);
    take(*rest);
    if (pieces && streamed && !flags.json) fmt::print("{}", pieces->flush());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double audio_seconds = static_cast<double>(samples) / 16000.0;
    fmt::print(stderr, "{}: {:.1f} s of audio in {:.2f} s ({:.1f}x real time), {} ids\n", source, audio_seconds, seconds,
               audio_seconds / std::max(seconds, 1e-9), ids.size());
    nlohmann::json result = {{"audio", source}, {"ids", ids}, {"delay_ms", model.config().delay_ms()}};
    if (tokenizer) result["text"] = tokenizer->decode(ids, true);
    if (flags.json) return result;
    if (streamed) fmt::print("\n");
    else if (tokenizer) fmt::print("{}\n", result["text"].get<std::string>());
    else fmt::print("{}\n", fmt::join(ids, " "));
    return result;
  };

  nlohmann::json results = nlohmann::json::array();
  const size_t token_samples = model.config().samples_per_token;
  if (flags.mic) {
    // the left pad runs before capture starts, so the first chunks are not held up by it
    if (auto started = model.start(options); !started) return report(started.error());
    auto microphone = audio::Microphone::open(flags.mic_device);
    if (!microphone) return report(microphone.error());
    stop_capture = false;
    auto* previous = std::signal(SIGINT, [](int) { stop_capture = true; });
    fmt::print(stderr, "listening on '{}' (Ctrl-C to stop)\n", flags.mic_device);
    const auto limit = static_cast<size_t>(flags.duration * 16000.0);
    size_t captured = 0;
    auto result = transcribe(flags.mic_device, [&](std::span<float> chunk) -> Result<size_t> {
      if (stop_capture || (limit > 0 && captured >= limit)) return size_t{0};
      auto got = microphone->read(chunk.first(limit == 0 ? chunk.size() : std::min(chunk.size(), limit - captured)));
      if (got) captured += *got;
      return got;
    }, token_samples);
    std::signal(SIGINT, previous);
    if (!result) return report(result.error());
    if (captured == 0) return report(make_error(ErrorCode::io, "capture device '{}': no audio was read", flags.mic_device));
    results.push_back(std::move(result).value());
  }
  for (const auto& path : flags.audio) {
    auto audio = audio::read_audio(path);
    if (!audio) return report(audio.error());
    size_t at = 0;
    const size_t chunk = streamed ? token_samples : std::max<size_t>(audio->samples.size(), 1);
    auto result = transcribe(path, [&](std::span<float> out) -> Result<size_t> {
      const size_t n = std::min(out.size(), audio->samples.size() - at);
      std::copy_n(audio->samples.begin() + static_cast<std::ptrdiff_t>(at), n, out.begin());
      at += n;
      return n;
    }, chunk);
    if (!result) return report(result.error());
    results.push_back(std::move(result).value());
  }
  if (flags.json) print_json(results.size() == 1 ? results[0] : results);
  return kOk;
}

int run_transcribe(const TranscribeFlags& flags) {
  if (flags.list_devices) return list_devices(flags.json);
  if (flags.model.empty()) return report(make_error(ErrorCode::invalid_argument, "give a Whisper or Voxtral model"));
  if (flags.mic == !flags.audio.empty()) return report(make_error(ErrorCode::invalid_argument, "give audio files or --mic (one of the two)"));
  if (flags.mic && flags.vad) return report(make_error(ErrorCode::invalid_argument, "--vad skips silence in files; it does not apply to --mic"));
  auto format = runtime::parse_transcript_format(flags.json ? "json" : flags.output_format);
  if (!format) return report(format.error());
  std::optional<DType> dtype;
  if (!flags.dtype.empty()) {
    dtype = parse_dtype(flags.dtype);
    if (!dtype || !is_weight_dtype(*dtype)) return report(make_error(ErrorCode::invalid_argument, "--dtype {}: expected f32, f16, bf16, q8_0 or q4_0", flags.dtype));
  }
  std::unique_ptr<ThreadPool> owned_pool;
  if (flags.threads > 0) owned_pool = std::make_unique<ThreadPool>(flags.threads);
  ThreadPool& pool = owned_pool ? *owned_pool : ThreadPool::global();
  if (models::is_voxtral_model(flags.model)) return transcribe_voxtral(flags, dtype, pool);

  const auto load_start = std::chrono::steady_clock::now();
  auto loaded = models::load_whisper(flags.model, dtype, {.pool = &pool, .kv_dtype = flags.kv_dtype == "f16" ? DType::f16 : DType::f32});
  if (!loaded) return report(loaded.error());
  auto tokenizer = models::whisper_tokenizer(*loaded, flags.tokenizer);
  if (!tokenizer) return report(tokenizer.error());
  auto decoder = runtime::WhisperDecoder::create(*loaded->model, std::move(tokenizer).value());
  if (!decoder) return report(decoder.error());
  auto front_end = loaded->front_end();
  if (!front_end) return report(front_end.error());
  fmt::print(stderr, "loaded {} ({}) in {:.0f} ms\n", flags.model, to_string(loaded->model->weight_dtype()),
             std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count());

  runtime::TranscribeOptions options;
  options.decode.language = flags.language;
  options.decode.task = flags.task == "translate" ? runtime::WhisperTask::translate : runtime::WhisperTask::transcribe;
  options.decode.beam_size = flags.beam_size;
  options.decode.best_of = flags.best_of;
  options.decode.without_timestamps = flags.no_timestamps;
  if (!flags.temperatures.empty()) options.temperatures = flags.temperatures;
  options.word_timestamps = flags.word_timestamps;
  options.condition_on_previous_text = !flags.no_condition;
  if (!flags.initial_prompt.empty()) options.initial_prompt = flags.initial_prompt;
  if (flags.mic) return transcribe_microphone(flags, *decoder, *front_end, options, pool);
  runtime::WhisperTranscriber transcriber(*decoder);

  nlohmann::json results = nlohmann::json::array();
  for (const auto& path : flags.audio) {
    auto audio = audio::read_audio(path);
    if (!audio) return report(audio.error());
    if (audio->clipped > 0) fmt::print(stderr, "warning: {}: {} samples clipped (|x| >= 1)\n", path, audio->clipped);
    runtime::TranscribeOptions file_options = options;
    nlohmann::json vad_segments;
    if (flags.vad) {
      auto clips = speech_clips(path, audio->samples, flags.vad_options, vad_segments);
      if (!clips) return report(clips.error());
      file_options.clip_timestamps = std::move(clips).value();
    }
    const auto start = std::chrono::steady_clock::now();
    runtime::Transcript silent;  // what VAD leaves nothing of transcribes to no segments
    silent.language = options.decode.language;
    auto transcript = flags.vad && file_options.clip_timestamps.empty() ? Result<runtime::Transcript>(std::move(silent))
                                                                        : transcriber.transcribe_samples(audio->samples, *front_end, file_options, pool);
    if (!transcript) return report(transcript.error().with_context(path));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    size_t tokens = 0;
    for (const auto& segment : transcript->segments) tokens += segment.tokens.size();
    fmt::print(stderr, "{}: {:.1f} s of audio in {:.2f} s ({:.1f}x real time), language {}, {} tokens ({:.0f} tokens/s, encoder included)\n", path,
               audio->seconds(), seconds, audio->seconds() / std::max(seconds, 1e-9), transcript->language, tokens,
               static_cast<double>(tokens) / std::max(seconds, 1e-9));
    const std::string rendered = runtime::render_transcript(*transcript, *format);
    if (!flags.output_dir.empty()) {
      const auto out = std::filesystem::path(flags.output_dir) /
                       (std::filesystem::path(path).stem().string() + "." + std::string(runtime::extension(*format)));
      auto written = write_text_atomically(out, rendered);
      if (!written) return report(written.error());
      fmt::print(stderr, "wrote {}\n", out.string());
    } else if (*format == runtime::TranscriptFormat::json) {
      auto document = runtime::transcript_json(*transcript);
      document["audio"] = path;
      if (flags.vad) document["vad_segments"] = vad_segments;
      results.push_back(std::move(document));
    } else {
      fmt::print("{}", rendered);
    }
  }
  if (results.size() == 1) print_json(results[0]);
  if (results.size() > 1) print_json(results);
  return kOk;
}

}  // namespace

void register_transcribe_commands(CLI::App& app, Registry& registry) {
  auto flags = std::make_shared<TranscribeFlags>();
  auto* command = app.add_subcommand("transcribe", "Transcribe or translate speech with a Whisper model (txt, json, srt, vtt, tsv)");
  command->add_option("model", flags->model, "Whisper model: Hugging Face folder, .safetensors (config.json beside it) or .apr");
  command->add_option("audio", flags->audio, "audio files (WAV, FLAC, OGG, … or raw float32 .f32 at 16 kHz)");
  command->add_option("--tokenizer", flags->tokenizer, "tokenizer folder or file; Voxtral: a tekken.json (default: the model's folder)");
  command->add_option("--language", flags->language, "spoken language code (default: detected from the first 30 s)");
  command->add_option("--task", flags->task, "transcribe, or translate into English")->check(CLI::IsMember({"transcribe", "translate"}));
  command->add_option("--beam-size", flags->beam_size, "beams at temperature 0 (0: greedy)");
  command->add_option("--best-of", flags->best_of, "samples per window at temperatures above 0");
  command->add_option("--temperature", flags->temperatures, "temperatures tried in turn when a window fails (default 0 0.2 0.4 0.6 0.8 1)")
      ->delimiter(',');
  command->add_flag("--no-timestamps", flags->no_timestamps, "decode without timestamp tokens");
  command->add_flag("--word-timestamps", flags->word_timestamps, "word-level times from cross-attention alignment");
  command->add_flag("--no-condition", flags->no_condition, "do not prompt each window with the text before it");
  command->add_option("--initial-prompt", flags->initial_prompt, "text that conditions the first window");
  command->add_option("-f,--output-format", flags->output_format, "txt, json, srt, vtt or tsv")
      ->check(CLI::IsMember({"txt", "json", "srt", "vtt", "tsv"}));
  command->add_option("-o,--output-dir", flags->output_dir, "write <audio stem>.<format> files here instead of stdout");
  command->add_option("--dtype", flags->dtype, "run the matmuls in this dtype (f32, f16, bf16, q8_0, q4_0; default: as stored)");
  command->add_option("--kv-dtype", flags->kv_dtype, "key/value storage (f16 or f32)")->check(CLI::IsMember({"f32", "f16"}));
  command->add_option("-t,--threads", flags->threads, "threads (default: all cores)");
  command->add_flag("--json", flags->json, "same as --output-format json (token ids and language probabilities included)");
  command->add_flag("--vad", flags->vad, "detect speech by energy first and decode only its segments (silence skipped)");
  command->add_option("--vad-threshold", flags->vad_options.threshold_db, "VAD: frames at or above this RMS level in dBFS are speech (default -40)");
  command->add_option("--vad-min-speech-ms", flags->vad_options.min_speech_ms, "VAD: drop speech shorter than this (default 250)");
  command->add_option("--vad-min-silence-ms", flags->vad_options.min_silence_ms, "VAD: silence that ends speech (default 300)");
  command->add_option("--vad-pad-ms", flags->vad_options.speech_pad_ms, "VAD: margin kept around speech (default 200)");
  command->add_flag("--mic", flags->mic, "transcribe the microphone live (ALSA) until Ctrl-C or --duration");
  command->add_option("--mic-device", flags->mic_device, "ALSA capture device (default: default; see --list-devices)");
  command->add_option("--duration", flags->duration, "with --mic: stop after this many seconds of audio")->check(CLI::NonNegativeNumber);
  command->add_flag("--list-devices", flags->list_devices, "list ALSA capture devices and exit");
  command->add_flag("--stream", flags->stream, "Voxtral: feed the audio in 80 ms chunks and print the text (or ids) as soon as it is decided");
  command->add_option("--delay-ms", flags->delay_ms, "Voxtral: transcription delay, 80 to 2400 ms in steps of 80 (default: the model's)");
  command->add_option("--encoder-batch-ms", flags->encoder_batch_ms,
                      "Voxtral streaming: run the encoder once this much new audio is in, 80 to 2400 ms in steps of 80 (default 80; more is faster, "
                      "ids may come up to that much later, the text is the same)");
  registry.add(command, [flags] { return run_transcribe(*flags); });
}

}  // namespace apr::cli
