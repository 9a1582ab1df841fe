// bench/synth_qwen2_gguf: writes the synthetic Qwen2-0.5B weights bench_qwen2 runs (same dims, same
// seed) as a GGUF v3 file llama.cpp loads, so both are timed on the very same weights.
// usage: synth_qwen2_gguf --dtype f32|f16|q8_0|q4_0 -o FILE.gguf
//
// Byte layout from the GGUF spec (ggml docs/gguf.md): header, key/values, tensor infos (ggml dims
// innermost first), padding to general.alignment (32), tensor data each aligned to 32. The
// tokenizer is a stand-in llama.cpp accepts: the 256 byte-level GPT-2 tokens, <|endoftext|> and
// padding tokens up to the vocab size; prompts in llama-bench are random ids, so it is never used.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "apr/models/synth.hpp"
#include "qwen2_05b.hpp"

using namespace apr;

namespace {

/// GGUF metadata value types (spec: gguf_metadata_value_type).
enum class GgufType : uint32_t { uint32 = 4, int32 = 5, float32 = 6, string = 8, array = 9 };

/// ggml's type code of a weight dtype.
uint32_t ggml_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return 0;
    case DType::f16: return 1;
    case DType::q4_0: return 2;
    case DType::q8_0: return 8;
    default: throw std::runtime_error(fmt::format("no ggml type for {}", to_string(dtype)));
  }
}

/// Little-endian GGUF header bytes: counts, key/values and tensor infos.
class GgufHeader {
 public:
  /// Appends a value's bytes as stored (x86-64: little-endian).
  template <class T>
  void raw(T value) {
    const auto* bytes = reinterpret_cast<const char*>(&value);
    bytes_.insert(bytes_.end(), bytes, bytes + sizeof(T));
  }
  /// Appends a GGUF string: u64 length, then the bytes.
  void string(std::string_view text) {
    raw<uint64_t>(text.size());
    bytes_.insert(bytes_.end(), text.begin(), text.end());
  }
  /// Starts a key/value: its name and value type.
  void key(std::string_view name, GgufType type) {
    string(name);
    raw(static_cast<uint32_t>(type));
    ++key_values_;
  }
  /// A string key/value.
  void add(std::string_view name, std::string_view value) {
    key(name, GgufType::string);
    string(value);
  }
  /// A u32 key/value.
  void add_u32(std::string_view name, uint32_t value) {
    key(name, GgufType::uint32);
    raw(value);
  }
  /// An f32 key/value.
  void add_f32(std::string_view name, float value) {
    key(name, GgufType::float32);
    raw(value);
  }
  /// An array-of-strings key/value.
  void add(std::string_view name, const std::vector<std::string>& values) {
    key(name, GgufType::array);
    raw(static_cast<uint32_t>(GgufType::string));
    raw<uint64_t>(values.size());
    for (const auto& value : values) string(value);
  }
  /// An array-of-i32 key/value.
  void add(std::string_view name, const std::vector<int32_t>& values) {
    key(name, GgufType::array);
    raw(static_cast<uint32_t>(GgufType::int32));
    raw<uint64_t>(values.size());
    for (int32_t value : values) raw(value);
  }
  /// Everything appended so far.
  [[nodiscard]] const std::vector<char>& bytes() const { return bytes_; }
  /// Key/values added so far.
  [[nodiscard]] uint64_t key_values() const { return key_values_; }

 private:
  std::vector<char> bytes_;
  uint64_t key_values_ = 0;
};

/// GPT-2's byte-level alphabet: byte b as the UTF-8 of the code point GPT-2 maps it to.
std::vector<std::string> byte_level_tokens() {
  auto utf8 = [](uint32_t cp) {
    std::string out;
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return out;
  };
  std::vector<std::string> tokens;
  uint32_t next_unprintable = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    tokens.push_back(utf8(printable ? b : next_unprintable++));
  }
  return tokens;
}

/// llama.cpp's name of a Hugging Face Qwen2 tensor name.
std::string gguf_name(std::string_view hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  constexpr std::string_view layers = "model.layers.";
  if (!hf.starts_with(layers)) throw std::runtime_error(fmt::format("unexpected tensor {}", hf));
  hf.remove_prefix(layers.size());
  const size_t dot = hf.find('.');
  const std::string_view block = hf.substr(0, dot);
  const std::string_view rest = hf.substr(dot + 1);
  constexpr std::pair<std::string_view, std::string_view> kNames[] = {
      {"input_layernorm.", "attn_norm."},       {"post_attention_layernorm.", "ffn_norm."},
      {"self_attn.q_proj.", "attn_q."},         {"self_attn.k_proj.", "attn_k."},
      {"self_attn.v_proj.", "attn_v."},         {"self_attn.o_proj.", "attn_output."},
      {"mlp.gate_proj.", "ffn_gate."},          {"mlp.up_proj.", "ffn_up."},
      {"mlp.down_proj.", "ffn_down."},
  };
  for (const auto& [from, to] : kNames) {
    if (rest.starts_with(from)) return fmt::format("blk.{}.{}{}", block, to, rest.substr(from.size()));
  }
  throw std::runtime_error(fmt::format("unexpected tensor {}", hf));
}

