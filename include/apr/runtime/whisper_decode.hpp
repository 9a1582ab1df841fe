/// @file whisper_decode.hpp
/// @brief WhisperDecoder: decoding of one 30 s window as openai/whisper's decode() does it —
/// SOT sequence, language detection, transcribe/translate, greedy, sampling with best-of, beam
/// search with patience, and the logit rules (suppress blank, suppress tokens, timestamp rules)
/// — written as one state machine in decode().
///
/// Per step every sequence's logits pass the rules in whisper's order: (1) at the first sampled
/// position, " " and <|endoftext|> are suppressed; (2) the suppress list (non-speech symbols for
/// "-1", plus the task/SOT/prev/LM/no-speech specials) is suppressed; (3) with timestamps,
/// <|notimestamps|> is suppressed, timestamps come in pairs (after a lone timestamp only a
/// timestamp or <|endoftext|>; after a pair only text), never decrease (and a segment is never
/// empty), the first token is a timestamp no later than max_initial_timestamp, and when the
/// total probability of the timestamps exceeds that of every single text token, only a
/// timestamp may follow. avg_logprob = Σ log p(chosen, after the rules) / (tokens + 1).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <zlib.h>

#include "apr/core/result.hpp"
#include "apr/core/utf8.hpp"
#include "apr/models/whisper.hpp"
#include "apr/text/tokenizer.hpp"
#include "apr/text/whisper_tokens.hpp"

namespace apr::runtime {

/// X→X speech recognition or X→English translation.
enum class WhisperTask { transcribe, translate };

/// Options of one window's decoding (openai/whisper's DecodingOptions).
struct WhisperDecodeOptions {
  WhisperTask task = WhisperTask::transcribe;  ///< transcribe or translate
  std::string language;                        ///< language code ("en"); empty: detect it
  float temperature = 0.0f;                    ///< 0: argmax (or beam search); > 0: sampling
  size_t sample_len = 0;                       ///< most tokens to sample; 0: half the text context
  size_t best_of = 0;                          ///< independent samples when temperature > 0 (0: one)
  size_t beam_size = 0;                        ///< beams when temperature is 0 (0: greedy)
  float patience = 0.0f;                       ///< beam search keeps beam_size × patience finished candidates (0: 1.0)
  std::optional<float> length_penalty;         ///< Google NMT α in [0, 1]; none: rank by sum / length
  std::vector<int32_t> prompt;                 ///< previous text, placed after <|startofprev|>
  std::vector<int32_t> prefix;                 ///< forced start of the sampled text
  std::string suppress_tokens = "-1";          ///< comma-separated ids; -1 adds the non-speech symbols
  bool suppress_blank = true;                  ///< no " " or <|endoftext|> as the first sampled token
  bool without_timestamps = false;             ///< <|notimestamps|>: text tokens only
  std::optional<float> max_initial_timestamp = 1.0f;  ///< latest first timestamp, seconds
  uint64_t seed = 0;                           ///< random seed for sampling
};

/// A language code and its probability.
struct LanguageProbability {
  std::string code;           ///< "en", "de", …
  float probability = 0.0f;   ///< softmax over the language tokens after <|startoftranscript|>
};

/// The decoding of one window (openai/whisper's DecodingResult).
struct WhisperDecodeResult {
  std::string language;                             ///< language used
  std::vector<LanguageProbability> language_probs;  ///< filled when the language was detected
  std::vector<int32_t> tokens;                      ///< sampled tokens (timestamps included, no <|endoftext|>)
  std::vector<float> token_probs;                   ///< per token: its probability after the rules, in [0, 1]
  std::string text;                                 ///< text of the tokens, stripped
  double sum_logprob = 0.0;                         ///< Σ log p of the tokens and the final <|endoftext|>
  double avg_logprob = 0.0;                         ///< sum_logprob / (tokens + 1)
  double no_speech_prob = 0.0;                      ///< p(<|nospeech|>) right after <|startoftranscript|>
  float temperature = 0.0f;                         ///< temperature used
  double compression_ratio = 0.0;                   ///< bytes of the text / bytes of its zlib compression
};

/// UTF-8 bytes of `text` over the bytes of its zlib compression at the default level (as
/// Python's zlib.compress); > 2.4 flags repetitive output.
inline double compression_ratio(std::string_view text) {
  if (text.empty()) return 0.0;
  uLongf size = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> packed(size);
  if (compress2(packed.data(), &size, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()), Z_DEFAULT_COMPRESSION) != Z_OK) {
    return 0.0;
  }
  return static_cast<double>(text.size()) / static_cast<double>(size);
}

