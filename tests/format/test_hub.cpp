// The Hugging Face hub against a local mock (cpp-httplib on 127.0.0.1, ephemeral port) that
// serves ../shared/fixtures/qwen2/qwen2-micro with the hub's URL scheme and headers
// (X-Repo-Commit, ETag, X-Linked-Etag = SHA-256 for LFS files, X-Error-Code on 404): a full
// download lands in huggingface_hub's cache layout and a second resolution never contacts the
// server; a corrupted body is rejected and leaves nothing in the cache; interrupted downloads
// resume with Range; 401/404 and network failures give messages naming the repository.
// The real internet is never contacted.
#include <catch2/catch.hpp>

#include <httplib.h>
#include <sodium.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apr/format/hub.hpp"
#include "apr/models/load.hpp"
#include "test_support.hpp"

using namespace apr;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string sha256_hex(const std::string& bytes) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return format::hex_string(digest);
}

/// A hub with repositories org/micro (qwen2-micro, no generation_config.json), org/sharded (the
/// same weights behind an index), org/private (needs "Bearer good") and org/gated (403 even then).
class MockHub {
 public:
  MockHub() {
    const std::string micro = test::fixture("qwen2/qwen2-micro/");
    for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
      repos_["org/micro"].files[name] = read_file(micro + name);
    }
    repos_["org/private"] = repos_["org/micro"];
    repos_["org/private"].token = "good";
    repos_["org/gated"] = repos_["org/private"];
    repos_["org/gated"].forbidden = true;
    auto& sharded = repos_["org/sharded"].files;
    sharded["config.json"] = repos_["org/micro"].files["config.json"];
    sharded["model-00001-of-00001.safetensors"] = repos_["org/micro"].files["model.safetensors"];
    nlohmann::json index = {{"metadata", {{"total_size", sharded["model-00001-of-00001.safetensors"].size()}}}, {"weight_map", nlohmann::json::object()}};
    auto weights = format::open_tensor_file(micro + "model.safetensors");
    REQUIRE(weights);
    for (const auto& tensor : (*weights)->tensors()) index["weight_map"][std::string(tensor.name)] = "model-00001-of-00001.safetensors";
    sharded["model.safetensors.index.json"] = index.dump();
    server_.Get(R"(/([^/]+)/([^/]+)/resolve/([^/]+)/(.+))", [this](const httplib::Request& request, httplib::Response& response) {
      serve(request, response);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~MockHub() {
    server_.stop();
    thread_.join();
  }
  MockHub(const MockHub&) = delete;
  MockHub& operator=(const MockHub&) = delete;

  [[nodiscard]] std::string endpoint() const { return fmt::format("http://127.0.0.1:{}", port_); }
  [[nodiscard]] const std::string& file(const std::string& repo, const std::string& name) { return repos_[repo].files[name]; }
  [[nodiscard]] std::vector<std::string> ranges() {
    std::lock_guard lock(mutex_);
    return ranges_;
  }

  std::atomic<int> requests{0};      ///< every request served
  std::atomic<bool> corrupt{false};  ///< LFS bodies with one byte flipped
  std::atomic<bool> cut_once{false}; ///< the next full LFS body stops halfway and the connection closes

 private:
  struct Repo {
    std::map<std::string, std::string> files;
    std::string token;
    bool forbidden = false;  // a gated repository whose terms the token's owner has not accepted
  };

  void serve(const httplib::Request& request, httplib::Response& response) {
    ++requests;
    const std::string repo_id = fmt::format("{}/{}", request.matches[1].str(), request.matches[2].str());
    const std::string revision = request.matches[3], name = request.matches[4];
    const auto repo = repos_.find(repo_id);
    if (repo == repos_.end()) {
      response.status = 404;
      response.set_header("X-Error-Code", "RepoNotFound");
      return;
    }
    if (!repo->second.token.empty() && request.get_header_value("Authorization") != "Bearer " + repo->second.token) {
      response.status = 401;
      return;
    }
    if (repo->second.forbidden) {
      response.status = 403;
      return;
    }
    if (revision != "main" && revision != kCommit) {
      response.status = 404;
      response.set_header("X-Error-Code", "RevisionNotFound");
      return;
    }
    response.set_header("X-Repo-Commit", std::string(kCommit));
    const auto found = repo->second.files.find(name);
    if (found == repo->second.files.end()) {
      response.status = 404;
      response.set_header("X-Error-Code", "EntryNotFound");
      return;
    }
    std::string body = found->second;
    const bool lfs = name.ends_with(".safetensors");
    const std::string sha = sha256_hex(body);
    // git files are named by their blob id (40 hex; a stand-in here), LFS files by their SHA-256
    response.set_header("ETag", fmt::format("\"{}\"", lfs ? sha : sha.substr(0, 40)));
    if (lfs) {
      response.set_header("X-Linked-Etag", fmt::format("\"{}\"", sha));
      response.set_header("X-Linked-Size", std::to_string(body.size()));
      if (corrupt) body[body.size() / 2] ^= 1;
    }
    if (request.method == "GET") {
      std::lock_guard lock(mutex_);
      ranges_.push_back(request.get_header_value("Range"));
    }
    if (lfs && request.method == "GET" && !request.has_header("Range") && cut_once.exchange(false)) {
      const size_t half = body.size() / 2;
      response.set_content_provider(body.size(), "application/octet-stream", [body, half](size_t offset, size_t length, httplib::DataSink& sink) {
        if (offset >= half) return false;  // closes the connection mid-body
        sink.write(body.data() + offset, std::min(length, half - offset));
        return true;
      });
      return;
    }
    response.set_content(body, "application/octet-stream");
  }

  std::map<std::string, Repo> repos_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::vector<std::string> ranges_;
};

/// Options for `hub` with a fresh cache folder `name`.
format::HubOptions fresh_options(const MockHub& hub, const std::string& name, std::string token = {}) {
  const fs::path cache = test::temp_path(name);
  fs::remove_all(cache);
  return {hub.endpoint(), std::move(token), cache, false};
}

/// Every file under `folder` whose name ends with `suffix`.
std::vector<fs::path> files_ending(const fs::path& folder, std::string_view suffix) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(folder, ec)) {
    if (entry.path().string().ends_with(suffix)) out.push_back(entry.path());
  }
  return out;
}

}  // namespace

