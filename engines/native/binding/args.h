// args.h — reading JS arguments into owned C++ values (copies: JS may reuse its typed arrays as soon
// as the call returns, while the engine thread reads them later). Type errors throw Napi::TypeError.
#ifndef TUFT_BINDING_ARGS_H
#define TUFT_BINDING_ARGS_H

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tuft {

inline Napi::Value Field(const Napi::Object &o, const char *name) { return o.Get(name); }

inline std::string ToString(const Napi::Value &v, const char *what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline double ToNumber(const Napi::Value &v, const char *what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int ToInt(const Napi::Value &v, const char *what) {
  return static_cast<int>(ToNumber(v, what));
}

inline bool ToBool(const Napi::Value &v, const char *what) {
  if (!v.IsBoolean()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

/* Seeds arrive as bigint (full 64 bits) or as a safe-integer number. */
inline uint64_t ToU64(const Napi::Value &v, const char *what) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(v.Env(), std::string(what) + " must fit in 64 unsigned bits");
    return x;
  }
  double d = ToNumber(v, what);
  if (d < 0) throw Napi::RangeError::New(v.Env(), std::string(what) + " must not be negative");
  return static_cast<uint64_t>(d);
}

template <typename T, napi_typedarray_type Kind>
std::vector<T> CopyArray(const Napi::Value &v, const char *what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Kind)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a " +
                                            (Kind == napi_int32_array     ? "Int32Array"
                                             : Kind == napi_float32_array ? "Float32Array"
                                                                          : "Uint8Array"));
  auto a = v.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

inline std::vector<int32_t> CopyI32(const Napi::Value &v, const char *what) {
  return CopyArray<int32_t, napi_int32_array>(v, what);
}

inline std::vector<float> CopyF32(const Napi::Value &v, const char *what) {
  return CopyArray<float, napi_float32_array>(v, what);
}

inline std::vector<uint8_t> CopyU8(const Napi::Value &v, const char *what) {
  return CopyArray<uint8_t, napi_uint8_array>(v, what);
}

/* Optional Float32Array: undefined/null → absent. */
inline bool CopyOptionalF32(const Napi::Object &o, const char *name, std::vector<float> *out) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return false;
  *out = CopyF32(v, name);
  return true;
}

inline Napi::Float32Array NewF32(Napi::Env env, const std::vector<float> &v) {
  auto a = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

inline Napi::Int32Array NewI32(Napi::Env env, const std::vector<int32_t> &v) {
  auto a = Napi::Int32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

}  // namespace tuft

#endif
