// Hashing, text and duration helpers (kernels/util.h).
#include "kernels/util.h"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace genie {

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string hex64(uint64_t h) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> closest_keys(const std::string& name,
                                      const std::vector<std::string>& names, size_t n) {
  std::vector<std::pair<size_t, std::string>> d;
  d.reserve(names.size());
  for (const auto& k : names) d.emplace_back(edit_distance(name, k), k);
  std::sort(d.begin(), d.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < d.size() && i < n; ++i) out.push_back(d[i].second);
  return out;
}

std::string format_duration(double s) {
  if (!(s >= 0)) return "?";
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm%02ds", int(s) / 3600, (int(s) / 60) % 60, int(s) % 60);
  }
  return buf;
}

}  // namespace genie