/// True for the code points Python's str.isspace() accepts (what str.strip() removes).
constexpr bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// `text` without leading and trailing white space, as Python's str.strip() (ill-formed UTF-8
/// is never white space).
inline std::string strip_text(std::string_view text) {
  size_t begin = 0, end = text.size(), subpart = 0;
  // the code point at `at` when it is well-formed and ends by `end`
  const auto space_at = [&](size_t at, size_t length) {
    if (length == 0 || at + length > end) return false;
    return is_python_space(next_code_point(text, at));
  };
  while (begin < end) {
    const size_t length = utf8_sequence_length(text.substr(begin, end - begin), subpart);
    if (!space_at(begin, length)) break;
    begin += length;
  }
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    const size_t length = utf8_sequence_length(text.substr(start, end - start), subpart);
    if (length != end - start || !space_at(start, length)) break;
    end = start;
  }
  return std::string(text.substr(begin, end - begin));
}

/// Tokens openai/whisper suppresses for "-1": speaker tags and non-speech annotations
/// ("♪", "[", "(", "<<", …), each alone or after a space when it is one token (always the first
/// token of the ♩♪♫♬♭♮♯ symbols), plus " -" and " '" (allowed inside words only).
inline std::vector<int32_t> whisper_non_speech_tokens(const text::Tokenizer& tokenizer) {
  std::vector<std::string> symbols;
  for (const char* s : {"\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^", "_", "`", "{", "|", "}",
                        "~", "「", "」", "『", "』", "<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))",
                        "(((", ")))", "[[", "]]", "{{", "}}", "♪♪", "♪♪♪"}) {
    symbols.emplace_back(s);
  }
  const std::vector<std::string> miscellaneous{"♩", "♪", "♫", "♬", "♭", "♮", "♯"};
  std::set<int32_t> result{tokenizer.encode(" -", false)[0], tokenizer.encode(" '", false)[0]};
  auto add = [&](const std::string& symbol, bool first_token_is_enough) {
    for (const std::string& text : {symbol, " " + symbol}) {
      const auto ids = tokenizer.encode(text, false);
      if (ids.size() == 1 || (first_token_is_enough && !ids.empty())) result.insert(ids[0]);
    }
  };
  for (const auto& symbol : symbols) add(symbol, false);
  for (const auto& symbol : miscellaneous) add(symbol, true);
  return {result.begin(), result.end()};
}

/// Decodes 30 s windows with one Whisper model and its tokenizer; holds the encoded window and
/// the decoder states between calls (not thread-safe; one per concurrent stream).
class WhisperDecoder {
 public:
  /// A decoder over `model` (kept by reference) and `tokenizer` (must have Whisper's special tokens).
  static Result<WhisperDecoder> create(const models::WhisperModel& model, text::Tokenizer tokenizer) {
    auto specials = text::WhisperTokens::from(tokenizer);
    if (!specials) return std::move(specials).error();
    if (specials->timestamp_begin + 1501 > static_cast<int32_t>(model.config().vocab_size)) {
      return make_error(ErrorCode::invalid_argument, "whisper: tokenizer's timestamps end at {}, past the model's vocabulary of {}",
                        specials->timestamp_begin + 1500, model.config().vocab_size);
    }
    specials->language_ids.resize(std::min(specials->language_ids.size(), model.config().num_languages()));
    return WhisperDecoder(model, std::move(tokenizer), std::move(specials).value());
  }

  /// The model.
  [[nodiscard]] const models::WhisperModel& model() const noexcept { return *model_; }
  /// The tokenizer.
  [[nodiscard]] const text::Tokenizer& tokenizer() const noexcept { return tokenizer_; }
  /// The special token ids.
  [[nodiscard]] const text::WhisperTokens& specials() const noexcept { return specials_; }
  /// The current encoded window.
  [[nodiscard]] const models::WhisperAudio& audio() const noexcept { return *audio_; }
  /// Seconds per timestamp token (0.02: 30 s over 1500 positions).
  [[nodiscard]] double time_precision() const noexcept { return 30.0 / static_cast<double>(model_->config().max_source_positions); }

