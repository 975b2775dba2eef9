// Strict RAII wrapper over the HDF5 C library: a reader for weight files, datasets and checkpoints,
// and an all-or-nothing writer (temporary file renamed onto the final path on commit()).
//
// Every failure is a genie::Error naming the file and the object ("[h5] w.h5: no dataset 'fc.bias'
// (closest: fc.weight, ...)"); HDF5's own error printing is switched off. CPU tensors in and out.
// A file is read in a child process before this process opens it (io/h5_probe.h): damaged
// metadata that crashes or hangs libhdf5 itself becomes an error here, not a crash.
//
// No input file crashes the reader or makes it allocate what the file cannot back: every size read
// from the file is checked before anything is allocated (see H5Reader::read_f32 and the attribute
// readers), and a full disk while writing is an error naming the file that leaves nothing behind.
//
// Dataset names: the reader addresses every dataset by a dotted key. A dataset nested in groups
// ("layer1/0/conv1/weight") is listed and found as "layer1.0.conv1.weight"; a top-level dataset
// whose name already contains dots keeps its name. Lookups accept either spelling ("a/b" == "a.b").
// The writer stores a dotted name as one flat dataset; a name with '/' creates the groups.
//
// Attributes live on the file root (object "") or on a dataset (object = its key). Numeric readers
// accept any integer or float HDF5 type, scalar or 1-D; string readers accept fixed or variable
// length. Strings are written variable-length UTF-8 (as h5py does), so long JSON attributes have no
// size limit. Files written here carry no timestamps: the same content gives the same bytes. Not
// thread-safe (Debian's HDF5 is the serial build): use readers/writers from one thread at a time.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace genie::io {

class H5Reader {
 public:
  // Opens read-only. Throws "[h5] <path>: does not exist" / "is empty (0 bytes), not an HDF5 file"
  // / "not an HDF5 file" / "truncated or corrupt HDF5 file (...)".
  explicit H5Reader(const std::string& path);
  ~H5Reader();
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;
  H5Reader(H5Reader&& o) noexcept;
  H5Reader& operator=(H5Reader&& o) noexcept;

  const std::string& path() const { return path_; }

  // Every dataset's dotted key, sorted.
  std::vector<std::string> list_datasets() const;
  bool has(const std::string& name) const;
  Shape shape(const std::string& name) const;
  // The Tensor dtype read() gives: F32 for any float type, I8/U8 for 8-bit, I32 for other integers.
  DType stored_dtype(const std::string& name) const;
  // Keys present that look most like `name` (edit distance), for "did you mean" messages.
  std::vector<std::string> closest(const std::string& name, size_t n = 3) const;

  // Whole dataset as a CPU tensor. read_f32 converts from float64 and from integer types;
  // read_i8/u8/i32 convert from any integer type (HDF5 range-checks are not relied on: values out
  // of range of the target throw). read() uses stored_dtype().
  //
  // Before allocating, the declared shape is checked against what the file can hold: at most 2^40
  // elements (no overflow in any byte count); contiguous or compact data stored at exactly
  // numel × element size bytes, inside the file; chunked data of at most 1032 times its stored
  // bytes (deflate's largest expansion) plus 1 MiB — its chunks too. A dataset with no data stored
  // (never written), stored in external files, virtual, or compressed by a filter other than
  // deflate, shuffle, fletcher32 or nbit (whose expansion cannot be bounded) is an error naming the
  // file, the dataset, the declared shape and the file's size. shape() applies the first check.
  Tensor read_f32(const std::string& name) const;
  Tensor read_i8(const std::string& name) const;
  Tensor read_u8(const std::string& name) const;
  Tensor read_i32(const std::string& name) const;
  Tensor read(const std::string& name) const;

