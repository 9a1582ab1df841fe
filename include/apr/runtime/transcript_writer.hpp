/// @file transcript_writer.hpp
/// @brief A transcript as text, JSON, SubRip, WebVTT or TSV, written as openai/whisper's
/// writers write them (timestamps as format_timestamp() prints them, "-->" in text escaped).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/runtime/whisper_transcribe.hpp"

namespace apr::runtime {

/// Output formats of a transcript.
enum class TranscriptFormat { txt, json, srt, vtt, tsv };

/// The format named `name` ("txt", "json", "srt", "vtt", "tsv").
inline Result<TranscriptFormat> parse_transcript_format(std::string_view name) {
  if (name == "txt") return TranscriptFormat::txt;
  if (name == "json") return TranscriptFormat::json;
  if (name == "srt") return TranscriptFormat::srt;
  if (name == "vtt") return TranscriptFormat::vtt;
  if (name == "tsv") return TranscriptFormat::tsv;
  return make_error(ErrorCode::invalid_argument, "unknown output format '{}' (expected txt, json, srt, vtt or tsv)", name);
}

/// File name extension of `format`.
constexpr std::string_view extension(TranscriptFormat format) {
  switch (format) {
    case TranscriptFormat::txt: return "txt";
    case TranscriptFormat::json: return "json";
    case TranscriptFormat::srt: return "srt";
    case TranscriptFormat::vtt: return "vtt";
    case TranscriptFormat::tsv: return "tsv";
  }
  return "txt";
}

/// [hh:]mm:ss<marker>mmm of `seconds` (hours when asked or non-zero; negative times clamp to 0).
inline std::string format_timestamp(double seconds, bool always_include_hours = false, char decimal_marker = '.') {
  int64_t milliseconds = static_cast<int64_t>(std::nearbyint(std::max(0.0, seconds) * 1000.0));
  const int64_t hours = milliseconds / 3'600'000;
  milliseconds -= hours * 3'600'000;
  const int64_t minutes = milliseconds / 60'000;
  milliseconds -= minutes * 60'000;
  const int64_t whole_seconds = milliseconds / 1'000;
  milliseconds -= whole_seconds * 1'000;
  const std::string hours_marker = always_include_hours || hours > 0 ? fmt::format("{:02}:", hours) : std::string();
  return fmt::format("{}{:02}:{:02}{}{:03}", hours_marker, minutes, whole_seconds, decimal_marker, milliseconds);
}

/// A segment's text for subtitles: stripped, "-->" replaced so cues stay parseable.
inline std::string subtitle_text(std::string_view text) {
  std::string out = strip_text(text);
  for (size_t at = out.find("-->"); at != std::string::npos; at = out.find("-->", at + 2)) out.replace(at, 3, "->");
  return out;
}

/// The transcript as whisper's JSON result (text, segments with tokens and words, language),
/// plus the language probabilities when the language was detected.
inline nlohmann::json transcript_json(const Transcript& transcript) {
  nlohmann::json segments = nlohmann::json::array();
  for (const TranscriptSegment& s : transcript.segments) {
    nlohmann::json segment{{"id", s.id},
                           {"seek", s.seek},
                           {"start", s.start},
                           {"end", s.end},
                           {"text", s.text},
                           {"tokens", s.tokens},
                           {"temperature", s.temperature},
                           {"avg_logprob", s.avg_logprob},
                           {"compression_ratio", s.compression_ratio},
                           {"no_speech_prob", s.no_speech_prob}};
    if (!s.words.empty()) {
      nlohmann::json words = nlohmann::json::array();
      for (const WordTiming& w : s.words) words.push_back({{"word", w.word}, {"start", w.start}, {"end", w.end}, {"probability", w.probability}});
      segment["words"] = std::move(words);
    }
    segments.push_back(std::move(segment));
  }
  nlohmann::json out{{"text", transcript.text}, {"segments", std::move(segments)}, {"language", transcript.language}};
  if (!transcript.language_probs.empty()) {
    nlohmann::json probs = nlohmann::json::object();
    for (const auto& [code, p] : transcript.language_probs) probs[code] = p;
    out["language_probs"] = std::move(probs);
  }
  return out;
}

/// The transcript rendered in `format`.
inline std::string render_transcript(const Transcript& transcript, TranscriptFormat format) {
  std::string out;
  size_t cue = 0;
  switch (format) {
    case TranscriptFormat::txt:
      for (const auto& s : transcript.segments) out += strip_text(s.text) + "\n";
      break;
    case TranscriptFormat::json:
      out = transcript_json(transcript).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      break;
    case TranscriptFormat::srt:
      for (const auto& s : transcript.segments) {
        out += fmt::format("{}\n{} --> {}\n{}\n\n", ++cue, format_timestamp(s.start, true, ','), format_timestamp(s.end, true, ','),
                           subtitle_text(s.text));
      }
      break;
    case TranscriptFormat::vtt:
      out = "WEBVTT\n\n";
      for (const auto& s : transcript.segments) {
        out += fmt::format("{} --> {}\n{}\n\n", format_timestamp(s.start), format_timestamp(s.end), subtitle_text(s.text));
      }
      break;
    case TranscriptFormat::tsv:
      out = "start\tend\ttext\n";
      for (const auto& s : transcript.segments) {
        std::string text = strip_text(s.text);
        for (char& c : text) c = c == '\t' ? ' ' : c;
        out += fmt::format("{}\t{}\t{}\n", static_cast<int64_t>(std::nearbyint(1000.0 * s.start)), static_cast<int64_t>(std::nearbyint(1000.0 * s.end)), text);
      }
      break;
  }
  return out;
}

}  // namespace apr::runtime
