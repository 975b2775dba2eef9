// HDF5 reader/writer over the C API. Every hid_t lives in an RAII holder; every call is checked and
// turned into a genie::Error carrying the file, the object and HDF5's innermost error description.
// Sizes read from a file are checked against what the file can hold before anything is allocated;
// the writer's I/O goes through io/h5_driver.h so that a full disk is a clean error.
#include "io/h5.h"

#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <type_traits>

#include "io/atomic.h"
#include "io/h5_driver.h"
#include "io/h5_probe.h"
#include "kernels/util.h"

namespace genie::io {

static_assert(std::is_same<hid_t, int64_t>::value, "genie expects HDF5 >= 1.10 (64-bit hid_t)");

namespace {

// Turns HDF5's automatic error printing off once per process (we report errors ourselves).
void h5_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

// The innermost descriptions on HDF5's error stack ("truncated file: eof = ...") and clears it.
std::string h5_detail() {
  std::vector<std::string> msgs;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        auto* v = static_cast<std::vector<std::string>*>(data);
        try {  // no exception may cross HDF5's C frames
          if (n < 2 && e->desc && *e->desc) v->push_back(e->desc);
        } catch (...) {
          return -1;
        }
        return 0;
      },
      &msgs);
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  for (const auto& m : msgs) out += (out.empty() ? "" : "; ") + m;
  return out.empty() ? std::string("no detail from HDF5") : out;
}

// Owner of one HDF5 identifier; the close function depends on the kind of object.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t release() {  // the caller owns the id from now on
    const hid_t id = id_;
    id_ = -1;
    return id;
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// Checked constructors: throw "[h5] <file>: <what> (<HDF5 detail>)" when the id is invalid.
Hid checked(hid_t id, herr_t (*close)(hid_t), const std::string& file, const std::string& what) {
  if (id < 0) throw Error(str("[h5] ", file, ": ", what, " (", h5_detail(), ")"));
  return Hid(id, close);
}
void check_rc(herr_t rc, const std::string& file, const std::string& what) {
  if (rc < 0) throw Error(str("[h5] ", file, ": ", what, " (", h5_detail(), ")"));
}

std::string object_label(const std::string& object) {
  return object.empty() ? std::string("the file root") : str("dataset '", object, "'");
}

std::string attr_label(const std::string& attr, const std::string& object) {
  return str("attribute '", attr, "' of ", object_label(object));
}

// ---- bounds on sizes read from a file ----

// The most elements genie reads from one dataset or attribute: 2^40 (4 TiB of float32) is beyond
// any model or image set, and keeps every byte count computed from it (at most 16 bytes per
// element) far inside 64 bits.
constexpr uint64_t kMaxElements = uint64_t(1) << 40;
// deflate codes a 258-byte match in 2 bits at best (1-bit length and distance codes), so N
// compressed bytes expand to at most 1032·N (zlib's documented maximum ratio, 1032:1).
constexpr uint64_t kDeflateMaxRatio = 1032;
// Added to the chunked bound: per-chunk constants, and small datasets with unwritten chunks (read
// as fill values, as HDF5 does).
constexpr uint64_t kChunkedSlack = uint64_t(1) << 20;

uint64_t mul_sat(uint64_t a, uint64_t b) {  // a·b, saturating at 2^64 − 1
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max() : r;
}
uint64_t add_sat(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max() : r;
}

