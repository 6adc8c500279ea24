// The threads that share a large matrix product. Eigen's own OpenMP GEMM splits every product
// above 50k multiply-adds, so a 64-32-10 step paid a fork/join per product that cost more than
// the product, and OpenMP's idle threads spin where OpenBLAS's (NumPy, torch) want the cores.
// Here a product is split in whole column (or row) ranges, each an ordinary single-threaded
// Eigen product, and only when it is large enough to pay for the hand-off; idle workers spin
// for a few microseconds, enough to catch the next product of a step, then sleep.
//
// The split depends only on the sizes and the thread count, never on which threads happen to
// be free: a caller that finds the workers busy (another Python thread's kernel) runs every
// part itself, so its result is bitwise the same.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "types.hpp"

namespace denseprop {

class Workers {
 public:
  // The process's workers, created on first use (again in a forked child, where the parent's
  // threads do not exist).
  static Workers& get() {
    static std::once_flag registered;
    std::call_once(registered, [] {
#if defined(__linux__)
      pthread_atfork(nullptr, nullptr, [] { instance() = nullptr; });
#endif
    });
    static std::mutex creating;
    std::lock_guard<std::mutex> lock(creating);
    if (!instance()) instance() = new Workers(default_threads());  // lives as long as the process
    return *instance();
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  // Joins the current workers and starts n - 1 new ones.
  void set_threads(int n) {
    std::lock_guard<std::mutex> owner(running_);
    stop_workers();
    threads_.store(n, std::memory_order_relaxed);
    for (int i = 1; i < n; ++i) pool_.emplace_back([this] { work(); });
  }

  // Calls f(p) for every part p in [0, parts), on the caller and the workers; returns when all
  // are done, rethrowing the first exception a part threw (bad_alloc of a packing buffer).
  template <class F> void run(int parts, const F& f) {
    std::unique_lock<std::mutex> owner(running_, std::try_to_lock);
    if (parts <= 1 || pool_.empty() || !owner) {
      for (int p = 0; p < parts; ++p) f(p);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = [](const void* fn, int p) { (*static_cast<const F*>(fn))(p); };
      fn_ = &f;
      parts_ = parts;
      next_ = 0;
      remaining_ = parts;
      error_ = nullptr;
      published_.store(++generation_, std::memory_order_release);
    }
    wake_.notify_all();
    std::unique_lock<std::mutex> lock(m_);
    take_parts(lock);
    lock.unlock();
    // The other parts end within microseconds of this one: wait awake before sleeping, since
    // being woken costs more than a small product.
    for (int i = 0; i < spin_rounds && remaining_.load(std::memory_order_acquire) != 0; ++i)
      std::this_thread::yield();
    lock.lock();
    done_.wait(lock, [this] { return remaining_.load(std::memory_order_acquire) == 0; });
    if (error_) std::rethrow_exception(error_);
  }

  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

 private:
  explicit Workers(int n) { set_threads(n); }

  static Workers*& instance() {
    static Workers* workers = nullptr;
    return workers;
  }

  // DENSEPROP_NUM_THREADS, else OMP_NUM_THREADS (as NumPy's OpenBLAS and torch read it), else
  // the CPUs this process may run on.
  static int default_threads() {
    for (const char* name : {"DENSEPROP_NUM_THREADS", "OMP_NUM_THREADS"}) {
      if (const char* value = std::getenv(name)) {
        const int n = std::atoi(value);
        if (n >= 1) return std::min(n, 256);
      }
    }
#if defined(__linux__)
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) return std::max(1, CPU_COUNT(&cpus));
#endif
    return std::max(1, int(std::thread::hardware_concurrency()));
  }

  // Runs unclaimed parts of the current job; called and returns with m_ held.
  void take_parts(std::unique_lock<std::mutex>& lock) {
    while (next_ < parts_) {
      const int p = next_++;
      const auto job = job_;
      const void* fn = fn_;
      lock.unlock();
      std::exception_ptr error;
      try {
        job(fn, p);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      if (error && !error_) error_ = error;
      if (--remaining_ == 0) done_.notify_all();
    }
  }

  void work() {
    std::uint64_t seen = published_.load(std::memory_order_acquire);
    for (;;) {
      // A step's products follow each other within microseconds: spin briefly before sleeping.
      for (int i = 0; i < spin_rounds && published_.load(std::memory_order_acquire) == seen; ++i)
        std::this_thread::yield();
      std::unique_lock<std::mutex> lock(m_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      take_parts(lock);
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : pool_) t.join();
    pool_.clear();
    stop_ = false;
  }

  static constexpr int spin_rounds = 200;

  std::atomic<int> threads_{1};  // read by every product without the lock
  std::vector<std::thread> pool_;
  std::mutex running_;  // held by the one caller whose job the workers share
  std::mutex m_;        // guards the job below
  std::condition_variable wake_, done_;
  void (*job_)(const void*, int) = nullptr;
  const void* fn_ = nullptr;
  int parts_ = 0, next_ = 0;
  std::atomic<int> remaining_{0};  // changed under m_, read without it while waiting
  std::exception_ptr error_;
  bool stop_ = false;
  std::uint64_t generation_ = 0;
  std::atomic<std::uint64_t> published_{0};
};

// A product of `flops` multiply-adds is split only when each thread gets at least this many:
// about 20 µs of single-threaded GEMM, well above the cost of waking a worker.
inline constexpr double min_flops_per_thread = 1.0e6;

// Calls f(begin, count) over [0, n) in as many ranges as threads (each a multiple of `align`,
// the last taking the rest), or once over all of it when the work is too small to share.
template <class F> void parallel_ranges(Index n, Index align, double flops, const F& f) {
  Workers& workers = Workers::get();
  const Index by_work = Index(flops / min_flops_per_thread);
  const int parts = int(std::clamp<Index>(std::min(by_work, n / align), 1, workers.threads()));
  if (parts == 1) return f(Index(0), n);
  const Index chunk = (n / parts) / align * align;
  workers.run(parts, [&](int p) {
    const Index begin = p * chunk;
    f(begin, p + 1 == parts ? n - begin : chunk);
  });
}

// op(dst, lhs, rhs) for dst = lhs rhs (m × k times k × n), shared by the workers when large. A
// row split has every thread pack all of rhs, a column split all of lhs: split the dimension
// whose operand is the larger, so the copies each thread repeats are the smaller ones.
// Ranges are multiples of 8, a whole number of SIMD packets for float and double.
inline bool split_rows(Index m, Index n) { return m >= n; }
template <class Lhs> double multiply_adds(Index m, Index n, const Lhs& lhs) {
  return double(m) * double(n) * double(lhs.cols());
}

template <class Dst, class Lhs, class Rhs, class Op>
void split_product(Dst dst, const Lhs& lhs, const Rhs& rhs, const Op& op) {
  const Index m = dst.rows(), n = dst.cols();
  if (split_rows(m, n))
    parallel_ranges(m, 8, multiply_adds(m, n, lhs), [&](Index r, Index count) {
      op(dst.middleRows(r, count), lhs.middleRows(r, count), rhs);
    });
  else
    parallel_ranges(n, 8, multiply_adds(m, n, lhs), [&](Index c, Index count) {
      op(dst.middleCols(c, count), lhs, rhs.middleCols(c, count));
    });
}

}  // namespace denseprop
