// Transcribes an audio file with a Whisper model using the library directly: load the model and
// its tokenizer, read and resample the audio, run whisper's long-form algorithm, print subtitles.
//
// usage: whisper_transcribe MODEL AUDIO [LANGUAGE]
//   MODEL: a Hugging Face Whisper folder (config.json, model.safetensors, tokenizer) or an .apr file
#include <apr/apr.hpp>
#include <apr/audio_io.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL AUDIO [LANGUAGE]\n", argv[0]);
    return 2;
  }
  auto whisper = apr::models::load_whisper(argv[1]);
  if (!whisper) {
    std::fprintf(stderr, "error: %s\n", whisper.error().message.c_str());
    return 3;
  }
  auto tokenizer = apr::text::load_tokenizer(whisper->directory);
  auto front_end = whisper->front_end();
  auto audio = apr::audio::read_audio(argv[2]);
  if (!tokenizer || !front_end || !audio) {
    const auto& error = !tokenizer ? tokenizer.error() : !front_end ? front_end.error() : audio.error();
    std::fprintf(stderr, "error: %s\n", error.message.c_str());
    return 3;
  }
  auto decoder = apr::runtime::WhisperDecoder::create(*whisper->model, std::move(*tokenizer));
  if (!decoder) {
    std::fprintf(stderr, "error: %s\n", decoder.error().message.c_str());
    return 3;
  }

  apr::runtime::TranscribeOptions options;
  if (argc > 3) options.decode.language = argv[3];  // else detected from the first 30 s
  options.temperatures = {0.0f};                     // greedy, no fallback: reproducible output
  apr::runtime::WhisperTranscriber transcriber(*decoder);
  auto transcript = transcriber.transcribe_samples(audio->samples, *front_end, options, apr::ThreadPool::global());
  if (!transcript) {
    std::fprintf(stderr, "error: %s\n", transcript.error().message.c_str());
    return 1;
  }
  std::printf("%s", apr::runtime::render_transcript(*transcript, apr::runtime::TranscriptFormat::vtt).c_str());
  std::fprintf(stderr, "%.1f s of audio, language %s, %zu segments\n", audio->seconds(), transcript->language.c_str(),
               transcript->segments.size());
  return 0;
}
