// status.h — error reporting for the engine core: every failure returns a te_status and leaves
// "file:line: message" in a thread-local text read by te_last_error(). Nothing here exits or aborts.
#pragma once
#include <string>

#include "../../include/engine.h"

namespace tuft {

// Records the message for the calling thread and returns code (printf-style formatting).
te_status set_error(te_status code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *last_error();
// Prefixes the current thread's error text with "context: " (used to name an item or a file).
te_status wrap_error(te_status code, const std::string &context);

}  // namespace tuft

#define TE_FAIL(code, ...) ::tuft::set_error((code), __FILE__, __LINE__, __VA_ARGS__)
#define TE_TRY(expr)                          \
  do {                                        \
    te_status te_try_status_ = (expr);        \
    if (te_try_status_ != TE_OK) return te_try_status_; \
  } while (0)
