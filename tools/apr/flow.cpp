// apr flow: the data flow of an architecture as text, Graphviz DOT or Mermaid.
#include <cctype>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"

namespace apr::cli {
namespace {

struct Edge {
  std::string from;
  std::string to;
  std::string label;  // tensor shape or operation
};

// One transformer block's flow per architecture, plus the stages around it.
std::vector<Edge> architecture_flow(const std::string& architecture) {
  if (architecture == "qwen2") {
    return {{"tokens", "embed_tokens", "ids [T]"},
            {"embed_tokens", "input_layernorm", "x [T, hidden]"},
            {"input_layernorm", "q_proj / k_proj / v_proj", "RMSNorm"},
            {"q_proj / k_proj / v_proj", "RoPE", "q [T, heads, d], k/v [T, kv_heads, d] (+bias)"},
            {"RoPE", "KV cache", "k, v"},
            {"KV cache", "attention", "GQA, causal (+ sliding window)"},
            {"attention", "o_proj", "[T, heads x d]"},
            {"o_proj", "residual 1", "+ x"},
            {"residual 1", "post_attention_layernorm", "x [T, hidden]"},
            {"post_attention_layernorm", "gate_proj / up_proj", "RMSNorm"},
            {"gate_proj / up_proj", "SwiGLU", "silu(gate) * up [T, intermediate]"},
            {"SwiGLU", "down_proj", ""},
            {"down_proj", "residual 2", "+ x (to the next layer)"},
            {"residual 2", "norm", "after the last layer"},
            {"norm", "lm_head", "RMSNorm"},
            {"lm_head", "logits", "[vocab] (tied to embed_tokens or separate)"}};
  }
  if (architecture == "qwen2_moe") {
    return {{"tokens", "embed_tokens", "ids [T]"},
            {"embed_tokens", "attention block", "as qwen2"},
            {"attention block", "post_attention_layernorm", "x [T, hidden]"},
            {"post_attention_layernorm", "router", "RMSNorm"},
            {"router", "top-k experts", "softmax over experts, top-k (renormalised if norm_topk_prob)"},
            {"top-k experts", "weighted sum", "SwiGLU experts, tokens grouped per expert"},
            {"post_attention_layernorm", "shared expert", "SwiGLU"},
            {"shared expert", "weighted sum", "x sigmoid(shared_expert_gate)"},
            {"weighted sum", "residual", "+ x (to the next layer)"},
            {"residual", "norm", "after the last layer"},
            {"norm", "lm_head", "RMSNorm"},
            {"lm_head", "logits", "[vocab]"}};
  }
  if (architecture == "whisper") {
    return {{"audio", "log-mel", "16 kHz mono, 30 s windows"},
            {"log-mel", "conv1 + GELU", "[n_mels, 3000]"},
            {"conv1 + GELU", "conv2 + GELU", "stride 2"},
            {"conv2 + GELU", "+ positions", "[1500, d_model]"},
            {"+ positions", "encoder blocks", "pre-LN self-attention + GELU MLP"},
            {"encoder blocks", "encoder layer_norm", ""},
            {"encoder layer_norm", "cross-attention K/V", "once per segment"},
            {"tokens", "embed_tokens + positions", "SOT sequence, then sampled ids"},
            {"embed_tokens + positions", "decoder blocks", "causal self-attention (KV cache)"},
            {"cross-attention K/V", "decoder blocks", "cross-attention"},
            {"decoder blocks", "decoder layer_norm", ""},
            {"decoder layer_norm", "logits", "x embed_tokensᵀ (tied)"},
            {"logits", "decoding", "timestamp rules, beam search, fallback"}};
  }
  return {};
}

std::string node_id(const std::string& name) {
  std::string id = "n";
  for (char c : name) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return id;
}

}  // namespace

void register_flow_commands(CLI::App& app, Registry& registry) {
  auto* flow = app.add_subcommand("flow", "Data-flow diagram of an architecture (text, DOT or Mermaid)");
  auto architecture = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("text");
  auto json = std::make_shared<bool>(false);
  flow->add_option("architecture", *architecture, "qwen2, qwen2_moe or whisper")->required();
  flow->add_option("--format", *format, "text, dot or mermaid")->check(CLI::IsMember({"text", "dot", "mermaid"}));
  flow->add_flag("--json", *json, "print the edges as JSON");
  registry.add(flow, [=] {
    const auto edges = architecture_flow(*architecture);
    if (edges.empty()) return report(make_error(ErrorCode::invalid_argument, "no flow for architecture '{}' (qwen2, qwen2_moe, whisper)", *architecture));
    if (*json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : edges) out.push_back({{"from", e.from}, {"to", e.to}, {"label", e.label}});
      print_json(out);
    } else if (*format == "dot") {
      fmt::print("digraph {} {{\n  rankdir=TB;\n  node [shape=box, fontname=\"sans-serif\"];\n", node_id(*architecture));
      for (const auto& e : edges) {
        fmt::print("  {} [label=\"{}\"];\n  {} [label=\"{}\"];\n", node_id(e.from), e.from, node_id(e.to), e.to);
        fmt::print("  {} -> {} [label=\"{}\"];\n", node_id(e.from), node_id(e.to), e.label);
      }
      fmt::print("}}\n");
    } else if (*format == "mermaid") {
      fmt::print("flowchart TD\n");
      for (const auto& e : edges) {
        if (e.label.empty()) fmt::print("  {}[\"{}\"] --> {}[\"{}\"]\n", node_id(e.from), e.from, node_id(e.to), e.to);
        else fmt::print("  {}[\"{}\"] -->|\"{}\"| {}[\"{}\"]\n", node_id(e.from), e.from, e.label, node_id(e.to), e.to);
      }
    } else {
      for (const auto& e : edges) fmt::print("{} -> {}{}\n", e.from, e.to, e.label.empty() ? "" : "   (" + e.label + ")");
    }
    return int{kOk};
  });
}

}  // namespace apr::cli
