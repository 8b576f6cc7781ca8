// safetensors.h — reading (mapped, one file or a sharded index) and writing the safetensors format:
// 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, raw data.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../common/file.h"
#include "../common/status.h"

namespace tuft {

enum class DType { F32, F16, BF16, I64, I32, Other };

struct TensorInfo {
  DType dtype = DType::Other;
  std::string dtype_name;
  std::vector<int64_t> shape;
  const unsigned char *data = nullptr;  // inside the mapping
  size_t nbytes = 0;
  std::string file;
};

// All tensors of one checkpoint: a single .safetensors file or every shard named by an index.
class TensorSet {
 public:
  te_status open_file(const std::string &path);
  // model_dir/model.safetensors, else model_dir/model.safetensors.index.json and its shards.
  te_status open_model_dir(const std::string &dir);
  const TensorInfo *find(const std::string &name) const;
  const std::map<std::string, TensorInfo> &all() const { return tensors_; }
  const std::map<std::string, std::string> &metadata() const { return metadata_; }
  // Converts a F32/F16/BF16 tensor of exactly `shape` into dst (fp32). ENOTFOUND / EINVAL / EUNSUPPORTED.
  te_status read_f32(const std::string &name, const std::vector<int64_t> &shape, float *dst) const;

 private:
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write (fp32 only: adapters and optimizer moments are fp32).
struct TensorOut {
  std::string name;
  std::vector<int64_t> shape;
  const float *data;
};
te_status write_safetensors(const std::string &path, const std::vector<TensorOut> &tensors,
                            const std::map<std::string, std::string> &metadata);

std::string shape_str(const std::vector<int64_t> &shape);

}  // namespace tuft
