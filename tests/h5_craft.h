// Pathological HDF5 files for the reader's hardening tests (tests/test_io.cpp), made with the HDF5
// C API directly: datasets declaring shapes their storage cannot hold, unallocated chunks,
// attributes declaring huge dataspaces, strings with embedded NULs. Where the library refuses to
// write such a file, a well-formed one is written and a few bytes patched, as a mutation fuzzer
// would: the dimensions of a dataspace message, a byte of a string.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace genie::test {

// A chunked float32 dataset `name` declaring `dims` with chunks `chunk` (deflate level 1 when
// `gzip`). `written_chunks` leading chunks along dimension 0 are written (zeros), the rest stay
// unallocated: 0 gives a dataset with storage size 0.
void craft_chunked(const std::string& path, const std::string& name,
                   const std::vector<uint64_t>& dims, const std::vector<uint64_t>& chunk, bool gzip,
                   uint64_t written_chunks);

// A contiguous float32 dataset `name` declaring `dims` that is never written (allocation time
// late, so it has no storage at all).
void craft_contiguous_unallocated(const std::string& path, const std::string& name,
                                  const std::vector<uint64_t>& dims);

// A contiguous float32 dataset `name` written (zeros) with shape `written`, then its dataspace
// message patched to declare `declared` (same rank; the data stays where it was, the size of the
// data in the layout message stays that of `written`). `written` must be distinctive: its
// dimensions, as consecutive little-endian uint64, must not occur elsewhere in the file.
void craft_contiguous_patched(const std::string& path, const std::string& name,
                              const std::vector<uint64_t>& written,
                              const std::vector<uint64_t>& declared);

// A contiguous float32 dataset `name` of shape (7, 11) (308 bytes of zeros) whose layout message
// is patched to place the data at byte `address` of the file.
void craft_contiguous_moved(const std::string& path, const std::string& name, uint64_t address);

// A 1-D int64 attribute `attr` on the file root written with `written` elements (values i % 100),
// then its dataspace patched to declare `declared` elements.
void craft_attr_patched(const std::string& path, const std::string& attr, uint64_t written,
                        uint64_t declared);

// A scalar string attribute `attr` on the file root holding exactly `bytes` (NULs included):
// variable-length UTF-8 as h5py and H5Writer write strings, or fixed-length NULL-padded as numpy
// bytes are written.
void craft_string_attr(const std::string& path, const std::string& attr, const std::string& bytes,
                       bool variable_length);

}  // namespace genie::test