std::string dims_str(const std::vector<hsize_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

std::string file_note(int64_t file_bytes) { return str("the file has ", file_bytes, " bytes"); }

// A dataspace, checked: element count without overflow and at most kMaxElements (every dimension
// too, so a zero-sized shape cannot carry a dimension beyond int64).
struct Extent {
  std::vector<hsize_t> dims;  // empty: scalar
  uint64_t numel = 0;
  bool null = false;  // H5S_NULL: no elements at all (read as shape (0))

  Shape shape() const {
    if (null) return {0};
    return Shape(dims.begin(), dims.end());
  }
};

Extent read_extent(hid_t space, const std::string& file, const std::string& what,
                   int64_t file_bytes) {
  Extent e;
  const H5S_class_t cls = H5Sget_simple_extent_type(space);
  if (cls == H5S_NULL) {
    e.null = true;
    return e;
  }
  if (cls == H5S_SCALAR) {
    e.numel = 1;
    return e;
  }
  const int nd = H5Sget_simple_extent_ndims(space);
  if (cls != H5S_SIMPLE || nd < 0) check_rc(-1, file, str("cannot read the shape of ", what));
  e.dims.resize(static_cast<size_t>(nd));
  check_rc(H5Sget_simple_extent_dims(space, e.dims.data(), nullptr), file,
           str("cannot read the shape of ", what));
  uint64_t n = 1;
  bool overflow = false, big_dim = false;
  for (hsize_t d : e.dims) {
    overflow = overflow || __builtin_mul_overflow(n, uint64_t(d), &n);
    big_dim = big_dim || d > kMaxElements;  // even beside a zero dimension
  }
  if (overflow || big_dim || n > kMaxElements)
    throw Error(str("[h5] ", file, ": ", what, " expected at most 2^40 elements, got shape ",
                    dims_str(e.dims),
                    overflow           ? std::string(", whose element count overflows 64 bits")
                    : n > kMaxElements ? str(" = ", n, " elements")
                                       : std::string(", a dimension beyond 2^40"),
                    " (", file_note(file_bytes), ")"));
  e.numel = n;
  return e;
}

// The filters of a chunked dataset → how many times its stored bytes may expand when read.
uint64_t filter_expansion(hid_t dcpl, size_t type_size, const std::string& file,
                          const std::string& what) {
  const int nf = H5Pget_nfilters(dcpl);
  if (nf < 0) check_rc(-1, file, "cannot read the filters of " + what);
  uint64_t ratio = 1;
  int deflates = 0;
  for (int i = 0; i < nf; ++i) {
    unsigned flags = 0, config = 0;
    size_t ncd = 0;
    char name[64] = {0};
    const H5Z_filter_t id =
        H5Pget_filter2(dcpl, unsigned(i), &flags, &ncd, nullptr, sizeof name, name, &config);
    if (id < 0) check_rc(-1, file, "cannot read the filters of " + what);
    switch (id) {
      case H5Z_FILTER_DEFLATE:
        ++deflates;
        ratio = mul_sat(ratio, kDeflateMaxRatio);
        break;
      case H5Z_FILTER_SHUFFLE:     // a permutation of the bytes
      case H5Z_FILTER_FLETCHER32:  // adds a checksum
        break;
      case H5Z_FILTER_NBIT:  // at least one bit per element stored
        ratio = mul_sat(ratio, 8 * std::max<uint64_t>(type_size, 1));
        break;
      default:
        throw Error(str("[h5] ", file, ": ", what,
                        " expected the filters deflate (gzip), shuffle, ",
                        "fletcher32 or nbit, got filter ", int(id), " ('", name,
                        "'), whose expansion genie cannot bound (re-save it with gzip)"));
    }
  }
  GENIE_CHECK(deflates <= 1, "[h5] ", file, ": ", what,
              " expected at most one deflate filter, got ", deflates);
  return ratio;
}

// Checks, before anything is allocated for it, that the data a dataset declares (`e`, elements of
// `type_size` bytes) is backed by what the file stores (see H5Reader::read_f32 in h5.h).
void check_storage(hid_t ds, size_t type_size, const Extent& e, const std::string& file,
                   const std::string& what, int64_t file_bytes) {
  if (e.numel == 0) return;
  GENIE_CHECK(type_size > 0, "[h5] ", file, ": ", what, " expected a type size, got 0");
  const uint64_t need = mul_sat(e.numel, type_size);  // ≤ 2^40 · type size: no saturation
  const std::string declared = str(what, " declares shape ", dims_str(e.dims), " of ", type_size,
                                   "-byte values (", need, " bytes)");
  const std::string note = file_note(file_bytes);
  Hid dcpl = checked(H5Dget_create_plist(ds), H5Pclose, file, "cannot read the layout of " + what);
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  GENIE_CHECK(layout != H5D_VIRTUAL, "[h5] ", file, ": ", what,
              " expected its data inside the file, got a virtual dataset (data in other files)");
  const int external = H5Pget_external_count(dcpl.get());
  GENIE_CHECK(external == 0, "[h5] ", file, ": ", what,
              " expected its data inside the file, got it in external files");
  H5Eclear2(H5E_DEFAULT);
  const hsize_t stored = H5Dget_storage_size(ds);
  if (stored == 0 && H5Eget_num(H5E_DEFAULT) > 0)
    check_rc(-1, file, "cannot read the storage size of " + what);
  if (stored == 0)
    throw Error(
        str("[h5] ", file, ": ", declared, " but has no data stored (never written; ", note, ")"));
  GENIE_CHECK(stored <= uint64_t(file_bytes), "[h5] ", file, ": ", declared, " with ", stored,
              " bytes stored, more than the file holds (", note, ")");
  switch (layout) {
    case H5D_COMPACT:
    case H5D_CONTIGUOUS: {
      GENIE_CHECK(stored == need, "[h5] ", file, ": ", declared, ", but ", stored,
                  " bytes are stored for it (truncated or corrupt; ", note, ")");
      if (layout == H5D_CONTIGUOUS) {
        const haddr_t at = H5Dget_offset(ds);
        GENIE_CHECK(at == HADDR_UNDEF || add_sat(at, need) <= uint64_t(file_bytes), "[h5] ", file,
                    ": ", declared, ", stored at offset ", at, ", past the end of the file (", note,
                    ")");
      }
      return;
    }
    case H5D_CHUNKED: {
      const uint64_t ratio = filter_expansion(dcpl.get(), type_size, file, what);
      const uint64_t bound = add_sat(mul_sat(stored, ratio), kChunkedSlack);
      const std::string why = ratio == 1 ? std::string("uncompressed chunks")
                                         : str("its filters expand data at most ", ratio, "-fold");
      GENIE_CHECK(need <= bound, "[h5] ", file, ": ", declared, ", more than its ", stored,
                  " stored bytes can hold (", why, ", plus 1 MiB; ", note, ")");
      // Every stored chunk is decoded whole: a chunk larger than the bound is corrupt too.
      const int nd = H5Pget_chunk(dcpl.get(), 0, nullptr);
      if (nd < 0) check_rc(-1, file, "cannot read the chunks of " + what);
      std::vector<hsize_t> chunk(static_cast<size_t>(nd));
      check_rc(H5Pget_chunk(dcpl.get(), nd, chunk.data()), file,
               "cannot read the chunks of " + what);
      uint64_t chunk_bytes = type_size;
      for (hsize_t c : chunk) chunk_bytes = mul_sat(chunk_bytes, c);
      GENIE_CHECK(chunk_bytes <= bound, "[h5] ", file, ": ", what, " declares chunks ",
                  dims_str(chunk), " (", chunk_bytes, " bytes), more than its ", stored,
                  " stored bytes can hold (", why, ", plus 1 MiB; ", note, ")");
      return;
    }
    default:
      throw Error(str("[h5] ", file, ": ", what, " expected a compact, contiguous or chunked ",
                      "layout, got HDF5 layout ", int(layout)));
  }
}

// Integer file type → how to read it losslessly into int64 memory.
bool is_unsigned64(hid_t type) {
  return H5Tget_size(type) == 8 && H5Tget_sign(type) == H5T_SGN_NONE;
}

}  // namespace

std::string h5_dotted(const std::string& name) {
  std::string s = name;
  while (!s.empty() && s.front() == '/') s.erase(s.begin());
  std::replace(s.begin(), s.end(), '/', '.');
  return s;
}

// ------------------------------------------------------------------------------------------------
// H5Reader

