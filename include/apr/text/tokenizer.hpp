/// @file tokenizer.hpp
/// @brief Tokenizer: byte-level BPE loaded from a Hugging Face tokenizer.json, GPT-2's
/// encoder.json + vocab.bpe, or a tiktoken rank file (Whisper), with added/special tokens,
/// NFC normalisation, encode, decode and streaming decode.
#pragma once

#if __has_include(<utf8proc.h>)
#include <utf8proc.h>
#else
#include "apr/text/js_host.hpp"  // NFC by the JavaScript host (WebAssembly builds)
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/text/bpe.hpp"
#include "apr/text/byte_level.hpp"
#include "apr/text/pretokenizer.hpp"
#include "apr/core/utf8.hpp"

namespace apr::text {

/// A token matched in the raw text before pre-tokenization (special or not).
struct AddedToken {
  int32_t id = 0;        ///< its id
  std::string content;   ///< its text
  bool special = false;  ///< special tokens are parsed only on request and dropped by skip_special
};

class StreamDecoder;

/// The whole content of a file, naming it in errors.
inline Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::not_found, "{}: cannot open", path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// A byte-level BPE tokenizer. Copies share the loaded tables; every method is thread-safe.
class Tokenizer {
 public:
  /// Parses a Hugging Face tokenizer.json (BPE model, added_tokens, NFC normaliser, Split/ByteLevel
  /// pre-tokenizer, ByteLevel decoder); `source` names it in errors.
  static Result<Tokenizer> from_tokenizer_json(std::string_view json_text, std::string_view source = "tokenizer.json") {
    const auto json = nlohmann::json::parse(json_text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) return make_error(ErrorCode::format, "{}: not a JSON object", source);
    auto fail = [&](std::string_view what) { return make_error(ErrorCode::format, "{}: {}", source, what); };
    if (!json.contains("model") || !json["model"].is_object()) return fail("'model' is missing");
    const auto& model = json["model"];
    if (model.value("type", "BPE") != "BPE") return fail(fmt::format("model type '{}' is not BPE", model.value("type", "")));
    if (!model.contains("vocab") || !model["vocab"].is_object()) return fail("'model.vocab' must be an object");
    if (!model.contains("merges") || !model["merges"].is_array()) return fail("'model.merges' must be an array");
    auto impl = std::make_shared<Impl>();
    impl->json_text = std::string(json_text);
    for (const auto& [token, id] : model["vocab"].items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (int64_t{1} << 24)) {
        return fail(fmt::format("model.vocab['{}'] must be an id below 2^24", token));
      }
      auto bytes = byte_level_decode(token);
      if (!bytes) return fail(fmt::format("model.vocab token '{}' is not in the byte-level alphabet", token));
      impl->bpe.add_token(std::move(*bytes), id.get<int32_t>());
    }
    uint32_t rank = 0;
    for (const auto& merge : model["merges"]) {
      std::string left, right;
      if (merge.is_string()) {
        const std::string text = merge.get<std::string>();
        const size_t space = text.find(' ', 1);
        if (space == std::string::npos) return fail(fmt::format("merges[{}] '{}' is not 'left right'", rank, text));
        left = text.substr(0, space);
        right = text.substr(space + 1);
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        left = merge[0].get<std::string>();
        right = merge[1].get<std::string>();
      } else {
        return fail(fmt::format("merges[{}] must be a string or a pair of strings", rank));
      }
      const auto l = byte_level_decode(left), r = byte_level_decode(right);
      if (!l || !r) return fail(fmt::format("merges[{}] is not in the byte-level alphabet", rank));
      auto status = impl->bpe.add_merge(*l, *r, rank);
      if (!status) return fail(status.error().message);
      ++rank;
    }
    if (json.contains("added_tokens") && json["added_tokens"].is_array()) {
      for (const auto& token : json["added_tokens"]) {
        if (!token.is_object() || !token.contains("id") || !token["id"].is_number_integer() || !token.contains("content") ||
            !token["content"].is_string() || token["id"].get<int64_t>() < 0 || token["id"].get<int64_t>() >= (int64_t{1} << 24)) {
          return fail("added_tokens entries need an integer 'id' and a string 'content'");
        }
        impl->add_added_token({token["id"].get<int32_t>(), token["content"].get<std::string>(), token.value("special", false)});
      }
    }
    impl->nfc = json.contains("normalizer") && json["normalizer"].is_object() && normalizer_has_nfc(json["normalizer"]);
    std::string pattern(kGpt2Pattern);
    if (json.contains("pre_tokenizer") && json["pre_tokenizer"].is_object()) {
      if (auto found = split_pattern(json["pre_tokenizer"])) pattern = *found;
    }
    auto splitter = RegexSplitter::compile(pattern);
    if (!splitter) return fail(splitter.error().message);
    impl->splitter = std::make_unique<RegexSplitter>(std::move(splitter).value());
    if (!impl->bpe.covers_all_bytes()) return fail("the vocabulary does not cover all 256 bytes");
    return Tokenizer(std::move(impl));
  }