  /// Encodes a log-mel window ([num_mel_bins][input_frames]); later calls decode it.
  Result<void> encode(std::span<const float> mel) { return model_->encode(mel, *audio_); }

  /// Probabilities of every language for the encoded window, in token order.
  Result<std::vector<LanguageProbability>> detect_language() {
    if (specials_.language_ids.empty()) return make_error(ErrorCode::unsupported, "whisper: this model has no language tokens");
    auto& state = state_for(1);
    state.reset();
    const int32_t sot = specials_.start_of_transcript;
    logits_.resize(model_->config().vocab_size);
    auto status = model_->decode(state, *audio_, std::span(&sot, 1), 1, logits_);
    if (!status) return std::move(status).error();
    float max = -std::numeric_limits<float>::infinity();
    for (int32_t id : specials_.language_ids) max = std::max(max, logits_[static_cast<size_t>(id)]);
    double sum = 0.0;
    for (int32_t id : specials_.language_ids) sum += std::exp(static_cast<double>(logits_[static_cast<size_t>(id)] - max));
    std::vector<LanguageProbability> probs;
    for (size_t i = 0; i < specials_.language_ids.size(); ++i) {
      const double p = std::exp(static_cast<double>(logits_[static_cast<size_t>(specials_.language_ids[i])] - max)) / sum;
      probs.push_back({std::string(text::kWhisperLanguages[i]), static_cast<float>(p)});
    }
    return probs;
  }

  /// The token ids of `text` as a prompt or prefix: " " + text stripped, as whisper encodes them.
  [[nodiscard]] std::vector<int32_t> encode_text(std::string_view text) const { return tokenizer_.encode(" " + strip_text(text), false); }

  /// Text of `tokens` without timestamps (special tokens below the timestamps are kept, as whisper does).
  [[nodiscard]] std::string decode_text(std::span<const int32_t> tokens) const {
    std::vector<int32_t> text_tokens;
    for (int32_t t : tokens) {
      if (t < specials_.timestamp_begin) text_tokens.push_back(t);
    }
    return tokenizer_.decode(text_tokens);
  }

  /// The start of a prompt: <|startoftranscript|>, language, task (and <|notimestamps|> when asked).
  [[nodiscard]] std::vector<int32_t> sot_sequence(int32_t language_token, WhisperTask task, bool without_timestamps) const {
    std::vector<int32_t> sequence{specials_.start_of_transcript};
    if (!specials_.language_ids.empty()) {
      sequence.push_back(language_token);
      sequence.push_back(task == WhisperTask::translate ? specials_.translate : specials_.transcribe);
    }
    if (without_timestamps) sequence.push_back(specials_.no_timestamps);
    return sequence;
  }

  /// Forces `tokens` through the decoder as one sequence from position 0 over the encoded window;
  /// returns the logits of `rows` (vocab_size floats each) and fills `cross_attention` with every
  /// layer's cross-attention probabilities, [layer][head][tokens][audio positions].
  Result<std::vector<float>> force(std::span<const int32_t> tokens, std::span<const size_t> rows, std::vector<float>& cross_attention) {
    if (tokens.size() > model_->config().max_target_positions) {
      return make_error(ErrorCode::invalid_argument, "whisper: {} forced tokens exceed the text context of {}", tokens.size(),
                        model_->config().max_target_positions);
    }
    auto& state = state_for(1);
    state.reset();
    std::vector<float> logits(rows.size() * model_->config().vocab_size);
    auto status = model_->decode(state, *audio_, tokens, 1, logits, {.logit_rows = rows, .cross_attention = &cross_attention});
    if (!status) return std::move(status).error();
    return logits;
  }

