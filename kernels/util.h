// Small host-side helpers that every layer shares, each written once: hashing (seed mixing, byte
// fingerprints), timing (a stopwatch) and text (edit distance for "did you mean …" suggestions,
// durations for people).
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace genie {

// ---- hashing ----
// SplitMix64's finaliser: a bijective 64-bit mix. Derives independent Philox keys and seeds from
// (seed, index) pairs, so that nearby seeds or indices give unrelated streams.
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// 64-bit FNV-1a over bytes, continuing from `h` (start with kFnv1aBasis): file fingerprints.
inline constexpr uint64_t kFnv1aBasis = 1469598103934665603ull;
uint64_t fnv1a64(const void* data, size_t n, uint64_t h = kFnv1aBasis);
// 16 lower-case hex digits.
std::string hex64(uint64_t h);

// ---- timing ----
// Wall time (steady clock) since construction or the last restart().
class Stopwatch {
 public:
  Stopwatch() : t0_(Clock::now()) {}
  double seconds() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }
  void restart() { t0_ = Clock::now(); }
  // seconds(), then restart(): the length of one lap.
  double lap() {
    const auto t = Clock::now();
    const double s = std::chrono::duration<double>(t - t0_).count();
    t0_ = t;
    return s;
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0_;
};

// ---- text ----
// Levenshtein distance (insertions, deletions, substitutions each cost 1).
size_t edit_distance(const std::string& a, const std::string& b);
// The `n` names of `names` closest to `name` by edit distance (ties: alphabetical).
std::vector<std::string> closest_keys(const std::string& name,
                                      const std::vector<std::string>& names, size_t n = 3);
// "4.2s" under a minute, "2m05s" under an hour, "1h02m03s" beyond; "?" for a negative or NaN.
std::string format_duration(double seconds);

}  // namespace genie
