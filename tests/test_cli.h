// Helpers for the genie_run tests: run the real binary as a child process (exit code, stdout,
// stderr), spawn it in the background to kill it, temporary directories, small files.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace genie::test {

// The genie_run binary of this build (GENIE_RUN_PATH; the environment variable GENIE_RUN
// overrides).
std::string genie_run_path();

struct ProcResult {
  int rc = -1;           // exit code, or -1 when killed by a signal
  int signal = 0;        // the signal that ended it, if any
  std::string out, err;  // captured stdout / stderr
};
// Runs genie_run with `args` and waits for it.
ProcResult run_genie(const std::vector<std::string>& args);
// Runs the program at path `exe` with `args` and waits for it.
ProcResult run_program(const std::string& exe, const std::vector<std::string>& args);
// Starts genie_run with `args` in the background (stdout and stderr appended to `log`).
pid_t spawn_genie(const std::vector<std::string>& args, const std::string& log);
// Waits for `pid`: the exit code, or -signal when a signal ended it.
int wait_child(pid_t pid);

// A fresh directory under $TMPDIR (default /tmp), removed with its contents on destruction.
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);
bool path_exists(const std::string& path);

// A labeled HDF5 evaluation set for a model file: `n` N(0,1) images of the model's input shape
// (normalized space), labelled with the FP32 model's own top-1 predictions (so FP32 top-1 is 1).
void write_self_labeled_set(const std::string& model_path, const std::string& out_h5, int64_t n,
                            uint64_t seed);

}  // namespace genie::test
