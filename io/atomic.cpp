// Atomic file writes and checked whole-file reads (POSIX).
#include "io/atomic.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "kernels/common.h"
#include "kernels/util.h"

namespace genie::io {

namespace {

std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// fsync an open descriptor of `p` (file or directory); directories may refuse on some filesystems.
bool fsync_path(const std::string& p, bool is_dir) {
  const int fd = ::open(p.c_str(), is_dir ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 || (is_dir && (errno == EINVAL || errno == EROFS));
}

}  // namespace

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_dirs(const std::string& path) {
  GENIE_CHECK(!path.empty(), "[io] expected a directory path, got an empty string");
  std::string cur;
  size_t i = 0;
  while (i <= path.size()) {
    const size_t next = path.find('/', i);
    const size_t end = next == std::string::npos ? path.size() : next;
    cur = path.substr(0, end);
    i = end + 1;
    if (cur.empty() || cur == "." || cur == "..") {
      if (next == std::string::npos) break;
      continue;
    }
    struct stat st;
    if (::stat(cur.c_str(), &st) == 0) {
      GENIE_CHECK(S_ISDIR(st.st_mode), "[io] ", path, ": cannot create directory, '", cur,
                  "' exists and is not a directory");
    } else if (::mkdir(cur.c_str(), 0777) != 0 && errno != EEXIST) {
      throw Error(
          str("[io] ", path, ": cannot create directory '", cur, "' (", std::strerror(errno), ")"));
    }
    if (next == std::string::npos) break;
  }
}

std::string temp_path_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  const std::string dir = dir_of(path);
  return str(dir == "." && path.find('/') == std::string::npos ? std::string() : dir + "/", ".",
             base_of(path), ".tmp-", ::getpid(), "-", counter.fetch_add(1));
}

std::string why_cannot_create(const std::string& path, int err) {
  const std::string dir = dir_of(path);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return str("directory '", dir, "' does not exist");
  if (!S_ISDIR(st.st_mode)) return str("'", dir, "' is not a directory");
  if (::access(dir.c_str(), W_OK) != 0) return str("directory '", dir, "' is not writable");
  if (dir_exists(path)) return "it is a directory";
  return std::strerror(err);
}

void fsync_and_rename(const std::string& tmp, const std::string& path) {
  GENIE_CHECK(fsync_path(tmp, false), "[io] ", path, ": cannot sync temporary file '", tmp, "' (",
              std::strerror(errno), ")");
  if (dir_exists(path)) throw Error(str("[io] ", path, ": cannot write, it is a directory"));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw Error(
        str("[io] ", path, ": cannot rename temporary file onto it (", std::strerror(errno), ")"));
  fsync_path(dir_of(path),
             true);  // best effort: the rename is durable once the directory is synced
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    throw Error(str("[io] ", path, ": cannot write (", why_cannot_create(path, err), ")"));
  }
  // Any failure (a full disk: ENOSPC, or EFBIG past RLIMIT_FSIZE) closes the descriptor, deletes
  // the temporary file and throws naming `path`.
  int err = 0;
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += size_t(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw Error(str("[io] ", path, ": cannot write (", std::strerror(err), ")"));
  }
  try {
    fsync_and_rename(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

std::string file_fingerprint(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(str("[io] ", path, ": cannot read"));
  uint64_t h = kFnv1aBasis;
  unsigned char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) h = fnv1a64(buf, n, h);
  std::fclose(f);
  return hex64(h);
}

std::string read_text_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw Error(str("[io] ", path, ": does not exist"));
    throw Error(str("[io] ", path, ": cannot access (", std::strerror(errno), ")"));
  }
  GENIE_CHECK(!S_ISDIR(st.st_mode), "[io] ", path, ": expected a file, got a directory");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(str("[io] ", path, ": cannot read (", std::strerror(errno), ")"));
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  GENIE_CHECK(!bad, "[io] ", path, ": read error");
  return out;
}

}  // namespace genie::io
