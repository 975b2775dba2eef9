// Dataset readers: Fashion-MNIST idx.gz (zlib), image folders (libpng/libjpeg + the torchvision
// evaluation transform), HDF5 arrays.
#include "io/datasets.h"

#include <dirent.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <exception>

#include "io/atomic.h"
#include "io/h5.h"

namespace genie::io {

const char* const kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

namespace {

void check_spec(const InputSpec& s, const char* op) {
  GENIE_CHECK(s.channels > 0 && s.height > 0 && s.width > 0, "[", op,
              "] expected a positive input shape, got (", s.channels, ", ", s.height, ", ", s.width,
              ")");
  GENIE_CHECK(s.mean.size() == size_t(s.channels) || s.mean.size() == 1, "[", op, "] expected ",
              s.channels, " mean values (one per channel), got ", s.mean.size());
  GENIE_CHECK(s.std.size() == size_t(s.channels) || s.std.size() == 1, "[", op, "] expected ",
              s.channels, " std values (one per channel), got ", s.std.size());
  for (float v : s.std)
    GENIE_CHECK(v > 0.f && std::isfinite(v), "[", op, "] expected std > 0, got ", v);
}

float mean_of(const InputSpec& s, int64_t c) {
  return s.mean.size() == 1 ? s.mean[0] : s.mean[size_t(c)];
}
float std_of(const InputSpec& s, int64_t c) {
  return s.std.size() == 1 ? s.std[0] : s.std[size_t(c)];
}

// torchvision: ToTensor (pixel / 255 in float32) then Normalize ((x - mean) / std in float32).
inline float normalize_pixel(float x01, float mean, float std) { return (x01 - mean) / std; }

// ---- idx.gz ----

class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    if (!file_exists(path)) throw Error(str("[fashion-mnist] ", path, ": does not exist"));
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) throw Error(str("[fashion-mnist] ", path, ": cannot open"));
  }
  ~GzFile() {
    if (f_) gzclose(f_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  void read(void* dst, size_t n, const char* what) {
    auto* p = static_cast<unsigned char*>(dst);
    while (n > 0) {
      const unsigned chunk = unsigned(std::min<size_t>(n, 1u << 30));
      const int got = gzread(f_, p, chunk);
      if (got < 0) {
        int errnum = 0;
        const char* msg = gzerror(f_, &errnum);
        throw Error(str("[fashion-mnist] ", path_, ": corrupt gzip data while reading ", what, " (",
                        msg, ")"));
      }
      if (got == 0)
        throw Error(str("[fashion-mnist] ", path_, ": truncated file while reading ", what));
      p += got;
      n -= size_t(got);
    }
  }
  uint32_t be32(const char* what) {
    unsigned char b[4];
    read(b, 4, what);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
  }

 private:
  std::string path_;
  gzFile f_ = nullptr;
};

struct IdxRaw {
  std::vector<uint8_t> pixels;  // n * 28 * 28
  std::vector<uint8_t> labels;  // n
  int64_t n = 0;
};

IdxRaw read_fashion_idx(const std::string& split, int64_t limit, const std::string& root) {
  GENIE_CHECK(split == "train" || split == "test",
              "[fashion-mnist] expected split 'train' or 'test', got '", split, "'");
  GENIE_CHECK(dir_exists(root), "[fashion-mnist] ", root,
              ": directory does not exist (install the Debian package dataset-fashion-mnist)");
  const std::string prefix = root + "/" + (split == "train" ? "train" : "t10k");
  const std::string img_path = prefix + "-images-idx3-ubyte.gz",
                    lab_path = prefix + "-labels-idx1-ubyte.gz";
  GzFile imgs(img_path), labs(lab_path);
  const uint32_t img_magic = imgs.be32("the header");
  GENIE_CHECK(img_magic == 2051, "[fashion-mnist] ", img_path,
              ": expected idx3 image magic 2051 (0x00000803), got ", img_magic);
  const uint32_t n_img = imgs.be32("the header"), rows = imgs.be32("the header"),
                 cols = imgs.be32("the header");
  GENIE_CHECK(rows == 28 && cols == 28, "[fashion-mnist] ", img_path,
              ": expected 28x28 images, got ", rows, "x", cols);
  const uint32_t lab_magic = labs.be32("the header");
  GENIE_CHECK(lab_magic == 2049, "[fashion-mnist] ", lab_path,
              ": expected idx1 label magic 2049 (0x00000801), got ", lab_magic);
  const uint32_t n_lab = labs.be32("the header");
  GENIE_CHECK(n_img == n_lab, "[fashion-mnist] ", img_path, " has ", n_img, " images but ",
              lab_path, " has ", n_lab, " labels");
  const uint32_t expected = split == "train" ? 60000u : 10000u;
  GENIE_CHECK(n_img == expected, "[fashion-mnist] ", img_path, ": expected ", expected,
              " images in the ", split, " split, got ", n_img);
  IdxRaw r;
  r.n = limit < 0 ? int64_t(n_img) : std::min<int64_t>(limit, n_img);
  r.pixels.resize(size_t(r.n) * 784);
  r.labels.resize(size_t(r.n));
  imgs.read(r.pixels.data(), r.pixels.size(), "the images");
  labs.read(r.labels.data(), r.labels.size(), "the labels");
  for (int64_t i = 0; i < r.n; ++i)
    GENIE_CHECK(r.labels[size_t(i)] < 10, "[fashion-mnist] ", lab_path, ": label ",
                int(r.labels[size_t(i)]), " of image ", i, " is outside 0..9");
  return r;
}

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};

