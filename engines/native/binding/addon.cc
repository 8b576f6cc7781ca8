// addon.cc — node-addon-api binding of the native engine: class Engine wraps one te_engine served by
// its own engine thread (worker.h). Every method copies its inputs and returns a Promise; failures
// reject with an Error whose `code` is the te_status name and whose message is te_last_error().
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "engine.h"
#include "worker.h"

namespace tuft {
namespace {

Napi::Value InfoToJs(Napi::Env env, const te_model_info &i) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", i.arch);
  o.Set("backend", i.backend);
  o.Set("device", i.device);
  o.Set("threads", i.n_threads);
  o.Set("vocabSize", i.vocab_size);
  o.Set("hiddenSize", i.hidden_size);
  o.Set("nLayers", i.n_layers);
  o.Set("nHeads", i.n_heads);
  o.Set("nKvHeads", i.n_kv_heads);
  o.Set("headDim", i.head_dim);
  o.Set("intermediateSize", i.intermediate_size);
  o.Set("maxPosition", i.max_position);
  o.Set("tieWordEmbeddings", i.tie_word_embeddings != 0);
  return o;
}

bool LossFromName(const std::string &name, te_loss *out) {
  static const std::pair<const char *, te_loss> kLosses[] = {
      {"cross_entropy", TE_LOSS_CROSS_ENTROPY}, {"importance_sampling", TE_LOSS_IMPORTANCE_SAMPLING},
      {"ppo", TE_LOSS_PPO},                     {"cispo", TE_LOSS_CISPO},
      {"dro", TE_LOSS_DRO},
  };
  for (const auto &[n, l] : kLosses) {
    if (name == n) {
      *out = l;
      return true;
    }
  }
  return false;
}

/* One datum of forwardBackward, owned (copied from JS). */
struct ItemArgs {
  bool has_adapter = false;
  std::string adapter_id;
  std::vector<int32_t> tokens, targets;
  int k = 1;
  te_loss loss = TE_LOSS_CROSS_ENTROPY;
  std::vector<float> weights, logprobs, advantages, clip_low, clip_high;
  bool has_weights = false, has_logprobs = false, has_advantages = false, has_clip_low = false,
       has_clip_high = false;
  float clip_low_threshold = 0, clip_high_threshold = 0, beta = 0;
  bool forward_only = false;
};

/* The C ABI reads n_tokens × k targets (and weights) and n_tokens of every per-token array on trust, so
 * their lengths are checked here, as bad input (TE_EINVAL), before a pointer reaches the engine. */
void CheckLength(const Napi::Env &env, bool present, size_t have, size_t want, const char *what) {
  if (!present || have == want) return;
  Napi::Error err = Napi::Error::New(
      env, std::string(what) + " has " + std::to_string(have) + " values, expected " + std::to_string(want));
  err.Set("code", "TE_EINVAL");
  throw err;
}

ItemArgs ReadItem(const Napi::Object &o) {
  ItemArgs a;
  Napi::Value id = o.Get("adapterId");
  a.has_adapter = !id.IsNull() && !id.IsUndefined();
  if (a.has_adapter) a.adapter_id = ToString(id, "adapterId");
  a.tokens = CopyI32(o.Get("tokens"), "tokens");
  a.targets = CopyI32(o.Get("targets"), "targets");
  a.k = ToInt(o.Get("k"), "k");
  std::string loss = ToString(o.Get("lossFn"), "lossFn");
  if (!LossFromName(loss, &a.loss)) throw Napi::TypeError::New(o.Env(), "unknown lossFn '" + loss + "'");
  a.has_weights = CopyOptionalF32(o, "weights", &a.weights);
  a.has_logprobs = CopyOptionalF32(o, "logprobs", &a.logprobs);
  a.has_advantages = CopyOptionalF32(o, "advantages", &a.advantages);
  a.has_clip_low = CopyOptionalF32(o, "clipLow", &a.clip_low);
  a.has_clip_high = CopyOptionalF32(o, "clipHigh", &a.clip_high);
  a.clip_low_threshold = static_cast<float>(ToNumber(o.Get("clipLowThreshold"), "clipLowThreshold"));
  a.clip_high_threshold = static_cast<float>(ToNumber(o.Get("clipHighThreshold"), "clipHighThreshold"));
  a.beta = static_cast<float>(ToNumber(o.Get("beta"), "beta"));
  a.forward_only = ToBool(o.Get("forwardOnly"), "forwardOnly");
  const size_t n = a.tokens.size(), nk = n * static_cast<size_t>(a.k > 0 ? a.k : 0);
  CheckLength(o.Env(), true, a.targets.size(), nk, "targets");
  CheckLength(o.Env(), a.has_weights, a.weights.size(), nk, "weights");
  CheckLength(o.Env(), a.has_logprobs, a.logprobs.size(), n, "logprobs");
  CheckLength(o.Env(), a.has_advantages, a.advantages.size(), n, "advantages");
  CheckLength(o.Env(), a.has_clip_low, a.clip_low.size(), n, "clip_low_threshold");
  CheckLength(o.Env(), a.has_clip_high, a.clip_high.size(), n, "clip_high_threshold");
  return a;
}

/* One sample request, owned (copied from JS). */
struct SampleArgs {
  double request_id = 0;
  bool has_adapter = false;
  std::string adapter_id;
  std::vector<int32_t> prompt;
  int num_samples = 1, max_tokens = 0, top_k = 0;
  float temperature = 1, top_p = 1;
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;
  std::vector<std::string> stop_strings;
  bool prompt_logprobs = false;
  int topk_prompt_logprobs = 0;
};

SampleArgs ReadSample(double request_id, const Napi::Object &o) {
  SampleArgs a;
  a.request_id = request_id;
  Napi::Value id = o.Get("adapterId");
  a.has_adapter = !id.IsNull() && !id.IsUndefined();
  if (a.has_adapter) a.adapter_id = ToString(id, "adapterId");
  a.prompt = CopyI32(o.Get("prompt"), "prompt");
  a.num_samples = ToInt(o.Get("numSamples"), "numSamples");
  a.max_tokens = ToInt(o.Get("maxTokens"), "maxTokens");
  a.temperature = static_cast<float>(ToNumber(o.Get("temperature"), "temperature"));
  a.top_k = ToInt(o.Get("topK"), "topK");
  a.top_p = static_cast<float>(ToNumber(o.Get("topP"), "topP"));
  a.seed = ToU64(o.Get("seed"), "seed");
  a.stop_tokens = CopyI32(o.Get("stopTokens"), "stopTokens");
  Napi::Value stops = o.Get("stopStrings");
  if (!stops.IsArray()) throw Napi::TypeError::New(o.Env(), "stopStrings must be an array of Uint8Array");
  Napi::Array arr = stops.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    std::vector<uint8_t> bytes = CopyU8(arr.Get(i), "stopStrings[i]");
    a.stop_strings.emplace_back(bytes.begin(), bytes.end());
  }
  a.prompt_logprobs = ToBool(o.Get("promptLogprobs"), "promptLogprobs");
  a.topk_prompt_logprobs = ToInt(o.Get("topkPromptLogprobs"), "topkPromptLogprobs");
  return a;
}

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod<&Engine::Open>("open"),
                           InstanceMethod<&Engine::CreateAdapter>("createAdapter"),
                           InstanceMethod<&Engine::DropAdapter>("dropAdapter"),
                           InstanceMethod<&Engine::SnapshotAdapter>("snapshotAdapter"),
                           InstanceMethod<&Engine::SaveAdapter>("saveAdapter"),
                           InstanceMethod<&Engine::LoadAdapter>("loadAdapter"),
                           InstanceMethod<&Engine::ExportPeft>("exportPeft"),
                           InstanceMethod<&Engine::ImportPeft>("importPeft"),
                           InstanceMethod<&Engine::ForwardBackward>("forwardBackward"),
                           InstanceMethod<&Engine::OptimStep>("optimStep"),
                           InstanceMethod<&Engine::SetTokenBytes>("setTokenBytes"),
                           InstanceMethod<&Engine::Sample>("sample"),
                           InstanceMethod<&Engine::CancelSample>("cancelSample"),
                           InstanceMethod<&Engine::Close>("close"),
                       });
  }

  explicit Engine(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Engine>(info) {
    // While promises are pending the wrapper holds itself, so the engine is never collected mid-job.
    worker_ = Worker::Start(info.Env(), [this] { Ref(); }, [this] { Unref(); });
  }

  ~Engine() override { worker_->Abandon(); }

 private:
  using Run = Worker::Run;

  /* Queues run on the engine thread; returns the promise it will settle. */
  Napi::Value Queue(Napi::Env env, Run run) {
    napi_value promise = nullptr;
    napi_deferred deferred = nullptr;
    NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred, &promise), Napi::Value());
    if (worker_->Closed()) {
      Napi::Error err = Napi::Error::New(env, "the engine was closed");
      err.Set("code", "ENGINE_CLOSED");
      napi_reject_deferred(env, deferred, err.Value());
    } else {
      worker_->Post(deferred, std::move(run));
    }
    return Napi::Value(env, promise);
  }

  /* A te_* call on a string id and optional extra string / flag, resolving to undefined. */
  template <typename F>
  Napi::Value Simple(const Napi::CallbackInfo &info, F call) {
    return Queue(info.Env(), [call](Worker &w, napi_deferred) {
      if (w.engine == nullptr) return Outcome::Error("TE_EINVAL", "the engine is not open");
      te_status s = call(w.engine);
      return s == TE_OK ? Outcome::Ok() : Outcome::Failed(s);
    });
  }

  Napi::Value Open(const Napi::CallbackInfo &info) {
    std::string dir = ToString(info[0], "modelDir");
    Napi::Object o = info[1].As<Napi::Object>();
    te_engine_options opts{};
    opts.n_threads = ToInt(o.Get("threads"), "threads");
    opts.max_lora_rank = ToInt(o.Get("maxLoraRank"), "maxLoraRank");
    opts.max_seq_len = ToInt(o.Get("maxSeqLen"), "maxSeqLen");
    std::string backend = ToString(o.Get("backend"), "backend");
    const size_t kv_bytes = static_cast<size_t>(ToNumber(o.Get("kvCacheMb"), "kvCacheMb")) << 20;
    return Queue(info.Env(), [dir, opts, backend, kv_bytes](Worker &w, napi_deferred) mutable {
      if (w.engine != nullptr) return Outcome::Error("TE_EINVAL", "the engine is already open");
      opts.backend = backend.c_str();
      te_status s = te_engine_create(dir.c_str(), &opts, &w.engine);
      if (s != TE_OK) return Outcome::Failed(s);
      if (kv_bytes > 0 && (s = te_sample_configure(w.engine, kv_bytes)) != TE_OK) return Outcome::Failed(s);
      te_model_info mi{};
      s = te_engine_info(w.engine, &mi);
      if (s != TE_OK) return Outcome::Failed(s);
      return Outcome::Ok([mi](Napi::Env env) { return InfoToJs(env, mi); });
    });
  }

  Napi::Value CreateAdapter(const Napi::CallbackInfo &info) {
    std::string id = ToString(info[0], "id");
    Napi::Object o = info[1].As<Napi::Object>();
    te_lora_config cfg{};
    cfg.rank = ToInt(o.Get("rank"), "rank");
    cfg.alpha = static_cast<float>(ToNumber(o.Get("alpha"), "alpha"));
    cfg.seed = ToU64(o.Get("seed"), "seed");
    cfg.train_attn = ToBool(o.Get("trainAttn"), "trainAttn");
    cfg.train_mlp = ToBool(o.Get("trainMlp"), "trainMlp");
    cfg.train_unembed = ToBool(o.Get("trainUnembed"), "trainUnembed");
    return Simple(info, [id, cfg](te_engine *e) { return te_adapter_create(e, id.c_str(), &cfg); });
  }

  Napi::Value DropAdapter(const Napi::CallbackInfo &info) {
    std::string id = ToString(info[0], "id");
    return Simple(info, [id](te_engine *e) { return te_adapter_drop(e, id.c_str()); });
  }

  Napi::Value SnapshotAdapter(const Napi::CallbackInfo &info) {
    std::string src = ToString(info[0], "srcId"), dst = ToString(info[1], "dstId");
    return Simple(info, [src, dst](te_engine *e) { return te_adapter_snapshot(e, src.c_str(), dst.c_str()); });
  }

  Napi::Value SaveAdapter(const Napi::CallbackInfo &info) {
    std::string id = ToString(info[0], "id"), dir = ToString(info[1], "dir");
    int opt = ToBool(info[2], "withOptimizer") ? 1 : 0;
    return Simple(info, [id, dir, opt](te_engine *e) { return te_adapter_save(e, id.c_str(), dir.c_str(), opt); });
  }

  Napi::Value LoadAdapter(const Napi::CallbackInfo &info) {
    std::string id = ToString(info[0], "id"), dir = ToString(info[1], "dir");
    int opt = ToBool(info[2], "withOptimizer") ? 1 : 0;
    return Simple(info, [id, dir, opt](te_engine *e) { return te_adapter_load(e, id.c_str(), dir.c_str(), opt); });
  }

  Napi::Value ExportPeft(const Napi::CallbackInfo &info) {
    std::string id = ToString(info[0], "id"), dir = ToString(info[1], "dir");
    return Simple(info, [id, dir](te_engine *e) { return te_adapter_export_peft(e, id.c_str(), dir.c_str()); });
  }

  Napi::Value ImportPeft(const Napi::CallbackInfo &info) {
    std::string id = ToString(info[0], "id"), dir = ToString(info[1], "dir");
    return Simple(info, [id, dir](te_engine *e) { return te_adapter_import_peft(e, id.c_str(), dir.c_str()); });
  }

  Napi::Value ForwardBackward(const Napi::CallbackInfo &info) {
    if (!info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "items must be an array");
    Napi::Array arr = info[0].As<Napi::Array>();
    auto items = std::make_shared<std::vector<ItemArgs>>();
    for (uint32_t i = 0; i < arr.Length(); i++) items->push_back(ReadItem(arr.Get(i).As<Napi::Object>()));
    return Queue(info.Env(), [items](Worker &w, napi_deferred) {
      if (w.engine == nullptr) return Outcome::Error("TE_EINVAL", "the engine is not open");
      struct Out {
        std::vector<std::vector<float>> logprobs;
        std::vector<double> losses;
      };
      auto out = std::make_shared<Out>();
      out->losses.assign(items->size(), 0.0);
      std::vector<te_train_item> c(items->size());
      for (size_t i = 0; i < items->size(); i++) {
        const ItemArgs &a = (*items)[i];
        out->logprobs.emplace_back(a.tokens.size() * static_cast<size_t>(a.k > 0 ? a.k : 0), 0.0f);
        te_train_item &t = c[i];
        t.adapter_id = a.has_adapter ? a.adapter_id.c_str() : nullptr;
        t.tokens = a.tokens.data();
        t.n_tokens = static_cast<int>(a.tokens.size());
        t.targets = a.targets.data();
        t.k = a.k;
        t.loss = a.loss;
        t.weights = a.has_weights ? a.weights.data() : nullptr;
        t.logprobs = a.has_logprobs ? a.logprobs.data() : nullptr;
        t.advantages = a.has_advantages ? a.advantages.data() : nullptr;
        t.clip_low = a.has_clip_low ? a.clip_low.data() : nullptr;
        t.clip_high = a.has_clip_high ? a.clip_high.data() : nullptr;
        t.clip_low_threshold = a.clip_low_threshold;
        t.clip_high_threshold = a.clip_high_threshold;
        t.beta = a.beta;
        t.forward_only = a.forward_only ? 1 : 0;
        t.out_logprobs = out->logprobs.back().data();
        t.out_loss = &out->losses[i];
      }
      te_status s = te_forward_backward(w.engine, c.data(), static_cast<int>(c.size()));
      if (s != TE_OK) return Outcome::Failed(s);
      return Outcome::Ok([out](Napi::Env env) -> Napi::Value {
        Napi::Array res = Napi::Array::New(env, out->losses.size());
        for (size_t i = 0; i < out->losses.size(); i++) {
          Napi::Object r = Napi::Object::New(env);
          r.Set("logprobs", NewF32(env, out->logprobs[i]));
          r.Set("loss", out->losses[i]);
          res.Set(static_cast<uint32_t>(i), r);
        }
        return res;
      });
    });
  }

  Napi::Value OptimStep(const Napi::CallbackInfo &info) {
    std::string id = ToString(info[0], "id");
    Napi::Object o = info[1].As<Napi::Object>();
    te_adam_params p{};
    p.learning_rate = static_cast<float>(ToNumber(o.Get("learningRate"), "learningRate"));
    p.beta1 = static_cast<float>(ToNumber(o.Get("beta1"), "beta1"));
    p.beta2 = static_cast<float>(ToNumber(o.Get("beta2"), "beta2"));
    p.eps = static_cast<float>(ToNumber(o.Get("eps"), "eps"));
    p.weight_decay = static_cast<float>(ToNumber(o.Get("weightDecay"), "weightDecay"));
    p.grad_clip_norm = static_cast<float>(ToNumber(o.Get("gradClipNorm"), "gradClipNorm"));
    return Queue(info.Env(), [id, p](Worker &w, napi_deferred) {
      if (w.engine == nullptr) return Outcome::Error("TE_EINVAL", "the engine is not open");
      double norm = 0;
      int64_t step = 0;
      te_status s = te_optim_step(w.engine, id.c_str(), &p, &norm, &step);
      if (s != TE_OK) return Outcome::Failed(s);
      return Outcome::Ok([norm, step](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("gradNorm", norm);
        r.Set("step", static_cast<double>(step));
        return r;
      });
    });
  }

  /* bytes: every token's byte string concatenated; lens: [V] their lengths. */
  Napi::Value SetTokenBytes(const Napi::CallbackInfo &info) {
    auto bytes = std::make_shared<std::vector<uint8_t>>(CopyU8(info[0], "bytes"));
    auto lens = std::make_shared<std::vector<int32_t>>(CopyI32(info[1], "lens"));
    return Queue(info.Env(), [bytes, lens](Worker &w, napi_deferred) {
      if (w.engine == nullptr) return Outcome::Error("TE_EINVAL", "the engine is not open");
      std::vector<const char *> ptrs(lens->size());
      size_t off = 0;
      for (size_t i = 0; i < lens->size(); i++) {
        if ((*lens)[i] < 0 || off + (*lens)[i] > bytes->size())
          return Outcome::Error("TE_EINVAL", "token byte lengths exceed the byte buffer");
        ptrs[i] = reinterpret_cast<const char *>(bytes->data()) + off;
        off += (*lens)[i];
      }
      te_status s = te_set_token_bytes(w.engine, ptrs.data(), lens->data(), static_cast<int>(lens->size()));
      return s == TE_OK ? Outcome::Ok() : Outcome::Failed(s);
    });
  }

  /* sample(requestId, request): settles when the request finishes (continuous batching). */
  Napi::Value Sample(const Napi::CallbackInfo &info) {
    double request_id = ToNumber(info[0], "requestId");
    auto a = std::make_shared<SampleArgs>(ReadSample(request_id, info[1].As<Napi::Object>()));
    return Queue(info.Env(), [a](Worker &w, napi_deferred d) {
      if (w.engine == nullptr) return Outcome::Error("TE_EINVAL", "the engine is not open");
      std::vector<const char *> stops;
      std::vector<int32_t> stop_lens;
      for (const std::string &s : a->stop_strings) {
        stops.push_back(s.data());
        stop_lens.push_back(static_cast<int32_t>(s.size()));
      }
      te_sample_request r{};
      r.adapter_id = a->has_adapter ? a->adapter_id.c_str() : nullptr;
      r.prompt = a->prompt.data();
      r.prompt_len = static_cast<int>(a->prompt.size());
      r.num_samples = a->num_samples;
      r.max_tokens = a->max_tokens;
      r.temperature = a->temperature;
      r.top_k = a->top_k;
      r.top_p = a->top_p;
      r.seed = a->seed;
      r.stop_tokens = a->stop_tokens.data();
      r.n_stop_tokens = static_cast<int>(a->stop_tokens.size());
      r.stop_strings = stops.data();
      r.stop_string_lens = stop_lens.data();
      r.n_stop_strings = static_cast<int>(stops.size());
      r.prompt_logprobs = a->prompt_logprobs ? 1 : 0;
      r.topk_prompt_logprobs = a->topk_prompt_logprobs;
      uint64_t handle = 0;
      te_status s = te_sample_submit(w.engine, &r, &handle);
      if (s != TE_OK) return Outcome::Failed(s);
      w.Track(a->request_id, handle, d);
      return Outcome::Later();
    });
  }

  /* Resolves true when the request was still queued or running (its promise rejects with ABORTED). */
  Napi::Value CancelSample(const Napi::CallbackInfo &info) {
    double request_id = ToNumber(info[0], "requestId");
    return Queue(info.Env(), [request_id](Worker &w, napi_deferred) {
      bool found = w.engine != nullptr && w.Cancel(request_id);
      return Outcome::Ok([found](Napi::Env env) { return Napi::Boolean::New(env, found); });
    });
  }

  /* Queued jobs finish, running sample requests fail with ENGINE_CLOSED, the thread is joined. */
  Napi::Value Close(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (worker_->Closed()) throw Napi::Error::New(env, "close() was already called");
    napi_value promise = nullptr;
    napi_deferred deferred = nullptr;
    NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred, &promise), Napi::Value());
    worker_->Close(deferred);
    return Napi::Value(env, promise);
  }

  std::shared_ptr<Worker> worker_;
};

}  // namespace
}  // namespace tuft

/* backends(): the registered backends in order of preference, [{ name, device, available }]. */
static Napi::Value Backends(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  for (int i = 0; i < te_backend_count(); i++) {
    te_backend_desc d{};
    if (te_backend_info(i, &d) != TE_OK) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", d.name);
    o.Set("device", d.device);
    o.Set("available", d.available != 0);
    out.Set(out.Length(), o);
  }
  return out;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", tuft::Engine::Define(env));
  exports.Set("backends", Napi::Function::New(env, Backends, "backends"));
  return exports;
}

NODE_API_MODULE(tuft_engine, Init)
