// worker.h — the engine thread of one native engine: a job queue served by one dedicated std::thread
// (never the event loop or libuv's pool), interleaved with continuous-batching sampling steps.
// Results travel back to JS through one thread-safe function and settle the callers' promises.
#ifndef TUFT_BINDING_WORKER_H
#define TUFT_BINDING_WORKER_H

#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "engine.h"

namespace tuft {

/* What a job produced, built on the engine thread and turned into JS on the main thread. */
struct Outcome {
  bool ok = true;
  bool later = false;   /* the job parked its promise (a sample request settles when it finishes) */
  std::string code;     /* error code for JS: a te_status name, ENGINE_CLOSED or ABORTED */
  std::string message;
  std::function<Napi::Value(Napi::Env)> make; /* resolved value; empty → undefined */

  static Outcome Ok(std::function<Napi::Value(Napi::Env)> make = nullptr);
  static Outcome Later();
  /* A failed te_* call: the status name and te_last_error() of this (the engine) thread. */
  static Outcome Failed(te_status s);
  static Outcome Error(std::string code, std::string message);
};

const char *StatusName(te_status s);

class Worker;
struct Delivery {
  napi_deferred deferred;
  Outcome outcome;
  bool last; /* the close() promise: the thread has exited its loop */
};
void DeliverToJs(Napi::Env env, Napi::Function unused, Worker *worker, Delivery *delivery);
using Tsfn = Napi::TypedThreadSafeFunction<Worker, Delivery, DeliverToJs>;

class Worker {
 public:
  using Run = std::function<Outcome(Worker &, napi_deferred)>;

  /* Main thread. on_busy / on_idle run when the first promise is queued and the last one settles:
   * the owner holds itself (and the thread-safe function holds the event loop) while work is pending. */
  static std::shared_ptr<Worker> Start(Napi::Env env, std::function<void()> on_busy,
                                       std::function<void()> on_idle);
  ~Worker();
  bool Closed() const { return closed_; }
  void Post(napi_deferred d, Run run);
  /* Queued jobs still run; running sample requests fail with ENGINE_CLOSED; d settles last. */
  void Close(napi_deferred d);
  /* The JS object was collected without close(): stop and join without touching JS. */
  void Abandon();

  /* Engine thread. */
  te_engine *engine = nullptr;
  void Track(double request_id, uint64_t handle, napi_deferred d);
  /* Cancels a queued or running request; false when it is unknown (finished or never submitted). */
  bool Cancel(double request_id);

 private:
  friend void DeliverToJs(Napi::Env, Napi::Function, Worker *, Delivery *);
  struct Job {
    napi_deferred deferred;
    Run run;
  };
  struct Parked {
    double request_id;
    napi_deferred deferred;
  };

  void Loop();
  void Step();
  void FailAllSamples(const Outcome &why);
  void Deliver(napi_deferred d, Outcome o, bool last = false);
  void StopAndJoin();

  Tsfn tsfn_;
  napi_env env_ = nullptr;
  std::function<void()> on_busy_, on_idle_;
  size_t pending_ = 0;       /* main thread: promises not yet settled */
  std::thread thread_;
  bool closed_ = false;      /* main thread: close() was called */
  bool tsfn_gone_ = false;   /* main thread: released or finalized */

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;              /* guarded by mu_ */
  bool stop_ = false;                 /* guarded by mu_ */
  bool silent_ = false;               /* guarded by mu_: stop without delivering anything */
  napi_deferred close_deferred_ = nullptr; /* guarded by mu_ */

  std::unordered_map<uint64_t, Parked> samples_; /* engine thread: by te handle */
  std::unordered_map<double, uint64_t> handles_; /* engine thread: request id → te handle */
};

}  // namespace tuft

#endif
