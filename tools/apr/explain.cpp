// apr explain: what an error category, exit code, tensor name or architecture means.
#include <algorithm>
#include <cctype>
#include <memory>
#include <regex>
#include <span>
#include <string>

#include "cli.hpp"

namespace apr::cli {
namespace {

struct Entry {
  const char* pattern;      // regex over the whole name
  const char* explanation;  // what it is and what it does
};

// Tensor names of the families apr runs: Hugging Face names (also APR's) and llama.cpp's GGUF names.
const Entry kTensorRoles[] = {
    {R"(model\.embed_tokens\.weight|token_embd\.weight)", "token embedding table [vocab, hidden]: row i is the input vector of token i"},
    {R"(lm_head\.weight|output\.weight)", "output head [vocab, hidden]: hidden state -> next-token logits (absent when tied to the embeddings)"},
    {R"(model\.norm\.weight|output_norm\.weight)", "final RMSNorm scale [hidden], applied before the output head"},
    {R"(model\.layers\.(\d+)\.input_layernorm\.weight|blk\.(\d+)\.attn_norm\.weight)", "RMSNorm scale [hidden] before self-attention in layer $L"},
    {R"(model\.layers\.(\d+)\.post_attention_layernorm\.weight|blk\.(\d+)\.ffn_norm\.weight)", "RMSNorm scale [hidden] before the MLP in layer $L"},
    {R"(model\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)|blk\.(\d+)\.attn_q\.(weight|bias))", "query projection of layer $L: hidden -> heads x head_dim (RoPE is applied to its output)"},
    {R"(model\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)|blk\.(\d+)\.attn_k\.(weight|bias))", "key projection of layer $L: hidden -> kv_heads x head_dim (grouped-query attention; cached per position)"},
    {R"(model\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)|blk\.(\d+)\.attn_v\.(weight|bias))", "value projection of layer $L: hidden -> kv_heads x head_dim (cached per position)"},
    {R"(model\.layers\.(\d+)\.self_attn\.o_proj\.weight|blk\.(\d+)\.attn_output\.weight)", "attention output projection of layer $L: heads x head_dim -> hidden, added to the residual stream"},
    {R"(model\.layers\.(\d+)\.mlp\.gate_proj\.weight|blk\.(\d+)\.ffn_gate\.weight)", "SwiGLU gate of layer $L: hidden -> intermediate, passed through SiLU"},
    {R"(model\.layers\.(\d+)\.mlp\.up_proj\.weight|blk\.(\d+)\.ffn_up\.weight)", "SwiGLU up projection of layer $L: hidden -> intermediate, multiplied by silu(gate)"},
    {R"(model\.layers\.(\d+)\.mlp\.down_proj\.weight|blk\.(\d+)\.ffn_down\.weight)", "MLP down projection of layer $L: intermediate -> hidden, added to the residual stream"},
    {R"(model\.layers\.(\d+)\.mlp\.gate\.weight|blk\.(\d+)\.ffn_gate_inp\.weight)", "MoE router of layer $L: hidden -> num_experts logits; softmax, top-k experts per token"},
    {R"(model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight|blk\.(\d+)\.ffn_(gate|up|down)_exps\.weight)", "an MoE expert's SwiGLU projection in layer $L (GGUF stacks all experts in one 3-D tensor)"},
    {R"(model\.layers\.(\d+)\.mlp\.shared_expert\.(gate|up|down)_proj\.weight|blk\.(\d+)\.ffn_(gate|up|down)_shexp\.weight)", "the shared expert of layer $L: a SwiGLU MLP every token goes through"},
    {R"(model\.layers\.(\d+)\.mlp\.shared_expert_gate\.weight|blk\.(\d+)\.ffn_gate_inp_shexp\.weight)", "sigmoid gate [1, hidden] scaling the shared expert's output in layer $L"},
    {R"(model\.encoder\.conv([12])\.(weight|bias))", "Whisper encoder convolution: mel frames -> d_model (conv2 has stride 2: 3000 frames -> 1500 positions)"},
    {R"(model\.encoder\.embed_positions\.weight)", "Whisper encoder sinusoidal positions [1500, d_model], added after the convolutions"},
    {R"(model\.decoder\.embed_tokens\.weight)", "Whisper decoder token embedding, also the output head (tied)"},
    {R"(model\.decoder\.embed_positions\.weight)", "Whisper decoder learned positions [448, d_model]"},
    {R"(model\.(encoder|decoder)\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias))", "Whisper $S self-attention projection in layer $L"},
    {R"(model\.decoder\.layers\.(\d+)\.encoder_attn\.(q|k|v|out)_proj\.(weight|bias))", "Whisper decoder cross-attention projection in layer $L (k/v computed once per 30 s segment)"},
    {R"(model\.(encoder|decoder)\.layers\.(\d+)\.(self_attn_layer_norm|encoder_attn_layer_norm|final_layer_norm)\.(weight|bias))", "Whisper $S LayerNorm in layer $L (pre-LN block)"},
    {R"(model\.(encoder|decoder)\.layers\.(\d+)\.fc([12])\.(weight|bias))", "Whisper $S MLP projection in layer $L (GELU between fc1 and fc2)"},
    {R"(model\.(encoder|decoder)\.layer_norm\.(weight|bias))", "Whisper $S final LayerNorm"},
    {R"(audio\.mel_filters)", "mel filterbank [n_mels, 201] (Slaney), carried in the APR file for the log-mel front end"},
};

const Entry kTopics[] = {
    {"0|ok", "exit 0: success"},
    {"1|validation", "exit 1 (validation): the input was read but failed a check (a gate, a lint rule, a canary)"},
    {"checksum", "exit 1 (checksum): a CRC-32, SHA-256 or Ed25519 signature did not match; the file is corrupt or was tampered with"},
    {"2|invalid_argument|usage", "exit 2 (usage): the command line or an argument was wrong; see `apr CMD --help`"},
    {"3|io", "exit 3 (io): a file could not be opened, read, mapped or written"},
    {"format", "exit 3 (format): the bytes do not follow the format (bad magic, truncated, out-of-range offset, bad JSON); the message names the file, offset and field"},
    {"unsupported", "exit 3 (unsupported): valid input apr does not handle, e.g. a dtype kernels cannot compute with or a PyTorch pickle (convert to SafeTensors)"},
    {"not_found", "exit 3 (not_found): a file, tensor, key or model that does not exist"},
    {"crypto", "exit 3 (crypto): decryption failed: wrong passphrase or corrupted ciphertext"},
    {"network", "exit 3 (network): a download failed (HTTP status or connection error)"},
    {"qwen2", "Qwen2: decoder-only transformer. Per layer: RMSNorm -> GQA self-attention (q/k/v with bias, RoPE split halves, causal, sliding window on layers >= max_window_layers when enabled) -> residual; RMSNorm -> SwiGLU MLP -> residual. Final RMSNorm, output head tied or separate."},
    {"qwen2_moe|qwen2moe", "Qwen2-MoE: Qwen2 attention; the MLP of sparse layers is a router (softmax over experts, top-k, optional renormalisation) over SwiGLU experts plus a shared expert scaled by a sigmoid gate."},
    {"whisper", "Whisper: encoder-decoder. Encoder: 2 conv1d + GELU over log-mel, sinusoidal positions, pre-LN blocks. Decoder: token + learned positions, pre-LN blocks with causal self-attention and cross-attention to the encoder, output head tied to the token embedding."},
};

std::string fill(std::string text, const std::smatch& match) {
  std::string layer, side;
  for (size_t i = 1; i < match.size(); ++i) {
    if (!match[i].matched) continue;
    const std::string value = match[i];
    if (layer.empty() && std::all_of(value.begin(), value.end(), ::isdigit)) layer = value;
    if (side.empty() && (value == "encoder" || value == "decoder")) side = value;
  }
  for (auto [key, value] : {std::pair{"$L", layer}, std::pair{"$S", side}}) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key)) text.replace(at, 2, value);
  }
  return text;
}

}  // namespace

void register_explain_commands(CLI::App& app, Registry& registry) {
  auto* explain = app.add_subcommand("explain", "Explain an error category or exit code, a tensor name's role, or an architecture");
  auto topic = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  explain->add_option("topic", *topic, "error category (format, checksum, ...), exit code, tensor name or architecture")->required();
  explain->add_flag("--json", *json, "print JSON");
  registry.add(explain, [topic, json] {
    using Table = std::pair<const char*, std::span<const Entry>>;
    for (const auto& [kind, table] : {Table{"topic", kTopics}, Table{"tensor", kTensorRoles}}) {
      for (const Entry& entry : table) {
        std::smatch match;
        if (std::regex_match(*topic, match, std::regex(entry.pattern))) {
          const std::string text = fill(entry.explanation, match);
          if (*json) print_json(nlohmann::json{{"topic", *topic}, {"kind", kind}, {"explanation", text}});
          else fmt::print("{}: {}\n", *topic, text);
          return int{kOk};
        }
      }
    }
    return report(make_error(ErrorCode::not_found, "nothing to explain for '{}' (try an error category like 'format', an exit code, a tensor name, or qwen2 / qwen2_moe / whisper)", *topic));
  });
}

}  // namespace apr::cli
