// Shared basics for every layer: error type, message formatting, the host/device qualifier macro.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__CUDACC__)
#define GENIE_HD __host__ __device__ __forceinline__
#else
#define GENIE_HD inline
#endif

namespace genie {

// Every user-facing failure is a genie::Error; main() catches it, prints it and exits non-zero.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

std::string shape_str(const std::vector<int64_t>& shape);  // "(2, 3, 4)"

[[noreturn]] void throw_error(const std::string& msg, const char* file, int line);

}  // namespace genie

// User-input / contract checks: throw genie::Error with "[op] expected ..., got ..." style text.
#define GENIE_CHECK(cond, ...)                                                   \
  do {                                                                           \
    if (!(cond)) ::genie::throw_error(::genie::str(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)
