// doctest entry point. Prints how many GPU cases were skipped (no CUDA device / CPU-only build).
#define DOCTEST_CONFIG_IMPLEMENT
#include <cstdio>

#include "test_util.h"

int main(int argc, char** argv) {
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  const int rc = ctx.run();
  std::printf("[genie] CUDA built: %s; GPU available: %s; GPU cases skipped: %d\n",
              genie::cuda_built() ? "yes" : "no", genie::cuda_available() ? "yes" : "no",
              genie::test::gpu_skipped());
  return rc;
}