H5Reader::H5Reader(const std::string& path) : path_(path) {
  h5_init();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) throw Error(str("[h5] ", path, ": does not exist"));
    throw Error(str("[h5] ", path, ": cannot access (", std::strerror(errno), ")"));
  }
  GENIE_CHECK(!S_ISDIR(st.st_mode), "[h5] ", path, ": expected an HDF5 file, got a directory");
  GENIE_CHECK(st.st_size > 0, "[h5] ", path, ": is empty (0 bytes), not an HDF5 file");
  file_bytes_ = int64_t(st.st_size);
  GENIE_CHECK(::access(path.c_str(), R_OK) == 0, "[h5] ", path,
              ": cannot be read (permission denied)");
  const htri_t sig = H5Fis_hdf5(path.c_str());
  if (sig == 0) throw Error(str("[h5] ", path, ": not an HDF5 file (no HDF5 signature)"));
  if (sig < 0)
    throw Error(str("[h5] ", path, ": not an HDF5 file or unreadable (", h5_detail(), ")"));
  // libhdf5 itself can crash or hang on damaged metadata: a child process reads the file first.
  probe_h5_file(path);

  Hid fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, path, "cannot open");
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  // Owned here until the constructor is done: an exception below closes it.
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  if (!file.ok())
    throw Error(str("[h5] ", path, ": truncated or corrupt HDF5 file (", h5_detail(), ")"));

  // Index every dataset reachable through hard links by its dotted key.
  struct Ctx {
    std::vector<Entry>* out;
  } ctx{&entries_};
  const herr_t rc = H5Lvisit(
      file.get(), H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t group, const char* name, const H5L_info_t* info, void* data) -> herr_t {
        if (info->type != H5L_TYPE_HARD) return 0;
        Hid obj(H5Oopen(group, name, H5P_DEFAULT), H5Oclose);
        if (!obj.ok()) return -1;
        if (H5Iget_type(obj.get()) != H5I_DATASET) return 0;
        try {  // no exception may cross HDF5's C frames
          static_cast<Ctx*>(data)->out->push_back(Entry{h5_dotted(name), name, false});
        } catch (...) {
          return -1;
        }
        return 0;
      },
      &ctx);
  if (rc < 0)
    throw Error(str("[h5] ", path, ": truncated or corrupt HDF5 file (cannot list its objects: ",
                    h5_detail(), ")"));
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.key < b.key; });
  for (size_t i = 1; i < entries_.size(); ++i)
    if (entries_[i].key == entries_[i - 1].key)
      entries_[i].ambiguous = entries_[i - 1].ambiguous = true;
  file_ = file.release();
}

H5Reader::~H5Reader() {
  if (file_ >= 0) H5Fclose(file_);
}

H5Reader::H5Reader(H5Reader&& o) noexcept
    : path_(std::move(o.path_)),
      file_(o.file_),
      file_bytes_(o.file_bytes_),
      entries_(std::move(o.entries_)) {
  o.file_ = -1;
}

H5Reader& H5Reader::operator=(H5Reader&& o) noexcept {
  if (this != &o) {
    if (file_ >= 0) H5Fclose(file_);
    path_ = std::move(o.path_);
    file_ = o.file_;
    file_bytes_ = o.file_bytes_;
    entries_ = std::move(o.entries_);
    o.file_ = -1;
  }
  return *this;
}

std::vector<std::string> H5Reader::list_datasets() const {
  std::vector<std::string> out;
  for (const auto& e : entries_)
    if (out.empty() || out.back() != e.key) out.push_back(e.key);
  return out;
}

bool H5Reader::has(const std::string& name) const {
  const std::string key = h5_dotted(name);
  return std::binary_search(entries_.begin(), entries_.end(), Entry{key, "", false},
                            [](const Entry& a, const Entry& b) { return a.key < b.key; });
}

std::vector<std::string> H5Reader::closest(const std::string& name, size_t n) const {
  return closest_keys(h5_dotted(name), list_datasets(), n);
}

const H5Reader::Entry& H5Reader::find(const std::string& name) const {
  GENIE_CHECK(file_ >= 0, "[h5] reader used after being moved from");
  const std::string key = h5_dotted(name);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const Entry& e, const std::string& k) { return e.key < k; });
  if (it == entries_.end() || it->key != key) {
    std::string hint;
    if (entries_.empty()) {
      hint = " (the file has no datasets)";
    } else {
      for (const auto& c : closest(key)) hint += (hint.empty() ? " (closest: " : ", ") + c;
      hint += ")";
    }
    throw Error(str("[h5] ", path_, ": no dataset '", name, "'", hint));
  }
  GENIE_CHECK(!it->ambiguous, "[h5] ", path_, ": dataset name '", key,
              "' is ambiguous (stored both as a dotted name and as nested groups)");
  return *it;
}

Shape H5Reader::shape(const std::string& name) const {
  const Entry& e = find(name);
  Hid ds = checked(H5Dopen2(file_, e.path.c_str(), H5P_DEFAULT), H5Dclose, path_,
                   str("cannot open dataset '", e.key, "'"));
  Hid space = checked(H5Dget_space(ds.get()), H5Sclose, path_,
                      str("cannot read the shape of dataset '", e.key, "'"));
  return read_extent(space.get(), path_, str("dataset '", e.key, "'"), file_bytes_).shape();
}

DType H5Reader::stored_dtype(const std::string& name) const {
  const Entry& e = find(name);
  Hid ds = checked(H5Dopen2(file_, e.path.c_str(), H5P_DEFAULT), H5Dclose, path_,
                   str("cannot open dataset '", e.key, "'"));
  Hid type = checked(H5Dget_type(ds.get()), H5Tclose, path_,
                     str("cannot read the type of dataset '", e.key, "'"));
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls == H5T_FLOAT) return DType::F32;
  if (cls == H5T_INTEGER) {
    const size_t size = H5Tget_size(type.get());
    const H5T_sign_t sign = H5Tget_sign(type.get());
    if (size == 0 || sign == H5T_SGN_ERROR)
      check_rc(-1, path_, str("cannot read the type of dataset '", e.key, "'"));
    if (size == 1) return sign == H5T_SGN_NONE ? DType::U8 : DType::I8;
    return DType::I32;
  }
  throw Error(str("[h5] ", path_, ": dataset '", e.key,
                  "' expected a numeric type, got HDF5 type class ", int(cls)));
}

