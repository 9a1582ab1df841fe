// bench/apr_io: opening and reading model files at Qwen2-0.5B size (F16, ~1 GB): time from open
// to the first tensor usable (mmap + every structural check) for APR and for SafeTensors of the
// same weights, the full-file checksum, and lz4 / zstd decompression throughput of weight data.
// Prints one JSON object. usage: bench_apr_io [SCRATCH_DIR] (default /tmp/apr_io; ~2 GB written)
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/half.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/compression.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/format/safetensors_writer.hpp"
#include "bench_support.hpp"
#include "qwen2_05b.hpp"

using namespace apr;

namespace {

/// Normal-ish F16 weights (sum of four uniforms, std 0.02) from a xorshift stream.
std::vector<uint16_t> random_weights(size_t n, uint64_t seed) {
  std::vector<uint16_t> out(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& h : out) {
    float sum = 0.0f;
    for (int k = 0; k < 4; ++k) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      sum += static_cast<float>(s >> 40) / static_cast<float>(1 << 24) - 0.5f;
    }
    h = fp32_to_fp16(sum * 0.0346f);  // 4 uniforms: std 0.577, scaled to 0.02
  }
  return out;
}

/// The tensors of Qwen2-0.5B (names and shapes as Hugging Face stores them) as F16.
std::vector<std::pair<std::string, Shape>> qwen2_05b_tensors() {
  const auto c = bench::qwen2_05b();
  const uint64_t d = c.hidden_size, f = c.intermediate_size, kv = c.num_key_value_heads * c.head_dim;
  std::vector<std::pair<std::string, Shape>> out = {{"model.embed_tokens.weight", Shape{c.vocab_size, d}}, {"model.norm.weight", Shape{d}}};
  for (uint32_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{
             {"self_attn.q_proj.weight", Shape{d, d}}, {"self_attn.q_proj.bias", Shape{d}}, {"self_attn.k_proj.weight", Shape{kv, d}},
             {"self_attn.k_proj.bias", Shape{kv}}, {"self_attn.v_proj.weight", Shape{kv, d}}, {"self_attn.v_proj.bias", Shape{kv}},
             {"self_attn.o_proj.weight", Shape{d, d}}, {"mlp.gate_proj.weight", Shape{f, d}}, {"mlp.up_proj.weight", Shape{f, d}},
             {"mlp.down_proj.weight", Shape{d, f}}, {"input_layernorm.weight", Shape{d}}, {"post_attention_layernorm.weight", Shape{d}}}) {
      out.emplace_back(p + name, shape);
    }
  }
  return out;
}

/// Sums the first 4 KiB of a tensor: proof that its bytes are mapped and usable.
uint64_t touch(const TensorView& t) {
  uint64_t sum = 0;
  for (size_t i = 0; i < std::min<size_t>(4096, t.bytes.size()); ++i) sum += static_cast<uint8_t>(t.bytes[i]);
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path dir = argc > 1 ? argv[1] : "/tmp/apr_io";
  fs::create_directories(dir);
  const std::string apr_path = (dir / "qwen2-0.5b-f16.apr").string(), st_path = (dir / "qwen2-0.5b-f16.safetensors").string();

  // one shared block of random weights, views of it for every tensor (the writers stream them)
  const auto specs = qwen2_05b_tensors();
  std::vector<uint16_t> block = random_weights(size_t{64} << 20, 42);
  std::vector<format::AprWriteTensor> tensors;
  uint64_t total = 0;
  for (const auto& [name, shape] : specs) {
    const uint64_t size = shape.numel() * 2;
    total += size;
    tensors.push_back({name, DType::f16, shape, size, std::nullopt, [&block, size](format::ByteSink& sink) -> Result<void> {
                         const auto bytes = std::as_bytes(std::span(block));
                         for (uint64_t done = 0; done < size;) {
                           const uint64_t n = std::min<uint64_t>(size - done, bytes.size());
                           if (auto status = sink.write(bytes.first(n)); !status) return status;
                           done += n;
                         }
                         return ok();
                       }});
  }
  const auto write_start = std::chrono::steady_clock::now();
  if (auto status = format::write_apr(apr_path, format::apr_metadata_text({{"model_type", "qwen2"}, {"name", "bench"}}), tensors); !status) {
    fmt::print(stderr, "{}\n", status.error().message);
    return 1;
  }
  const double apr_write = std::chrono::duration<double>(std::chrono::steady_clock::now() - write_start).count();
  if (auto status = format::write_safetensors(st_path, tensors, {{"format", "pt"}}); !status) {
    fmt::print(stderr, "{}\n", status.error().message);
    return 1;
  }

  uint64_t sink = 0;
  const double apr_open = bench::median_seconds(
      [&] {
        auto file = format::AprFile::open(apr_path);
        if (file) sink += touch(*(*file)->find("model.embed_tokens.weight"));
      },
      7);
  const double st_open = bench::median_seconds(
      [&] {
        auto file = format::SafeTensorsFile::open(st_path);
        if (file) sink += touch(*(*file)->find("model.embed_tokens.weight"));
      },
      7);
  auto apr_file = format::AprFile::open(apr_path);
  if (!apr_file) {
    fmt::print(stderr, "{}\n", apr_file.error().message);
    return 1;
  }
  const double checksum = bench::median_seconds([&] { sink += (*apr_file)->verify_checksum() ? 1 : 0; }, 5);

  // decompression of 64 MiB of the F16 weight bytes (output bytes per second)
  const auto plain = std::as_bytes(std::span(block));
  nlohmann::json codecs = nlohmann::json::object();
  for (const auto& [codec, level] : {std::pair{format::Codec::lz4, 0}, std::pair{format::Codec::zstd, 3}}) {
    auto packed = format::compress(codec, level, plain);
    if (!packed) {
      fmt::print(stderr, "{}\n", packed.error().message);
      return 1;
    }
    std::vector<std::byte> out(plain.size());
    const double seconds = bench::median_seconds([&] { sink += format::decompress(codec, *packed, out) ? 1 : 0; }, 5);
    codecs[std::string(format::codec_name(codec))] = {{"level", level}, {"ratio", static_cast<double>(plain.size()) / static_cast<double>(packed->size())},
                                                      {"decompress_gb_per_s", static_cast<double>(plain.size()) / seconds / 1e9}};
  }
  const double gb = static_cast<double>((*apr_file)->bytes().size()) / 1e9;
  const nlohmann::json out = {
      {"benchmark", "apr_io"}, {"model", "Qwen2-0.5B dims, F16"}, {"tensors", specs.size()}, {"file_gb", gb}, {"page_cache", "warm"},
      {"apr_write_s", apr_write}, {"apr_open_first_tensor_ms", apr_open * 1e3}, {"safetensors_open_first_tensor_ms", st_open * 1e3},
      {"open_ratio_safetensors_over_apr", st_open / apr_open}, {"full_checksum_ms", checksum * 1e3},
      {"full_checksum_gb_per_s", gb / checksum}, {"decompression", codecs}, {"sink", sink % 7}};
  fmt::print("{}\n", out.dump(1));
  fs::remove(apr_path);
  fs::remove(st_path);
  return 0;
}