TEST_CASE("hub: a full download lands in the HF cache layout; the second resolution is a cache hit", "[hub]") {
  MockHub hub;
  const auto options = fresh_options(hub, "hub-full");
  auto folder = format::resolve_hub_model("hf://org/micro", options);
  REQUIRE(folder);
  const fs::path repo = options.cache_dir / "models--org--micro";
  CHECK(*folder == repo / "snapshots" / kCommit);
  CHECK(read_file(repo / "refs" / "main") == kCommit);
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    INFO(name);
    CHECK(fs::is_symlink(*folder / name));
    CHECK(read_file(*folder / name) == hub.file("org/micro", name));
  }
  const std::string sha = sha256_hex(hub.file("org/micro", "model.safetensors"));
  CHECK(fs::canonical(*folder / "model.safetensors") == fs::canonical(repo / "blobs" / sha));
  CHECK(fs::exists(repo / ".no_exist" / kCommit / "generation_config.json"));
  CHECK(files_ending(repo, ".incomplete").empty());
  auto model = models::load_language_model(folder->string());
  REQUIRE(model);
  CHECK(model->model->vocab_size() == 151936);

  const int served = hub.requests;
  for (const char* uri : {"hf://org/micro", "hf://org/micro@0123456789abcdef0123456789abcdef01234567"}) {
    INFO(uri);
    auto again = format::resolve_hub_model(uri, options);
    REQUIRE(again);
    CHECK(*again == *folder);
  }
  CHECK(hub.requests == served);
}