Tensor H5Reader::read(const std::string& name) const { return read_as(name, stored_dtype(name)); }
Tensor H5Reader::read_f32(const std::string& name) const { return read_as(name, DType::F32); }
Tensor H5Reader::read_i8(const std::string& name) const { return read_as(name, DType::I8); }
Tensor H5Reader::read_u8(const std::string& name) const { return read_as(name, DType::U8); }
Tensor H5Reader::read_i32(const std::string& name) const { return read_as(name, DType::I32); }

Tensor H5Reader::read_as(const std::string& name, DType want) const {
  const Entry& e = find(name);
  const std::string what = str("dataset '", e.key, "'");
  Hid ds =
      checked(H5Dopen2(file_, e.path.c_str(), H5P_DEFAULT), H5Dclose, path_, "cannot open " + what);
  Hid type = checked(H5Dget_type(ds.get()), H5Tclose, path_, "cannot read the type of " + what);
  Hid space = checked(H5Dget_space(ds.get()), H5Sclose, path_, "cannot read the shape of " + what);
  const Extent extent = read_extent(space.get(), path_, what, file_bytes_);
  const H5T_class_t cls = H5Tget_class(type.get());
  GENIE_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER, "[h5] ", path_, ": ", what,
              " expected a numeric (float or integer) type, got HDF5 type class ", int(cls));
  // Nothing is allocated before the file is known to hold what the shape declares.
  check_storage(ds.get(), H5Tget_size(type.get()), extent, path_, what, file_bytes_);
  GENIE_CHECK(want == DType::F32 || cls == H5T_INTEGER, "[h5] ", path_, ": ", what,
              " expected an integer type for ", dtype_name(want), ", got a floating-point dataset");
  Tensor out = Tensor::empty(extent.shape(), Device::CPU, want);
  const int64_t n = out.numel();
  if (n == 0 || extent.null) return out;
  const std::string fail = "cannot read " + what + " (truncated or corrupt data)";

  if (want == DType::F32) {
    if (cls == H5T_FLOAT && H5Tget_size(type.get()) == 4) {
      check_rc(H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.raw()), path_,
               fail);
    } else if (cls == H5T_FLOAT) {
      // float64 (or other widths): read as double and round to float here (C++ semantics, not
      // HDF5's overflow policy).
      std::vector<double> tmp(static_cast<size_t>(n));
      check_rc(H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp.data()),
               path_, fail);
      float* p = out.data();
      for (int64_t i = 0; i < n; ++i) p[i] = float(tmp[size_t(i)]);
    } else {
      const bool u64 = is_unsigned64(type.get());
      std::vector<int64_t> tmp(static_cast<size_t>(n));
      check_rc(H5Dread(ds.get(), u64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                       H5P_DEFAULT, tmp.data()),
               path_, fail);
      float* p = out.data();
      for (int64_t i = 0; i < n; ++i)
        p[i] = u64 ? float(uint64_t(tmp[size_t(i)])) : float(tmp[size_t(i)]);
    }
    return out;
  }

  const bool src_unsigned = H5Tget_sign(type.get()) == H5T_SGN_NONE;
  const size_t src_size = H5Tget_size(type.get());
  // Same width and signedness: read straight into the tensor.
  if ((want == DType::I8 && src_size == 1 && !src_unsigned) ||
      (want == DType::U8 && src_size == 1 && src_unsigned) ||
      (want == DType::I32 && src_size == 4 && !src_unsigned)) {
    const hid_t mem = want == DType::I8   ? H5T_NATIVE_INT8
                      : want == DType::U8 ? H5T_NATIVE_UINT8
                                          : H5T_NATIVE_INT32;
    check_rc(H5Dread(ds.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.raw()), path_, fail);
    return out;
  }
  // Otherwise widen to 64 bits, range-check, narrow.
  const bool u64 = is_unsigned64(type.get());
  std::vector<int64_t> tmp(static_cast<size_t>(n));
  check_rc(H5Dread(ds.get(), u64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                   H5P_DEFAULT, tmp.data()),
           path_, fail);
  int64_t lo = 0, hi = 0;
  switch (want) {
    case DType::I8:
      lo = -128, hi = 127;
      break;
    case DType::U8:
      lo = 0, hi = 255;
      break;
    default:
      lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
      break;
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = tmp[size_t(i)];
    const bool in = u64 ? uint64_t(v) <= uint64_t(hi) : (v >= lo && v <= hi);
    GENIE_CHECK(in, "[h5] ", path_, ": ", what, " value ", (u64 ? str(uint64_t(v)) : str(v)),
                " at index ", i, " does not fit ", dtype_name(want));
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = tmp[size_t(i)];
    if (want == DType::I8)
      out.data_as<int8_t>()[i] = int8_t(v);
    else if (want == DType::U8)
      out.data_as<uint8_t>()[i] = uint8_t(v);
    else
      out.data_as<int32_t>()[i] = int32_t(v);
  }
  return out;
}

// ---- attributes ----

int64_t H5Reader::open_object(const std::string& object) const {
  GENIE_CHECK(file_ >= 0, "[h5] reader used after being moved from");
  if (object.empty() || object == "/") {
    const hid_t id = H5Oopen(file_, "/", H5P_DEFAULT);
    if (id < 0) throw Error(str("[h5] ", path_, ": cannot open the file root (", h5_detail(), ")"));
    return id;
  }
  const Entry& e = find(object);
  const hid_t id = H5Oopen(file_, e.path.c_str(), H5P_DEFAULT);
  if (id < 0)
    throw Error(str("[h5] ", path_, ": cannot open dataset '", e.key, "' (", h5_detail(), ")"));
  return id;
}

namespace {

// The attribute names of an open object, in name order.
std::vector<std::string> attr_names(hid_t obj, const std::string& file, const std::string& object) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  const herr_t rc = H5Aiterate2(
      obj, H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
        try {  // no exception may cross HDF5's C frames
          static_cast<std::vector<std::string>*>(data)->push_back(name);
        } catch (...) {
          return -1;
        }
        return 0;
      },
      &names);
  check_rc(rc, file, str("cannot list the attributes of ", object_label(object)));
  return names;
}

}  // namespace

std::vector<std::string> H5Reader::list_attrs(const std::string& object) const {
  Hid obj(open_object(object), H5Oclose);
  return attr_names(obj.get(), path_, object);
}

