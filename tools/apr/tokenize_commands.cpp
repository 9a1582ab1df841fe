// apr tokenize: text to token ids and pieces with a model's tokenizer, or ids back to text.
#include <cstdio>
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

/// One line of the JSON-lines protocol: `{"text": ...}` -> `{"ids": [...]}`, `{"ids": [...]}` ->
/// `{"text": ...}`; anything else -> `{"error": ...}` naming the line and the field.
nlohmann::json answer_line(const text::Tokenizer& tokenizer, std::string_view line, size_t number, bool parse_special, bool skip_special) {
  const auto fail = [number](std::string_view what) { return nlohmann::json{{"error", fmt::format("line {}: {}", number, what)}}; };
  const nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
  if (request.is_discarded()) return fail("not JSON");
  if (!request.is_object()) return fail("expected an object with \"text\" or \"ids\"");
  if (const auto text = request.find("text"); text != request.end()) {
    if (!text->is_string()) return fail("\"text\" must be a string");
    return {{"ids", tokenizer.encode(text->get_ref<const std::string&>(), parse_special)}};
  }
  const auto ids = request.find("ids");
  if (ids == request.end()) return fail("expected an object with \"text\" or \"ids\"");
  if (!ids->is_array()) return fail("\"ids\" must be an array of token ids");
  std::vector<int32_t> decoded;
  for (size_t i = 0; i < ids->size(); ++i) {
    const auto& id = (*ids)[i];
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || static_cast<uint64_t>(id.get<int64_t>()) >= tokenizer.vocab_size()) {
      return fail(fmt::format("ids[{}] is not an id of this vocabulary of {}", i, tokenizer.vocab_size()));
    }
    decoded.push_back(id.get<int32_t>());
  }
  return {{"text", tokenizer.decode(decoded, skip_special)}};
}

/// Answers every non-empty line of `in` on stdout, flushed per line; exit status 1 if a line failed.
int answer_lines(const text::Tokenizer& tokenizer, std::istream& in, bool parse_special, bool skip_special) {
  int status = kOk;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json answer = answer_line(tokenizer, line, number, parse_special, skip_special);
    if (answer.contains("error")) status = kValidationFailed;
    fmt::print("{}\n", answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    std::fflush(stdout);
  }
  return status;
}

}  // namespace

void register_tokenize_commands(CLI::App& app, Registry& registry) {
  struct Flags {
    std::string model, text, file;
    std::vector<int64_t> decode;
    bool no_special = false, skip_special = false, ids_only = false, json = false, json_lines = false;
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
  tokenize->add_flag("--jsonl", flags->json_lines,
                     "JSON lines from stdin (or --file): {\"text\": ...} -> {\"ids\": [...]}, {\"ids\": [...]} -> {\"text\": ...}, one answer per line")
      ->excludes(text_option)
      ->excludes(decode_option);
  registry.add(tokenize, [flags, text_option, file_option, decode_option] {
    auto tokenizer = models::load_model_tokenizer(flags->model);
    if (!tokenizer) return report(tokenizer.error());
    if (flags->json_lines) {
      if (file_option->count() == 0) return answer_lines(*tokenizer, std::cin, !flags->no_special, flags->skip_special);
      std::ifstream in(flags->file, std::ios::binary);
      if (!in) return report(make_error(ErrorCode::not_found, "{}: cannot open", flags->file));
      return answer_lines(*tokenizer, in, !flags->no_special, flags->skip_special);
    }
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