// ---- image folders ----

bool has_image_ext(const std::string& name) {
  std::string low = name;
  for (auto& ch : low) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  auto ends = [&](const char* e) {
    const size_t n = std::strlen(e);
    return low.size() > n && low.compare(low.size() - n, n, e) == 0;
  };
  return ends(".png") || ends(".jpg") || ends(".jpeg");
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw Error(str("[image_folder] ", dir, ": cannot list directory"));
  while (dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) out.push_back(e->d_name);
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Image files under `dir` (recursively), ordered like torchvision: by directory path, then name.
void collect_images(const std::string& dir, std::vector<std::string>& out) {
  std::vector<std::string> subdirs;
  for (const auto& name : list_dir(dir)) {
    const std::string p = dir + "/" + name;
    if (dir_exists(p))
      subdirs.push_back(p);
    else if (file_exists(p) && has_image_ext(name))
      out.push_back(p);
  }
  for (const auto& s : subdirs) collect_images(s, out);
}

}  // namespace

// ------------------------------------------------------------------------------------------------

LabeledImages load_fashion_mnist_raw(const std::string& split, int64_t limit,
                                     const std::string& root) {
  IdxRaw r = read_fashion_idx(split, limit, root);
  LabeledImages d;
  d.images = Tensor::empty({r.n, 1, 28, 28});
  float* x = d.images.data();
  for (size_t i = 0; i < r.pixels.size(); ++i) x[i] = float(r.pixels[i]) / 255.f;
  std::vector<int32_t> lab(r.labels.begin(), r.labels.end());
  d.labels = Tensor::from_i32(lab, {r.n});
  d.class_names = kFashionClasses;
  return d;
}

LabeledImages load_fashion_mnist(const std::string& split, const InputSpec& spec, int64_t limit,
                                 const std::string& root) {
  check_spec(spec, "fashion-mnist");
  GENIE_CHECK((spec.channels == 1 || spec.channels == 3) && spec.height == 28 && spec.width == 28,
              "[fashion-mnist] expected a model input of (1, 28, 28) (or 3 channels), got (",
              spec.channels, ", ", spec.height, ", ", spec.width, ")");
  LabeledImages raw = load_fashion_mnist_raw(split, limit, root);
  const int64_t n = raw.size(), C = spec.channels;
  LabeledImages d;
  d.images = Tensor::empty({n, C, 28, 28});
  const float* s = raw.images.data();
  float* x = d.images.data();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const float m = mean_of(spec, c), sd = std_of(spec, c);
      for (int64_t k = 0; k < 784; ++k)
        x[(i * C + c) * 784 + k] = normalize_pixel(s[i * 784 + k], m, sd);
    }
  d.labels = raw.labels;
  d.class_names = raw.class_names;
  return d;
}

