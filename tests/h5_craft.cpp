// Pathological HDF5 files for the reader's hardening tests (see h5_craft.h).
#include "h5_craft.h"

#include <doctest/doctest.h>
#include <hdf5.h>

#include <fstream>
#include <iterator>

namespace genie::test {

namespace {

// Checked HDF5 call for the crafting code: these files are the tests' fixtures, so a failure here
// is a broken test, reported with the call's text.
#define H5C(call)                                         \
  [&] {                                                   \
    const auto _r = (call);                               \
    REQUIRE_MESSAGE(_r >= 0, "HDF5 call failed: " #call); \
    return _r;                                            \
  }()

hid_t create_file(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return H5C(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
}

std::string le64s(const std::vector<uint64_t>& v) {
  std::string out;
  for (uint64_t x : v)
    for (int i = 0; i < 8; ++i) out.push_back(char((x >> (8 * i)) & 0xff));
  return out;
}

// Replaces every occurrence of `from` in the file by `to` (same length); requires at least one.
void patch_bytes(const std::string& path, const std::string& from, const std::string& to) {
  REQUIRE(from.size() == to.size());
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  int hits = 0;
  for (size_t pos = bytes.find(from); pos != std::string::npos; pos = bytes.find(from, pos + 1)) {
    bytes.replace(pos, to.size(), to);
    ++hits;
  }
  REQUIRE_MESSAGE(hits > 0, "pattern to patch not found in " << path);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
}

}  // namespace

void craft_chunked(const std::string& path, const std::string& name,
                   const std::vector<uint64_t>& dims, const std::vector<uint64_t>& chunk, bool gzip,
                   uint64_t written_chunks) {
  REQUIRE(dims.size() == chunk.size());
  const hid_t f = create_file(path);
  const std::vector<hsize_t> d(dims.begin(), dims.end()), c(chunk.begin(), chunk.end());
  const hid_t space = H5C(H5Screate_simple(int(d.size()), d.data(), nullptr));
  const hid_t dcpl = H5C(H5Pcreate(H5P_DATASET_CREATE));
  H5C(H5Pset_chunk(dcpl, int(c.size()), c.data()));
  if (gzip) H5C(H5Pset_deflate(dcpl, 1));
  const hid_t ds =
      H5C(H5Dcreate2(f, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  if (written_chunks > 0) {
    // The first `written_chunks` chunks along dimension 0, zeros.
    std::vector<hsize_t> start(d.size(), 0), count = c;
    count[0] = c[0] * written_chunks;
    uint64_t n = 1;
    for (auto x : count) n *= x;
    std::vector<float> zeros(size_t(n), 0.f);
    const hid_t mem = H5C(H5Screate_simple(int(count.size()), count.data(), nullptr));
    H5C(H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr));
    H5C(H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, zeros.data()));
    H5Sclose(mem);
  }
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5C(H5Fclose(f));
}

void craft_contiguous_unallocated(const std::string& path, const std::string& name,
                                  const std::vector<uint64_t>& dims) {
  const hid_t f = create_file(path);
  const std::vector<hsize_t> d(dims.begin(), dims.end());
  const hid_t space = H5C(H5Screate_simple(int(d.size()), d.data(), nullptr));
  const hid_t dcpl = H5C(H5Pcreate(H5P_DATASET_CREATE));
  H5C(H5Pset_layout(dcpl, H5D_CONTIGUOUS));
  H5C(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE));
  const hid_t ds =
      H5C(H5Dcreate2(f, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5C(H5Fclose(f));
}

void craft_contiguous_patched(const std::string& path, const std::string& name,
                              const std::vector<uint64_t>& written,
                              const std::vector<uint64_t>& declared) {
  REQUIRE(written.size() == declared.size());
  {
    const hid_t f = create_file(path);
    const std::vector<hsize_t> d(written.begin(), written.end());
    uint64_t n = 1;
    for (auto x : written) n *= x;
    std::vector<float> zeros(size_t(n), 0.f);
    const hid_t space = H5C(H5Screate_simple(int(d.size()), d.data(), nullptr));
    const hid_t ds = H5C(
        H5Dcreate2(f, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5C(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()));
    H5Dclose(ds);
    H5Sclose(space);
    H5C(H5Fclose(f));
  }
  patch_bytes(path, le64s(written), le64s(declared));  // dims (and max dims) of the dataspace
}

void craft_contiguous_moved(const std::string& path, const std::string& name, uint64_t address) {
  craft_contiguous_patched(path, name, {7, 11}, {7, 11});
  // The layout message (version 3, contiguous): 03 01, the address (8 bytes), the size (8 bytes).
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  const std::string size = le64s({308});
  size_t at = std::string::npos;
  for (size_t i = 0; i + 18 <= bytes.size(); ++i)
    if (bytes[i] == 3 && bytes[i + 1] == 1 && bytes.compare(i + 10, 8, size) == 0) at = i;
  REQUIRE_MESSAGE(at != std::string::npos, "no contiguous layout message in " << path);
  bytes.replace(at + 2, 8, le64s({address}));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
}

void craft_attr_patched(const std::string& path, const std::string& attr, uint64_t written,
                        uint64_t declared) {
  {
    const hid_t f = create_file(path);
    const hsize_t d = written;
    std::vector<int64_t> v(static_cast<size_t>(written));
    for (size_t i = 0; i < v.size(); ++i) v[i] = int64_t(i % 100);
    const hid_t space = H5C(H5Screate_simple(1, &d, nullptr));
    const hid_t a =
        H5C(H5Acreate2(f, attr.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT));
    H5C(H5Awrite(a, H5T_NATIVE_INT64, v.data()));
    H5Aclose(a);
    H5Sclose(space);
    H5C(H5Fclose(f));
  }
  patch_bytes(path, le64s({written}), le64s({declared}));
}

void craft_string_attr(const std::string& path, const std::string& attr, const std::string& bytes,
                       bool variable_length) {
  const hid_t f = create_file(path);
  const hid_t space = H5C(H5Screate(H5S_SCALAR));
  const hid_t type = H5C(H5Tcopy(H5T_C_S1));
  if (variable_length) {
    H5C(H5Tset_size(type, H5T_VARIABLE));
    H5C(H5Tset_cset(type, H5T_CSET_UTF8));
    const hid_t a = H5C(H5Acreate2(f, attr.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
    // Written from a variable-length sequence of bytes (HDF5 converts it to the string type),
    // since a C string cannot carry a NUL.
    const hid_t mem = H5C(H5Tvlen_create(H5T_NATIVE_UCHAR));
    hvl_t v{bytes.size(), const_cast<char*>(bytes.data())};
    H5C(H5Awrite(a, mem, &v));
    H5Tclose(mem);
    H5Aclose(a);
  } else {
    H5C(H5Tset_size(type, bytes.size()));
    H5C(H5Tset_strpad(type, H5T_STR_NULLPAD));
    const hid_t a = H5C(H5Acreate2(f, attr.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
    H5C(H5Awrite(a, type, bytes.data()));
    H5Aclose(a);
  }
  H5Tclose(type);
  H5Sclose(space);
  H5C(H5Fclose(f));
}

#undef H5C

}  // namespace genie::test
