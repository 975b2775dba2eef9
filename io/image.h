// 8-bit images: PNG (libpng) and JPEG (libjpeg) decoding, PNG writing, channel conversion, the
// torchvision/PIL evaluation resize (antialiased bilinear) and crop, and contact sheets of tensors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace genie::io {

// Interleaved 8-bit pixels, row-major (H, W, C); channels is 1 (gray) or 3 (RGB).
struct Image8 {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (H, W, C)
  uint8_t at(int y, int x, int c) const {
    return pixels[(size_t(y) * size_t(width) + size_t(x)) * size_t(channels) + size_t(c)];
  }
};

// Decodes a PNG or JPEG file, recognised by its signature bytes (not its extension). Alpha is
// dropped (as PIL's convert("RGB") does); palette PNGs become RGB, 16-bit PNGs 8-bit; gray stays
// gray. Throws "[image] <path>: ..." for missing, unreadable, truncated or unsupported files.
Image8 read_image(const std::string& path);
Image8 decode_image(const std::string& bytes, const std::string& name_for_errors);

// 1 → 3 replicates; 3 → 1 uses PIL's convert("L") luma, (19595 R + 38470 G + 7471 B + 2^15) >> 16.
Image8 to_channels(const Image8& im, int channels);

// Resizes with PIL's BILINEAR filter as Image.resize does it (a triangle filter widened by the
// downscale factor — i.e. antialiased —, fixed-point 22-bit coefficients, horizontal pass then
// vertical, each rounded to 8 bits), so that results match torchvision's Resize on PIL images.
Image8 resize_bilinear(const Image8& im, int out_h, int out_w);
// torchvision Resize(int s): the shorter side becomes s, the longer int(s * long / short).
Image8 resize_shorter_side(const Image8& im, int s);
// torchvision CenterCrop((h, w)): top = round((H - h) / 2), left = round((W - w) / 2), half to
// even.
Image8 center_crop(const Image8& im, int h, int w);

// Encodes (H, W, C) 8-bit pixels, C in {1, 3, 4}, and writes the PNG atomically.
void write_png(const std::string& path, const uint8_t* hwc, int height, int width, int channels);
void write_png(const std::string& path, const Image8& im);

// Contact sheet of a batch (N, C, H, W) of normalized float images (C = 1 or 3, any device):
// pixel = clamp(round((x * std[c] + mean[c]) * 255), 0, 255); tiles of (H*scale) x (W*scale)
// (nearest-neighbour upscale) in a grid of `columns` (0: ceil(sqrt(N))) with a 1-pixel white gap
// between tiles and no outer border: width = cols*W*scale + cols-1, height = rows*H*scale + rows-1.
// Unused tiles of the last row are white. mean/std have C entries (or 1, used for every channel).
// Written atomically.
void write_contact_sheet(const std::string& path, const Tensor& images,
                         const std::vector<float>& mean, const std::vector<float>& std,
                         int columns = 0, int scale = 1);

}  // namespace genie::io
