// The error types of every layer, in a header any layer can include (no other dependency):
//   Error       every user-facing failure; genie_run prints it and exits 1;
//   InputError  bad user input (a flag, a setting, a file, data, an output folder): exit 2, and
//               nothing has been written when it is thrown.
// GENIE_CHECK(cond, parts…) throws Error with the parts joined ("[op] expected …, got …").
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace genie {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InputError : public Error {
 public:
  using Error::Error;
};

template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void throw_error(const std::string& msg, const char* file, int line);

}  // namespace genie

// User-input / contract checks: throw genie::Error with "[op] expected ..., got ..." style text.
#define GENIE_CHECK(cond, ...)                                                        \
  do {                                                                                \
    if (!(cond)) ::genie::throw_error(::genie::str(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)
