// Child-process and file helpers for the genie_run tests (see test_cli.h).
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/tape.h"
#include "io/h5.h"
#include "io/model_file.h"
#include "test_cli.h"
#include "test_util.h"

extern char** environ;

namespace genie::test {

namespace fs = std::filesystem;

std::string genie_run_path() {
  if (const char* e = std::getenv("GENIE_RUN"); e && *e) return e;
#ifdef GENIE_RUN_PATH
  return GENIE_RUN_PATH;
#else
  return "genie_run";
#endif
}

namespace {

pid_t spawn(const std::string& exe, const std::vector<std::string>& args,
            const std::string& out_path, const std::string& err_path, bool append) {
  std::vector<std::string> all{exe};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), flags, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), flags, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE_MESSAGE(rc == 0, "cannot start ", exe, " (errno ", rc, ")");
  return pid;
}

}  // namespace

int wait_child(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -1000;
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return -1000;
}

ProcResult run_genie(const std::vector<std::string>& args) {
  return run_program(genie_run_path(), args);
}

ProcResult run_program(const std::string& exe, const std::vector<std::string>& args) {
  TempDir io;
  const pid_t pid = spawn(exe, args, io / "out", io / "err", false);
  const int rc = wait_child(pid);
  ProcResult r;
  if (rc >= 0)
    r.rc = rc;
  else
    r.signal = -rc;
  r.out = read_file(io / "out");
  r.err = read_file(io / "err");
  return r;
}

bool torch_available() {
  static const bool ok = [] {
    if (::access("/usr/bin/python3", X_OK) != 0) return false;
    return run_program("/usr/bin/python3", {"-c", "import torch, h5py"}).rc == 0;
  }();
  return ok;
}

pid_t spawn_genie(const std::vector<std::string>& args, const std::string& log) {
  return spawn(genie_run_path(), args, log, log, true);
}

TempDir::TempDir() {
  const char* t = std::getenv("TMPDIR");
  std::string tmpl = std::string(t && *t ? t : "/tmp") + "/genie_test_XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  REQUIRE(::mkdtemp(buf.data()) != nullptr);
  path = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

bool path_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

void write_self_labeled_set(const std::string& model_path, const std::string& out_h5, int64_t n,
                            uint64_t seed) {
  const models::Model m = io::load_model(model_path);
  const auto& info = m.info();
  const Tensor x = randn_cpu({n, info.C, info.H, info.W}, seed);
  NoGradGuard ng;
  const std::vector<float> logits = m.forward(x).to_vector();
  const int64_t K = info.num_classes;
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int32_t best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (logits[size_t(i * K + k)] > logits[size_t(i * K + best)]) best = int32_t(k);
    labels[size_t(i)] = best;
  }
  io::H5Writer w(out_h5);
  w.write("images", x);
  w.write_i32("labels", labels, {n});
  w.set_attr_i64("normalized", 1);
  w.commit();
}

}  // namespace genie::test
