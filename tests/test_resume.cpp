// Resume after SIGKILL: a run killed during Genie-D synthesis, resumed, killed again during Genie-M
// reconstruction and resumed once more writes a quantized model file identical byte for byte to an
// uninterrupted run's (CPU), and the same synthetic images. Checkpoints from different settings or
// a different model are refused with what differs; a checkpoint blocks a fresh run into its --out.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "io/h5.h"
#include "kernels/json.h"
#include "test_cli.h"
#include "test_util.h"

using namespace genie;
using genie::test::ProcResult;
using genie::test::run_genie;
using genie::test::TempDir;

namespace {

const std::string kModel = test::source_path("tests/data/vgg_small.h5");

std::vector<std::string> tiny_args(const std::string& out) {
  return {"quantize", "--model",       kModel, "--out",           out,   "--samples",
          "16",       "--batch",       "8",    "--distill-iters", "20",  "--recon-iters",
          "20",       "--recon-batch", "8",    "--device",        "cpu", "--threads",
          "1",        "--seed",        "3",    "--quiet"};
}

// Value of an integer field of <out>/checkpoint/state.json, or -1 while there is none.
int64_t state_field(const std::string& out, const char* key) {
  const std::string text = test::read_file(out + "/checkpoint/state.json");
  if (text.empty()) return -1;
  try {
    return Json::parse(text, "state.json").get_int(key, -1);
  } catch (const Error&) {
    return -1;
  }
}

// Waits (polling every 2 ms, at most 120 s) until state.json's `key` reaches `value`, then kills
// the child with SIGKILL after `delay_ms`. Returns false when the child ended first.
bool kill_when(pid_t pid, const std::string& out, const char* key, int64_t value, int delay_ms) {
  const auto t0 = std::chrono::steady_clock::now();
  while (state_field(out, key) < value) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) return false;
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(120)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  ::kill(pid, SIGKILL);
  return true;
}

using test::contains;

}  // namespace

TEST_CASE(
    "genie_run: SIGKILL during synthesis and during reconstruction, resumed, gives the same model "
    "file") {
  TempDir tmp;
  const std::string ref = tmp / "ref", run = tmp / "run", log = tmp / "log.txt";

  // The uninterrupted run.
  const ProcResult r0 = run_genie(tiny_args(ref));
  INFO(r0.err);
  REQUIRE(r0.rc == 0);

  // 1. Killed during Genie-D, after the first batch's checkpoint (inside the second batch).
  pid_t pid = test::spawn_genie(tiny_args(run), log);
  REQUIRE_MESSAGE(kill_when(pid, run, "batches_done", 1, 0),
                  "the run ended before it could be killed");
  CHECK(test::wait_child(pid) == -SIGKILL);
  CHECK(state_field(run, "batches_done") == 1);
  CHECK(state_field(run, "units_done") == 0);
  CHECK_FALSE(test::path_exists(run + "/quantized.h5"));

  // A fresh run into the same --out is refused while the checkpoint is there.
  {
    const ProcResult again = run_genie(tiny_args(run));
    CHECK(again.rc == 2);
    CHECK(contains(again.err, "--resume"));
  }
  // Different settings or a different model: refused, naming what differs; the checkpoint survives.
  {
    const ProcResult seed = run_genie({"--resume", run, "--seed", "4", "--quiet"});
    INFO(seed.err);
    CHECK(seed.rc == 2);
    CHECK(contains(seed.err, "seed: checkpoint 3, now 4"));
    const ProcResult bits =
        run_genie({"--resume", run, "--wbits", "2", "--recon-iters", "30", "--quiet"});
    INFO(bits.err);
    CHECK(bits.rc == 2);
    CHECK(contains(bits.err, "wbits: checkpoint 4, now 2"));
    CHECK(contains(bits.err, "recon-iters: checkpoint 20, now 30"));
    const ProcResult model =
        run_genie({"--resume", run, "--model", test::source_path("models/data/resnet20_fmnist.h5"),
                   "--quiet"});
    INFO(model.err);
    CHECK(model.rc == 2);
    CHECK(contains(model.err, "model:"));
    CHECK(contains(model.err, "fingerprint"));
    CHECK(state_field(run, "batches_done") == 1);
  }

  // 2. Resumed (settings from the checkpoint), killed during Genie-M after two finished units.
  pid = test::spawn_genie({"--resume", run, "--threads", "1", "--quiet"}, log);
  REQUIRE_MESSAGE(kill_when(pid, run, "units_done", 2, 20),
                  "the run ended before it could be killed");
  CHECK(test::wait_child(pid) == -SIGKILL);
  CHECK(state_field(run, "batches_done") == 2);
  const int64_t units_done = state_field(run, "units_done");
  CHECK(units_done >= 2);
  CHECK(units_done < 7);
  CHECK_FALSE(test::path_exists(run + "/quantized.h5"));

  // 3. Resumed to the end.
  const ProcResult r3 = run_genie({"--resume", run, "--threads", "1", "--quiet"});
  INFO(r3.err, test::read_file(log));
  REQUIRE(r3.rc == 0);
  CHECK_FALSE(test::path_exists(run + "/checkpoint"));

  const std::string a = test::read_file(ref + "/quantized.h5"),
                    b = test::read_file(run + "/quantized.h5");
  REQUIRE(a.size() > 1000);
  CHECK(a.size() == b.size());
  CHECK_MESSAGE(a == b, "the resumed run's quantized model differs from the uninterrupted run's");
  const Tensor ia = io::H5Reader(ref + "/images.h5").read_f32("images");
  const Tensor ib = io::H5Reader(run + "/images.h5").read_f32("images");
  CHECK(ia.to_vector() == ib.to_vector());
  const Json rep = Json::parse(test::read_file(run + "/report.json"), "report.json");
  CHECK(rep.at("resumed").as_bool());
  const Json rep0 = Json::parse(test::read_file(ref + "/report.json"), "report.json");
  CHECK(rep.at("units").size() == rep0.at("units").size());
  for (size_t i = 0; i < rep.at("units").size(); ++i)
    CHECK(rep.at("units")[i].at("loss_after").as_number() ==
          rep0.at("units")[i].at("loss_after").as_number());
}

TEST_CASE("genie_run: --resume of a directory without a checkpoint") {
  TempDir tmp;
  const ProcResult r = run_genie({"--resume", tmp.path});
  CHECK(r.rc == 2);
  CHECK(contains(r.err, "no checkpoint"));
  CHECK(contains(r.err, tmp.path));
}
