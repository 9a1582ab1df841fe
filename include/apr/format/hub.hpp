/// @file hub.hpp
/// @brief resolve_hub_model(): `hf://org/name[@revision]` as a model folder in the local Hugging
/// Face cache (the layout huggingface_hub shares: models--org--name/{refs,snapshots,blobs}),
/// downloading what is missing with libcurl: resumed with Range, SHA-256 (libsodium) checked
/// against the LFS oid before a blob enters the cache. Optional part: link apr::hub.
#pragma once

#include <curl/curl.h>
#include <sodium.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::format {

/// The hub apr downloads from unless HF_ENDPOINT names another.
inline constexpr std::string_view kHubEndpoint = "https://huggingface.co";
/// The files of a model fetched besides its weights; only config.json must exist.
inline constexpr std::array<std::string_view, 4> kHubModelFiles{"config.json", "generation_config.json", "tokenizer.json",
                                                                "tokenizer_config.json"};
/// Most attempts at one file; each attempt after the first resumes where the last one stopped.
inline constexpr int kHubMaxAttempts = 5;

/// A model repository on the hub, written `hf://org/name[@revision]`.
struct HubRepo {
  std::string org;                ///< owner (user or organisation)
  std::string name;               ///< repository name
  std::string revision = "main";  ///< branch, tag or commit hash

  /// Parses `hf://org/name[@revision]` (names of letters, digits, '.', '_', '-').
  static Result<HubRepo> parse(std::string_view uri) {
    auto fail = [&] { return make_error(ErrorCode::invalid_argument, "{}: expected hf://org/name[@revision]", uri); };
    if (!uri.starts_with("hf://")) return fail();
    std::string_view rest = uri.substr(5);
    HubRepo repo;
    if (const size_t at = rest.find('@'); at != std::string_view::npos) {
      repo.revision = std::string(rest.substr(at + 1));
      rest = rest.substr(0, at);
    }
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return fail();
    repo.org = std::string(rest.substr(0, slash));
    repo.name = std::string(rest.substr(slash + 1));
    auto valid_name = [](std::string_view text) {
      if (text.empty() || text == "." || text == ".." || text.find("--") != std::string_view::npos) return false;
      for (char c : text) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
      }
      return true;
    };
    if (!valid_name(repo.org) || !valid_name(repo.name)) return fail();
    // a revision names a file under refs/: branch names may hold '/', never an empty or '..' part
    if (repo.revision.empty() || repo.revision.starts_with('/') || repo.revision.ends_with('/')) return fail();
    for (const auto& part : std::filesystem::path(repo.revision)) {
      if (part == ".." || part == "." || part.empty()) return fail();
    }
    return repo;
  }

  /// The reference as written, without "@main".
  [[nodiscard]] std::string uri() const { return fmt::format("hf://{}/{}{}", org, name, revision == "main" ? "" : "@" + revision); }
  /// The repository's folder in the cache.
  [[nodiscard]] std::string cache_folder_name() const { return fmt::format("models--{}--{}", org, name); }
};

/// Where the hub is, who asks, and where the cache lives.
struct HubOptions {
  std::string endpoint = std::string(kHubEndpoint);  ///< base URL of the hub
  std::string token;                                  ///< sent as "Authorization: Bearer"; empty: anonymous
  std::filesystem::path cache_dir;                    ///< the hub cache (holds models--org--name folders)
  bool progress = false;                              ///< draw a progress bar on stderr

  /// HF_ENDPOINT, HF_TOKEN, and HF_HUB_CACHE, else $HF_HOME/hub, else
  /// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (as huggingface_hub
  /// resolves them); the progress bar only when stderr is a terminal.
  static HubOptions from_environment() {
    auto env = [](const char* name) {
      const char* value = std::getenv(name);
      return value == nullptr ? std::string() : std::string(value);
    };
    HubOptions options;
    if (!env("HF_ENDPOINT").empty()) options.endpoint = env("HF_ENDPOINT");
    options.token = env("HF_TOKEN");
    if (!env("HF_HUB_CACHE").empty()) options.cache_dir = env("HF_HUB_CACHE");
    else if (!env("HF_HOME").empty()) options.cache_dir = std::filesystem::path(env("HF_HOME")) / "hub";
    else if (!env("XDG_CACHE_HOME").empty()) options.cache_dir = std::filesystem::path(env("XDG_CACHE_HOME")) / "huggingface" / "hub";
    else options.cache_dir = std::filesystem::path(env("HOME")) / ".cache" / "huggingface" / "hub";
    options.progress = ::isatty(STDERR_FILENO) == 1;
    return options;
  }
};

