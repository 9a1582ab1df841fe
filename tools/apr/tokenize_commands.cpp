// apr tokenize: text to token ids and pieces with a model's tokenizer, or ids back to text.
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "apr/models/file_tokenizer.hpp"
#include "cli.hpp"

namespace apr::cli {
namespace {

/// `text` with control characters and bytes that are not UTF-8 written as escapes, for a terminal.
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

void register_tokenize_commands(CLI::App& app, Registry& registry) {
  struct Flags {
    std::string model, text, file;
    std::vector<int64_t> decode;
    bool no_special = false, skip_special = false, ids_only = false, json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* tokenize = app.add_subcommand("tokenize", "Turn text into token ids and pieces with a model's tokenizer, or ids back into text (--decode)");
  tokenize->add_option("model", flags->model, "model folder, .apr, .gguf, .safetensors (tokenizer beside it), tokenizer.json or .tiktoken")->required();
  auto* text_option = tokenize->add_option("text", flags->text, "text to tokenize (default: --file, else stdin)");
  auto* file_option = tokenize->add_option("-f,--file", flags->file, "read the text from this file");
  auto* decode_option = tokenize->add_option("--decode", flags->decode, "decode these comma-separated ids instead")->delimiter(',');
  text_option->excludes(file_option);
  decode_option->excludes(text_option)->excludes(file_option);
  tokenize->add_flag("--no-special", flags->no_special, "treat special tokens written in the text as plain text");
  tokenize->add_flag("--skip-special", flags->skip_special, "--decode: leave special tokens out of the text");
  tokenize->add_flag("--ids-only", flags->ids_only, "print only the ids, comma-separated");
  tokenize->add_flag("--json", flags->json, "print JSON: ids, pieces and count (or text for --decode)");
  registry.add(tokenize, [flags, text_option, file_option, decode_option] {
    auto tokenizer = models::load_model_tokenizer(flags->model);
    if (!tokenizer) return report(tokenizer.error());
    if (decode_option->count() > 0) {
      std::vector<int32_t> ids;
      for (int64_t id : flags->decode) {
        if (id < 0 || static_cast<uint64_t>(id) >= tokenizer->vocab_size()) {
          return report(make_error(ErrorCode::invalid_argument, "--decode: id {} is outside the vocabulary of {}", id, tokenizer->vocab_size()));
        }
        ids.push_back(static_cast<int32_t>(id));
      }
      const std::string text = tokenizer->decode(ids, flags->skip_special);
      if (flags->json) print_json({{"ids", ids}, {"text", text}});
      else fmt::print("{}\n", text);
      return int{kOk};
    }
    std::string text = flags->text;
    if (file_option->count() > 0) {
      std::ifstream in(flags->file, std::ios::binary);
      if (!in) return report(make_error(ErrorCode::not_found, "{}: cannot open", flags->file));
      text.assign(std::istreambuf_iterator<char>(in), {});
    } else if (text_option->count() == 0) {
      text.assign(std::istreambuf_iterator<char>(std::cin), {});
    }
    const std::vector<int32_t> ids = tokenizer->encode(text, !flags->no_special);
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(tokenizer->id_to_token(id).value_or(""));
    if (flags->json) {
      print_json({{"ids", ids}, {"pieces", pieces}, {"count", ids.size()}, {"bytes", text.size()}});
    } else if (flags->ids_only) {
      fmt::print("{}\n", fmt::join(ids, ","));
    } else {
      for (size_t i = 0; i < ids.size(); ++i) {
        fmt::print("{:>8}  {}{}\n", ids[i], printable(tokenizer->decode_bytes(std::span(&ids[i], 1))), tokenizer->is_special(ids[i]) ? "  (special)" : "");
      }
      fmt::print(stderr, "{} tokens for {} bytes\n", ids.size(), text.size());
    }
    return int{kOk};
  });
}

}  // namespace apr::cli
