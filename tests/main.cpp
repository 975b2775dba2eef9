// doctest entry point. Prints how many GPU cases were skipped (no CUDA device / CPU-only build)
// how many PyTorch cross-checks (no python3-torch) and ONNX Runtime checks (no onnxruntime).
#define DOCTEST_CONFIG_IMPLEMENT
#include <cstdio>

#include "test_util.h"

int main(int argc, char** argv) {
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  const int rc = ctx.run();
  if (genie::test::torch_skipped() > 0)
    std::printf("[genie] PyTorch cross-checks skipped: %d (no /usr/bin/python3 with torch, h5py)\n",
                genie::test::torch_skipped());
  if (genie::test::onnx_skipped() > 0)
    std::printf(
        "[genie] ONNX Runtime checks skipped: %d (no Python with onnx, onnxruntime, numpy "
        "and h5py: GENIE_ONNX_PYTHON or .venv-onnx/, see README)\n",
        genie::test::onnx_skipped());
  std::printf("[genie] CUDA built: %s; GPU available: %s; GPU cases skipped: %d\n",
              genie::cuda_built() ? "yes" : "no", genie::cuda_available() ? "yes" : "no",
              genie::test::gpu_skipped());
  return rc;
}