bool H5Reader::has_attr(const std::string& attr, const std::string& object) const {
  Hid obj(open_object(object), H5Oclose);
  const htri_t r = H5Aexists(obj.get(), attr.c_str());
  check_rc(r < 0 ? -1 : 0, path_,
           str("cannot look up attribute '", attr, "' on ", object_label(object)));
  return r > 0;
}

namespace {

// An opened attribute with its type and element count, with errors naming file, object, attribute.
struct Attr {
  Hid attr, type, space;
  int64_t n = 0;
  std::string label;  // "attribute 'x' of the file root"
};

// Opens `attr` and checks its declared size before anything is read: at most kMaxElements values
// (scalar or 1-D), no more bytes than the file has, and for fixed-size types exactly the bytes
// HDF5 stores for it.
Attr open_attr(hid_t obj, const std::string& file, const std::string& attr,
               const std::string& object, int64_t file_bytes) {
  Attr a;
  a.label = attr_label(attr, object);
  const htri_t ex = H5Aexists(obj, attr.c_str());
  if (ex < 0) check_rc(-1, file, "cannot read " + a.label);
  if (ex == 0) {
    std::string list;
    for (const auto& p : attr_names(obj, file, object)) list += (list.empty() ? "" : ", ") + p;
    throw Error(str("[h5] ", file, ": no attribute '", attr, "' on ", object_label(object),
                    " (present: ", list.empty() ? std::string("none") : list, ")"));
  }
  a.attr =
      checked(H5Aopen(obj, attr.c_str(), H5P_DEFAULT), H5Aclose, file, "cannot open " + a.label);
  a.type = checked(H5Aget_type(a.attr.get()), H5Tclose, file, "cannot read the type of " + a.label);
  a.space =
      checked(H5Aget_space(a.attr.get()), H5Sclose, file, "cannot read the shape of " + a.label);
  const Extent e = read_extent(a.space.get(), file, a.label, file_bytes);
  GENIE_CHECK(e.dims.size() <= 1, "[h5] ", file, ": ", a.label,
              " expected a scalar or 1-D value, got ", e.dims.size(), " dimensions");
  a.n = int64_t(e.numel);
  if (a.n == 0) return a;
  const size_t type_size = H5Tget_size(a.type.get());
  if (type_size == 0) check_rc(-1, file, "cannot read the type of " + a.label);
  const uint64_t bytes = mul_sat(e.numel, type_size);
  GENIE_CHECK(bytes <= uint64_t(file_bytes), "[h5] ", file, ": ", a.label, " declares shape ",
              dims_str(e.dims), " of ", type_size, "-byte values (", bytes,
              " bytes), more than the file holds (", file_note(file_bytes), ")");
  const htri_t variable = H5Tdetect_class(a.type.get(), H5T_VLEN);
  const htri_t vstr = H5Tis_variable_str(a.type.get());
  if (variable < 0 || vstr < 0) check_rc(-1, file, "cannot read the type of " + a.label);
  if (variable == 0 && vstr == 0) {
    const hsize_t stored = H5Aget_storage_size(a.attr.get());
    GENIE_CHECK(stored == bytes, "[h5] ", file, ": ", a.label, " declares shape ", dims_str(e.dims),
                " of ", type_size, "-byte values (", bytes, " bytes), but ", stored,
                " bytes are stored for it (corrupt; ", file_note(file_bytes), ")");
  }
  return a;
}

// Numeric attribute values as doubles (ints as int64 when `ints` is given, exactly).
void read_numeric_attr(const Attr& a, const std::string& file, std::vector<double>* dbl,
                       std::vector<int64_t>* ints) {
  const hid_t t = a.type.get();
  H5T_class_t cls = H5Tget_class(t);
  const size_t n = size_t(a.n);
  if (n == 0) return;
  if (cls == H5T_ENUM) {
    // numpy bools (h5py stores them as an int8 enum FALSE/TRUE): read raw bytes of the base
    // integer.
    Hid base = checked(H5Tget_super(t), H5Tclose, file, "cannot read the type of " + a.label);
    GENIE_CHECK(H5Tget_class(base.get()) == H5T_INTEGER, "[h5] ", file, ": ", a.label,
                " expected a number, got an enum");
    Hid mem =
        checked(H5Tget_native_type(t, H5T_DIR_ASCEND), H5Tclose, file, "cannot read " + a.label);
    const size_t sz = H5Tget_size(mem.get());
    const bool uns = H5Tget_sign(base.get()) == H5T_SGN_NONE;
    std::vector<unsigned char> raw(n * sz);
    check_rc(H5Aread(a.attr.get(), mem.get(), raw.data()), file, "cannot read " + a.label);
    for (size_t i = 0; i < n; ++i) {
      int64_t v = 0;
      const unsigned char* p = raw.data() + i * sz;
      switch (sz) {
        case 1:
          v = uns ? int64_t(*p) : int64_t(int8_t(*p));
          break;
        case 2: {
          uint16_t x;
          std::memcpy(&x, p, 2);
          v = uns ? int64_t(x) : int64_t(int16_t(x));
          break;
        }
        case 4: {
          uint32_t x;
          std::memcpy(&x, p, 4);
          v = uns ? int64_t(x) : int64_t(int32_t(x));
          break;
        }
        default:
          std::memcpy(&v, p, 8);
          break;
      }
      if (dbl) dbl->push_back(double(v));
      if (ints) ints->push_back(v);
    }
    return;
  }
  GENIE_CHECK(cls == H5T_INTEGER || cls == H5T_FLOAT, "[h5] ", file, ": ", a.label,
              " expected a number, got ", cls == H5T_STRING ? "a string" : "a non-numeric type");
  if (cls == H5T_INTEGER) {
    const bool u64 = is_unsigned64(t);
    std::vector<int64_t> v(n);
    check_rc(H5Aread(a.attr.get(), u64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, v.data()), file,
             "cannot read " + a.label);
    for (auto x : v) {
      if (u64)
        GENIE_CHECK(uint64_t(x) <= uint64_t(std::numeric_limits<int64_t>::max()), "[h5] ", file,
                    ": ", a.label, " value ", uint64_t(x), " does not fit int64");
      if (dbl) dbl->push_back(double(x));
      if (ints) ints->push_back(x);
    }
    return;
  }
  std::vector<double> v(n);
  check_rc(H5Aread(a.attr.get(), H5T_NATIVE_DOUBLE, v.data()), file, "cannot read " + a.label);
  for (double x : v) {
    if (dbl) dbl->push_back(x);
    if (ints) {
      GENIE_CHECK(std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9.2e18, "[h5] ", file,
                  ": ", a.label, " expected integer values, got ", x);
      ints->push_back(int64_t(x));
    }
  }
}

}  // namespace

