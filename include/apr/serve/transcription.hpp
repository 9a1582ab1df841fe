/// @file transcription.hpp
/// @brief What the server needs for POST /v1/audio/transcriptions: a served Whisper model, the
/// request read from its multipart form (file, model, language, prompt, response_format,
/// temperature, timestamp granularities), and the response in OpenAI's formats (json, text,
/// srt, vtt, verbose_json).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/audio/mel.hpp"
#include "apr/core/result.hpp"
#include "apr/models/whisper.hpp"
#include "apr/runtime/transcript_writer.hpp"
#include "apr/text/tokenizer.hpp"

namespace apr::serve {

/// A speech-recognition model the server offers.
struct ServedSpeechModel {
  std::string id;                                    ///< name clients use in "model"
  std::shared_ptr<const models::WhisperModel> model; ///< the model
  text::Tokenizer tokenizer;                         ///< its tokenizer (Whisper's special tokens)
  std::shared_ptr<const audio::LogMel> front_end;    ///< its log-mel front end
  nlohmann::json metadata;                           ///< shown by /models/{id}/metadata
};

/// A transcription request's fields (the audio bytes stay in the HTTP request).
struct TranscriptionRequest {
  std::string model;                  ///< model id (may be empty when one speech model is served)
  std::string language;               ///< language code; empty: detect
  std::string prompt;                 ///< text conditioning the first window
  std::string response_format = "json";  ///< json, text, srt, vtt or verbose_json
  std::optional<float> temperature;   ///< a single temperature (default: whisper's fallback ladder)
  bool word_timestamps = false;       ///< "word" among timestamp_granularities[]
};

/// Checks the form fields of a transcription request (`field(name)` returns a field's value or
/// nothing); errors name the field and what was expected.
template <class FieldReader>
Result<TranscriptionRequest> parse_transcription_request(FieldReader&& field) {
  TranscriptionRequest request;
  if (auto model = field("model")) request.model = *model;
  if (auto language = field("language")) request.language = *language;
  if (auto prompt = field("prompt")) request.prompt = *prompt;
  if (auto format = field("response_format")) request.response_format = *format;
  static constexpr std::string_view kFormats[] = {"json", "text", "srt", "vtt", "verbose_json"};
  if (std::find(std::begin(kFormats), std::end(kFormats), request.response_format) == std::end(kFormats)) {
    return make_error(ErrorCode::invalid_argument, "response_format '{}' is not one of json, text, srt, vtt, verbose_json", request.response_format);
  }
  if (auto temperature = field("temperature")) {
    char* end = nullptr;
    const float value = std::strtof(temperature->c_str(), &end);
    if (end == temperature->c_str() || *end != '\0' || !(value >= 0.0f && value <= 1.0f)) {
      return make_error(ErrorCode::invalid_argument, "temperature '{}' is not a number in [0, 1]", *temperature);
    }
    request.temperature = value;
  }
  for (const char* name : {"timestamp_granularities[]", "timestamp_granularities"}) {
    if (auto granularity = field(name)) request.word_timestamps = request.word_timestamps || *granularity == "word";
  }
  return request;
}

/// The body and content type of a transcription response in `format` (see TranscriptionRequest).
inline std::pair<std::string, std::string> transcription_response(const runtime::Transcript& transcript, std::string_view format,
                                                                  runtime::WhisperTask task, double duration_seconds) {
  if (format == "text") return {runtime::strip_text(transcript.text) + "\n", "text/plain; charset=utf-8"};
  if (format == "srt") return {runtime::render_transcript(transcript, runtime::TranscriptFormat::srt), "application/x-subrip"};
  if (format == "vtt") return {runtime::render_transcript(transcript, runtime::TranscriptFormat::vtt), "text/vtt"};
  if (format == "json") return {nlohmann::json{{"text", runtime::strip_text(transcript.text)}}.dump(), "application/json"};
  nlohmann::json verbose = runtime::transcript_json(transcript);
  verbose["task"] = task == runtime::WhisperTask::translate ? "translate" : "transcribe";
  verbose["duration"] = duration_seconds;
  verbose["text"] = runtime::strip_text(transcript.text);
  nlohmann::json words = nlohmann::json::array();
  for (auto& segment : verbose["segments"]) {
    if (!segment.contains("words")) continue;
    for (const auto& word : segment["words"]) words.push_back(word);
  }
  if (!words.empty()) verbose["words"] = std::move(words);
  return {verbose.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json"};
}

}  // namespace apr::serve