/// True for `hf://` references.
constexpr bool is_hub_uri(std::string_view path) { return path.starts_with("hf://"); }

/// Lower-case hex of `bytes`.
inline std::string hex_string(std::span<const unsigned char> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

/// SHA-256 of the file at `path` in lower-case hex.
inline Result<std::string> sha256_file(const std::filesystem::path& path) {
  if (sodium_init() < 0) return make_error(ErrorCode::crypto, "{}: libsodium failed to initialise", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, "{}: cannot open", path.string());
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::vector<char> buffer(size_t{1} << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(buffer.data()), static_cast<unsigned long long>(in.gcount()));
  }
  if (in.bad()) return make_error(ErrorCode::io, "{}: read failed", path.string());
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256_final(&state, digest.data());
  return hex_string(digest);
}

namespace detail {

/// `text` percent-encoded for a URL path (RFC 3986 unreserved characters kept; '/' kept when asked).
inline std::string url_escape(std::string_view text, bool keep_slash) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

/// True for a 40-digit lower-case hex string (a git commit or blob id).
inline bool is_commit_hash(std::string_view text) {
  return text.size() == 40 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

/// True for a 64-digit lower-case hex string (an LFS oid: the SHA-256 of the file).
inline bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

/// The status and headers (names in lower case) of the last response of a request.
struct HttpResponse {
  long status = 0;                             ///< HTTP status code
  std::map<std::string, std::string> headers;  ///< header name → value

  /// The header's value, or empty.
  [[nodiscard]] std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// What the hub says about one file of a revision.
struct HubFileInfo {
  std::string commit;            ///< the commit the revision resolves to
  std::string etag;              ///< LFS oid (SHA-256) or git blob id: the blob's name in the cache
  std::optional<uint64_t> size;  ///< bytes, when the hub states it
};

/// One resolution of a repository: looks in the cache, downloads what is missing.
class HubSession {
 public:
  /// A session for `repo` with `options`.
  HubSession(HubRepo repo, HubOptions options) : repo_(std::move(repo)), options_(std::move(options)) {
    while (options_.endpoint.ends_with('/')) options_.endpoint.pop_back();
  }

  /// The snapshot folder holding the model's files.
  Result<std::filesystem::path> resolve() {
    if (auto commit = cached_commit(); commit && snapshot_complete(*commit)) return repo_dir() / "snapshots" / *commit;
    static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (global != CURLE_OK) return make_error(ErrorCode::network, "{}: libcurl failed to initialise: {}", uri(), curl_easy_strerror(global));
    curl_.reset(curl_easy_init());
    if (!curl_) return make_error(ErrorCode::network, "{}: libcurl failed to create a handle", uri());
    for (std::string_view file : kHubModelFiles) {
      auto fetched = fetch(std::string(file), file == "config.json");
      if (!fetched) return std::move(fetched).error();
    }
    auto single = fetch("model.safetensors", false);
    if (!single) return std::move(single).error();
    if (!*single) {
      auto index = fetch("model.safetensors.index.json", false);
      if (!index) return std::move(index).error();
      if (!*index) return make_error(ErrorCode::not_found, "{}: the repository has neither model.safetensors nor model.safetensors.index.json", uri());
      auto shards = shard_names(snapshot_dir() / "model.safetensors.index.json");
      if (!shards) return std::move(shards).error();
      for (const auto& shard : *shards) {
        auto fetched = fetch(shard, true);
        if (!fetched) return std::move(fetched).error();
      }
    }
    if (repo_.revision != commit_) {
      auto status = write_ref();
      if (!status) return std::move(status).error();
    }
    return snapshot_dir();
  }

 private:
  struct CurlDeleter {
    void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
  };

  [[nodiscard]] std::string uri() const { return repo_.uri(); }
  [[nodiscard]] std::filesystem::path repo_dir() const { return options_.cache_dir / repo_.cache_folder_name(); }
  [[nodiscard]] std::filesystem::path snapshot_dir() const { return repo_dir() / "snapshots" / commit_; }

  /// The commit the revision names: itself when it is a hash, else the cache's refs/<revision>.
  [[nodiscard]] std::optional<std::string> cached_commit() const {
    if (is_commit_hash(repo_.revision)) return repo_.revision;
    std::ifstream in(repo_dir() / "refs" / repo_.revision);
    std::string commit;
    if (!(in >> commit) || !is_commit_hash(commit)) return std::nullopt;
    return commit;
  }

  /// True when the cached snapshot `commit` has config.json, each optional file or a record of its
  /// absence (.no_exist, as huggingface_hub keeps it), and the weights with every shard.
  [[nodiscard]] bool snapshot_complete(const std::string& commit) const {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path snapshot = repo_dir() / "snapshots" / commit, absent = repo_dir() / ".no_exist" / commit;
    for (std::string_view file : kHubModelFiles) {
      if (!fs::exists(snapshot / file, ec) && (file == "config.json" || !fs::exists(absent / file, ec))) return false;
    }
    if (fs::exists(snapshot / "model.safetensors", ec)) return true;
    auto shards = shard_names(snapshot / "model.safetensors.index.json");
    if (!shards) return false;
    for (const auto& shard : *shards) {
      if (!fs::exists(snapshot / shard, ec)) return false;
    }
    return true;
  }

  /// The distinct shard files of a model.safetensors.index.json (relative paths inside the repository).
  [[nodiscard]] Result<std::vector<std::string>> shard_names(const std::filesystem::path& index_path) const {
    std::ifstream in(index_path);
    if (!in) return make_error(ErrorCode::not_found, "{}: cannot open", index_path.string());
    const auto index = nlohmann::json::parse(in, nullptr, false);
    if (index.is_discarded() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      return make_error(ErrorCode::format, "{}: {}: expected a JSON object with a 'weight_map' object", uri(), index_path.string());
    }
    std::set<std::string> names;
    for (const auto& [tensor, file] : index["weight_map"].items()) {
      const bool safe = file.is_string() && !file.get<std::string>().empty() && std::filesystem::path(file.get<std::string>()).is_relative() &&
                        file.get<std::string>().find("..") == std::string::npos;
      if (!safe) return make_error(ErrorCode::format, "{}: model.safetensors.index.json: tensor '{}' maps to {} (expected a file name in the repository)", uri(), tensor, file.dump());
      names.insert(file.get<std::string>());
    }
    return std::vector<std::string>(names.begin(), names.end());
  }

  /// The resolve URL of `file` at the known commit (or the requested revision before it is known).
  [[nodiscard]] std::string file_url(const std::string& file) const {
    return fmt::format("{}/{}/{}/resolve/{}/{}", options_.endpoint, repo_.org, repo_.name, url_escape(commit_.empty() ? repo_.revision : commit_, false),
                       url_escape(file, true));
  }

  /// Sets what every request shares: URL, headers, timeouts, protocols.
  void prepare(const std::string& url, curl_slist* headers) {
    CURL* curl = curl_.get();
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "apr");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a transfer stalled for a minute fails (and resumes)
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &HubSession::on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response_);
    response_ = {};
  }

  /// The request headers: the bearer token when there is one.
  [[nodiscard]] std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> request_headers() const {
    curl_slist* list = nullptr;
    if (!options_.token.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + options_.token).c_str());
    return {list, &curl_slist_free_all};
  }

