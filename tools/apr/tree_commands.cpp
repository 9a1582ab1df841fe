// apr tree: a model's hierarchy (model > layers > N > self_attn > q_proj > weight) built from
// its tensor names, with tensor counts, parameters and bytes per node.
#include <charconv>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "model_file.hpp"

namespace apr::cli {
namespace {

/// Orders name parts with numbers by value ("2" before "10"), numbers before words.
struct NaturalOrder {
  bool operator()(const std::string& a, const std::string& b) const {
    uint64_t x = 0, y = 0;
    const bool a_number = !a.empty() && std::from_chars(a.data(), a.data() + a.size(), x).ptr == a.data() + a.size();
    const bool b_number = !b.empty() && std::from_chars(b.data(), b.data() + b.size(), y).ptr == b.data() + b.size();
    if (a_number && b_number) return x < y || (x == y && a < b);
    if (a_number != b_number) return a_number;
    return a < b;
  }
};

/// A node of the name tree: its children by name part, and the tensor that ends here, if any.
struct Node {
  std::map<std::string, Node, NaturalOrder> children;
  const TensorView* tensor = nullptr;
  size_t tensors = 0;
  uint64_t parameters = 0, bytes = 0;
};

/// Adds `tensor` under the parts of its dotted name.
void insert(Node& root, const TensorView& tensor) {
  Node* node = &root;
  const std::string_view name = tensor.name;
  size_t start = 0;
  while (true) {
    node->tensors += 1;
    node->parameters += tensor.numel();
    node->bytes += tensor.bytes.size();
    if (start > name.size()) break;
    const size_t dot = name.find('.', start);
    const std::string part(name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    node = &node->children[part];
    start = dot == std::string_view::npos ? name.size() + 1 : dot + 1;
  }
  node->tensor = &tensor;
}

/// A count with a k/M/G suffix.
std::string human(uint64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f}G", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{}", n);
}

nlohmann::json to_json(const std::string& name, const Node& node, size_t depth, size_t max_depth) {
  nlohmann::json out = {{"name", name}, {"tensors", node.tensors}, {"parameters", node.parameters}, {"bytes", node.bytes}};
  if (node.tensor != nullptr) {
    out["dtype"] = std::string(to_string(node.tensor->dtype));
    out["shape"] = std::vector<uint64_t>(node.tensor->shape.dims().begin(), node.tensor->shape.dims().end());
  }
  if (!node.children.empty() && (max_depth == 0 || depth < max_depth)) {
    out["children"] = nlohmann::json::array();
    for (const auto& [part, child] : node.children) out["children"].push_back(to_json(part, child, depth + 1, max_depth));
  }
  return out;
}

void print_node(const std::string& name, const Node& node, const std::string& prefix, bool last, size_t depth, size_t max_depth, bool sizes) {
  std::string line = prefix + (last ? "└── " : "├── ") + name;
  if (node.tensor != nullptr) line += fmt::format("  {} {}", to_string(node.tensor->dtype), to_string(node.tensor->shape));
  else line += fmt::format("  ({} tensors)", node.tensors);
  if (sizes) line += fmt::format("  {} params, {} bytes", human(node.parameters), human(node.bytes));
  fmt::print("{}\n", line);
  if (max_depth != 0 && depth >= max_depth) return;
  size_t i = 0;
  for (const auto& [part, child] : node.children) {
    print_node(part, child, prefix + (last ? "    " : "│   "), ++i == node.children.size(), depth + 1, max_depth, sizes);
  }
}

}  // namespace

void register_tree_commands(CLI::App& app, Registry& registry) {
  struct Flags {
    std::string path, filter;
    size_t depth = 0;
    bool sizes = false, json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* tree = app.add_subcommand("tree", "Show a model's hierarchy of layers and tensors (from the tensor names)");
  tree->add_option("file", flags->path, "APR, SafeTensors (or index), GGUF file or model folder")->required();
  tree->add_option("--filter", flags->filter, "only tensors whose name contains this text");
  tree->add_option("--depth", flags->depth, "show this many levels (0 = all)");
  tree->add_flag("--sizes", flags->sizes, "parameters and bytes on every node");
  tree->add_flag("--json", flags->json, "print the tree as nested JSON");
  registry.add(tree, [flags] {
    auto file = open_any(flags->path);
    if (!file) return report(file.error());
    Node root;
    for (const TensorView& tensor : (*file)->tensors()) {
      if (flags->filter.empty() || tensor.name.find(flags->filter) != std::string_view::npos) insert(root, tensor);
    }
    if (root.tensors == 0 && !flags->filter.empty()) {
      return report(make_error(ErrorCode::invalid_argument, "--filter {}: no tensor name contains it", flags->filter));
    }
    if (flags->json) {
      print_json(to_json(flags->path, root, 0, flags->depth));
      return int{kOk};
    }
    fmt::print("{} ({}, {} tensors, {} parameters, {} bytes)\n", flags->path, (*file)->format(), root.tensors, human(root.parameters), human(root.bytes));
    size_t i = 0;
    for (const auto& [part, child] : root.children) print_node(part, child, "", ++i == root.children.size(), 1, flags->depth, flags->sizes);
    return int{kOk};
  });
}

}  // namespace apr::cli
