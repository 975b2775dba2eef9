// PNG/JPEG decoding and PNG encoding (libpng simplified API, libjpeg with a longjmp error handler),
// PIL-compatible bilinear resampling, center crop, and contact sheets.
#include "io/image.h"

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "io/atomic.h"

namespace genie::io {

namespace {

bool is_png(const std::string& b) {
  return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
}
bool is_jpeg(const std::string& b) {
  return b.size() >= 3 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF;
}

Image8 decode_png(const std::string& bytes, const std::string& name) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()))
    throw Error(str("[image] ", name, ": cannot decode PNG (", img.message, ")"));
  // Read with alpha kept (no compositing onto a background), then drop it, like PIL's convert.
  const bool color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
  img.format = color ? PNG_FORMAT_RGBA : PNG_FORMAT_GA;
  const int in_c = color ? 4 : 2;
  std::vector<uint8_t> buf(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, buf.data(), 0, nullptr)) {
    const std::string msg = img.message;
    png_image_free(&img);
    throw Error(str("[image] ", name, ": truncated or corrupt PNG (", msg, ")"));
  }
  Image8 out;
  out.height = int(img.height);
  out.width = int(img.width);
  out.channels = color ? 3 : 1;
  const size_t n = size_t(out.height) * size_t(out.width);
  out.pixels.resize(n * size_t(out.channels));
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < out.channels; ++c)
      out.pixels[i * size_t(out.channels) + size_t(c)] = buf[i * size_t(in_c) + size_t(c)];
  return out;
}

// libjpeg reports fatal errors through error_exit, which must not return: jump back to the decoder.
struct JpegErr {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
  bool hit_eof;  // libjpeg warned "premature end of data" and padded the image
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->msg);
  std::longjmp(e->jump, 1);
}

// Warnings are not printed; the one that means "truncated" is remembered.
void jpeg_warning(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
    reinterpret_cast<JpegErr*>(cinfo->err)->hit_eof = true;
}

// Plain-C style on purpose: nothing with a destructor lives between setjmp and a possible longjmp
// except heap memory owned through `out`, which is allocated before setjmp.
bool decode_jpeg_c(const std::string& bytes, Image8* out, JpegErr* err, bool* truncated) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = jpeg_error_exit;
  err->mgr.emit_message = jpeg_warning;
  err->msg[0] = '\0';
  err->hit_eof = false;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.num_components == 1) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB) {
    cinfo.out_color_space = JCS_RGB;
  } else {
    std::snprintf(err->msg, sizeof err->msg, "unsupported JPEG color space %d (CMYK/YCCK)",
                  int(cinfo.jpeg_color_space));
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_start_decompress(&cinfo);
  out->width = int(cinfo.output_width);
  out->height = int(cinfo.output_height);
  out->channels = int(cinfo.output_components);
  out->pixels.resize(size_t(out->width) * size_t(out->height) * size_t(out->channels));
  const size_t stride = size_t(out->width) * size_t(out->channels);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() + size_t(cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  // libjpeg pads a truncated stream with gray and only warns (JWRN_JPEG_EOF); treat as an error.
  *truncated = err->hit_eof;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

Image8 decode_jpeg(const std::string& bytes, const std::string& name) {
  Image8 out;
  auto err = std::make_unique<JpegErr>();
  bool truncated = false;
  if (!decode_jpeg_c(bytes, &out, err.get(), &truncated))
    throw Error(str("[image] ", name, ": cannot decode JPEG (", err->msg, ")"));
  GENIE_CHECK(!truncated, "[image] ", name, ": truncated JPEG (premature end of data)");
  return out;
}

uint8_t clip8(int64_t v) { return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v); }

// PIL's coefficient table for one axis: for output i, taps [first[i], first[i] + count[i]) with
// 22-bit fixed-point weights (rounded half away from zero).
struct Taps {
  std::vector<int> first, count;
  std::vector<int32_t> w;  // out_size * ksize
  int ksize = 0;
};

constexpr int kPrecisionBits = 32 - 8 - 2;

Taps bilinear_taps(int in_size, int out_size) {
  const double scale = double(in_size) / double(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the triangle filter's support is 1
  Taps t;
  t.ksize = int(std::ceil(support)) * 2 + 1;
  t.first.resize(size_t(out_size));
  t.count.resize(size_t(out_size));
  t.w.assign(size_t(out_size) * size_t(t.ksize), 0);
  std::vector<double> k(size_t(t.ksize));
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0;
    for (int x = 0; x < xmax; ++x) {
      double d = (x + xmin - center + 0.5) / filterscale;
      if (d < 0) d = -d;
      const double v = d < 1.0 ? 1.0 - d : 0.0;
      k[size_t(x)] = v;
      ww += v;
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0 ? k[size_t(x)] / ww : k[size_t(x)];
      t.w[size_t(i) * size_t(t.ksize) + size_t(x)] =
          int32_t(v < 0 ? v * (1 << kPrecisionBits) - 0.5 : v * (1 << kPrecisionBits) + 0.5);
    }
    t.first[size_t(i)] = xmin;
    t.count[size_t(i)] = xmax;
  }
  return t;
}

}  // namespace