  static size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto& response = *static_cast<HttpResponse*>(user);
    const std::string_view line(data, size * count);
    if (line.starts_with("HTTP/")) response.headers.clear();  // a new response (after a redirect)
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string name(line.substr(0, colon));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
      response.headers[name] = std::string(value);
    }
    return size * count;
  }

  /// The error of a failed response for `file`.
  [[nodiscard]] Error http_error(const std::string& file) const {
    const std::string code = response_.header("x-error-code");
    switch (response_.status) {
      case 401:
        if (options_.token.empty()) {
          return make_error(ErrorCode::network, "{}: authentication required (401): the repository is private, gated or does not exist; set HF_TOKEN", uri());
        }
        return make_error(ErrorCode::network, "{}: HF_TOKEN was refused (401): check the token, and that the repository exists", uri());
      case 403:
        return make_error(ErrorCode::network, "{}: access denied (403): the token has no access to this repository (gated models need their terms accepted on the hub)", uri());
      case 404:
        if (code == "RevisionNotFound") return make_error(ErrorCode::not_found, "{}: revision '{}' not found (404)", uri(), repo_.revision);
        if (code == "EntryNotFound") return make_error(ErrorCode::not_found, "{}: {} not found in the repository (404)", uri(), file);
        return make_error(ErrorCode::not_found, "{}: repository not found (404)", uri());
      default:
        return make_error(ErrorCode::network, "{}: {}: HTTP {}", uri(), file, response_.status);
    }
  }

  /// Asks the hub about `file` (HEAD, redirects to other hosts not followed: their headers are the
  /// CDN's); nothing when an optional file does not exist in the repository.
  Result<std::optional<HubFileInfo>> head(const std::string& file, bool required) {
    auto headers = request_headers();
    std::string url = file_url(file);
    for (int hops = 0;; ++hops) {
      prepare(url, headers.get());
      curl_easy_setopt(curl_.get(), CURLOPT_NOBODY, 1L);
      const CURLcode result = curl_easy_perform(curl_.get());
      if (result != CURLE_OK) return make_error(ErrorCode::network, "{}: {}: {} (network error)", uri(), url, curl_easy_strerror(result));
      curl_easy_getinfo(curl_.get(), CURLINFO_RESPONSE_CODE, &response_.status);
      // a renamed repository answers with a redirect inside the hub: follow those only
      const std::string location = response_.header("location");
      if (response_.status >= 300 && response_.status < 400 && location.starts_with('/') && hops < kHubMaxAttempts) {
        url = options_.endpoint + location;
        continue;
      }
      break;
    }
    if (response_.status == 404 && !required && response_.header("x-error-code") != "RepoNotFound" &&
        response_.header("x-error-code") != "RevisionNotFound") {
      auto status = record_absent(file);
      if (!status) return std::move(status).error();
      return std::optional<HubFileInfo>();
    }
    if (response_.status < 200 || response_.status >= 400) return http_error(file);
    HubFileInfo info;
    info.commit = response_.header("x-repo-commit");
    if (info.commit.empty() && is_commit_hash(repo_.revision)) info.commit = repo_.revision;
    if (!is_commit_hash(info.commit)) {
      return make_error(ErrorCode::format, "{}: {}: no X-Repo-Commit header with a commit hash (is {} a Hugging Face hub?)", uri(), file, options_.endpoint);
    }
    info.etag = response_.header("x-linked-etag");
    if (info.etag.empty()) info.etag = response_.header("etag");
    if (info.etag.starts_with("W/")) info.etag.erase(0, 2);
    if (info.etag.size() >= 2 && info.etag.front() == '"' && info.etag.back() == '"') info.etag = info.etag.substr(1, info.etag.size() - 2);
    if (info.etag.empty() || info.etag.find_first_of("/\\.") != std::string::npos) {
      return make_error(ErrorCode::format, "{}: {}: no usable ETag or X-Linked-Etag header (got '{}')", uri(), file, info.etag);
    }
    std::string size = response_.header("x-linked-size");
    if (size.empty() && response_.status < 300) size = response_.header("content-length");
    if (!size.empty() && size.find_first_not_of("0123456789") == std::string::npos && size.size() < 20) info.size = std::stoull(size);
    return std::optional<HubFileInfo>(std::move(info));
  }

  /// Notes in .no_exist/<commit>/ that an optional file is absent, so the cache alone answers next time.
  Result<void> record_absent(const std::string& file) {
    const std::string commit = response_.header("x-repo-commit");
    if (!is_commit_hash(commit)) return ok();
    const auto marker = repo_dir() / ".no_exist" / commit / file;
    std::error_code ec;
    std::filesystem::create_directories(marker.parent_path(), ec);
    if (ec || !std::ofstream(marker)) return make_error(ErrorCode::io, "{}: cannot create", marker.string());
    return ok();
  }

  /// Where a GET writes its body: the partial blob (appended to after a 206, restarted after a
  /// 200), or an error body that is kept out of the file.
  struct Download {
    HubSession* session = nullptr;
    std::FILE* file = nullptr;
    uint64_t offset = 0;    // bytes already on disk when the request started
    uint64_t received = 0;  // body bytes written by this request
    bool decided = false, writing = false, drawn_whole = false;
    std::string label;
    std::chrono::steady_clock::time_point last_draw{};
  };

  static size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto& download = *static_cast<Download*>(user);
    if (!download.decided) {
      download.decided = true;
      long status = 0;
      curl_easy_getinfo(download.session->curl_.get(), CURLINFO_RESPONSE_CODE, &status);
      download.writing = status == 200 || status == 206;
      if (status == 200 && download.offset > 0) {  // the server ignored the Range: start over
        if (std::fflush(download.file) != 0 || ::ftruncate(::fileno(download.file), 0) != 0) return 0;
        std::rewind(download.file);
        download.offset = 0;
      }
    }
    if (!download.writing) return size * count;
    const size_t written = std::fwrite(data, size, count, download.file);
    download.received += written * size;
    return written * size;
  }

  static int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
    auto& download = *static_cast<Download*>(user);
    const auto time = std::chrono::steady_clock::now();
    const bool whole = now == total;
    if (total <= 0 || download.drawn_whole || (time - download.last_draw < std::chrono::milliseconds(200) && !whole)) return 0;
    download.last_draw = time;
    download.drawn_whole = whole;
    const double done = static_cast<double>(download.offset + static_cast<uint64_t>(now)) / 1e6;
    const double all = static_cast<double>(download.offset + static_cast<uint64_t>(total)) / 1e6;
    const int percent = static_cast<int>(100.0 * done / all);
    const int filled = percent / 4;
    fmt::print(stderr, "\r{} [{:=<{}}{: <{}}] {:3}% {:.1f}/{:.1f} MB", download.label, "", filled, "", 25 - filled, percent, done, all);
    return 0;
  }

  /// Downloads `file` into `blob`'s ".incomplete" sibling, resuming after interruptions, checks its
  /// size and SHA-256 (when the ETag is an LFS oid), then renames it to `blob`.
  Result<void> download(const std::string& file, const HubFileInfo& info, const std::filesystem::path& blob) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(blob.parent_path(), ec);
    if (ec) return make_error(ErrorCode::io, "{}: cannot create: {}", blob.parent_path().string(), ec.message());
    const fs::path partial = blob.string() + ".incomplete";
    const std::string url = file_url(file);
    auto headers = request_headers();
    bool complete = false;
    for (int attempt = 0; attempt < kHubMaxAttempts && !complete; ++attempt) {
      const uint64_t on_disk = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
      if (info.size && on_disk >= *info.size) {
        if (on_disk == *info.size) break;
        fs::remove(partial, ec);
        continue;
      }
      std::unique_ptr<std::FILE, decltype(&std::fclose)> out(std::fopen(partial.c_str(), "ab"), &std::fclose);
      if (!out) return make_error(ErrorCode::io, "{}: cannot open for writing", partial.string());
      Download state{this, out.get(), on_disk, 0, false, false, false, fmt::format("{} {}", uri(), file), {}};
      prepare(url, headers.get());
      const std::string range = fmt::format("{}-", on_disk);
      if (on_disk > 0) curl_easy_setopt(curl_.get(), CURLOPT_RANGE, range.c_str());
      curl_easy_setopt(curl_.get(), CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(curl_.get(), CURLOPT_WRITEFUNCTION, &HubSession::on_body);
      curl_easy_setopt(curl_.get(), CURLOPT_WRITEDATA, &state);
      if (options_.progress) {
        curl_easy_setopt(curl_.get(), CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl_.get(), CURLOPT_XFERINFOFUNCTION, &HubSession::on_progress);
        curl_easy_setopt(curl_.get(), CURLOPT_XFERINFODATA, &state);
      }
      const CURLcode result = curl_easy_perform(curl_.get());
      curl_easy_getinfo(curl_.get(), CURLINFO_RESPONSE_CODE, &response_.status);
      if (std::fclose(out.release()) != 0) return make_error(ErrorCode::io, "{}: write failed", partial.string());
      if (options_.progress) fmt::print(stderr, "\n");
      if (result == CURLE_OK && (response_.status == 200 || response_.status == 206)) {
        complete = true;
      } else if (result == CURLE_OK && response_.status == 416) {  // the partial file does not fit the blob: start over
        fs::remove(partial, ec);
      } else if (result == CURLE_OK) {
        return http_error(file);
      } else if (state.received == 0) {
        return make_error(ErrorCode::network, "{}: {}: {} (network error)", uri(), url, curl_easy_strerror(result));
      }
      // an interrupted transfer that made progress: the next attempt resumes from what is on disk
    }
    if (!complete && !(info.size && fs::exists(partial, ec) && fs::file_size(partial, ec) == *info.size)) {
      return make_error(ErrorCode::network, "{}: {}: interrupted {} times; run again to resume", uri(), file, kHubMaxAttempts);
    }
    const uint64_t size = fs::file_size(partial, ec);
    if (info.size && size != *info.size) {
      fs::remove(partial, ec);
      return make_error(ErrorCode::checksum, "{}: {}: received {} bytes, the hub announced {}; the download was discarded", uri(), file, size, *info.size);
    }
    if (is_sha256_hex(info.etag)) {
      auto digest = sha256_file(partial);
      if (!digest) return std::move(digest).error();
      if (*digest != info.etag) {
        fs::remove(partial, ec);
        return make_error(ErrorCode::checksum, "{}: {}: SHA-256 {} does not match the hub's LFS oid {}; the download was discarded", uri(), file,
                          *digest, info.etag);
      }
    }
    fs::rename(partial, blob, ec);
    if (ec) return make_error(ErrorCode::io, "{}: cannot rename to {}: {}", partial.string(), blob.string(), ec.message());
    return ok();
  }

  /// Puts `file` of the revision into the snapshot (downloading its blob unless the cache has it);
  /// false when an optional file does not exist in the repository.
  Result<bool> fetch(const std::string& file, bool required) {
    namespace fs = std::filesystem;
    auto info = head(file, required);
    if (!info) return std::move(info).error();
    if (!*info) return false;
    commit_ = (*info)->commit;
    const fs::path blob = repo_dir() / "blobs" / (*info)->etag;
    std::error_code ec;
    if (!fs::exists(blob, ec)) {
      auto status = download(file, **info, blob);
      if (!status) return std::move(status).error();
    }
    const fs::path link = snapshot_dir() / file;
    fs::create_directories(link.parent_path(), ec);
    fs::remove(link, ec);
    fs::create_symlink(fs::relative(blob, link.parent_path()), link, ec);
    if (ec) return make_error(ErrorCode::io, "{}: cannot link to {}: {}", link.string(), blob.string(), ec.message());
    return true;
  }

  /// Records refs/<revision> → commit, written whole (temporary file, then rename).
  Result<void> write_ref() const {
    const auto ref = repo_dir() / "refs" / repo_.revision;
    std::error_code ec;
    std::filesystem::create_directories(ref.parent_path(), ec);
    const auto temporary = ref.string() + ".tmp";
    if (!(std::ofstream(temporary) << commit_)) return make_error(ErrorCode::io, "{}: cannot write", temporary);
    std::filesystem::rename(temporary, ref, ec);
    if (ec) return make_error(ErrorCode::io, "{}: cannot write: {}", ref.string(), ec.message());
    return ok();
  }

  HubRepo repo_;
  HubOptions options_;
  std::unique_ptr<CURL, CurlDeleter> curl_;
  HttpResponse response_;
  std::string commit_;
};

}  // namespace detail

/// The local folder of the model `uri` (`hf://org/name[@revision]`): the cached snapshot when it
/// is complete (no network), else downloaded into the cache first: config.json,
/// generation_config.json, tokenizer.json, tokenizer_config.json (those that exist), and
/// model.safetensors or model.safetensors.index.json with its shards.
inline Result<std::filesystem::path> resolve_hub_model(std::string_view uri, const HubOptions& options = HubOptions::from_environment()) {
  auto repo = HubRepo::parse(uri);
  if (!repo) return std::move(repo).error();
  return detail::HubSession(std::move(repo).value(), options).resolve();
}

}  // namespace apr::format
