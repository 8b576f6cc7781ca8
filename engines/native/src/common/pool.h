// pool.h — the engine's worker threads. Ops call parallel_for(); it runs on the pool installed for the
// calling thread by a PoolScope (each C API entry point installs its engine's pool), serially otherwise.
// Nested parallel_for calls from inside a task run serially. Pool threads flush denormal floats to
// zero, and so does a thread inside a PoolScope (restored when the scope ends: the host's own code,
// JavaScript included, never sees the mode).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tuft {

class Pool {
 public:
  explicit Pool(int n_threads);  // n_threads includes the calling thread
  ~Pool();
  Pool(const Pool &) = delete;
  Pool &operator=(const Pool &) = delete;
  int size() const { return n_threads_; }
  // Runs task(i) for i in [0, n_tasks) on all threads; returns when every task is done.
  void run(int n_tasks, const std::function<void(int)> &task);

 private:
  void worker();
  void drain();
  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int)> *task_ = nullptr;
  int n_tasks_ = 0, next_ = 0;
  // Written under mu_; read without it by the short spins before a thread sleeps on a condition.
  std::atomic<int> done_{0}, busy_{0};
  std::atomic<unsigned long> generation_{0};
  std::atomic<bool> stop_{false};
};

class PoolScope {
 public:
  explicit PoolScope(Pool *p);
  ~PoolScope();
  PoolScope(const PoolScope &) = delete;
  PoolScope &operator=(const PoolScope &) = delete;

 private:
  Pool *prev_;
  unsigned prev_fp_mode_;
};

Pool *current_pool();
int current_threads();

// fn(begin, end) over [0, n) in chunks of at least `grain` items, spread over the current pool.
void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)> &fn);

}  // namespace tuft
