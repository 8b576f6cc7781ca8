// json.h — a small JSON reader (config.json, safetensors headers, adapter_config.json) and the string
// escaping used by the writers. Objects keep their key order; numbers are doubles.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "status.h"

namespace tuft {

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;

  const Json *get(const std::string &key) const;  // object member or nullptr
  bool is_null() const { return kind == Null; }
  bool is_num() const { return kind == Number; }
  bool is_str() const { return kind == String; }
};

// Parses text; on error returns TE_EINVAL naming `what` and the byte offset.
te_status json_parse(const std::string &text, const char *what, Json *out);
// Reads and parses a file (TE_ENOTFOUND when missing, TE_EIO on read errors).
te_status json_parse_file(const std::string &path, Json *out);
// "text" with JSON escapes, quotes included.
std::string json_quote(const std::string &s);

}  // namespace tuft