void eval_transform(const Image8& im_in, const InputSpec& spec, std::vector<float>& out) {
  GENIE_CHECK(spec.channels == 1 || spec.channels == 3,
              "[image_folder] expected a model with 1 or 3 input channels, got ", spec.channels);
  const Image8 im = to_channels(im_in, int(spec.channels));
  const int S = int(std::max(spec.height, spec.width));
  const int resize_to = int(std::lround(S * 256.0 / 224.0));
  const Image8 crop =
      center_crop(resize_shorter_side(im, resize_to), int(spec.height), int(spec.width));
  const size_t hw = size_t(spec.height) * size_t(spec.width), base = out.size();
  out.resize(base + hw * size_t(spec.channels));
  for (int64_t c = 0; c < spec.channels; ++c) {
    const float m = mean_of(spec, c), sd = std_of(spec, c);
    for (size_t i = 0; i < hw; ++i)
      out[base + size_t(c) * hw + i] =
          normalize_pixel(float(crop.pixels[i * size_t(spec.channels) + size_t(c)]) / 255.f, m, sd);
  }
}

LabeledImages load_image_folder(const std::string& dir, const InputSpec& spec, int64_t limit) {
  check_spec(spec, "image_folder");
  GENIE_CHECK(dir_exists(dir), "[image_folder] ", dir, ": directory does not exist");
  LabeledImages d;
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  for (const auto& name : list_dir(dir)) {
    if (name[0] == '.' || !dir_exists(dir + "/" + name))
      continue;  // hidden folders and stray files
    std::vector<std::string> f;
    collect_images(dir + "/" + name, f);
    GENIE_CHECK(!f.empty(), "[image_folder] ", dir, "/", name,
                ": class folder has no .png/.jpg/.jpeg images");
    const int32_t label = int32_t(d.class_names.size());
    d.class_names.push_back(name);
    for (auto& p : f) {
      files.push_back(std::move(p));
      labels.push_back(label);
    }
  }
  GENIE_CHECK(!d.class_names.empty(), "[image_folder] ", dir,
              ": expected one subfolder per class, found none");
  const int64_t n =
      limit < 0 ? int64_t(files.size()) : std::min<int64_t>(limit, int64_t(files.size()));
  const int64_t per = spec.channels * spec.height * spec.width;
  d.images = Tensor::empty({n, spec.channels, spec.height, spec.width});
  float* x = d.images.data();
  // Decoding dominates; images are independent. The first failure (in file order) is reported.
  std::vector<std::string> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < n; ++i) {
    try {
      std::vector<float> v;
      v.reserve(size_t(per));
      eval_transform(read_image(files[size_t(i)]), spec, v);
      std::copy(v.begin(), v.end(), x + i * per);
    } catch (const std::exception& e) {
      errors[size_t(i)] = e.what();
    }
  }
  for (const auto& e : errors)
    if (!e.empty()) throw Error(e);
  labels.resize(size_t(n));
  d.labels = Tensor::from_i32(labels, {n});
  return d;
}