  /// Loads GPT-2's encoder.json (token → id, byte-level strings) and vocab.bpe (merges).
  static Result<Tokenizer> from_gpt2_files(const std::string& encoder_path, const std::string& vocab_bpe_path) {
    auto encoder_text = read_text_file(encoder_path);
    if (!encoder_text) return std::move(encoder_text).error();
    auto merges_text = read_text_file(vocab_bpe_path);
    if (!merges_text) return std::move(merges_text).error();
    const auto encoder = nlohmann::json::parse(*encoder_text, nullptr, false);
    if (encoder.is_discarded() || !encoder.is_object()) return make_error(ErrorCode::format, "{}: not a JSON object", encoder_path);
    nlohmann::json merges = nlohmann::json::array();
    std::istringstream lines(*merges_text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty() || line.starts_with("#version")) continue;
      merges.push_back(line);
    }
    nlohmann::json added = nlohmann::json::array();
    if (encoder.contains("<|endoftext|>")) added.push_back({{"id", encoder["<|endoftext|>"]}, {"content", "<|endoftext|>"}, {"special", true}});
    const nlohmann::json json = {{"model", {{"type", "BPE"}, {"vocab", encoder}, {"merges", merges}}},
                                 {"added_tokens", added},
                                 {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", std::string(kGpt2Pattern)}}}}}};
    return from_tokenizer_json(json.dump(), encoder_path);
  }

  /// Loads a tiktoken rank file ("base64 rank" per line; an empty token is allowed) with
  /// `specials` appended and `pattern` for splitting.
  static Result<Tokenizer> from_tiktoken(std::string_view ranks_text, std::vector<AddedToken> specials,
                                         std::string_view pattern = kGpt2Pattern, std::string_view source = "ranks.tiktoken") {
    auto impl = std::make_shared<Impl>();
    size_t line_number = 0;
    size_t start = 0;
    while (start < ranks_text.size()) {
      size_t end = ranks_text.find('\n', start);
      if (end == std::string_view::npos) end = ranks_text.size();
      const std::string_view line = ranks_text.substr(start, end - start);
      start = end + 1;
      ++line_number;
      if (line.empty()) continue;
      const size_t space = line.find(' ');
      if (space == std::string_view::npos) return make_error(ErrorCode::format, "{}:{}: expected 'base64 rank'", source, line_number);
      auto bytes = base64_decode(line.substr(0, space));
      if (!bytes) return make_error(ErrorCode::format, "{}:{}: invalid base64 '{}'", source, line_number, line.substr(0, space));
      const std::string rank_text(line.substr(space + 1));
      char* rank_end = nullptr;
      const long rank = std::strtol(rank_text.c_str(), &rank_end, 10);
      if (rank_text.empty() || *rank_end != '\0' || rank < 0 || rank >= (1L << 24)) {
        return make_error(ErrorCode::format, "{}:{}: invalid rank '{}'", source, line_number, rank_text);
      }
      if (bytes->empty()) {
        impl->empty_tokens.push_back(static_cast<int32_t>(rank));
        impl->bpe.add_token({}, static_cast<int32_t>(rank));
        continue;
      }
      impl->bpe.add_token(std::move(*bytes), static_cast<int32_t>(rank));
    }
    impl->bpe.derive_merges_from_ranks();
    for (auto& special : specials) impl->add_added_token(std::move(special));
    auto splitter = RegexSplitter::compile(pattern);
    if (!splitter) return std::move(splitter).error().with_context(source);
    impl->splitter = std::make_unique<RegexSplitter>(std::move(splitter).value());
    if (!impl->bpe.covers_all_bytes()) return make_error(ErrorCode::format, "{}: the ranks do not cover all 256 bytes", source);
    return Tokenizer(std::move(impl));
  }

  /// Token ids of `text`. With `parse_special`, special tokens written in the text become their
  /// ids; non-special added tokens always do. Ill-formed UTF-8 is first repaired with U+FFFD.
  [[nodiscard]] std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const {
    std::vector<int32_t> ids;
    const std::string repaired = is_valid_utf8(text) ? std::string() : utf8_lossy(text);
    const std::string_view input = repaired.empty() ? text : std::string_view(repaired);
    size_t segment_start = 0;
    for (size_t i = 0; i < input.size();) {
      const AddedToken* match = impl_->match_added(input.substr(i), parse_special);
      if (match == nullptr) {
        ++i;
        continue;
      }
      encode_ordinary(input.substr(segment_start, i - segment_start), ids);
      ids.push_back(match->id);
      i += match->content.size();
      segment_start = i;
    }
    encode_ordinary(input.substr(segment_start), ids);
    return ids;
  }

  /// Text of `ids`: tokens' bytes joined, ill-formed UTF-8 replaced by U+FFFD; special tokens
  /// are dropped with `skip_special`; unknown ids are skipped.
  [[nodiscard]] std::string decode(std::span<const int32_t> ids, bool skip_special = false) const {
    return utf8_lossy(decode_bytes(ids, skip_special));
  }

  /// Raw bytes of `ids` joined (no UTF-8 repair).
  [[nodiscard]] std::string decode_bytes(std::span<const int32_t> ids, bool skip_special = false) const {
    std::string bytes;
    for (int32_t id : ids) {
      if (const AddedToken* added = impl_->added_by_id(id)) {
        if (!(skip_special && added->special)) bytes += added->content;
      } else {
        bytes += impl_->bpe.token_bytes(id);
      }
    }
    return bytes;
  }

  /// The id of a token given as its text (added tokens) or vocabulary string (byte-level form).
  [[nodiscard]] std::optional<int32_t> token_to_id(std::string_view token) const {
    for (const auto& added : impl_->added) {
      if (added.content == token) return added.id;
    }
    if (auto bytes = byte_level_decode(token)) {
      if (const int32_t id = impl_->bpe.find(*bytes); id >= 0) return id;
    }
    return std::nullopt;
  }
  /// The vocabulary string of `id` (byte-level form; added tokens as written), or nullopt.
  [[nodiscard]] std::optional<std::string> id_to_token(int32_t id) const {
    if (const AddedToken* added = impl_->added_by_id(id)) return added->content;
    if (id < 0 || static_cast<size_t>(id) >= impl_->bpe.id_limit()) return std::nullopt;
    return byte_level_encode(impl_->bpe.token_bytes(id));
  }
  /// Number of ids (one past the largest id).
  [[nodiscard]] size_t vocab_size() const noexcept {
    size_t size = impl_->bpe.id_limit();
    for (const auto& added : impl_->added) size = std::max(size, static_cast<size_t>(added.id) + 1);
    return size;
  }
  /// True for special added tokens.
  [[nodiscard]] bool is_special(int32_t id) const noexcept {
    const AddedToken* added = impl_->added_by_id(id);
    return added != nullptr && added->special;
  }
  /// Every added token.
  [[nodiscard]] const std::vector<AddedToken>& added_tokens() const noexcept { return impl_->added; }
  /// The tokenizer.json text it was loaded from (empty for GPT-2 files and tiktoken).
  [[nodiscard]] const std::string& json_text() const noexcept { return impl_->json_text; }
  /// A decoder for generated ids that emits text only once it is complete UTF-8.
  [[nodiscard]] StreamDecoder stream(bool skip_special = true) const;

 private:
  struct Impl {
    BpeModel bpe;
    std::vector<AddedToken> added;
    std::map<int32_t, size_t> added_index;           // id → index in `added`
    std::vector<std::vector<size_t>> added_by_byte = std::vector<std::vector<size_t>>(256);  // first byte → longest first
    std::vector<int32_t> empty_tokens;
    std::unique_ptr<RegexSplitter> splitter;
    bool nfc = false;
    std::string json_text;

    void add_added_token(AddedToken token) {
      if (token.content.empty()) return;
      added_index[token.id] = added.size();
      added.push_back(std::move(token));
      auto& bucket = added_by_byte[static_cast<uint8_t>(added.back().content[0])];
      bucket.push_back(added.size() - 1);
      std::sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) { return added[a].content.size() > added[b].content.size(); });
    }
    const AddedToken* added_by_id(int32_t id) const {
      const auto it = added_index.find(id);
      return it == added_index.end() ? nullptr : &added[it->second];
    }
    const AddedToken* match_added(std::string_view text, bool parse_special) const {
      for (size_t index : added_by_byte[static_cast<uint8_t>(text[0])]) {
        const AddedToken& token = added[index];
        if ((parse_special || !token.special) && text.starts_with(token.content)) return &token;
      }
      return nullptr;
    }
  };

  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

  void encode_ordinary(std::string_view text, std::vector<int32_t>& ids) const {
    if (text.empty()) return;
    std::string normalized;
    if (impl_->nfc) {
      normalized = nfc(text);
      text = normalized;
    }
    std::vector<std::string_view> pieces;
    impl_->splitter->split(text, pieces);
    for (std::string_view piece : pieces) (void)impl_->bpe.encode_piece(piece, ids);
  }

  /// NFC of `text`, normalising only the stretches around non-ASCII bytes: an ASCII character is
  /// a starter that composes with nothing before it, so NFC(a + b) = NFC(a) + NFC(b) whenever b
  /// begins with one. A stretch that is not valid UTF-8 is kept as it is.
  static std::string nfc(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
      size_t next = i;
      while (next < text.size() && static_cast<uint8_t>(text[next]) < 0x80) ++next;
      if (next == text.size()) {
        out.append(text.substr(i));
        break;
      }
      const size_t start = next > i ? next - 1 : next;  // the ASCII character a mark may compose with
      out.append(text.substr(i, start - i));
      size_t end = next;
      while (end < text.size() && static_cast<uint8_t>(text[end]) >= 0x80) ++end;
      const std::string_view stretch = text.substr(start, end - start);
#if __has_include(<utf8proc.h>)
      utf8proc_uint8_t* result = nullptr;
      const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(stretch.data()), static_cast<utf8proc_ssize_t>(stretch.size()),
                                       &result, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
      if (length >= 0 && result != nullptr) out.append(reinterpret_cast<const char*>(result), static_cast<size_t>(length));
      else out.append(stretch);
      std::free(result);
#else
      if (is_valid_utf8(stretch)) out.append(host_nfc(stretch));
      else out.append(stretch);
#endif
      i = end;
    }
    return out;
  }

  static bool normalizer_has_nfc(const nlohmann::json& normalizer) {
    if (normalizer.value("type", "") == "NFC") return true;
    if (normalizer.value("type", "") == "Sequence" && normalizer.contains("normalizers") && normalizer["normalizers"].is_array()) {
      for (const auto& n : normalizer["normalizers"]) {
        if (n.is_object() && normalizer_has_nfc(n)) return true;
      }
    }
    return false;
  }

  static std::optional<std::string> split_pattern(const nlohmann::json& pre_tokenizer) {
    if (pre_tokenizer.value("type", "") == "Split" && pre_tokenizer.contains("pattern") && pre_tokenizer["pattern"].is_object()) {
      const auto& pattern = pre_tokenizer["pattern"];
      if (pattern.contains("Regex") && pattern["Regex"].is_string()) return pattern["Regex"].get<std::string>();
    }
    if (pre_tokenizer.value("type", "") == "Sequence" && pre_tokenizer.contains("pretokenizers") && pre_tokenizer["pretokenizers"].is_array()) {
      for (const auto& p : pre_tokenizer["pretokenizers"]) {
        if (!p.is_object()) continue;
        if (auto found = split_pattern(p)) return found;
      }
    }
    if (pre_tokenizer.value("type", "") == "ByteLevel" && pre_tokenizer.value("use_regex", true)) return std::string(kGpt2Pattern);
    return std::nullopt;
  }

  static std::optional<std::string> base64_decode(std::string_view text) {
    auto value = [](char c) -> int {
      if (c >= 'A' && c <= 'Z') return c - 'A';
      if (c >= 'a' && c <= 'z') return c - 'a' + 26;
      if (c >= '0' && c <= '9') return c - '0' + 52;
      if (c == '+') return 62;
      if (c == '/') return 63;
      return -1;
    };
    std::string out;
    uint32_t buffer = 0;
    int bits = 0;
    bool padding = false;
    for (char c : text) {
      if (c == '=') {
        padding = true;
        continue;
      }
      const int v = value(c);
      if (v < 0 || padding) return std::nullopt;
      buffer = (buffer << 6) | static_cast<uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += static_cast<char>((buffer >> bits) & 0xFF);
      }
    }
    return out;
  }

  friend class StreamDecoder;
  std::shared_ptr<const Impl> impl_;
};

/// Turns generated ids into text piece by piece: bytes are held back while they may still be
/// the start of a multi-byte character; ill-formed bytes come out as U+FFFD.
class StreamDecoder {
 public:
  /// A decoder over `tokenizer`'s vocabulary.
  StreamDecoder(Tokenizer tokenizer, bool skip_special) : tokenizer_(std::move(tokenizer)), skip_special_(skip_special) {}
  /// The text that `id` completes (possibly empty).
  std::string push(int32_t id) {
    pending_ += tokenizer_.decode_bytes(std::span(&id, 1), skip_special_);
    const size_t ready = utf8_decodable_prefix(pending_);
    std::string out = utf8_lossy(std::string_view(pending_).substr(0, ready));
    pending_.erase(0, ready);
    return out;
  }
  /// Whatever is still held back, repaired (call at the end of generation).
  std::string flush() {
    std::string out = utf8_lossy(pending_);
    pending_.clear();
    return out;
  }

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  std::string pending_;
};

inline StreamDecoder Tokenizer::stream(bool skip_special) const { return StreamDecoder(*this, skip_special); }

}  // namespace apr::text