/// general.alignment: where the data section and every tensor start.
constexpr uint64_t kAlignment = 32;

/// `offset` rounded up to kAlignment.
uint64_t aligned(uint64_t offset) { return (offset + kAlignment - 1) / kAlignment * kAlignment; }

/// Writes `file` (Hugging Face names) as a llama.cpp qwen2 GGUF at `path`.
void write_gguf(const format::TensorFile& file, const models::Qwen2Config& config, DType dtype, const std::string& path) {
  GgufHeader kv;
  kv.add("general.architecture", "qwen2");
  kv.add("general.name", fmt::format("apr synthetic qwen2-0.5b {}", to_string(dtype)));
  kv.add_u32("general.alignment", kAlignment);
  kv.add_u32("qwen2.context_length", static_cast<uint32_t>(config.max_position_embeddings));
  kv.add_u32("qwen2.embedding_length", static_cast<uint32_t>(config.hidden_size));
  kv.add_u32("qwen2.block_count", static_cast<uint32_t>(config.num_hidden_layers));
  kv.add_u32("qwen2.feed_forward_length", static_cast<uint32_t>(config.intermediate_size));
  kv.add_u32("qwen2.attention.head_count", static_cast<uint32_t>(config.num_attention_heads));
  kv.add_u32("qwen2.attention.head_count_kv", static_cast<uint32_t>(config.num_key_value_heads));
  kv.add_f32("qwen2.rope.freq_base", config.rope_theta);
  kv.add_f32("qwen2.attention.layer_norm_rms_epsilon", config.rms_norm_eps);

  std::vector<std::string> tokens = byte_level_tokens();
  const auto end_of_text = static_cast<uint32_t>(tokens.size());
  tokens.emplace_back("<|endoftext|>");
  while (tokens.size() < config.vocab_size) tokens.push_back(fmt::format("<|pad_{}|>", tokens.size()));
  std::vector<int32_t> token_types(tokens.size(), 1);  // normal
  token_types[end_of_text] = 3;                       // control
  kv.add("tokenizer.ggml.model", "gpt2");
  kv.add("tokenizer.ggml.pre", "qwen2");
  kv.add("tokenizer.ggml.tokens", tokens);
  kv.add("tokenizer.ggml.token_type", token_types);
  kv.add("tokenizer.ggml.merges", std::vector<std::string>{"Ġ Ġ"});
  kv.add_u32("tokenizer.ggml.bos_token_id", end_of_text);
  kv.add_u32("tokenizer.ggml.eos_token_id", end_of_text);
  kv.add_u32("tokenizer.ggml.padding_token_id", end_of_text);

  GgufHeader infos;
  uint64_t offset = 0;
  for (const TensorView& tensor : file.tensors()) {
    infos.string(gguf_name(tensor.name));
    infos.raw(static_cast<uint32_t>(tensor.shape.ndim()));
    for (size_t d = tensor.shape.ndim(); d-- > 0;) infos.raw<uint64_t>(tensor.shape[d]);
    infos.raw(ggml_type(tensor.dtype));
    infos.raw(offset);
    offset = aligned(offset + tensor.bytes.size());
  }

  GgufHeader header;
  header.raw<uint32_t>(0x46554747);  // "GGUF"
  header.raw<uint32_t>(3);
  header.raw<uint64_t>(file.tensors().size());
  header.raw<uint64_t>(kv.key_values());
  std::ofstream out(path, std::ios::binary);
  out.write(header.bytes().data(), static_cast<std::streamsize>(header.bytes().size()));
  out.write(kv.bytes().data(), static_cast<std::streamsize>(kv.bytes().size()));
  out.write(infos.bytes().data(), static_cast<std::streamsize>(infos.bytes().size()));
  const std::vector<char> zeros(kAlignment, 0);
  const uint64_t header_bytes = header.bytes().size() + kv.bytes().size() + infos.bytes().size();
  out.write(zeros.data(), static_cast<std::streamsize>(aligned(header_bytes) - header_bytes));
  for (const TensorView& tensor : file.tensors()) {
    out.write(reinterpret_cast<const char*>(tensor.bytes.data()), static_cast<std::streamsize>(tensor.bytes.size()));
    out.write(zeros.data(), static_cast<std::streamsize>(aligned(tensor.bytes.size()) - tensor.bytes.size()));
  }
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", path));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dtype_name, path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dtype") dtype_name = argv[i + 1];
    else if (flag == "-o") path = argv[i + 1];
  }
  const auto dtype = parse_dtype(dtype_name);
  if (!dtype || path.empty()) {
    fmt::print(stderr, "usage: synth_qwen2_gguf --dtype f32|f16|q8_0|q4_0 -o FILE.gguf\n");
    return 2;
  }
  const auto config = bench::qwen2_05b();
  auto file = models::synthesize_qwen2(config, *dtype, bench::kQwen2WeightSeed);
  if (!file) {
    fmt::print(stderr, "{}\n", file.error().message);
    return 1;
  }
  write_gguf(**file, config, *dtype, path);
  return 0;
}
