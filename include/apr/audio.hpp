/// @file audio.hpp
/// @brief The audio front end that needs no extra library: Whisper's log-mel spectrogram and the
/// energy voice activity detector (apr::audio).
#pragma once

#include "apr/audio/mel.hpp"
#include "apr/audio/vad.hpp"
