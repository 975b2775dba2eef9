// The HDF5 probe (io/h5_probe.h): a forked child reads the whole file first.
#include "io/h5_probe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "io/h5.h"
#include "kernels/device.h"
#include "kernels/error.h"

namespace genie::io {

namespace {

bool g_child = false;

bool probe_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("GENIE_H5_PROBE");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}

// Everything an H5Reader can read from `path`; errors are the readers' business (the parent
// reports them), only crashes and hangs matter here.
void read_everything(const std::string& path) {
  H5Reader r(path);
  auto attrs = [&](const std::string& object) {
    for (const auto& a : r.list_attrs(object)) {
      try {
        r.attr_string(a, object);
      } catch (const Error&) {
      }
      try {
        r.attr_f64_vec(a, object);
      } catch (const Error&) {
      }
    }
  };
  attrs("");
  for (const auto& k : r.list_datasets()) {
    try {
      r.shape(k);
      r.stored_dtype(k);
      attrs(k);
    } catch (const Error&) {
    }
    try {
      r.read(k);
    } catch (const Error&) {
    }
    try {
      r.read_f32(k);
    } catch (const Error&) {
    }
  }
}

// The child: one thread, output discarded (or kept for triage), a time limit, then the reads.
[[noreturn]] void run_child(const std::string& path, const std::string& log, unsigned limit_s) {
  g_child = true;
  const int fd =
      ::open(log.empty() ? "/dev/null" : log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  set_cpu_threads(1);  // no OpenMP team: the parent's worker threads do not exist here
  ::alarm(limit_s);    // SIGALRM's default action ends a child that hangs
  try {
    read_everything(path);
  } catch (...) {
  }
  ::_exit(0);
}

// A minute (GENIE_H5_PROBE_SECONDS overrides it), and ten seconds more per 100 MB: a healthy file
// is read in a fraction of that.
unsigned time_limit(int64_t file_bytes) {
  const char* e = std::getenv("GENIE_H5_PROBE_SECONDS");
  const long base = e && *e ? std::strtol(e, nullptr, 10) : 60;
  return unsigned(std::max(1L, base)) + unsigned(file_bytes / (int64_t(100) << 20)) * 10;
}

std::string file_key(const std::string& path, const struct stat& st) {
  return str(path, '|', st.st_dev, ':', st.st_ino, '|', st.st_size, '|', st.st_mtim.tv_sec, '.',
             st.st_mtim.tv_nsec);
}

}  // namespace

bool in_h5_probe() { return g_child; }

void probe_h5_file(const std::string& path) {
  if (g_child || !probe_enabled()) return;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;  // the reader says why
  // The verdict per file: "" (safe) or the error, so that a bad file costs one probe.
  static std::mutex mu;
  static std::map<std::string, std::string> verdicts;
  const std::string key = file_key(path, st);
  {
    std::lock_guard<std::mutex> lk(mu);
    const auto it = verdicts.find(key);
    if (it != verdicts.end()) {
      if (it->second.empty()) return;
      throw Error(it->second);
    }
  }
  const unsigned limit = time_limit(st.st_size);
  const char* dir = std::getenv("GENIE_H5_PROBE_LOG");
  const std::string log =
      dir && *dir ? str(dir, "/probe-", ::getpid(), "-", st.st_ino, ".log") : "";
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return;  // no child to spare: read in this process, as without the probe
  if (pid == 0) run_child(path, log, limit);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    if (!log.empty()) std::remove(log.c_str());
    std::lock_guard<std::mutex> lk(mu);
    verdicts[key] = "";
    return;
  }
  const std::string how =
      WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM
          ? str("the HDF5 library did not finish reading it within ", limit, " s")
      : WIFSIGNALED(status)
          ? str("reading it crashed the HDF5 library (", strsignal(WTERMSIG(status)), ")")
          : str("reading it failed in the HDF5 library (exit status ", WEXITSTATUS(status), ")");
  const std::string msg = str("[h5] ", path, ": corrupt HDF5 file: ", how,
                              "; it was read in a separate process, so nothing else was affected",
                              log.empty() ? "" : " (log: " + log + ")");
  {
    std::lock_guard<std::mutex> lk(mu);
    verdicts[key] = msg;
  }
  throw Error(msg);
}

}  // namespace genie::io
