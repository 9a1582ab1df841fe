/// @file text.hpp
/// @brief Tokenizers (apr::text): byte-level BPE from tokenizer.json, GPT-2 files, tiktoken
/// ranks and GGUF metadata, Whisper's special tokens, ChatML chat templates, UTF-8 repair and
/// streaming decode.
#pragma once

#include "apr/text/byte_level.hpp"
#include "apr/text/chat_template.hpp"
#include "apr/text/gguf_tokenizer.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "apr/text/tokenizer.hpp"

#include "apr/text/whisper_tokens.hpp"
