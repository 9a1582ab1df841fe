/// @file scheduler.hpp
/// @brief Scheduler: a bounded first-in-first-out request queue served by a fixed number of
/// model workers; each job can be cancelled (e.g. when its client disconnects).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "apr/serve/metrics.hpp"

namespace apr::serve {

/// A cancellation flag shared between a request handler and the job running it.
using CancelFlag = std::shared_ptr<std::atomic<bool>>;

/// Runs jobs on `workers` threads in arrival order; refuses new jobs when `max_queue` wait.
class Scheduler {
 public:
  /// Starts `workers` threads; `metrics` receives the queue depth.
  Scheduler(size_t workers, size_t max_queue, Metrics& metrics) : max_queue_(max_queue), metrics_(metrics) {
    for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i) threads_.emplace_back([this] { work(); });
  }
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      for (auto& job : queue_) job.cancel->store(true);
    }
    ready_.notify_all();
    for (auto& thread : threads_) thread.join();
  }

  /// Queues `job` (called with its cancel flag); returns a future that completes when it has run,
  /// or an invalid future (valid() is false) when the queue is full or the scheduler is stopping.
  std::future<void> submit(std::function<void(const std::atomic<bool>& cancelled)> job, CancelFlag cancel) {
    std::packaged_task<void()> task([job = std::move(job), cancel] { job(*cancel); });
    std::future<void> done = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || queue_.size() >= max_queue_) return {};
      queue_.push_back({std::move(task), std::move(cancel)});
      metrics_.queue_depth = queue_.size();
    }
    ready_.notify_one();
    return done;
  }

 private:
  struct Job {
    std::packaged_task<void()> task;
    CancelFlag cancel;
  };

  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        metrics_.queue_depth = queue_.size();
      }
      ++metrics_.active;
      job.task();  // a cancelled job still runs, sees its flag and returns at once
      --metrics_.active;
    }
  }

  size_t max_queue_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace apr::serve
