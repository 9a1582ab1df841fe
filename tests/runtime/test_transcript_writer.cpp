// Transcript writers: byte-for-byte what openai/whisper's WriteTXT/WriteSRT/WriteVTT/WriteTSV
// print for the same segments (expected strings written from whisper's utils.py rules).
#include <catch2/catch.hpp>

#include "apr/runtime/transcript_writer.hpp"

using namespace apr;

namespace {

runtime::Transcript sample() {
  runtime::Transcript t;
  t.language = "en";
  t.text = " Hello there. A --> B";
  t.segments.push_back({.id = 0, .seek = 0, .start = 0.0, .end = 1.5, .text = " Hello there.", .tokens = {50364, 2425, 50439}});
  t.segments.push_back({.id = 1, .seek = 0, .start = 3661.0015, .end = 3662.25, .text = " A --> B\tC", .tokens = {50439, 32, 50500}});
  t.segments.back().words.push_back({" A", {32}, 3661.0, 3661.5, 0.75});
  return t;
}

}  // namespace

TEST_CASE("timestamps print as whisper's format_timestamp", "[transcript]") {
  CHECK(runtime::format_timestamp(0.0) == "00:00.000");
  CHECK(runtime::format_timestamp(61.5) == "01:01.500");
  CHECK(runtime::format_timestamp(3661.0015, true, ',') == "01:01:01,002");
  CHECK(runtime::format_timestamp(1.0, true, ',') == "00:00:01,000");
  CHECK(runtime::format_timestamp(-0.02) == "00:00.000");
}

TEST_CASE("each output format renders as whisper writes it", "[transcript]") {
  const auto t = sample();
  CHECK(runtime::render_transcript(t, runtime::TranscriptFormat::txt) == "Hello there.\nA --> B\tC\n");
  CHECK(runtime::render_transcript(t, runtime::TranscriptFormat::srt) ==
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n01:01:01,002 --> 01:01:02,250\nA -> B\tC\n\n");
  CHECK(runtime::render_transcript(t, runtime::TranscriptFormat::vtt) ==
        "WEBVTT\n\n00:00.000 --> 00:01.500\nHello there.\n\n01:01:01.002 --> 01:01:02.250\nA -> B\tC\n\n");
  CHECK(runtime::render_transcript(t, runtime::TranscriptFormat::tsv) == "start\tend\ttext\n0\t1500\tHello there.\n3661002\t3662250\tA --> B C\n");
  const auto json = nlohmann::json::parse(runtime::render_transcript(t, runtime::TranscriptFormat::json));
  CHECK(json["language"] == "en");
  CHECK(json["segments"][1]["tokens"] == std::vector<int32_t>{50439, 32, 50500});
  CHECK(json["segments"][1]["words"][0]["probability"] == 0.75);
  CHECK_FALSE(json["segments"][0].contains("words"));
  CHECK(runtime::parse_transcript_format("srt").value() == runtime::TranscriptFormat::srt);
  CHECK_FALSE(runtime::parse_transcript_format("docx"));
}
