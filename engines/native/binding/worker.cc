// worker.cc — the engine thread: runs queued jobs in order, steps the sampler while requests are
// active, and settles promises on the main thread through the thread-safe function.
#include "worker.h"

#include <new>
#include <stdexcept>
#include <utility>

namespace tuft {

const char *StatusName(te_status s) {
  switch (s) {
    case TE_OK: return "TE_OK";
    case TE_EINVAL: return "TE_EINVAL";
    case TE_ENOTFOUND: return "TE_ENOTFOUND";
    case TE_EIO: return "TE_EIO";
    case TE_EUNSUPPORTED: return "TE_EUNSUPPORTED";
    case TE_ENOMEM: return "TE_ENOMEM";
    case TE_EINTERNAL: return "TE_EINTERNAL";
  }
  return "TE_EINTERNAL";
}

Outcome Outcome::Ok(std::function<Napi::Value(Napi::Env)> make) {
  Outcome o;
  o.make = std::move(make);
  return o;
}

Outcome Outcome::Later() {
  Outcome o;
  o.later = true;
  return o;
}

Outcome Outcome::Failed(te_status s) {
  const char *text = te_last_error();
  return Error(StatusName(s), text != nullptr && text[0] != '\0' ? text : StatusName(s));
}

Outcome Outcome::Error(std::string code, std::string message) {
  Outcome o;
  o.ok = false;
  o.code = std::move(code);
  o.message = std::move(message);
  return o;
}

void DeliverToJs(Napi::Env env, Napi::Function, Worker *w, Delivery *d) {
  std::unique_ptr<Delivery> owned(d);
  if (env == nullptr) return;  // the environment is shutting down: nobody awaits the promise
  Napi::HandleScope scope(env);
  napi_value value;
  bool ok = d->outcome.ok;
  if (ok) {
    try {
      value = d->outcome.make ? napi_value(d->outcome.make(env)) : napi_value(env.Undefined());
    } catch (const Napi::Error &e) {
      ok = false;
      value = e.Value();
    }
  } else {
    Napi::Error err = Napi::Error::New(env, d->outcome.message);
    err.Set("code", Napi::String::New(env, d->outcome.code));
    value = err.Value();
  }
  if (ok) napi_resolve_deferred(env, d->deferred, value);
  else napi_reject_deferred(env, d->deferred, value);
  if (d->last) {
    // close(): the thread has left its loop and delivers nothing more.
    if (w->thread_.joinable()) w->thread_.join();
    w->tsfn_.Release();
    w->tsfn_gone_ = true;
  }
  if (--w->pending_ == 0) {
    if (!w->tsfn_gone_) w->tsfn_.Unref(env);
    w->on_idle_();
  }
}

std::shared_ptr<Worker> Worker::Start(Napi::Env env, std::function<void()> on_busy,
                                      std::function<void()> on_idle) {
  auto w = std::make_shared<Worker>();
  w->env_ = env;
  w->on_busy_ = std::move(on_busy);
  w->on_idle_ = std::move(on_idle);
  // The finalizer owns one reference, so the worker outlives every delivery.
  auto *keep = new std::shared_ptr<Worker>(w);
  w->tsfn_ = Tsfn::New(env, "tuft-engine", 0, 1, w.get(),
                       [](Napi::Env, std::shared_ptr<Worker> *keep, Worker *self) {
                         self->tsfn_gone_ = true;
                         self->StopAndJoin();
                         delete keep;
                       },
                       keep);
  w->tsfn_.Unref(env);  // idle engines do not keep the process alive
  w->thread_ = std::thread([raw = w.get()] { raw->Loop(); });
  return w;
}

Worker::~Worker() { StopAndJoin(); }

void Worker::Post(napi_deferred d, Run run) {
  if (pending_++ == 0) {
    tsfn_.Ref(env_);
    on_busy_();
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    jobs_.push_back(Job{d, std::move(run)});
  }
  cv_.notify_one();
}

void Worker::Close(napi_deferred d) {
  closed_ = true;
  if (pending_++ == 0) {
    tsfn_.Ref(env_);
    on_busy_();
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    close_deferred_ = d;
  }
  cv_.notify_one();
}

void Worker::Abandon() {
  closed_ = true;
  StopAndJoin();
  if (!tsfn_gone_) {
    tsfn_gone_ = true;
    tsfn_.Release();
  }
}

void Worker::StopAndJoin() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (close_deferred_ == nullptr) silent_ = true;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Worker::Deliver(napi_deferred d, Outcome o, bool last) {
  auto *delivery = new Delivery{d, std::move(o), last};
  // Fails only while the environment shuts down; then nobody awaits the promise.
  if (tsfn_.BlockingCall(delivery) != napi_ok) delete delivery;
}

void Worker::Track(double request_id, uint64_t handle, napi_deferred d) {
  samples_[handle] = Parked{request_id, d};
  handles_[request_id] = handle;
}

bool Worker::Cancel(double request_id) {
  auto h = handles_.find(request_id);
  if (h == handles_.end()) return false;
  auto s = samples_.find(h->second);
  te_sample_cancel(engine, h->second);
  Deliver(s->second.deferred, Outcome::Error("ABORTED", "sample request cancelled"));
  samples_.erase(s);
  handles_.erase(h);
  return true;
}

void Worker::FailAllSamples(const Outcome &why) {
  for (auto &[handle, parked] : samples_) {
    te_sample_cancel(engine, handle);
    Deliver(parked.deferred, why);
  }
  samples_.clear();
  handles_.clear();
}

namespace {

/* A finished request copied out of engine memory (valid only until te_sample_release). */
struct SampleOut {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<float>> logprobs;
  std::vector<int32_t> stop_reasons;
  bool has_prompt_logprobs = false;
  std::vector<float> prompt_logprobs;
  std::vector<int32_t> topk_ids;
  std::vector<float> topk_logprobs;
  int topk_k = 0;
  int prompt_len = 0;
};

Napi::Value SampleToJs(Napi::Env env, const SampleOut &r) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Array seqs = Napi::Array::New(env, r.tokens.size());
  for (size_t i = 0; i < r.tokens.size(); i++) {
    Napi::Object s = Napi::Object::New(env);
    auto tokens = Napi::Int32Array::New(env, r.tokens[i].size());
    std::copy(r.tokens[i].begin(), r.tokens[i].end(), tokens.Data());
    auto logprobs = Napi::Float32Array::New(env, r.logprobs[i].size());
    std::copy(r.logprobs[i].begin(), r.logprobs[i].end(), logprobs.Data());
    s.Set("tokens", tokens);
    s.Set("logprobs", logprobs);
    s.Set("stopReason", Napi::String::New(env, r.stop_reasons[i] == 0 ? "stop" : "length"));
    seqs.Set(static_cast<uint32_t>(i), s);
  }
  out.Set("sequences", seqs);
  out.Set("promptLength", Napi::Number::New(env, r.prompt_len));
  if (r.has_prompt_logprobs) {
    auto a = Napi::Float32Array::New(env, r.prompt_logprobs.size());
    std::copy(r.prompt_logprobs.begin(), r.prompt_logprobs.end(), a.Data());
    out.Set("promptLogprobs", a);
  }
  if (r.topk_k > 0) {
    auto ids = Napi::Int32Array::New(env, r.topk_ids.size());
    std::copy(r.topk_ids.begin(), r.topk_ids.end(), ids.Data());
    auto lps = Napi::Float32Array::New(env, r.topk_logprobs.size());
    std::copy(r.topk_logprobs.begin(), r.topk_logprobs.end(), lps.Data());
    out.Set("topkIds", ids);
    out.Set("topkLogprobs", lps);
    out.Set("topkK", Napi::Number::New(env, r.topk_k));
  }
  return out;
}

Outcome CollectResult(te_engine *e, uint64_t handle) {
  te_sample_result r{};
  te_status s = te_sample_result_get(e, handle, &r);
  if (s != TE_OK) return Outcome::Failed(s);
  auto out = std::make_shared<SampleOut>();
  out->prompt_len = r.prompt_len;
  for (int i = 0; i < r.num_sequences; i++) {
    int n = r.lengths[i];
    out->tokens.emplace_back(r.tokens[i], r.tokens[i] + n);
    out->logprobs.emplace_back(r.logprobs[i], r.logprobs[i] + n);
    out->stop_reasons.push_back(r.stop_reasons[i]);
  }
  if (r.prompt_logprobs != nullptr) {
    out->has_prompt_logprobs = true;
    out->prompt_logprobs.assign(r.prompt_logprobs, r.prompt_logprobs + r.prompt_len);
  }
  if (r.topk_k > 0 && r.topk_ids != nullptr) {
    size_t n = static_cast<size_t>(r.prompt_len) * r.topk_k;
    out->topk_k = r.topk_k;
    out->topk_ids.assign(r.topk_ids, r.topk_ids + n);
    out->topk_logprobs.assign(r.topk_logprobs, r.topk_logprobs + n);
  }
  return Outcome::Ok([out](Napi::Env env) { return SampleToJs(env, *out); });
}

}  // namespace

