// test_util.h — a minimal checking harness for the C++ tests: named checks with tolerances, a failure
// count that becomes the exit status, and the fixture directory (argv[1] or the compiled-in path).
#pragma once
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine.h"

namespace tt {

inline int g_failures = 0, g_checks = 0;

inline bool check(bool ok, const std::string &what) {
  g_checks++;
  if (!ok) {
    g_failures++;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
  return ok;
}

// |got − want| <= atol + rtol·|want|
inline bool near(double got, double want, double atol, double rtol, const std::string &what) {
  bool ok = std::isfinite(got) && std::fabs(got - want) <= atol + rtol * std::fabs(want);
  if (!ok) {
    char b[256];
    std::snprintf(b, sizeof b, " (got %.9g, want %.9g, diff %.3g)", got, want, std::fabs(got - want));
    return check(false, what + b);
  }
  return check(true, what);
}

// Largest |got − want| over the largest |want|: the relative error of a whole tensor.
inline double rel_err(const float *got, const float *want, size_t n) {
  double d = 0, m = 0;
  for (size_t i = 0; i < n; i++) {
    d = std::fmax(d, std::fabs(double(got[i]) - want[i]));
    m = std::fmax(m, std::fabs(double(want[i])));
  }
  return m > 0 ? d / m : d;
}

inline bool ok_status(te_status s, const std::string &what) {
  if (s != TE_OK) return check(false, what + ": status " + std::to_string(int(s)) + ": " + te_last_error());
  return check(true, what);
}

inline std::string fixtures(int argc, char **argv) {
  if (argc > 1) return argv[1];
#ifdef TUFT_FIXTURES
  return TUFT_FIXTURES;
#else
  return "../../test/fixtures/reference";
#endif
}

inline int finish(const char *name) {
  std::printf("%s: %d checks, %d failures\n", name, g_checks, g_failures);
  return g_failures ? 1 : 0;
}

}  // namespace tt
