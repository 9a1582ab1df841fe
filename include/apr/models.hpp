/// @file models.hpp
/// @brief Model architectures and loaders: Qwen2 (and Qwen2-MoE), Whisper, mixture-of-experts ensembles, configs, synthetic weights (apr::models).
#pragma once

#include "apr/models/apr_metadata.hpp"
#include "apr/models/file_tokenizer.hpp"
#include "apr/models/language_model.hpp"
#include "apr/models/load.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/models/mixture_of_experts.hpp"
#include "apr/models/model_text.hpp"
#include "apr/models/moe_config.hpp"
#include "apr/models/moe_writer.hpp"
#include "apr/models/qwen2.hpp"
#include "apr/models/qwen2_config.hpp"
#include "apr/models/qwen2_gguf.hpp"
#include "apr/models/qwen2_names.hpp"
#include "apr/models/synth.hpp"
#include "apr/models/voxtral.hpp"
#include "apr/models/voxtral_config.hpp"
#include "apr/models/voxtral_stream.hpp"
#include "apr/models/weight_store.hpp"
#include "apr/models/whisper.hpp"
#include "apr/models/whisper_config.hpp"