void Worker::Step() {
  int active = 0;
  te_status s = te_sample_step(engine, &active);
  if (s != TE_OK) {
    FailAllSamples(Outcome::Failed(s));
    return;
  }
  uint64_t handle = 0;
  while (te_sample_next_finished(engine, &handle) == TE_OK) {
    Outcome o = CollectResult(engine, handle);
    te_sample_release(engine, handle);
    auto it = samples_.find(handle);
    if (it == samples_.end()) continue;
    handles_.erase(it->second.request_id);
    Deliver(it->second.deferred, std::move(o));
    samples_.erase(it);
  }
}

void Worker::Loop() {
  for (;;) {
    std::deque<Job> batch;
    bool stopping = false;
    bool silent = false;
    napi_deferred close_deferred = nullptr;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return !jobs_.empty() || stop_ || !samples_.empty(); });
      batch.swap(jobs_);
      stopping = stop_;
      silent = silent_;
      close_deferred = close_deferred_;
    }
    // Jobs queued since the last step run first, in order; then every running sequence advances
    // by one token, so training calls and sampling share the engine without starving each other.
    for (Job &job : batch) {
      Outcome o;
      try {
        o = job.run(*this, job.deferred);
      } catch (const std::bad_alloc &) {
        o = Outcome::Error("TE_ENOMEM", "out of memory");
      } catch (const std::exception &e) {
        o = Outcome::Error("TE_EINTERNAL", e.what());
      }
      if (!o.later && !silent) Deliver(job.deferred, std::move(o));
    }
    if (stopping) {
      if (!silent) FailAllSamples(Outcome::Error("ENGINE_CLOSED", "the engine was closed"));
      if (engine != nullptr) te_engine_destroy(engine);
      engine = nullptr;
      if (close_deferred != nullptr) Deliver(close_deferred, Outcome::Ok(), true);
      return;
    }
    if (!samples_.empty()) Step();
  }
}

}  // namespace tuft
