// Everything a run checks before it writes anything (engine/prepare.h).
#include "engine/prepare.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "engine/checkpoint.h"
#include "engine/evaluate.h"
#include "engine/fold_bn.h"
#include "io/atomic.h"
#include "io/model_file.h"
#include "kernels/util.h"
#include "models/generator.h"

namespace genie::engine {

namespace fs = std::filesystem;

namespace {

// --out must be a writable directory or creatable (its first existing ancestor a writable
// directory). Nothing is created here.
void check_out_dir(const std::string& out) {
  if (out.empty()) throw InputError("missing required flag --out DIR");
  std::error_code ec;
  const fs::path p(out);
  if (fs::exists(p, ec)) {
    if (!fs::is_directory(p, ec))
      throw InputError(str("--out ", out, ": exists and is not a directory"));
    if (::access(out.c_str(), W_OK | X_OK) != 0)
      throw InputError(str("--out ", out, ": directory is not writable"));
    return;
  }
  fs::path anc = p.has_parent_path() ? p.parent_path() : fs::path(".");
  while (!anc.empty() && !fs::exists(anc, ec))
    anc = anc.has_parent_path() && anc.parent_path() != anc ? anc.parent_path() : fs::path();
  if (anc.empty()) anc = p.is_absolute() ? fs::path("/") : fs::path(".");
  if (!fs::is_directory(anc, ec))
    throw InputError(
        str("--out ", out, ": cannot be created, '", anc.string(), "' is not a directory"));
  if (::access(anc.c_str(), W_OK | X_OK) != 0)
    throw InputError(
        str("--out ", out, ": cannot be created, directory '", anc.string(), "' is not writable"));
}

// An earlier run's checkpoint in --out: resumed only when asked for, and only when it was made
// with the same command, result settings and model. Returns whether the run resumes.
bool check_checkpoint(const Prepared& p) {
  const PipelineConfig& cfg = p.cfg;
  if (cfg.resume.empty()) {
    if (Checkpoint::exists(cfg.out))
      throw InputError(str("--out ", cfg.out, ": holds the checkpoint of an unfinished run (",
                           Checkpoint::dir_of(cfg.out), "); continue it with --resume ", cfg.out,
                           ", or choose another --out (or delete that directory)"));
    return false;
  }
  if (cfg.resume != cfg.out && fs::path(cfg.resume) != fs::path(cfg.out))
    throw InputError(str("--resume ", cfg.resume, ": must be the run's --out directory (got --out ",
                         cfg.out, ")"));
  const std::string diff = Checkpoint::differences(Checkpoint::read_state(cfg.resume), p.command,
                                                   result_settings_json(cfg), p.fingerprint);
  if (!diff.empty())
    throw InputError(str("--resume ", cfg.resume,
                         ": the checkpoint was made with different settings or a different "
                         "model; refusing to continue it:\n",
                         diff));
  return true;
}

// Genie-D on the CPU must fit in the machine's memory at all: a lower bound (the generator's
// weights with their gradients and Adam moments, and one batch of the teacher's activations)
// against the physical memory, so that an impossible image size or batch is refused before
// anything is written rather than failing later on an allocation.
void check_distill_memory(const Prepared& p) {
  const auto& info = p.model.info();
  const double gen_params = double(models::GenieGenerator::kLatentDim + 1) * 128.0 *
                            double(info.H / 4) * double(info.W / 4);
  double acts = 0;  // per image
  for (const Shape& s : p.model.node_shapes(1)) {
    double n = 1;
    for (int64_t d : s) n *= double(d);
    acts += n;
  }
  const double bytes = 4.0 * (4.0 * gen_params + double(p.cfg.batch) * acts);
  const double have = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
  if (have > 0 && bytes > have)
    throw InputError(str("--batch ", p.cfg.batch, ": Genie-D needs at least ",
                         int64_t(bytes / 1e9 + 0.5), " GB for this model at ", info.H, "x", info.W,
                         " (the generator's weights alone ", int64_t(16.0 * gen_params / 1e9 + 0.5),
                         " GB), the machine has ", int64_t(have / 1e9 + 0.5),
                         " GB; use a smaller --batch or image size"));
}

Prepared prepare_common(const PipelineConfig& cfg_in, const std::string& command) {
  const Stopwatch clock;
  Prepared p;
  p.cfg = cfg_in;
  p.command = command;
  const PipelineConfig& cfg = p.cfg;
  check_ranges(cfg);
  if (cfg.model.empty()) throw InputError("missing required flag --model FILE");
  // Under MPI only rank 0 touches the output folder (other ranks may not even see it).
  const Comm& world = Comm::world();
  if (world.root()) check_out_dir(cfg.out);
  p.device = resolve_device(cfg.device);
  if (p.device == Device::CPU && cfg.precision != "fp32")
    throw InputError(str("--precision ", cfg.precision,
                         ": the CPU computes convolutions and GEMMs ",
                         "in FP32 only (use --device cuda, or --precision fp32)"));
  if (cfg.threads > 0) set_cpu_threads(cfg.threads);
  try {
    p.model = io::load_model(cfg.model);
    p.fingerprint = io::file_fingerprint(cfg.model);
    // The Genie-D settings against the model (no BN layers, input size not divisible by 4, …).
    if (command == "distill" || cfg.calib == "genie")
      validate_distill(p.model, distill_config(cfg, p.model.device()));
  } catch (const Error& e) {
    throw InputError(str("--model ", cfg.model, ": ", e.what()));
  }
  if ((command == "distill" || cfg.calib == "genie") && p.device == Device::CPU)
    check_distill_memory(p);
  int resume = world.root() && check_checkpoint(p) ? 1 : 0;
  world.broadcast(&resume, sizeof resume);
  p.resume = resume != 0;
  p.load_s = clock.seconds();
  return p;
}

// --calib real:PATH | FILE.h5: at least --samples images of the model's input shape (host).
Tensor load_calibration(const PipelineConfig& c, const io::InputSpec& spec) {
  std::string src = c.calib;
  const bool real = src.rfind("real:", 0) == 0;
  if (real) src = src.substr(5);
  if (src == "fashion-mnist") src = "fashion-mnist:train";
  Tensor images;
  try {
    if (real) {
      images = io::load_labeled_images(src, spec, c.samples).images;
    } else if (io::file_exists(src)) {
      images = io::load_h5_images(src, spec, c.samples, /*require_labels=*/false).images;
    } else {
      throw InputError(str("--calib expects genie, noise, real:PATH or an HDF5 image file, got '",
                           c.calib, "'",
                           io::dir_exists(src) ? " (a directory: use real:" + src + ")" : ""));
    }
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    throw InputError(str("--calib ", c.calib, ": ", e.what()));
  }
  if (images.dim(0) < c.samples)
    throw InputError(str("--calib ", c.calib, ": expected at least --samples ", c.samples,
                         " images, got ", images.dim(0)));
  return images;
}

}  // namespace

Prepared prepare_distill(const PipelineConfig& cfg) {
  Prepared p = prepare_common(cfg, "distill");
  Comm::world().barrier();  // every rank's inputs are good before rank 0 writes anything
  return p;
}

Prepared prepare_quantize(const PipelineConfig& cfg_in) {
  // --recon-shards 0: one shard per rank, decided before the checkpoint's settings are compared.
  PipelineConfig cfg = cfg_in;
  if (cfg.recon_shards == 0) cfg.recon_shards = Comm::world().size();
  const int64_t rows = std::min(cfg.recon_batch, cfg.samples);  // rows of a Genie-M batch
  if (cfg.recon_shards > rows)
    throw InputError(str("--recon-shards ", cfg.recon_shards, ": expected at most ", rows,
                         " shards (the rows of a Genie-M batch: --recon-batch ", cfg.recon_batch,
                         ", --samples ", cfg.samples, ")",
                         cfg_in.recon_shards == 0 ? " (0 means one per MPI rank)" : ""));
  Prepared p = prepare_common(cfg, "quantize");
  const Stopwatch clock;
  const PipelineConfig& c = p.cfg;
  const io::InputSpec spec = input_spec(p.model.info());
  if (c.calib != "genie" && c.calib != "noise") p.calib_images = load_calibration(c, spec);
  if (!c.eval.empty() && Comm::world().root()) {  // rank 0 evaluates
    try {
      p.eval_data = io::load_labeled_images(c.eval, spec, c.eval_limit);
      io::check_labels(p.eval_data, p.model.info().num_classes, c.eval);
    } catch (const Error& e) {
      throw InputError(str("--eval ", c.eval, ": ", e.what()));
    }
  }
  // The quantizer layout (bit widths against the graph) before any work.
  try {
    quant::QModel probe(c.fold_bn ? quant::fold_bn(p.model) : p.model, quant_config(c));
  } catch (const Error& e) {
    throw InputError(str("--model ", c.model, ": cannot be quantized: ", e.what()));
  }
  Comm::world().barrier();  // every rank's inputs are good before rank 0 writes anything
  p.load_s += clock.seconds();
  return p;
}

}  // namespace genie::engine
