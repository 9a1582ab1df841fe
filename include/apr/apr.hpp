/// @file apr.hpp
/// @brief The whole apr library except the parts that need extra system libraries
/// (see apr/serve.hpp, apr/audio_io.hpp, apr/audio/capture.hpp, apr/format/crypto.hpp, apr/format/hub.hpp).
#pragma once

#include "apr/core.hpp"
#include "apr/simd.hpp"
#include "apr/nn.hpp"
#include "apr/text.hpp"
#include "apr/format.hpp"
#include "apr/models.hpp"
#include "apr/runtime.hpp"
#include "apr/eval.hpp"
#include "apr/audio.hpp"
