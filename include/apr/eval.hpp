/// @file eval.hpp
/// @brief Quality gates: logit metrics, perplexity, precision gates (language models and Whisper), word error rate, golden suites, statistics, Pareto reports (apr::eval).
#pragma once

#include "apr/eval/golden.hpp"
#include "apr/eval/logit_metrics.hpp"
#include "apr/eval/pareto.hpp"
#include "apr/eval/perplexity.hpp"
#include "apr/eval/precision_gate.hpp"
#include "apr/eval/statistics.hpp"
#include "apr/eval/value_difference.hpp"
#include "apr/eval/voxtral_precision_gate.hpp"
#include "apr/eval/whisper_precision_gate.hpp"
#include "apr/eval/word_error_rate.hpp"