std::string H5Reader::attr_string(const std::string& attr, const std::string& object) const {
  Hid obj(open_object(object), H5Oclose);
  Attr a = open_attr(obj.get(), path_, attr, object, file_bytes_);
  const hid_t t = a.type.get();
  GENIE_CHECK(H5Tget_class(t) == H5T_STRING, "[h5] ", path_, ": ", a.label,
              " expected a string, got a ",
              H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT ? "number"
                                                                             : "non-string value");
  GENIE_CHECK(a.n == 1, "[h5] ", path_, ": ", a.label, " expected one string, got ", a.n);
  const htri_t var = H5Tis_variable_str(t);
  check_rc(var < 0 ? -1 : 0, path_, "cannot read the type of " + a.label);
  const H5T_str_t pad = H5Tget_strpad(t);
  std::string s;
  if (var > 0) {
    // As a sequence of bytes rather than a C string: the stored length comes back, so a NUL
    // inside the string is seen instead of silently cutting it short.
    Hid seq = checked(H5Tvlen_create(H5T_NATIVE_UCHAR), H5Tclose, path_, "cannot read " + a.label);
    hvl_t v{0, nullptr};
    if (H5Aread(a.attr.get(), seq.get(), &v) >= 0) {
      std::unique_ptr<void, herr_t (*)(void*)> owned(v.p, H5free_memory);
      if (v.p) s.assign(static_cast<const char*>(v.p), v.len);
    } else {  // a library that cannot convert strings to byte sequences: read a C string
      H5Eclear2(H5E_DEFAULT);
      Hid mem = checked(H5Tcopy(H5T_C_S1), H5Tclose, path_, "cannot read " + a.label);
      H5Tset_cset(mem.get(), H5Tget_cset(t));
      H5Tset_size(mem.get(), H5T_VARIABLE);
      char* p = nullptr;
      check_rc(H5Aread(a.attr.get(), mem.get(), &p), path_, "cannot read " + a.label);
      std::unique_ptr<void, herr_t (*)(void*)> owned(p, H5free_memory);
      if (p) s = p;
    }
  } else {
    const size_t sz = H5Tget_size(t);  // within the file's size (open_attr)
    Hid mem = checked(H5Tcopy(H5T_C_S1), H5Tclose, path_, "cannot read " + a.label);
    H5Tset_cset(mem.get(), H5Tget_cset(t));
    H5Tset_size(mem.get(), sz);
    H5Tset_strpad(mem.get(), pad);
    s.assign(sz, '\0');
    check_rc(H5Aread(a.attr.get(), mem.get(), &s[0]), path_, "cannot read " + a.label);
    // A null-terminated string ends at its first NUL (what follows is not part of it).
    if (pad == H5T_STR_NULLTERM) s.resize(std::min(s.size(), s.find('\0')));
  }
  while (!s.empty() && s.back() == '\0') s.pop_back();  // padding
  if (var == 0 && pad == H5T_STR_SPACEPAD)
    while (!s.empty() && s.back() == ' ') s.pop_back();
  const size_t nul = s.find('\0');
  GENIE_CHECK(nul == std::string::npos, "[h5] ", path_, ": ", a.label,
              " expected a string without NUL bytes, got a NUL at byte ", nul, " of ", s.size(),
              " (after \"", s.substr(0, std::min<size_t>(nul, 40)), "\")");
  return s;
}

std::vector<double> H5Reader::attr_f64_vec(const std::string& attr,
                                           const std::string& object) const {
  Hid obj(open_object(object), H5Oclose);
  Attr a = open_attr(obj.get(), path_, attr, object, file_bytes_);
  std::vector<double> v;
  read_numeric_attr(a, path_, &v, nullptr);
  return v;
}

std::vector<float> H5Reader::attr_f32_vec(const std::string& attr,
                                          const std::string& object) const {
  const auto d = attr_f64_vec(attr, object);
  return std::vector<float>(d.begin(), d.end());
}

std::vector<int64_t> H5Reader::attr_i64_vec(const std::string& attr,
                                            const std::string& object) const {
  Hid obj(open_object(object), H5Oclose);
  Attr a = open_attr(obj.get(), path_, attr, object, file_bytes_);
  std::vector<int64_t> v;
  read_numeric_attr(a, path_, nullptr, &v);
  return v;
}

double H5Reader::attr_f64(const std::string& attr, const std::string& object) const {
  const auto v = attr_f64_vec(attr, object);
  GENIE_CHECK(v.size() == 1, "[h5] ", path_, ": attribute '", attr, "' of ", object_label(object),
              " expected one value, got ", v.size());
  return v[0];
}

int64_t H5Reader::attr_i64(const std::string& attr, const std::string& object) const {
  const auto v = attr_i64_vec(attr, object);
  GENIE_CHECK(v.size() == 1, "[h5] ", path_, ": attribute '", attr, "' of ", object_label(object),
              " expected one value, got ", v.size());
  return v[0];
}

// ------------------------------------------------------------------------------------------------
// H5Writer

