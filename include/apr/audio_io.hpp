/// @file audio_io.hpp
/// @brief Audio files and resampling (libsndfile, libsoxr): the optional target apr::audio_io.
#pragma once

#include "apr/audio/audio_file.hpp"