  // Attributes. `object` is "" for the file root, otherwise a dataset key. An attribute declaring
  // more than 2^40 values, or more bytes than the file has, is an error before anything is read.
  // Strings: trailing NULs are padding; a NUL inside a variable-length or null-padded string is an
  // error ("resnet20\0junk" is not read as "resnet20"); a null-terminated one ends at its NUL.
  std::vector<std::string> list_attrs(const std::string& object = "") const;
  bool has_attr(const std::string& attr, const std::string& object = "") const;
  std::string attr_string(const std::string& attr, const std::string& object = "") const;
  std::vector<float> attr_f32_vec(const std::string& attr, const std::string& object = "") const;
  std::vector<int64_t> attr_i64_vec(const std::string& attr, const std::string& object = "") const;
  std::vector<double> attr_f64_vec(const std::string& attr, const std::string& object = "") const;
  // Scalars: the attribute must hold exactly one value (scalar or 1-element array).
  double attr_f64(const std::string& attr, const std::string& object = "") const;
  int64_t attr_i64(const std::string& attr, const std::string& object = "") const;

 private:
  struct Entry {
    std::string key;   // dotted
    std::string path;  // HDF5 path from the root, e.g. "layer1/0/conv1/weight"
    bool ambiguous;    // two datasets map to the same dotted key
  };
  const Entry& find(const std::string& name) const;
  int64_t open_object(const std::string& object) const;  // hid_t; caller closes
  Tensor read_as(const std::string& name, DType t) const;

  std::string path_;
  int64_t file_ = -1;           // hid_t
  int64_t file_bytes_ = 0;      // the file's size when opened (bounds every size read from it)
  std::vector<Entry> entries_;  // sorted by key
};

struct H5WriteLog;  // the writer's file driver's record of I/O errors (io/h5_driver.h)

class H5Writer {
 public:
  // Creates <dir>/.<name>.tmp-<pid>-<n> next to `path`; nothing appears at `path` until commit().
  //
  // A failed write, flush, close, fsync or rename (a full disk: "No space left on device") throws
  // naming `path`; the temporary file is then closed and deleted by the destructor and the process
  // exits normally (HDF5's shutdown finds nothing left open). After an I/O error the writer accepts
  // nothing more.
  explicit H5Writer(const std::string& path);
  // Without commit(): closes and deletes the temporary file. Never throws.
  ~H5Writer();
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  const std::string& path() const { return path_; }

  // One dataset per tensor (F32 → float32, I8 → int8, U8 → uint8, I32 → int32; any device).
  // gzip: deflate level 1..9 for arrays of at least 4096 elements (chunked), 0 = contiguous.
  void write(const std::string& name, const Tensor& t, int gzip = 0);
  void write_f32(const std::string& name, const std::vector<float>& v, const Shape& shape);
  void write_i32(const std::string& name, const std::vector<int32_t>& v, const Shape& shape);

  // Attributes on the root ("") or on a dataset written earlier; replacing one is allowed.
  void set_attr_string(const std::string& attr, const std::string& value,
                       const std::string& object = "");
  void set_attr_f32_vec(const std::string& attr, const std::vector<float>& v,
                        const std::string& object = "");
  void set_attr_i64_vec(const std::string& attr, const std::vector<int64_t>& v,
                        const std::string& object = "");
  void set_attr_f64(const std::string& attr, double v, const std::string& object = "");
  void set_attr_i64(const std::string& attr, int64_t v, const std::string& object = "");

  // Flushes, closes, fsyncs and renames onto path(); afterwards the writer accepts nothing.
  void commit();

 private:
  int64_t open_object(const std::string& object) const;  // hid_t; caller closes
  void check_open(const char* op) const;
  void close_file() noexcept;  // closes file_ (cannot fail on I/O: see io/h5_driver.h)

  std::string path_;
  std::string tmp_;
  std::unique_ptr<H5WriteLog> log_;
  int64_t file_ = -1;  // hid_t
  bool committed_ = false;
};

// Dotted form of an HDF5 path: leading '/' dropped, '/' → '.'.
std::string h5_dotted(const std::string& name);

}  // namespace genie::io
