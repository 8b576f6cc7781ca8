// pool.cc — a fixed set of worker threads sharing one task counter (no per-call thread creation).
#include "pool.h"

#include <algorithm>
#include <chrono>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tuft {

// How long a thread spins for the next region (a worker) or the end of one (the caller) before it
// sleeps on a condition variable. A decode step runs ~200 short regions back to back; a futex
// sleep and wake-up for each (tens of µs on a virtual machine) cost more than the work of many.
// Bounded, so an idle engine sleeps and a loaded machine loses little.
constexpr auto SPIN = std::chrono::microseconds(50);

// Spins until ready() or SPIN has passed; true if ready.
template <class F>
static bool spin_until(F ready) {
  const auto end = std::chrono::steady_clock::now() + SPIN;
  for (int i = 0;; i++) {
    if (ready()) return true;
#if defined(__x86_64__)
    _mm_pause();
#endif
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > end) return ready();
  }
}

// Denormal floats flushed to zero, as inputs and as results (x86: MXCSR's FTZ and DAZ bits). An
// operation that meets one takes a microcode assist ~100× slower on Intel cores, and they are common
// here: a softmax over 151,936 logits puts probabilities below 1e-38 into d logits and the sampler's
// exps, and the training step of the e2e bench ran 2.3× slower through the server for it. Every thread
// that computes for a pool flushes the same way, so results do not depend on which thread ran a task.
#if defined(__x86_64__)
constexpr unsigned FLUSH_DENORMALS = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
static unsigned fp_mode_flushing() { return _mm_getcsr() | FLUSH_DENORMALS; }
static unsigned fp_mode() { return _mm_getcsr(); }
static void set_fp_mode(unsigned m) { _mm_setcsr(m); }
#else
static unsigned fp_mode_flushing() { return 0; }
static unsigned fp_mode() { return 0; }
static void set_fp_mode(unsigned) {}
#endif

static thread_local Pool *tl_pool = nullptr;
static thread_local bool tl_in_task = false;

Pool::Pool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int t = 1; t < n_threads_; t++) threads_.emplace_back([this] { worker(); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto &t : threads_) t.join();
}

// Takes tasks until none is left; called with mu_ unlocked.
void Pool::drain() {
  for (;;) {
    int i;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (next_ >= n_tasks_) return;
      i = next_++;
    }
    tl_in_task = true;
    (*task_)(i);
    tl_in_task = false;
    std::lock_guard<std::mutex> lk(mu_);
    if (++done_ == n_tasks_) cv_done_.notify_all();
  }
}

void Pool::worker() {
  set_fp_mode(fp_mode_flushing());
  unsigned long seen = 0;
  for (;;) {
    spin_until([&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      busy_++;
    }
    drain();
    std::lock_guard<std::mutex> lk(mu_);
    if (--busy_ == 0) cv_done_.notify_all();
  }
}

void Pool::run(int n_tasks, const std::function<void(int)> &task) {
  if (n_tasks <= 0) return;
  if (n_tasks == 1 || threads_.empty() || tl_in_task) {
    for (int i = 0; i < n_tasks; i++) task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    task_ = &task;
    n_tasks_ = n_tasks;
    next_ = done_ = 0;
    generation_++;
  }
  cv_work_.notify_all();
  drain();
  spin_until([&] { return done_.load(std::memory_order_acquire) == n_tasks && busy_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lk(mu_);
  // Wait for all tasks and for every worker to leave drain(), so task_ can be reused safely.
  cv_done_.wait(lk, [&] { return done_ == n_tasks_ && busy_ == 0; });
  task_ = nullptr;
}

PoolScope::PoolScope(Pool *p) : prev_(tl_pool), prev_fp_mode_(fp_mode()) {
  tl_pool = p;
  set_fp_mode(fp_mode_flushing());
}
PoolScope::~PoolScope() {
  tl_pool = prev_;
  set_fp_mode(prev_fp_mode_);
}

Pool *current_pool() { return tl_pool; }
int current_threads() { return tl_pool && !tl_in_task ? tl_pool->size() : 1; }

void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)> &fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  int nt = current_threads();
  size_t max_chunks = (n + grain - 1) / grain;
  // A few chunks per thread balance uneven work (causal attention rows) without much overhead.
  size_t n_chunks = std::min<size_t>(max_chunks, size_t(nt) * 4);
  if (nt <= 1 || n_chunks <= 1) {
    fn(0, n);
    return;
  }
  size_t step = (n + n_chunks - 1) / n_chunks;
  n_chunks = (n + step - 1) / step;
  tl_pool->run(int(n_chunks), [&](int c) {
    size_t b = size_t(c) * step, e = std::min(n, b + step);
    if (b < e) fn(b, e);
  });
}

}  // namespace tuft
