/// @file thread_pool.hpp
/// @brief ThreadPool: persistent workers with deterministic, contiguous row splitting.
///
/// Work is split into one contiguous range per thread, and each row is computed whole by one
/// thread with the same code, so results are bit-identical for any thread count. Workers spin
/// briefly between jobs (decode issues hundreds of small jobs per token) and then sleep.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace apr {

/// Threads apr uses by default: $APR_THREADS if set and positive, else the hardware's count.
inline size_t default_thread_count() {
  if (const char* env = std::getenv("APR_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && n > 0 && n <= 1024) return static_cast<size_t>(n);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

/// Row range [begin, end) that thread `index` of `count` owns when `n` rows are split
/// contiguously in multiples of `grain` (the last thread takes the remainder).
struct RowRange {
  size_t begin;  ///< first row
  size_t end;    ///< one past the last row
};

/// Splits n rows into `count` contiguous ranges aligned to `grain`; returns range `index`.
constexpr RowRange split_rows(size_t n, size_t index, size_t count, size_t grain = 1) {
  const size_t units = (n + grain - 1) / grain;
  const size_t begin = units * index / count * grain;
  const size_t end = units * (index + 1) / count * grain;
  return {begin < n ? begin : n, end < n ? end : n};
}

/// A fixed set of worker threads plus the calling thread, running one job at a time.
class ThreadPool {
 public:
  /// A pool of `threads` threads in all (the caller counts as one; 1 means run inline).
  explicit ThreadPool(size_t threads = default_thread_count()) : size_(threads == 0 ? 1 : threads) {
    workers_.reserve(size_ - 1);
    for (size_t i = 1; i < size_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  /// Threads in the pool, the caller included.
  [[nodiscard]] size_t size() const noexcept { return size_; }

  /// Runs `job(thread_index, thread_count)` on every thread and returns when all are done.
  /// Called from inside a job, it runs inline on the calling thread (index 0 of 1).
  template <class Job>
  void run(Job&& job) {
    if (size_ == 1 || inside_job()) {
      job(size_t{0}, size_t{1});
      return;
    }
    std::lock_guard<std::mutex> lock(dispatch_mutex_);
    using JobType = std::remove_reference_t<Job>;
    task_ = [](void* context, size_t index, size_t count) { (*static_cast<JobType*>(context))(index, count); };
    context_ = const_cast<void*>(static_cast<const void*>(&job));
    pending_.store(size_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    inside_job() = true;
    job(size_t{0}, size_);
    inside_job() = false;
    // Spin briefly, then yield: a worker that shares this core (the OS has not spread the
    // threads yet) must get to run its share.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < 4096) pause();
      else std::this_thread::yield();
    }
  }

  /// Splits [0, n) into one contiguous range per thread (in multiples of `grain`) and calls
  /// `body(begin, end)` for each non-empty range.
  template <class Body>
  void parallel_for(size_t n, Body&& body, size_t grain = 1) {
    if (n == 0) return;
    run([&](size_t index, size_t count) {
      const RowRange range = split_rows(n, index, count, grain);
      if (range.begin < range.end) body(range.begin, range.end);
    });
  }

  /// The process-wide pool, created on first use with default_thread_count() threads.
  static ThreadPool& global() {
    static ThreadPool pool;
    return pool;
  }

 private:
  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
  }
  static bool& inside_job() noexcept {
    thread_local bool inside = false;
    return inside;
  }

  void worker_loop(size_t index) {
    inside_job() = true;
    uint64_t seen = 0;
    constexpr int kSpinIterations = 20000;
    for (;;) {
      uint64_t current = generation_.load(std::memory_order_acquire);
      for (int spin = 0; current == seen; ++spin) {
        if (spin < kSpinIterations) {
          pause();
        } else {
          generation_.wait(seen, std::memory_order_acquire);
        }
        current = generation_.load(std::memory_order_acquire);
      }
      seen = current;
      if (stop_.load(std::memory_order_relaxed)) return;
      task_(context_, index, size_);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  size_t size_;
  std::vector<std::thread> workers_;
  std::mutex dispatch_mutex_;
  void (*task_)(void*, size_t, size_t) = nullptr;
  void* context_ = nullptr;
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<size_t> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace apr