Image8 decode_image(const std::string& bytes, const std::string& name) {
  if (is_png(bytes)) return decode_png(bytes, name);
  if (is_jpeg(bytes)) return decode_jpeg(bytes, name);
  if (bytes.empty()) throw Error(str("[image] ", name, ": is empty (0 bytes)"));
  throw Error(str("[image] ", name, ": expected a PNG or JPEG file, got unknown content"));
}

Image8 read_image(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_text_file(path);
  } catch (const Error& e) {
    throw Error(str("[image] ", std::string(e.what()).substr(5)));  // same text, image prefix
  }
  return decode_image(bytes, path);
}

Image8 to_channels(const Image8& im, int channels) {
  GENIE_CHECK(channels == 1 || channels == 3, "[image] expected 1 or 3 output channels, got ",
              channels);
  GENIE_CHECK(im.channels == 1 || im.channels == 3,
              "[image] expected a 1- or 3-channel image, got ", im.channels);
  if (im.channels == channels) return im;
  Image8 out;
  out.height = im.height;
  out.width = im.width;
  out.channels = channels;
  const size_t n = size_t(im.height) * size_t(im.width);
  out.pixels.resize(n * size_t(channels));
  if (channels == 3) {
    for (size_t i = 0; i < n; ++i)
      out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = im.pixels[i];
  } else {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t r = im.pixels[3 * i], g = im.pixels[3 * i + 1], b = im.pixels[3 * i + 2];
      out.pixels[i] = uint8_t((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
    }
  }
  return out;
}

Image8 resize_bilinear(const Image8& im, int out_h, int out_w) {
  GENIE_CHECK(out_h > 0 && out_w > 0, "[resize] expected a positive output size, got ", out_h, "x",
              out_w);
  GENIE_CHECK(im.height > 0 && im.width > 0, "[resize] expected a non-empty image, got ", im.height,
              "x", im.width);
  const int C = im.channels;
  Image8 cur = im;
  if (out_w != cur.width) {  // horizontal pass
    const Taps t = bilinear_taps(cur.width, out_w);
    Image8 nx;
    nx.height = cur.height, nx.width = out_w, nx.channels = C;
    nx.pixels.resize(size_t(nx.height) * size_t(out_w) * size_t(C));
    for (int y = 0; y < cur.height; ++y)
      for (int x = 0; x < out_w; ++x)
        for (int c = 0; c < C; ++c) {
          int64_t ss = int64_t(1) << (kPrecisionBits - 1);
          const int32_t* w = &t.w[size_t(x) * size_t(t.ksize)];
          for (int k = 0; k < t.count[size_t(x)]; ++k)
            ss += int64_t(cur.at(y, t.first[size_t(x)] + k, c)) * w[k];
          nx.pixels[(size_t(y) * size_t(out_w) + size_t(x)) * size_t(C) + size_t(c)] =
              clip8(ss >> kPrecisionBits);
        }
    cur = std::move(nx);
  }
  if (out_h != cur.height) {  // vertical pass
    const Taps t = bilinear_taps(cur.height, out_h);
    Image8 ny;
    ny.height = out_h, ny.width = cur.width, ny.channels = C;
    ny.pixels.resize(size_t(out_h) * size_t(cur.width) * size_t(C));
    for (int y = 0; y < out_h; ++y)
      for (int x = 0; x < cur.width; ++x)
        for (int c = 0; c < C; ++c) {
          int64_t ss = int64_t(1) << (kPrecisionBits - 1);
          const int32_t* w = &t.w[size_t(y) * size_t(t.ksize)];
          for (int k = 0; k < t.count[size_t(y)]; ++k)
            ss += int64_t(cur.at(t.first[size_t(y)] + k, x, c)) * w[k];
          ny.pixels[(size_t(y) * size_t(cur.width) + size_t(x)) * size_t(C) + size_t(c)] =
              clip8(ss >> kPrecisionBits);
        }
    cur = std::move(ny);
  }
  return cur;
}

Image8 resize_shorter_side(const Image8& im, int s) {
  GENIE_CHECK(s > 0, "[resize] expected a positive size, got ", s);
  if (im.width <= im.height) {
    const int h = int(int64_t(s) * im.height / im.width);
    return resize_bilinear(im, h, s);
  }
  const int w = int(int64_t(s) * im.width / im.height);
  return resize_bilinear(im, s, w);
}

Image8 center_crop(const Image8& im, int h, int w) {
  GENIE_CHECK(h <= im.height && w <= im.width, "[center_crop] expected an image of at least ", h,
              "x", w, ", got ", im.height, "x", im.width);
  // Python's round(): half to even, which nearbyint gives under the default rounding mode.
  const int top = int(std::nearbyint((im.height - h) / 2.0));
  const int left = int(std::nearbyint((im.width - w) / 2.0));
  Image8 out;
  out.height = h, out.width = w, out.channels = im.channels;
  out.pixels.resize(size_t(h) * size_t(w) * size_t(im.channels));
  const size_t row = size_t(w) * size_t(im.channels);
  for (int y = 0; y < h; ++y)
    std::memcpy(
        &out.pixels[size_t(y) * row],
        &im.pixels[((size_t(top + y) * size_t(im.width)) + size_t(left)) * size_t(im.channels)],
        row);
  return out;
}

void write_png(const std::string& path, const uint8_t* hwc, int height, int width, int channels) {
  GENIE_CHECK(channels == 1 || channels == 3 || channels == 4, "[png] ", path,
              ": expected 1, 3 or 4 channels, got ", channels);
  GENIE_CHECK(height > 0 && width > 0, "[png] ", path, ": expected a non-empty image, got ", height,
              "x", width);
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = png_uint_32(width);
  img.height = png_uint_32(height);
  img.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&img, nullptr, &size, 0, hwc, 0, nullptr))
    throw Error(str("[png] ", path, ": cannot encode (", img.message, ")"));
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&img, &bytes[0], &size, 0, hwc, 0, nullptr))
    throw Error(str("[png] ", path, ": cannot encode (", img.message, ")"));
  bytes.resize(size);
  write_file_atomic(path, bytes);
}

