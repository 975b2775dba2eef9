// genie_bench: microbenchmarks of the fused kernels against their composed (unfused) forms,
// convolutions, and whole Genie-D / Genie-M iterations. One JSON document on stdout (or --json
// FILE as well), a human-readable table on stderr. See bench/README.md.
//
//   genie_bench [--device cpu|cuda] [--threads N] [--filter SUBSTR[,SUBSTR…]]
//               [--exclude SUBSTR[,SUBSTR…]] [--quick] [--reps N] [--json FILE]
//               [--model resnet20_fmnist.h5] [--precision fp32|tf32|bf16] [--list]
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "bench/bench.h"

namespace {

void usage() {
  std::fprintf(
      stderr,
      "usage: genie_bench [--device cpu|cuda] [--threads N] [--filter SUBSTR] [--exclude SUBSTR]\n"
      "                   [--quick] [--reps N] [--json FILE] [--model FILE]\n"
      "                   [--precision fp32|tf32|bf16] [--list]\n"
      "  --device   where to run (default cpu)\n"
      "  --threads  CPU threads (OpenMP; default: the library default)\n"
      "  --filter   run only cases whose name contains SUBSTR (comma-separated: any of them)\n"
      "  --exclude  leave out cases whose name contains SUBSTR (comma-separated: any of them)\n"
      "  --quick    smaller sizes and fewer repetitions\n"
      "  --reps     timed repetitions per case (default: per case)\n"
      "  --json     also write the JSON document to FILE\n"
      "  --model    the Fashion-MNIST ResNet-20 teacher (default models/data/resnet20_fmnist.h5)\n"
      "  --precision  GPU convolutions and GEMMs (default fp32; the CPU computes fp32 only)\n"
      "  --list     print the case groups and exit\n"
      "  --save-model ARCH R FILE  write a built-in architecture at R x R with random weights\n"
      "             (the benchmark's) as a model file, and exit\n");
}

std::string default_model() {
  const char* rel = "models/data/resnet20_fmnist.h5";
  if (std::ifstream(rel).good()) return rel;
#ifdef GENIE_SOURCE_DIR
  return std::string(GENIE_SOURCE_DIR) + "/" + rel;
#else
  return rel;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace genie;
  try {
    bench::Options o;
    o.model_path = default_model();
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        GENIE_CHECK(i + 1 < argc, "[genie_bench] expected a value after ", a);
        return argv[++i];
      };
      if (a == "--device")
        o.device = parse_device(value());
      else if (a == "--threads")
        o.threads = std::stoi(value());
      else if (a == "--filter")
        o.filter = value();
      else if (a == "--exclude")
        o.exclude = value();
      else if (a == "--quick")
        o.quick = true;
      else if (a == "--reps")
        o.reps = std::stoi(value());
      else if (a == "--json")
        o.json_path = value();
      else if (a == "--model")
        o.model_path = value();
      else if (a == "--precision")
        o.precision = parse_precision(value());
      else if (a == "--list")
        o.list = true;
      else if (a == "--save-model") {
        const std::string arch = value(), r = value(), path = value();
        bench::save_random_model(arch, std::stoll(r), path);
        return 0;
      } else if (a == "-h" || a == "--help") {
        usage();
        return 0;
      } else {
        usage();
        throw Error(str("[genie_bench] unknown argument '", a, "'"));
      }
    }
    if (o.device == Device::CUDA)
      GENIE_CHECK(cuda_available(),
                  "[genie_bench] expected a usable CUDA device for --device cuda, got: ",
                  cuda_device_string());
    GENIE_CHECK(o.device == Device::CUDA || o.precision == Precision::FP32,
                "[genie_bench] --precision ", precision_name(o.precision),
                " needs --device cuda (the CPU computes fp32 only)");
    const PrecisionScope precision(o.precision);
    if (o.threads > 0) set_cpu_threads(o.threads);
    if (o.list) {
      std::printf(
          "copy wquant_soft wquant_hard aquant_qdrop bnstat_loss conv/resnet20 conv/resnet18 "
          "genie_d/... genie_d_scale/... genie_m/...\n");
      return 0;
    }
    std::fprintf(stderr, "genie_bench: device %s (%s), %s, %d CPU threads%s\n",
                 device_name(o.device),
                 o.device == Device::CUDA ? cuda_device_string().c_str() : "host",
                 precision_name(o.precision), cpu_threads(), o.quick ? ", quick" : "");
    bench::Bench b(o);
    bench::run_kernel_cases(b);
    bench::run_conv_cases(b);
    bench::run_genie_d_cases(b);
    bench::run_genie_m_cases(b);
    b.print_table();
    const std::string doc = b.to_json().dump(2) + "\n";
    std::fwrite(doc.data(), 1, doc.size(), stdout);
    if (!o.json_path.empty()) {
      std::ofstream f(o.json_path, std::ios::binary);
      GENIE_CHECK(f.good(), "[genie_bench] cannot write ", o.json_path);
      f << doc;
    }
    return b.any_failed() ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genie_bench: %s\n", e.what());
    return 2;
  }
}
