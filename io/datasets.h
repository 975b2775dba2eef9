// Labeled image sets for evaluation and real-data calibration, as CPU tensors ready for a model:
// Fashion-MNIST (idx.gz), an image folder (one subfolder per class, JPEG/PNG, torchvision eval
// transform) and HDF5 arrays. Every reader checks the data against the model's input spec.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "io/image.h"

namespace genie::io {

// What the model expects: input shape (C, H, W) and per-channel normalization (x - mean) / std of
// pixel/255 values. mean/std have C entries (or 1, used for every channel).
struct InputSpec {
  int64_t channels = 1, height = 28, width = 28;
  std::vector<float> mean{0.f}, std{1.f};
};

struct LabeledImages {
  Tensor images;  // (N, C, H, W) f32 CPU, normalized with the spec
  Tensor labels;  // (N) i32 CPU; undefined only for HDF5 sets read with require_labels = false
  std::vector<std::string> class_names;  // image folders: the subfolder names, in label order
  int64_t size() const { return images.defined() ? images.dim(0) : 0; }
};

// Where the Debian package dataset-fashion-mnist installs the four idx.gz files.
extern const char* const kFashionMnistDir;

// Fashion-MNIST split "train" (60000) or "test" (10000): pixel/255, then normalized with the spec.
// The spec must be 28x28 with 1 channel (3 channels: the gray image is replicated). limit >= 0
// takes the first `limit` images. Checks idx magic numbers, dimensions and that image and label
// counts agree.
LabeledImages load_fashion_mnist(const std::string& split, const InputSpec& spec,
                                 int64_t limit = -1, const std::string& root = kFashionMnistDir);
// The same images un-normalized: (N, 1, 28, 28) with values pixel/255 in [0, 1].
LabeledImages load_fashion_mnist_raw(const std::string& split, int64_t limit = -1,
                                     const std::string& root = kFashionMnistDir);

// An image folder: one subfolder per class, classes sorted by name (label = rank), files sorted by
// name within a class (subfolders of a class folder included, as torchvision's ImageFolder does);
// *.png, *.jpg, *.jpeg (any case) are read, other files ignored; hidden folders (".name") are not
// classes (torchvision would count them); a class folder without images is an error. Each image
// goes through the torchvision evaluation transform: convert to the spec's channels (PIL "L" /
// "RGB"), Resize(round(S * 256 / 224)) with PIL's bilinear filter where S = max(H, W),
// CenterCrop(H, W), /255, normalize. limit >= 0 takes the first images in that order.
LabeledImages load_image_folder(const std::string& dir, const InputSpec& spec, int64_t limit = -1);
// The transform alone, for one decoded image: (C, H, W) normalized floats appended to `out`.
void eval_transform(const Image8& im, const InputSpec& spec, std::vector<float>& out);

// HDF5 arrays: dataset `images` (N, C, H, W) and dataset `labels` (N) of any integer type.
// `images` float32/float64 are taken as normalized for this model when the attribute `normalized`
// (on the `images` dataset, else on the file root; default 1) is non-zero, else as pixel/255 values
// in [0, 1] and normalized here; uint8 images are raw pixels (/255, then normalized). Labels must
// be
// >= 0. (C, H, W) must equal the spec's.
LabeledImages load_h5_images(const std::string& path, const InputSpec& spec, int64_t limit = -1,
                             bool require_labels = true);

// Dispatch on a user's --eval / real:PATH argument: "fashion-mnist" (test split),
// "fashion-mnist:train", "fashion-mnist:test", a directory (image folder) or an .h5/.hdf5 file.
LabeledImages load_labeled_images(const std::string& source, const InputSpec& spec,
                                  int64_t limit = -1);

// Throws naming `what` if any label is outside [0, num_classes).
void check_labels(const LabeledImages& d, int64_t num_classes, const std::string& what);

}  // namespace genie::io