H5Writer::H5Writer(const std::string& path) : path_(path), log_(std::make_unique<H5WriteLog>()) {
  h5_init();
  GENIE_CHECK(!path.empty(), "[h5] expected an output file name, got an empty string");
  GENIE_CHECK(!dir_exists(path), "[h5] ", path, ": cannot write, it is a directory");
  tmp_ = temp_path_for(path);
  Hid fcpl = checked(H5Pcreate(H5P_FILE_CREATE), H5Pclose, path, "cannot create");
  H5Pset_obj_track_times(fcpl.get(), false);  // no timestamps: same content → same bytes
  Hid fapl = checked(h5_writer_fapl(log_.get()), H5Pclose, path, "cannot create");
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  file_ = H5Fcreate(tmp_.c_str(), H5F_ACC_EXCL, fcpl.get(), fapl.get());
  if (file_ < 0) {  // HDF5 has closed what it opened; the file may exist (0 bytes or partial)
    const std::string detail = h5_detail();
    if (log_->created) ::unlink(tmp_.c_str());
    const std::string why = log_->open_error ? why_cannot_create(path, log_->open_error)
                            : log_->error    ? std::string(std::strerror(log_->error))
                                             : detail;
    throw Error(str("[h5] ", path, ": cannot create (", why, ")"));
  }
  if (log_->error != 0) {  // HDF5 went on (io/h5_driver.h), but the disk is already full
    close_file();
    ::unlink(tmp_.c_str());
    throw Error(str("[h5] ", path, ": cannot create (", std::strerror(log_->error), ")"));
  }
}

H5Writer::~H5Writer() {
  close_file();
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void H5Writer::close_file() noexcept {
  if (file_ < 0) return;
  H5Fclose(file_);  // HDF5 sees no I/O error (io/h5_driver.h); the log keeps any for the caller
  file_ = -1;
  H5Eclear2(H5E_DEFAULT);
}

void H5Writer::check_open(const char* op) const {
  GENIE_CHECK(file_ >= 0 && !committed_, "[h5] ", path_, ": ", op, " after commit()");
  GENIE_CHECK(log_->error == 0, "[h5] ", path_, ": ", op, " after a failed write (",
              std::strerror(log_->error), ")");
}

namespace {

// Runs one writer step, then checks the driver's log: HDF5 never sees an I/O error (see
// io/h5_driver.h), so a full disk is found here and reported as "[h5] <path>: <action> (No space
// left on device)" — also when a later HDF5 call failed because of it.
template <class F>
void io_step(const H5WriteLog& log, const std::string& path, const std::string& action, F&& f) {
  try {
    f();
  } catch (const Error&) {
    if (log.error == 0) throw;
  }
  GENIE_CHECK(log.error == 0, "[h5] ", path, ": ", action, " (", std::strerror(log.error), ")");
}

// Creates every missing group on the way to `name` ("a/b/c" → a, a/b) without timestamps.
void make_parent_groups(hid_t file, const std::string& name, const std::string& path) {
  size_t pos = 0;
  while ((pos = name.find('/', pos + 1)) != std::string::npos) {
    const std::string g = name.substr(0, pos);
    if (g.empty()) continue;
    const htri_t ex = H5Lexists(file, g.c_str(), H5P_DEFAULT);
    if (ex > 0) continue;
    H5Eclear2(H5E_DEFAULT);
    Hid gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
    H5Pset_obj_track_times(gcpl.get(), false);
    Hid grp = checked(H5Gcreate2(file, g.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose,
                      path, str("cannot create group '", g, "'"));
  }
}

bool link_exists(hid_t file, const std::string& name) {
  // H5Lexists fails (rather than answering no) when an intermediate group is missing.
  size_t pos = 0;
  while (true) {
    pos = name.find('/', pos + 1);
    const std::string part = pos == std::string::npos ? name : name.substr(0, pos);
    const htri_t ex = H5Lexists(file, part.c_str(), H5P_DEFAULT);
    if (ex <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (pos == std::string::npos) return true;
  }
}

}  // namespace

void H5Writer::write(const std::string& name, const Tensor& t_in, int gzip) {
  check_open("write");
  GENIE_CHECK(!name.empty() && name.front() != '/' && name.back() != '/', "[h5] ", path_,
              ": expected a dataset name like 'fc.weight' or 'a/b', got '", name, "'");
  GENIE_CHECK(t_in.defined(), "[h5] ", path_, ": dataset '", name,
              "' expected a tensor, got an undefined one");
  GENIE_CHECK(gzip >= 0 && gzip <= 9, "[h5] ", path_, ": dataset '", name,
              "' expected gzip level 0..9, got ", gzip);
  GENIE_CHECK(!link_exists(file_, name), "[h5] ", path_, ": dataset '", name, "' written twice");
  const Tensor t = t_in.to(Device::CPU);
  hid_t file_type, mem_type;
  switch (t.dtype()) {
    case DType::F32:
      file_type = H5T_IEEE_F32LE, mem_type = H5T_NATIVE_FLOAT;
      break;
    case DType::I8:
      file_type = H5T_STD_I8LE, mem_type = H5T_NATIVE_INT8;
      break;
    case DType::U8:
      file_type = H5T_STD_U8LE, mem_type = H5T_NATIVE_UINT8;
      break;
    case DType::I32:
      file_type = H5T_STD_I32LE, mem_type = H5T_NATIVE_INT32;
      break;
    default:
      throw Error(str("[h5] ", path_, ": dataset '", name, "' has an unsupported dtype"));
  }
  const Shape& shape = t.shape();
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  const std::string what = str("dataset '", name, "'");
  Hid space = shape.empty() ? checked(H5Screate(H5S_SCALAR), H5Sclose, path_,
                                      "cannot create the shape of " + what)
                            : checked(H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                                      H5Sclose, path_, "cannot create the shape of " + what);
  Hid dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, path_, "cannot create " + what);
  H5Pset_obj_track_times(dcpl.get(), false);
  if (gzip > 0 && !shape.empty() && t.numel() >= 4096) {
    GENIE_CHECK(H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0, "[h5] ", path_, ": gzip requested for ",
                what, " but this HDF5 library has no deflate filter");
    // Chunks of whole trailing dimensions, about 1 MiB each.
    std::vector<hsize_t> chunk = dims;
    size_t row = dtype_size(t.dtype());
    for (size_t i = 1; i < dims.size(); ++i) row *= size_t(dims[i]);
    chunk[0] =
        std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (1u << 20) / std::max<size_t>(row, 1)));
    // A single row over 4 GiB cannot be one chunk: fall back to contiguous.
    if (row * chunk[0] < (size_t(1) << 32)) {
      check_rc(H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data()), path_,
               "cannot chunk " + what);
      check_rc(H5Pset_deflate(dcpl.get(), unsigned(gzip)), path_, "cannot compress " + what);
    }
  }
  io_step(*log_, path_, "cannot write " + what, [&] {
    make_parent_groups(file_, name, path_);
    Hid ds = checked(H5Dcreate2(file_, name.c_str(), file_type, space.get(), H5P_DEFAULT,
                                dcpl.get(), H5P_DEFAULT),
                     H5Dclose, path_, "cannot create " + what);
    if (t.numel() > 0)
      check_rc(H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()), path_,
               "cannot write " + what);
  });
}

