/// @file metrics.hpp
/// @brief Metrics: request counters by route and status, latency histograms, generation speed
/// and queue depth, rendered in Prometheus' text exposition format.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace apr::serve {

/// Thread-safe server metrics.
class Metrics {
 public:
  /// Upper bounds (seconds) of the latency histogram buckets (+Inf is implicit).
  static constexpr std::array<double, 10> kLatencyBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0};

  /// Records one finished request on `route` with HTTP `status`, taking `seconds`.
  void record_request(const std::string& route, int status, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[{route, status}];
    Histogram& histogram = latency_[route];
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      if (seconds <= kLatencyBuckets[i]) ++histogram.buckets[i];
    }
    ++histogram.count;
    histogram.sum += seconds;
  }

  /// Records `tokens` generated in `seconds` of decoding.
  void record_generation(size_t prompt_tokens, size_t tokens, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    prompt_tokens_ += prompt_tokens;
    generated_tokens_ += tokens;
    generation_seconds_ += seconds;
    if (seconds > 0) last_tokens_per_second_ = static_cast<double>(tokens) / seconds;
  }

  /// Records a generation or transcription cancelled for `reason` ("disconnect": the client left; "timeout": the request time limit).
  void record_cancelled(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++cancelled_[reason];
  }

  /// Generations and transcriptions cancelled for `reason` so far.
  size_t cancelled_count(const std::string& reason) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cancelled_.find(reason);
    return it == cancelled_.end() ? 0 : it->second;
  }

  /// Requests waiting for a model worker (set by the scheduler).
  std::atomic<size_t> queue_depth{0};
  /// Requests being processed by a worker.
  std::atomic<size_t> active{0};

  /// Requests recorded on `route` with `status` so far.
  size_t request_count(const std::string& route, int status) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = requests_.find({route, status});
    return it == requests_.end() ? 0 : it->second;
  }

  /// Everything in Prometheus text format (version 0.0.4).
  std::string prometheus() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    out += "# HELP apr_requests_total HTTP requests by route and status.\n# TYPE apr_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
      out += fmt::format("apr_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, count);
    }
    out += "# HELP apr_request_duration_seconds Request latency.\n# TYPE apr_request_duration_seconds histogram\n";
    for (const auto& [route, histogram] : latency_) {
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        out += fmt::format("apr_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", route, kLatencyBuckets[i], histogram.buckets[i]);
      }
      out += fmt::format("apr_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n", route, histogram.count);
      out += fmt::format("apr_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route, histogram.sum);
      out += fmt::format("apr_request_duration_seconds_count{{route=\"{}\"}} {}\n", route, histogram.count);
    }
    out += fmt::format("# HELP apr_prompt_tokens_total Prompt tokens processed.\n# TYPE apr_prompt_tokens_total counter\napr_prompt_tokens_total {}\n", prompt_tokens_);
    out += fmt::format("# HELP apr_generated_tokens_total Tokens generated.\n# TYPE apr_generated_tokens_total counter\napr_generated_tokens_total {}\n", generated_tokens_);
    out += fmt::format("# HELP apr_generation_seconds_total Time spent decoding.\n# TYPE apr_generation_seconds_total counter\napr_generation_seconds_total {}\n", generation_seconds_);
    out += "# HELP apr_cancelled_requests_total Generations and transcriptions cancelled: the client left, or the request time limit.\n"
           "# TYPE apr_cancelled_requests_total counter\n";
    for (const char* reason : {"disconnect", "timeout"}) {
      const auto it = cancelled_.find(reason);
      out += fmt::format("apr_cancelled_requests_total{{reason=\"{}\"}} {}\n", reason, it == cancelled_.end() ? 0 : it->second);
    }
    out += fmt::format("# HELP apr_tokens_per_second Decode speed of the last request.\n# TYPE apr_tokens_per_second gauge\napr_tokens_per_second {}\n", last_tokens_per_second_);
    out += fmt::format("# HELP apr_queue_depth Requests waiting for a model worker.\n# TYPE apr_queue_depth gauge\napr_queue_depth {}\n", queue_depth.load());
    out += fmt::format("# HELP apr_active_requests Requests being processed.\n# TYPE apr_active_requests gauge\napr_active_requests {}\n", active.load());
    return out;
  }

 private:
  struct Histogram {
    std::array<size_t, kLatencyBuckets.size()> buckets{};
    size_t count = 0;
    double sum = 0.0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, size_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, size_t> cancelled_;
  size_t prompt_tokens_ = 0;
  size_t generated_tokens_ = 0;
  double generation_seconds_ = 0.0;
  double last_tokens_per_second_ = 0.0;
};

}  // namespace apr::serve
