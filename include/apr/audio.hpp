/// @file audio.hpp
/// @brief The audio front end that needs no extra library: Whisper's log-mel spectrogram (apr::audio).
#pragma once

#include "apr/audio/mel.hpp"
