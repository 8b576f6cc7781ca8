// safetensors.cc — header parsing with bounds checks, dtype conversion to fp32, durable writing.
#include "safetensors.h"

#include <cstring>

#include "../common/json.h"

namespace tuft {

std::string shape_str(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

static DType parse_dtype(const std::string &s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I64") return DType::I64;
  if (s == "I32") return DType::I32;
  return DType::Other;
}

static size_t dtype_size(DType d) {
  switch (d) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I64: return 8;
    default: return 0;
  }
}

te_status TensorSet::open_file(const std::string &path) {
  auto mf = std::make_unique<MappedFile>();
  TE_TRY(mf->open(path));
  const unsigned char *d = mf->data();
  size_t size = mf->size();
  if (size < 8) return TE_FAIL(TE_EINVAL, "%s: not a safetensors file (too short)", path.c_str());
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | d[i];
  if (hlen > size - 8) return TE_FAIL(TE_EINVAL, "%s: header length %llu beyond the file", path.c_str(),
                                      (unsigned long long)hlen);
  Json h;
  TE_TRY(json_parse(std::string(reinterpret_cast<const char *>(d + 8), size_t(hlen)), path.c_str(), &h));
  if (h.kind != Json::Object) return TE_FAIL(TE_EINVAL, "%s: header is not an object", path.c_str());
  const unsigned char *base = d + 8 + hlen;
  size_t data_size = size - 8 - hlen;
  for (const auto &kv : h.obj) {
    if (kv.first == "__metadata__") {
      for (const auto &m : kv.second.obj)
        if (m.second.is_str()) metadata_[m.first] = m.second.str;
      continue;
    }
    const Json *dt = kv.second.get("dtype"), *sh = kv.second.get("shape"), *off = kv.second.get("data_offsets");
    if (!dt || !dt->is_str() || !sh || sh->kind != Json::Array || !off || off->kind != Json::Array ||
        off->arr.size() != 2)
      return TE_FAIL(TE_EINVAL, "%s: malformed header entry for tensor %s", path.c_str(), kv.first.c_str());
    TensorInfo t;
    t.dtype_name = dt->str;
    t.dtype = parse_dtype(dt->str);
    size_t count = 1;
    for (const auto &x : sh->arr) {
      if (!x.is_num() || x.num < 0) return TE_FAIL(TE_EINVAL, "%s: bad shape for %s", path.c_str(), kv.first.c_str());
      t.shape.push_back(int64_t(x.num));
      count *= size_t(x.num);
    }
    double b = off->arr[0].num, e = off->arr[1].num;
    if (b < 0 || e < b || e > double(data_size))
      return TE_FAIL(TE_EINVAL, "%s: data offsets of %s out of bounds", path.c_str(), kv.first.c_str());
    t.data = base + size_t(b);
    t.nbytes = size_t(e - b);
    if (dtype_size(t.dtype) && t.nbytes != count * dtype_size(t.dtype))
      return TE_FAIL(TE_EINVAL, "%s: %s holds %zu bytes, shape %s needs %zu", path.c_str(), kv.first.c_str(),
                     t.nbytes, shape_str(t.shape).c_str(), count * dtype_size(t.dtype));
    t.file = path;
    tensors_[kv.first] = std::move(t);
  }
  files_.push_back(std::move(mf));
  return TE_OK;
}

te_status TensorSet::open_model_dir(const std::string &dir) {
  std::string single = dir + "/model.safetensors";
  if (file_exists(single)) return open_file(single);
  std::string index = dir + "/model.safetensors.index.json";
  if (!file_exists(index))
    return TE_FAIL(TE_ENOTFOUND, "%s: neither model.safetensors nor model.safetensors.index.json", dir.c_str());
  Json idx;
  TE_TRY(json_parse_file(index, &idx));
  const Json *wm = idx.get("weight_map");
  if (!wm || wm->kind != Json::Object) return TE_FAIL(TE_EINVAL, "%s: no weight_map", index.c_str());
  std::vector<std::string> shards;
  for (const auto &kv : wm->obj) {
    if (!kv.second.is_str() || kv.second.str.find('/') != std::string::npos)
      return TE_FAIL(TE_EINVAL, "%s: bad shard name for %s", index.c_str(), kv.first.c_str());
    bool seen = false;
    for (const auto &s : shards) seen = seen || s == kv.second.str;
    if (!seen) shards.push_back(kv.second.str);
  }
  for (const auto &s : shards) TE_TRY(open_file(dir + "/" + s));
  return TE_OK;
}

const TensorInfo *TensorSet::find(const std::string &name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) mant <<= 1, exp--;
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7F800000 | (mant << 13);
  else bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

te_status TensorSet::read_f32(const std::string &name, const std::vector<int64_t> &shape, float *dst) const {
  const TensorInfo *t = find(name);
  if (!t) return TE_FAIL(TE_ENOTFOUND, "missing tensor %s", name.c_str());
  if (t->shape != shape)
    return TE_FAIL(TE_EINVAL, "tensor %s has shape %s, expected %s", name.c_str(), shape_str(t->shape).c_str(),
                   shape_str(shape).c_str());
  size_t n = 1;
  for (auto s : shape) n *= size_t(s);
  const unsigned char *p = t->data;
  switch (t->dtype) {
    case DType::F32: std::memcpy(dst, p, n * 4); break;
    case DType::BF16:
      for (size_t i = 0; i < n; i++) {
        uint32_t bits = uint32_t(p[2 * i] | (p[2 * i + 1] << 8)) << 16;
        std::memcpy(dst + i, &bits, 4);
      }
      break;
    case DType::F16:
      for (size_t i = 0; i < n; i++) dst[i] = half_to_float(uint16_t(p[2 * i] | (p[2 * i + 1] << 8)));
      break;
    default:
      return TE_FAIL(TE_EUNSUPPORTED, "tensor %s has dtype %s (supported: F32, F16, BF16)", name.c_str(),
                     t->dtype_name.c_str());
  }
  return TE_OK;
}

te_status write_safetensors(const std::string &path, const std::vector<TensorOut> &tensors,
                            const std::map<std::string, std::string> &metadata) {
  std::string h = "{";
  bool first = true;
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (auto it = metadata.begin(); it != metadata.end(); ++it)
      h += (it == metadata.begin() ? "" : ",") + json_quote(it->first) + ":" + json_quote(it->second);
    h += "}";
    first = false;
  }
  size_t off = 0;
  for (const auto &t : tensors) {
    size_t n = 1;
    for (auto s : t.shape) n *= size_t(s);
    h += (first ? "" : ",") + json_quote(t.name) + ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); i++) h += (i ? "," : "") + std::to_string(t.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + n * 4) + "]}";
    off += n * 4;
    first = false;
  }
  h += "}";
  while ((8 + h.size()) % 8) h += ' ';  // data starts 8-byte aligned
  unsigned char len[8];
  uint64_t hl = h.size();
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)(hl >> (8 * i));
  std::vector<const void *> parts = {len, h.data()};
  std::vector<size_t> sizes = {8, h.size()};
  for (const auto &t : tensors) {
    size_t n = 1;
    for (auto s : t.shape) n *= size_t(s);
    parts.push_back(t.data);
    sizes.push_back(n * 4);
  }
  return write_file_durable(path, parts.data(), sizes.data(), int(parts.size()));
}

}  // namespace tuft