  /// Decodes the encoded window with `options`.
  Result<WhisperDecodeResult> decode(const WhisperDecodeOptions& options) {
    const models::WhisperConfig& config = model_->config();
    const size_t vocab = config.vocab_size;
    const size_t n_ctx = config.max_target_positions;
    if (options.beam_size > 0 && options.best_of > 0) return make_error(ErrorCode::invalid_argument, "whisper: beam_size and best_of can't be given together");
    if (options.temperature == 0.0f && options.best_of > 0) return make_error(ErrorCode::invalid_argument, "whisper: best_of needs a temperature above 0");
    if (options.patience != 0.0f && options.beam_size == 0) return make_error(ErrorCode::invalid_argument, "whisper: patience requires beam_size");
    if (options.length_penalty && !(*options.length_penalty >= 0.0f && *options.length_penalty <= 1.0f)) {
      return make_error(ErrorCode::invalid_argument, "whisper: length_penalty must be between 0 and 1");
    }
    if (!(options.temperature >= 0.0f)) return make_error(ErrorCode::invalid_argument, "whisper: temperature must be >= 0");
    const float patience = options.patience == 0.0f ? 1.0f : options.patience;
    const size_t max_candidates = static_cast<size_t>(std::lround(static_cast<double>(options.beam_size) * patience));
    if (options.beam_size > 0 && max_candidates == 0) return make_error(ErrorCode::invalid_argument, "whisper: beam_size × patience rounds to 0");
    auto suppressed = suppress_list(options.suppress_tokens);
    if (!suppressed) return std::move(suppressed).error();

    WhisperDecodeResult result;
    result.temperature = options.temperature;
    // language: given, or detected from this window
    int32_t language_token = specials_.language_ids.empty() ? -1 : specials_.language_ids[0];
    result.language = "en";
    if (!options.language.empty()) {
      auto token = specials_.language(options.language);
      if (!token && !specials_.language_ids.empty()) return make_error(ErrorCode::invalid_argument, "whisper: unknown language '{}'", options.language);
      if (token) language_token = *token;
      result.language = options.language;
    } else if (!specials_.language_ids.empty()) {
      auto probs = detect_language();
      if (!probs) return std::move(probs).error();
      size_t best = 0;
      for (size_t i = 1; i < probs->size(); ++i) best = (*probs)[i].probability > (*probs)[best].probability ? i : best;
      result.language = (*probs)[best].code;
      language_token = specials_.language_ids[best];
      result.language_probs = std::move(probs).value();
    }

    // initial tokens: [<|startofprev|> prompt] SOT language task [<|notimestamps|>] [prefix]
    const size_t sample_len = options.sample_len != 0 ? options.sample_len : n_ctx / 2;
    std::vector<int32_t> initial;
    if (!options.prompt.empty()) {
      initial.push_back(specials_.start_of_prev);
      const size_t keep = std::min(options.prompt.size(), n_ctx / 2 - 1);
      initial.insert(initial.end(), options.prompt.end() - static_cast<ptrdiff_t>(keep), options.prompt.end());
    }
    const size_t sot_index = initial.size();
    const auto sot = sot_sequence(language_token, options.task, options.without_timestamps);
    initial.insert(initial.end(), sot.begin(), sot.end());
    if (!options.prefix.empty()) {
      const size_t room = n_ctx / 2 > sample_len ? n_ctx / 2 - sample_len : 0;
      const size_t keep = std::min(options.prefix.size(), room);
      initial.insert(initial.end(), options.prefix.end() - static_cast<ptrdiff_t>(keep), options.prefix.end());
    }
    const size_t sample_begin = initial.size();
    if (sample_begin >= n_ctx) return make_error(ErrorCode::invalid_argument, "whisper: prompt of {} tokens fills the text context", sample_begin);
    std::optional<int32_t> last_initial_timestamp;
    if (!options.without_timestamps && options.max_initial_timestamp) {
      last_initial_timestamp = specials_.timestamp_begin + static_cast<int32_t>(std::lround(*options.max_initial_timestamp / time_precision()));
    }
    const std::vector<int32_t> blank = tokenizer_.encode(" ", false);

    // the search: n_group sequences decoded side by side
    const bool beam = options.beam_size > 0;
    const size_t n_group = beam ? options.beam_size : std::max<size_t>(options.best_of, 1);
    struct Sequence {
      std::vector<int32_t> tokens;   // initial tokens + sampled ones
      std::vector<float> logprobs;   // per sampled token
      float sum_logprob = 0.0f;
    };
    struct Finished {
      std::vector<int32_t> tokens;
      std::vector<float> logprobs;
      float sum_logprob;
    };
    std::vector<Sequence> sequences(n_group, Sequence{initial, {}, 0.0f});
    std::vector<Finished> finished;
    std::mt19937_64 rng(options.seed);
    const int32_t eot = specials_.end_of_text;
    const int32_t ts_begin = specials_.timestamp_begin;
    auto& state = state_for(n_group);
    state.reset();
    logits_.resize(n_group * vocab);

    // prefill once (the logits at SOT give the no-speech probability), then share the cache
    const std::vector<size_t> rows{sot_index, sample_begin - 1};
    std::vector<float> prefill(2 * vocab);
    auto status = model_->decode(state, *audio_, initial, 1, prefill, {.logit_rows = rows});
    if (!status) return std::move(status).error();
    result.no_speech_prob = probability_of(std::span(prefill).first(vocab), specials_.no_speech);
    for (size_t k = 0; k < n_group; ++k) std::copy_n(prefill.data() + vocab, vocab, logits_.data() + k * vocab);
    if (n_group > 1) {
      const std::vector<size_t> from_first(n_group, 0);
      auto reordered = state.reorder(from_first);
      if (!reordered) return std::move(reordered).error();
    }

    std::vector<double> logprobs(vocab);
    for (size_t step = 0; step < sample_len; ++step) {
      if (step > 0) {
        std::vector<int32_t> last(n_group);
        for (size_t k = 0; k < n_group; ++k) last[k] = sequences[k].tokens.back();
        status = model_->decode(state, *audio_, last, n_group, logits_);
        if (!status) return std::move(status).error();
      }
      // the rules, per sequence
      for (size_t k = 0; k < n_group; ++k) {
        float* logits = logits_.data() + k * vocab;
        const std::vector<int32_t>& tokens = sequences[k].tokens;
        const float minus_inf = -std::numeric_limits<float>::infinity();
        if (options.suppress_blank && tokens.size() == sample_begin) {
          for (int32_t t : blank) logits[t] = minus_inf;
          logits[eot] = minus_inf;
        }
        for (int32_t t : *suppressed) logits[t] = minus_inf;
        if (options.without_timestamps) continue;
        logits[specials_.no_timestamps] = minus_inf;
        const std::span<const int32_t> sampled(tokens.data() + sample_begin, tokens.size() - sample_begin);
        const bool last_was_timestamp = !sampled.empty() && sampled.back() >= ts_begin;
        const bool penultimate_was_timestamp = sampled.size() < 2 || sampled[sampled.size() - 2] >= ts_begin;
        if (last_was_timestamp) {
          if (penultimate_was_timestamp) {
            std::fill(logits + ts_begin, logits + vocab, minus_inf);
          } else {
            std::fill(logits, logits + eot, minus_inf);
          }
        }
        const auto last_timestamp = std::find_if(sampled.rbegin(), sampled.rend(), [&](int32_t t) { return t >= ts_begin; });
        if (last_timestamp != sampled.rend()) {
          const int32_t end = last_was_timestamp && !penultimate_was_timestamp ? *last_timestamp : *last_timestamp + 1;
          std::fill(logits + ts_begin, logits + end, minus_inf);
        }
        if (sampled.empty()) {
          std::fill(logits, logits + ts_begin, minus_inf);
          if (last_initial_timestamp) std::fill(logits + *last_initial_timestamp + 1, logits + vocab, minus_inf);
        }
        log_softmax(logits, vocab, logprobs.data());
        double max_text = -std::numeric_limits<double>::infinity();
        for (int32_t t = 0; t < ts_begin; ++t) max_text = std::max(max_text, logprobs[t]);
        if (log_sum_exp(logprobs.data() + ts_begin, vocab - ts_begin) > max_text) std::fill(logits, logits + ts_begin, minus_inf);
      }

      bool completed = false;
      if (!beam) {
        for (size_t k = 0; k < n_group; ++k) {
          Sequence& s = sequences[k];
          const float* logits = logits_.data() + k * vocab;
          if (s.tokens.back() == eot) {
            s.tokens.push_back(eot);
            continue;
          }
          log_softmax(logits, vocab, logprobs.data());
          const int32_t next = options.temperature == 0.0f ? argmax(logits, vocab) : sample(logits, vocab, options.temperature, rng);
          const float logprob = static_cast<float>(logprobs[static_cast<size_t>(next)]);
          s.sum_logprob += logprob;
          s.tokens.push_back(next);
          s.logprobs.push_back(logprob);
        }
        completed = std::all_of(sequences.begin(), sequences.end(), [&](const Sequence& s) { return s.tokens.back() == eot; });
      } else {
        // every beam proposes its beam_size + 1 best tokens; the best beam_size unfinished
        // candidates continue, candidates ending in <|endoftext|> are set aside
        struct Candidate {
          std::vector<int32_t> tokens;
          std::vector<float> logprobs;
          float score;
          size_t source;
        };
        std::vector<Candidate> candidates;
        for (size_t k = 0; k < n_group; ++k) {
          log_softmax(logits_.data() + k * vocab, vocab, logprobs.data());
          for (int32_t token : top_k(logprobs, options.beam_size + 1)) {
            std::vector<int32_t> tokens = sequences[k].tokens;
            tokens.push_back(token);
            const float score = sequences[k].sum_logprob + static_cast<float>(logprobs[static_cast<size_t>(token)]);
            std::vector<float> token_logprobs = sequences[k].logprobs;
            token_logprobs.push_back(static_cast<float>(logprobs[static_cast<size_t>(token)]));
            auto same = std::find_if(candidates.begin(), candidates.end(), [&](const Candidate& c) { return c.tokens == tokens; });
            if (same != candidates.end()) {
              same->score = score;
              same->source = k;
              same->logprobs = std::move(token_logprobs);
            } else {
              candidates.push_back({std::move(tokens), std::move(token_logprobs), score, k});
            }
          }
        }
        std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
        std::vector<Sequence> next;
        std::vector<size_t> sources;
        std::vector<Finished> newly_finished;
        for (Candidate& c : candidates) {
          if (c.tokens.back() == eot) {
            newly_finished.push_back({std::move(c.tokens), std::move(c.logprobs), c.score});
          } else {
            next.push_back({std::move(c.tokens), std::move(c.logprobs), c.score});
            sources.push_back(c.source);
            if (next.size() == options.beam_size) break;
          }
        }
        sequences = std::move(next);
        status = state.reorder(sources);
        if (!status) return std::move(status).error();
        for (Finished& f : newly_finished) {
          if (finished.size() >= max_candidates) break;
          finished.push_back(std::move(f));
        }
        completed = finished.size() >= max_candidates;
      }
      if (completed || sequences[0].tokens.size() > n_ctx) break;
    }

    // candidates: finished beams (topped up with the best unfinished ones), or every sample
    std::vector<Finished> pool;
    if (beam) {
      pool = std::move(finished);
      if (pool.size() < options.beam_size) {
        std::vector<size_t> order(sequences.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sequences[a].sum_logprob > sequences[b].sum_logprob; });
        for (size_t j : order) {
          std::vector<int32_t> tokens = sequences[j].tokens;
          tokens.push_back(eot);
          pool.push_back({std::move(tokens), sequences[j].logprobs, sequences[j].sum_logprob});
          if (pool.size() >= options.beam_size) break;
        }
      }
    } else {
      for (Sequence& s : sequences) pool.push_back({std::move(s.tokens), std::move(s.logprobs), s.sum_logprob});
    }
    size_t best = 0;
    double best_score = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < pool.size(); ++i) {
      auto& tokens = pool[i].tokens;
      const auto end = std::find(tokens.begin() + static_cast<ptrdiff_t>(sample_begin), tokens.end(), eot);
      tokens = std::vector<int32_t>(tokens.begin() + static_cast<ptrdiff_t>(sample_begin), end);
      const double length = static_cast<double>(tokens.size());
      const double penalty = options.length_penalty ? std::pow((5.0 + length) / 6.0, *options.length_penalty) : length;
      const double score = pool[i].sum_logprob / penalty;
      if (score > best_score || i == 0) {
        best_score = score;
        best = i;
      }
    }
    Finished& chosen = pool[best];
    result.tokens = std::move(chosen.tokens);
    for (size_t i = 0; i < result.tokens.size(); ++i) result.token_probs.push_back(i < chosen.logprobs.size() ? std::exp(chosen.logprobs[i]) : 0.0f);
    result.text = strip_text(decode_text(result.tokens));
    result.sum_logprob = chosen.sum_logprob;
    result.avg_logprob = result.sum_logprob / static_cast<double>(result.tokens.size() + 1);
    result.compression_ratio = compression_ratio(result.text);
    return result;
  }

 private:
  WhisperDecoder(const models::WhisperModel& model, text::Tokenizer tokenizer, text::WhisperTokens specials)
      : model_(&model), tokenizer_(std::move(tokenizer)), specials_(std::move(specials)), audio_(model.new_audio()),
        non_speech_(whisper_non_speech_tokens(tokenizer_)) {}

  /// A decoder state holding `sequences` sequences (made once per size).
  models::WhisperDecoderState& state_for(size_t sequences) {
    for (auto& state : states_) {
      if (state->sequences() == sequences) return *state;
    }
    return *states_.emplace_back(model_->new_decoder_state(sequences));
  }

  /// The ids to suppress for `spec` ("-1" = the non-speech symbols) plus the specials never
  /// sampled; nothing at all for an empty `spec` (as whisper skips the whole rule then).
  Result<std::vector<int32_t>> suppress_list(std::string_view spec) const {
    std::set<int32_t> ids;
    if (strip_text(spec).empty()) return std::vector<int32_t>{};
    size_t start = 0;
    while (start < spec.size()) {
      size_t end = spec.find(',', start);
      if (end == std::string_view::npos) end = spec.size();
      const std::string item = strip_text(spec.substr(start, end - start));
      if (!item.empty()) {
        char* stop = nullptr;
        const long id = std::strtol(item.c_str(), &stop, 10);
        if (*stop != '\0' || id < -1 || id >= static_cast<long>(model_->config().vocab_size)) {
          return make_error(ErrorCode::invalid_argument, "whisper: suppress_tokens item '{}' is not a token id or -1", item);
        }
        if (id == -1) ids.insert(non_speech_.begin(), non_speech_.end());
        else ids.insert(static_cast<int32_t>(id));
      }
      start = end + 1;
    }
    for (int32_t id : {specials_.transcribe, specials_.translate, specials_.start_of_transcript, specials_.start_of_prev,
                       specials_.start_of_lm, specials_.no_speech}) {
      ids.insert(id);
    }
    return std::vector<int32_t>(ids.begin(), ids.end());
  }

  /// out = log softmax(logits) in double (−inf stays −inf).
  static void log_softmax(const float* logits, size_t n, double* out) {
    const double max = *std::max_element(logits, logits + n);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
    const double log_sum = max + std::log(sum);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<double>(logits[i]) - log_sum;
  }

  /// log Σ exp(values).
  static double log_sum_exp(const double* values, size_t n) {
    const double max = *std::max_element(values, values + n);
    if (max == -std::numeric_limits<double>::infinity()) return max;
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += std::exp(values[i] - max);
    return max + std::log(sum);
  }

  /// softmax(logits)[token].
  static double probability_of(std::span<const float> logits, int32_t token) {
    std::vector<double> logprobs(logits.size());
    log_softmax(logits.data(), logits.size(), logprobs.data());
    return std::exp(logprobs[static_cast<size_t>(token)]);
  }

  /// Index of the largest logit (lowest index on ties).
  static int32_t argmax(const float* logits, size_t n) { return static_cast<int32_t>(std::max_element(logits, logits + n) - logits); }

  /// A draw from softmax(logits / temperature).
  static int32_t sample(const float* logits, size_t n, float temperature, std::mt19937_64& rng) {
    const float max = *std::max_element(logits, logits + n);
    std::vector<double> weights(n);
    for (size_t i = 0; i < n; ++i) weights[i] = std::exp(static_cast<double>(logits[i] - max) / temperature);
    std::discrete_distribution<int32_t> draw(weights.begin(), weights.end());
    return draw(rng);
  }

  /// The `k` ids of largest value, best first (lower id first on ties).
  static std::vector<int32_t> top_k(const std::vector<double>& values, size_t k) {
    std::vector<int32_t> ids(values.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    k = std::min(k, ids.size());
    std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(k), ids.end(), [&](int32_t a, int32_t b) {
      return values[static_cast<size_t>(a)] > values[static_cast<size_t>(b)] ||
             (values[static_cast<size_t>(a)] == values[static_cast<size_t>(b)] && a < b);
    });
    ids.resize(k);
    return ids;
  }

  const models::WhisperModel* model_;
  text::Tokenizer tokenizer_;
  text::WhisperTokens specials_;
  std::unique_ptr<models::WhisperAudio> audio_;
  std::vector<std::unique_ptr<models::WhisperDecoderState>> states_;
  std::vector<int32_t> non_speech_;
  std::vector<float> logits_;
};

}  // namespace apr::runtime
