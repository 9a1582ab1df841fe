/* @file apr_wasm.h
 * @brief The C API of apr's WebAssembly build: open an APR model from the module's file system,
 * chat with it (the reply streamed to JavaScript piece by piece), read figures as JSON.
 *
 * Every function is safe on bad input: a failure returns NULL (or a JSON object with "error")
 * and apr_last_error() says why; nothing aborts. Strings are UTF-8 and stay valid until the
 * next call on the same chat (or the next apr_chat_open for apr_last_error). */
#ifndef APR_WASM_H
#define APR_WASM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded model with its conversation. */
typedef struct apr_chat apr_chat;

/** Opens the APR (or other apr-readable) model at `path` to run on `threads` threads with room
 *  for `context` tokens (0: the model's own limit, at most 1024); NULL on failure. */
apr_chat* apr_chat_open(const char* path, int threads, int context);

/** Why the last apr_chat_open (or other call that failed) failed. */
const char* apr_last_error(void);

/** The model as JSON: architecture, dims, weight dtype, parameters, tokenizer, context. */
const char* apr_chat_info(const apr_chat* chat);

/** The ids of `text` as a JSON array (special tokens parsed), or a JSON object with "error" when
 *  the file has no tokenizer. */
const char* apr_chat_tokenize(apr_chat* chat, const char* text);

/** Adds the user's `message` and generates the reply (at most `max_tokens`, sampled at
 *  `temperature` with `seed`; 0 is greedy), calling Module.onText(piece) as text becomes final.
 *  Without a tokenizer in the file the message's UTF-8 bytes are the prompt ids and the reply
 *  is shown as ids. Returns JSON: prompt_tokens, tokens, prefill_ms, decode_ms, tokens_per_second,
 *  stop, or error. */
const char* apr_chat_send(apr_chat* chat, const char* message, int max_tokens, float temperature, uint32_t seed);

/** Forgets the conversation. */
void apr_chat_reset(apr_chat* chat);

/** Bytes of WebAssembly memory the module holds now (it only grows, so also its peak). */
uint32_t apr_memory_bytes(void);

/** Frees the model and its conversation. */
void apr_chat_close(apr_chat* chat);

#ifdef __cplusplus
}
#endif

#endif