void H5Writer::write_f32(const std::string& name, const std::vector<float>& v, const Shape& shape) {
  write(name, Tensor::from_vector(v, shape));
}

void H5Writer::write_i32(const std::string& name, const std::vector<int32_t>& v,
                         const Shape& shape) {
  write(name, Tensor::from_i32(v, shape));
}

int64_t H5Writer::open_object(const std::string& object) const {
  if (object.empty() || object == "/") {
    const hid_t id = H5Oopen(file_, "/", H5P_DEFAULT);
    if (id < 0) throw Error(str("[h5] ", path_, ": cannot open the file root (", h5_detail(), ")"));
    return id;
  }
  GENIE_CHECK(link_exists(file_, object), "[h5] ", path_, ": attribute on dataset '", object,
              "' expected the dataset to be written first");
  const hid_t id = H5Oopen(file_, object.c_str(), H5P_DEFAULT);
  if (id < 0) throw Error(str("[h5] ", path_, ": cannot open '", object, "' (", h5_detail(), ")"));
  return id;
}

namespace {

// Creates (replacing) an attribute of the given file type/shape and writes `data` in `mem_type`.
void put_attr(hid_t obj, const std::string& file, const std::string& attr,
              const std::string& object, hid_t file_type, hid_t mem_type, hid_t space,
              const void* data) {
  const std::string label = str("attribute '", attr, "' of ", object_label(object));
  const htri_t ex = H5Aexists(obj, attr.c_str());
  check_rc(ex < 0 ? -1 : 0, file, "cannot look up " + label);
  if (ex > 0) check_rc(H5Adelete(obj, attr.c_str()), file, "cannot replace " + label);
  Hid a = checked(H5Acreate2(obj, attr.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose, file, "cannot create " + label);
  if (data) check_rc(H5Awrite(a.get(), mem_type, data), file, "cannot write " + label);
}

Hid vector_space(size_t n, const std::string& file) {
  if (n == 0)
    return checked(H5Screate(H5S_NULL), H5Sclose, file, "cannot create an attribute shape");
  const hsize_t d = n;
  return checked(H5Screate_simple(1, &d, nullptr), H5Sclose, file,
                 "cannot create an attribute shape");
}

}  // namespace

void H5Writer::set_attr_string(const std::string& attr, const std::string& value,
                               const std::string& object) {
  check_open("set_attr_string");
  Hid obj(open_object(object), H5Oclose);
  // Variable-length UTF-8 (what h5py writes for str): no 64 KiB object-header limit for long JSON.
  Hid type = checked(H5Tcopy(H5T_C_S1), H5Tclose, path_, "cannot create a string type");
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Hid space = checked(H5Screate(H5S_SCALAR), H5Sclose, path_, "cannot create an attribute shape");
  const char* p = value.c_str();
  io_step(*log_, path_, "cannot write " + attr_label(attr, object), [&] {
    put_attr(obj.get(), path_, attr, object, type.get(), type.get(), space.get(), &p);
  });
}

void H5Writer::set_attr_f32_vec(const std::string& attr, const std::vector<float>& v,
                                const std::string& object) {
  check_open("set_attr_f32_vec");
  Hid obj(open_object(object), H5Oclose);
  Hid space = vector_space(v.size(), path_);
  io_step(*log_, path_, "cannot write " + attr_label(attr, object), [&] {
    put_attr(obj.get(), path_, attr, object, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, space.get(),
             v.empty() ? nullptr : v.data());
  });
}

void H5Writer::set_attr_i64_vec(const std::string& attr, const std::vector<int64_t>& v,
                                const std::string& object) {
  check_open("set_attr_i64_vec");
  Hid obj(open_object(object), H5Oclose);
  Hid space = vector_space(v.size(), path_);
  io_step(*log_, path_, "cannot write " + attr_label(attr, object), [&] {
    put_attr(obj.get(), path_, attr, object, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(),
             v.empty() ? nullptr : v.data());
  });
}

void H5Writer::set_attr_f64(const std::string& attr, double v, const std::string& object) {
  check_open("set_attr_f64");
  Hid obj(open_object(object), H5Oclose);
  Hid space = checked(H5Screate(H5S_SCALAR), H5Sclose, path_, "cannot create an attribute shape");
  io_step(*log_, path_, "cannot write " + attr_label(attr, object), [&] {
    put_attr(obj.get(), path_, attr, object, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), &v);
  });
}

void H5Writer::set_attr_i64(const std::string& attr, int64_t v, const std::string& object) {
  check_open("set_attr_i64");
  Hid obj(open_object(object), H5Oclose);
  Hid space = checked(H5Screate(H5S_SCALAR), H5Sclose, path_, "cannot create an attribute shape");
  io_step(*log_, path_, "cannot write " + attr_label(attr, object), [&] {
    put_attr(obj.get(), path_, attr, object, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &v);
  });
}

void H5Writer::commit() {
  check_open("commit");
  // Every failure below throws; the destructor then closes what is open and deletes the
  // temporary file.
  io_step(*log_, path_, "cannot flush",
          [&] { check_rc(H5Fflush(file_, H5F_SCOPE_GLOBAL), path_, "cannot flush"); });
  const herr_t rc = H5Fclose(file_);
  file_ = -1;
  check_rc(rc, path_, "cannot close");
  GENIE_CHECK(log_->error == 0, "[h5] ", path_, ": cannot close (", std::strerror(log_->error),
              ")");
  fsync_and_rename(tmp_, path_);
  committed_ = true;
}

}  // namespace genie::io
