// genie_embed: the library API from an outside project (built against the installed package).
// Quantizes a teacher to W4A4 with a tiny Genie-D calibration set, evaluates FP32 and quantized on
// the first Fashion-MNIST test images, and checks that the quantized file re-evaluates to the same
// accuracy.
//   genie_embed <teacher.h5> <out dir> [eval images, default 500]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/genie.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <teacher.h5> <out dir> [eval images]\n", argv[0]);
    return 2;
  }
  genie::Config cfg;
  cfg.model = argv[1];
  cfg.out = argv[2];
  cfg.eval = "fashion-mnist";
  cfg.eval_limit = argc > 3 ? std::atoll(argv[3]) : 500;
  cfg.wbits = 4;
  cfg.abits = 4;
  cfg.samples = 8;  // a tiny run: 8 synthetic images, a few iterations
  cfg.batch = 8;
  cfg.distill_iters = 10;
  cfg.recon_iters = 10;
  cfg.recon_batch = 8;
  cfg.device = "cpu";
  cfg.seed = 1;
  try {
    int units = 0;
    const genie::Result r = genie::quantize(cfg, [&](const genie::Event& e) {
      if (e.kind == genie::Event::UnitEnd) ++units;
    });
    std::printf("genie %s: %d units reconstructed\n", genie::version(), units);
    std::printf("FP32 top-1 %.2f %%, W4A4 top-1 %.2f %% (%lld images)\n", 100 * r.fp32.top1,
                100 * r.quant.top1, static_cast<long long>(r.quant.n));
    const genie::FileEval e = genie::evaluate(r.quant_model_path, "fashion-mnist", cfg.eval_limit);
    std::printf("re-evaluated %s (%s): top-1 %.2f %%\n", r.quant_model_path.c_str(), e.bits.c_str(),
                100 * e.result.top1);
    if (!e.quantized || e.result.top1 != r.quant.top1 || units == 0) {
      std::fprintf(stderr,
                   "genie_embed: the quantized file does not reproduce the run's accuracy\n");
      return 1;
    }
  } catch (const genie::Error& err) {
    std::fprintf(stderr, "genie_embed: %s\n", err.what());
    return 1;
  }
  return 0;
}
