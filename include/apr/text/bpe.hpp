/// @file bpe.hpp
/// @brief BpeModel: a byte-level BPE vocabulary with its merge table, and the merge loop.
///
/// Tokens are stored as raw bytes. A merge (left id, right id) → (rank, merged id) comes from a
/// tokenizer.json / vocab.bpe merge list, or, for tiktoken rank files, from every way of
/// splitting a token into two tokens (tiktoken merges the adjacent pair whose concatenation has
/// the lowest rank). Merging a word keeps the symbols in a linked list and candidate pairs in a
/// min-heap ordered by (rank, position), so a word of n bytes costs O(n log n).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "apr/core/result.hpp"

namespace apr::text {

/// A BPE vocabulary over raw bytes.
class BpeModel {
 public:
  /// Adds token `bytes` with id `id` (ids may have gaps); later duplicates of the same bytes keep
  /// the first id for encoding.
  void add_token(std::string bytes, int32_t id) {
    if (static_cast<size_t>(id) >= id_to_bytes_.size()) id_to_bytes_.resize(static_cast<size_t>(id) + 1);
    if (bytes.size() == 1 && byte_ids_[static_cast<uint8_t>(bytes[0])] < 0) byte_ids_[static_cast<uint8_t>(bytes[0])] = id;
    bytes_to_id_.emplace(bytes, id);
    id_to_bytes_[static_cast<size_t>(id)] = std::move(bytes);
  }

  /// Adds the merge left + right with priority `rank` (lower merges first); both parts and their
  /// concatenation must be tokens.
  Result<void> add_merge(std::string_view left, std::string_view right, uint32_t rank) {
    const auto l = bytes_to_id_.find(std::string(left));
    const auto r = bytes_to_id_.find(std::string(right));
    const auto merged = bytes_to_id_.find(std::string(left) + std::string(right));
    if (l == bytes_to_id_.end() || r == bytes_to_id_.end() || merged == bytes_to_id_.end()) {
      return make_error(ErrorCode::format, "merge {} refers to a token missing from the vocabulary", rank);
    }
    merges_.emplace(key(l->second, r->second), Merge{rank, merged->second});
    return ok();
  }

  /// Derives the merges of a tiktoken rank table: the rank of a pair is the rank of its concatenation.
  void derive_merges_from_ranks() {
    for (size_t id = 0; id < id_to_bytes_.size(); ++id) {
      const std::string& bytes = id_to_bytes_[id];
      for (size_t split = 1; split < bytes.size(); ++split) {
        const auto l = bytes_to_id_.find(bytes.substr(0, split));
        const auto r = bytes_to_id_.find(bytes.substr(split));
        if (l != bytes_to_id_.end() && r != bytes_to_id_.end()) {
          merges_.emplace(key(l->second, r->second), Merge{static_cast<uint32_t>(id), static_cast<int32_t>(id)});
        }
      }
    }
    whole_word_lookup_ = true;
  }

  /// Appends the ids of one pre-tokenized piece of raw bytes to `out`.
  Result<void> encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    if (piece.empty()) return ok();
    if (whole_word_lookup_) {
      if (const auto it = bytes_to_id_.find(piece); it != bytes_to_id_.end()) {
        out.push_back(it->second);
        return ok();
      }
    }
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (const auto it = cache_.find(piece); it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return ok();
      }
    }
    std::vector<int32_t> ids;
    auto status = merge(piece, ids);
    if (!status) return status;
    out.insert(out.end(), ids.begin(), ids.end());
    if (piece.size() <= 256) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (cache_.size() >= kCacheLimit) cache_.clear();
      cache_.emplace(std::string(piece), std::move(ids));
    }
    return ok();
  }

  /// The bytes of token `id` (empty for an unknown id).
  [[nodiscard]] std::string_view token_bytes(int32_t id) const noexcept {
    return id >= 0 && static_cast<size_t>(id) < id_to_bytes_.size() ? std::string_view(id_to_bytes_[static_cast<size_t>(id)]) : std::string_view();
  }
  /// The id of the token with exactly these bytes, or -1.
  [[nodiscard]] int32_t find(std::string_view bytes) const {
    const auto it = bytes_to_id_.find(bytes);
    return it == bytes_to_id_.end() ? -1 : it->second;
  }
  /// One past the largest id.
  [[nodiscard]] size_t id_limit() const noexcept { return id_to_bytes_.size(); }
  /// Number of merges.
  [[nodiscard]] size_t merge_count() const noexcept { return merges_.size(); }
  /// Whether every single byte has a token (needed to encode arbitrary text).
  [[nodiscard]] bool covers_all_bytes() const noexcept {
    for (int32_t id : byte_ids_) {
      if (id < 0) return false;
    }
    return true;
  }

 private:
  struct Merge {
    uint32_t rank;
    int32_t merged;
  };
  static constexpr size_t kCacheLimit = 1 << 16;
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  Result<void> merge(std::string_view piece, std::vector<int32_t>& out) const {
    const size_t n = piece.size();
    std::vector<int32_t> ids(n);
    std::vector<int32_t> prev(n), next(n);
    for (size_t i = 0; i < n; ++i) {
      ids[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
      if (ids[i] < 0) return make_error(ErrorCode::format, "byte 0x{:02x} has no token", static_cast<uint8_t>(piece[i]));
      prev[i] = static_cast<int32_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    }
    struct Candidate {
      uint32_t rank;
      int32_t position;
      int32_t left, right, merged;
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : position > o.position; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto push = [&](int32_t position) {
      if (position < 0 || next[position] < 0) return;
      const auto it = merges_.find(key(ids[position], ids[next[position]]));
      if (it != merges_.end()) heap.push({it->second.rank, position, ids[position], ids[next[position]], it->second.merged});
    };
    for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      const int32_t right = next[c.position];
      if (ids[c.position] != c.left || right < 0 || ids[right] != c.right) continue;  // stale
      ids[c.position] = c.merged;
      ids[right] = -1;
      next[c.position] = next[right];
      if (next[right] >= 0) prev[next[right]] = c.position;
      push(prev[c.position]);
      push(c.position);
    }
    for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(ids[i]);
    return ok();
  }

  /// Hashes std::string and std::string_view alike, so lookups by view allocate nothing.
  struct BytesHash {
    using is_transparent = void;
    size_t operator()(std::string_view bytes) const noexcept { return std::hash<std::string_view>{}(bytes); }
  };
  std::unordered_map<std::string, int32_t, BytesHash, std::equal_to<>> bytes_to_id_;
  std::vector<std::string> id_to_bytes_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_ = [] {
    std::array<int32_t, 256> a{};
    a.fill(-1);
    return a;
  }();
  bool whole_word_lookup_ = false;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, BytesHash, std::equal_to<>> cache_;
};

}  // namespace apr::text
