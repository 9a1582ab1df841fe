/// @file runtime.hpp
/// @brief Generation and decoding: sampler, generator, chat sessions, Whisper decoding, transcription and writers (apr::runtime).
#pragma once

#include "apr/runtime/batching_model.hpp"
#include "apr/runtime/chat_session.hpp"
#include "apr/runtime/generator.hpp"
#include "apr/runtime/sampler.hpp"
#include "apr/runtime/transcript_writer.hpp"
#include "apr/runtime/whisper_alignment.hpp"
#include "apr/runtime/whisper_decode.hpp"
#include "apr/runtime/whisper_stream.hpp"
#include "apr/runtime/whisper_transcribe.hpp"