LabeledImages load_h5_images(const std::string& path, const InputSpec& spec, int64_t limit,
                             bool require_labels) {
  check_spec(spec, "h5_images");
  H5Reader r(path);
  GENIE_CHECK(r.has("images"), "[h5_images] ", path,
              ": expected a dataset 'images' (N, C, H, W), found ",
              r.list_datasets().empty() ? std::string("no datasets")
                                        : str(r.list_datasets().size(), " others"));
  const Shape s = r.shape("images");
  GENIE_CHECK(s.size() == 4, "[h5_images] ", path, ": dataset 'images' expected (N, C, H, W), got ",
              shape_str(s));
  GENIE_CHECK(s[1] == spec.channels && s[2] == spec.height && s[3] == spec.width, "[h5_images] ",
              path, ": images expected the model's input shape (", spec.channels, ", ", spec.height,
              ", ", spec.width, ") per image, got (", s[1], ", ", s[2], ", ", s[3], ")");
  const DType dt = r.stored_dtype("images");
  GENIE_CHECK(dt == DType::F32 || dt == DType::U8, "[h5_images] ", path,
              ": dataset 'images' expected float32/float64 or uint8 values, got ", dtype_name(dt));
  LabeledImages d;
  const int64_t n_all = s[0];
  const int64_t n = limit < 0 ? n_all : std::min(limit, n_all);
  Tensor raw = dt == DType::U8 ? r.read_u8("images") : r.read_f32("images");
  bool normalized = true;
  if (dt == DType::F32) {
    if (r.has_attr("normalized", "images"))
      normalized = r.attr_i64("normalized", "images") != 0;
    else if (r.has_attr("normalized"))
      normalized = r.attr_i64("normalized") != 0;
  } else {
    normalized = false;
  }
  const int64_t C = spec.channels, hw = spec.height * spec.width;
  d.images = Tensor::empty({n, C, spec.height, spec.width});
  float* x = d.images.data();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const float m = mean_of(spec, c), sd = std_of(spec, c);
      for (int64_t k = 0; k < hw; ++k) {
        const int64_t idx = (i * C + c) * hw + k;
        float v = dt == DType::U8 ? float(raw.data_as<uint8_t>()[idx]) / 255.f : raw.data()[idx];
        if (!normalized) v = normalize_pixel(v, m, sd);
        GENIE_CHECK(std::isfinite(v), "[h5_images] ", path, ": image ", i,
                    " has a non-finite value");
        x[idx] = v;
      }
    }
  if (!r.has("labels")) {
    GENIE_CHECK(!require_labels, "[h5_images] ", path,
                ": expected a dataset 'labels' (N integers) next to 'images'");
    return d;
  }
  const Shape ls = r.shape("labels");
  GENIE_CHECK(ls.size() == 1, "[h5_images] ", path, ": dataset 'labels' expected (N), got ",
              shape_str(ls));
  GENIE_CHECK(ls[0] == n_all, "[h5_images] ", path, ": ", n_all, " images but ", ls[0], " labels");
  Tensor lab = r.read_i32("labels");
  const int32_t* lp = lab.data_as<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    GENIE_CHECK(lp[i] >= 0, "[h5_images] ", path, ": label of image ", i, " expected >= 0, got ",
                lp[i]);
  d.labels = Tensor::from_i32(std::vector<int32_t>(lp, lp + n), {n});
  return d;
}

LabeledImages load_labeled_images(const std::string& source, const InputSpec& spec, int64_t limit) {
  if (source == "fashion-mnist" || source == "fashion-mnist:test")
    return load_fashion_mnist("test", spec, limit);
  if (source == "fashion-mnist:train") return load_fashion_mnist("train", spec, limit);
  if (dir_exists(source)) return load_image_folder(source, spec, limit);
  auto ends = [&](const char* e) {
    const size_t k = std::strlen(e);
    return source.size() > k && source.compare(source.size() - k, k, e) == 0;
  };
  if (ends(".h5") || ends(".hdf5") || file_exists(source))
    return load_h5_images(source, spec, limit);
  throw Error(str("[dataset] '", source,
                  "': expected fashion-mnist[:train|:test], an image folder or an .h5 file, and no "
                  "such file or "
                  "directory exists"));
}

void check_labels(const LabeledImages& d, int64_t num_classes, const std::string& what) {
  GENIE_CHECK(d.labels.defined(), "[", what, "] expected labels, got none");
  const auto lab = d.labels.to_i32();
  for (size_t i = 0; i < lab.size(); ++i)
    GENIE_CHECK(lab[i] >= 0 && lab[i] < num_classes, "[", what, "] label of image ", i,
                " expected 0..", num_classes - 1, " for a model with ", num_classes,
                " classes, got ", lab[i]);
}

}  // namespace genie::io
