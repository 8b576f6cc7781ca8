// status.cc — thread-local last-error text.
#include "status.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace tuft {

static thread_local std::string tl_error;

// Shortens an absolute __FILE__ to the part below "src/" so messages stay readable.
static const char *short_path(const char *file) {
  const char *p = std::strstr(file, "/src/");
  return p ? p + 1 : file;
}

te_status set_error(te_status code, const char *file, int line, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char head[256];
  std::snprintf(head, sizeof head, "%s:%d: ", short_path(file), line);
  tl_error = std::string(head) + msg;
  return code;
}

te_status wrap_error(te_status code, const std::string &context) {
  // Keep "file:line:" first so the origin stays visible, then the context, then the message.
  size_t colon = tl_error.find(": ");
  if (colon == std::string::npos) {
    tl_error = context + ": " + tl_error;
  } else {
    tl_error = tl_error.substr(0, colon + 2) + context + ": " + tl_error.substr(colon + 2);
  }
  return code;
}

const char *last_error() { return tl_error.c_str(); }

}  // namespace tuft

extern "C" const char *te_last_error(void) { return tuft::last_error(); }
