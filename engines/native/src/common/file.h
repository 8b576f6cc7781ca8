// file.h — file helpers: whole-file reads, read-only mappings, durable writes (write + fsync).
#pragma once
#include <cstddef>
#include <string>

#include "status.h"

namespace tuft {

bool file_exists(const std::string &path);
te_status read_file(const std::string &path, std::string *out);
// Writes the parts in order to path (truncating), then fsyncs the file and its directory.
te_status write_file_durable(const std::string &path, const void *const *parts, const size_t *sizes,
                             int n_parts);
te_status write_text_durable(const std::string &path, const std::string &text);

// A read-only memory mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  te_status open(const std::string &path);
  const unsigned char *data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const unsigned char *data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tuft