TEST_CASE("hub: a sharded model (index + shards) is fetched and loads", "[hub]") {
  MockHub hub;
  const auto options = fresh_options(hub, "hub-sharded");
  auto folder = format::resolve_hub_model("hf://org/sharded", options);
  REQUIRE(folder);
  CHECK(fs::exists(*folder / "model.safetensors.index.json"));
  CHECK(read_file(*folder / "model-00001-of-00001.safetensors") == hub.file("org/sharded", "model-00001-of-00001.safetensors"));
  for (const char* absent : {"generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}) {
    CHECK(fs::exists(options.cache_dir / "models--org--sharded" / ".no_exist" / kCommit / absent));
  }
  CHECK(models::load_language_model(folder->string()));
  const int served = hub.requests;
  CHECK(format::resolve_hub_model("hf://org/sharded", options));
  CHECK(hub.requests == served);
}

TEST_CASE("hub: a corrupted download is rejected and nothing of it stays in the cache", "[hub]") {
  MockHub hub;
  const auto options = fresh_options(hub, "hub-corrupt");
  hub.corrupt = true;
  auto folder = format::resolve_hub_model("hf://org/micro", options);
  REQUIRE_FALSE(folder);
  CHECK(folder.error().code == ErrorCode::checksum);
  const std::string sha = sha256_hex(hub.file("org/micro", "model.safetensors"));
  CHECK_THAT(folder.error().message, Catch::StartsWith("hf://org/micro: model.safetensors: SHA-256 ") &&
                                         Catch::Contains("does not match the hub's LFS oid " + sha + "; the download was discarded"));
  const fs::path repo = options.cache_dir / "models--org--micro";
  CHECK_FALSE(fs::exists(repo / "blobs" / sha));
  CHECK(files_ending(repo, ".incomplete").empty());
  CHECK_FALSE(fs::exists(repo / "snapshots" / kCommit / "model.safetensors"));
  CHECK_FALSE(fs::exists(repo / "refs" / "main"));

  hub.corrupt = false;
  auto repaired = format::resolve_hub_model("hf://org/micro", options);
  REQUIRE(repaired);
  CHECK(read_file(*repaired / "model.safetensors") == hub.file("org/micro", "model.safetensors"));
}

TEST_CASE("hub: an interrupted download resumes with Range", "[hub]") {
  MockHub hub;
  const std::string& weights = hub.file("org/micro", "model.safetensors");
  const std::string sha = sha256_hex(weights);
  SECTION("the connection closes mid-body once: the next attempt asks for the rest") {
    const auto options = fresh_options(hub, "hub-interrupted");
    hub.cut_once = true;
    auto folder = format::resolve_hub_model("hf://org/micro", options);
    REQUIRE(folder);
    CHECK_FALSE(hub.cut_once);
    CHECK(read_file(*folder / "model.safetensors") == weights);
    const auto ranges = hub.ranges();
    CHECK(std::count(ranges.begin(), ranges.end(), fmt::format("bytes={}-", weights.size() / 2)) == 1);
  }
  SECTION("a partial blob left by an earlier run is continued, not restarted") {
    const auto options = fresh_options(hub, "hub-partial");
    const fs::path blobs = options.cache_dir / "models--org--micro" / "blobs";
    fs::create_directories(blobs);
    std::ofstream(blobs / (sha + ".incomplete"), std::ios::binary) << weights.substr(0, 1000);
    auto folder = format::resolve_hub_model("hf://org/micro", options);
    REQUIRE(folder);
    CHECK(read_file(*folder / "model.safetensors") == weights);
    const auto ranges = hub.ranges();
    CHECK(std::count(ranges.begin(), ranges.end(), "bytes=1000-") == 1);
  }
}

TEST_CASE("hub: 401 without and with a token, 403, 404 for a repository or revision that does not exist", "[hub]") {
  MockHub hub;
  auto anonymous = format::resolve_hub_model("hf://org/private", fresh_options(hub, "hub-401"));
  REQUIRE_FALSE(anonymous);
  CHECK(anonymous.error().message ==
        "hf://org/private: authentication required (401): the repository is private, gated or does not exist; set HF_TOKEN");
  auto refused = format::resolve_hub_model("hf://org/private", fresh_options(hub, "hub-401", "bad"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "hf://org/private: HF_TOKEN was refused (401): check the token, and that the repository exists");
  CHECK(format::resolve_hub_model("hf://org/private", fresh_options(hub, "hub-401", "good")));
  auto gated = format::resolve_hub_model("hf://org/gated", fresh_options(hub, "hub-403", "good"));
  REQUIRE_FALSE(gated);
  CHECK_THAT(gated.error().message, Catch::StartsWith("hf://org/gated: access denied (403)"));

  auto missing = format::resolve_hub_model("hf://x/y", fresh_options(hub, "hub-404"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::not_found);
  CHECK(missing.error().message == "hf://x/y: repository not found (404)");
  auto revision = format::resolve_hub_model("hf://org/micro@v9", fresh_options(hub, "hub-404"));
  REQUIRE_FALSE(revision);
  CHECK(revision.error().message == "hf://org/micro@v9: revision 'v9' not found (404)");
}

TEST_CASE("hub: an unreachable endpoint is a network error naming the URL", "[hub]") {
  format::HubOptions options{"http://127.0.0.1:1", "", test::temp_path("hub-unreachable"), false};
  fs::remove_all(options.cache_dir);
  auto folder = format::resolve_hub_model("hf://org/micro", options);
  REQUIRE_FALSE(folder);
  CHECK(folder.error().code == ErrorCode::network);
  CHECK_THAT(folder.error().message, Catch::StartsWith("hf://org/micro: http://127.0.0.1:1/org/micro/resolve/main/config.json: ") &&
                                         Catch::EndsWith("(network error)"));
}

TEST_CASE("hub: references parse; malformed ones are refused", "[hub]") {
  auto repo = format::HubRepo::parse("hf://Qwen/Qwen2.5-0.5B-Instruct@refs/pr/1");
  REQUIRE(repo);
  CHECK(repo->org == "Qwen");
  CHECK(repo->name == "Qwen2.5-0.5B-Instruct");
  CHECK(repo->revision == "refs/pr/1");
  CHECK(repo->cache_folder_name() == "models--Qwen--Qwen2.5-0.5B-Instruct");
  CHECK(format::HubRepo::parse("hf://a/b")->uri() == "hf://a/b");
  for (const char* bad : {"hf://justname", "hf://a/b/c", "hf://../b", "hf://a/b@", "hf://a/b@../x", "hf://a--b/c", "a/b"}) {
    INFO(bad);
    auto parsed = format::HubRepo::parse(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message == fmt::format("{}: expected hf://org/name[@revision]", bad));
  }
}

TEST_CASE("hub: options from HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE and HF_HOME", "[hub]") {
  ::setenv("HF_ENDPOINT", "http://mirror.invalid", 1);
  ::setenv("HF_TOKEN", "hf_secret", 1);
  ::setenv("HF_HOME", "/tmp/hf-home", 1);
  ::unsetenv("HF_HUB_CACHE");
  auto options = format::HubOptions::from_environment();
  CHECK(options.endpoint == "http://mirror.invalid");
  CHECK(options.token == "hf_secret");
  CHECK(options.cache_dir == fs::path("/tmp/hf-home/hub"));
  ::setenv("HF_HUB_CACHE", "/tmp/hf-cache", 1);
  CHECK(format::HubOptions::from_environment().cache_dir == fs::path("/tmp/hf-cache"));
  for (const char* name : {"HF_ENDPOINT", "HF_TOKEN", "HF_HOME", "HF_HUB_CACHE"}) ::unsetenv(name);
  CHECK(format::HubOptions::from_environment().endpoint == "https://huggingface.co");
}