void write_png(const std::string& path, const Image8& im) {
  GENIE_CHECK(im.pixels.size() == size_t(im.height) * size_t(im.width) * size_t(im.channels),
              "[png] ", path, ": image buffer expected ",
              size_t(im.height) * size_t(im.width) * size_t(im.channels), " bytes, got ",
              im.pixels.size());
  write_png(path, im.pixels.data(), im.height, im.width, im.channels);
}

void write_contact_sheet(const std::string& path, const Tensor& images,
                         const std::vector<float>& mean, const std::vector<float>& std, int columns,
                         int scale) {
  GENIE_CHECK(images.defined() && images.ndim() == 4 && images.dtype() == DType::F32,
              "[contact_sheet] ", path, ": expected f32 images (N, C, H, W), got ",
              images.describe());
  const int64_t N = images.dim(0), C = images.dim(1), H = images.dim(2), W = images.dim(3);
  GENIE_CHECK(N > 0, "[contact_sheet] ", path, ": expected at least one image, got 0");
  GENIE_CHECK(C == 1 || C == 3, "[contact_sheet] ", path, ": expected 1 or 3 channels, got ", C);
  GENIE_CHECK(mean.size() == size_t(C) || mean.size() == 1, "[contact_sheet] expected ", C,
              " mean values, got ", mean.size());
  GENIE_CHECK(std.size() == size_t(C) || std.size() == 1, "[contact_sheet] expected ", C,
              " std values, got ", std.size());
  GENIE_CHECK(scale >= 1 && scale <= 64, "[contact_sheet] expected scale 1..64, got ", scale);
  GENIE_CHECK(columns >= 0, "[contact_sheet] expected columns >= 0, got ", columns);
  const int64_t cols =
      columns > 0 ? std::min<int64_t>(columns, N) : int64_t(std::ceil(std::sqrt(double(N))));
  const int64_t rows = (N + cols - 1) / cols;
  const int64_t th = H * scale, tw = W * scale;
  const int64_t SH = rows * th + rows - 1, SW = cols * tw + cols - 1;
  GENIE_CHECK(SH <= 65535 && SW <= 65535, "[contact_sheet] ", path, ": sheet of ", SH, "x", SW,
              " pixels is too large");
  const std::vector<float> x = images.to_vector();
  std::vector<uint8_t> sheet(size_t(SH * SW * C), 255);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t oy = (n / cols) * (th + 1), ox = (n % cols) * (tw + 1);
    for (int64_t c = 0; c < C; ++c) {
      const float m = mean.size() == 1 ? mean[0] : mean[size_t(c)];
      const float s = std.size() == 1 ? std[0] : std[size_t(c)];
      for (int64_t y = 0; y < th; ++y)
        for (int64_t xx = 0; xx < tw; ++xx) {
          const float v = x[size_t(((n * C + c) * H + y / scale) * W + xx / scale)];
          const float p = std::nearbyint((v * s + m) * 255.f);
          const uint8_t q = std::isnan(p) ? 0 : p <= 0.f ? 0 : p >= 255.f ? 255 : uint8_t(p);
          sheet[size_t(((oy + y) * SW + ox + xx) * C + c)] = q;
        }
    }
  }
  write_png(path, sheet.data(), int(SH), int(SW), int(C));
}

}  // namespace genie::io
