/// @file serve.hpp
/// @brief The HTTP server (apr::serve); needs cpp-httplib, libsndfile and libsoxr (CMake target apr::serve).
#pragma once

#include "apr/serve/metrics.hpp"
#include "apr/serve/openai_request.hpp"
#include "apr/serve/scheduler.hpp"
#include "apr/serve/server.hpp"
#include "apr/serve/transcription.hpp"
