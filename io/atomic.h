// Whole-file reads and all-or-nothing writes: a file written here is either the complete new
// content or untouched (temporary file in the same directory, fsync, rename, fsync of the
// directory).
#pragma once
#include <string>

namespace genie::io {

// Writes `bytes` to `path` atomically. Throws genie::Error "[io] <path>: cannot write (<reason>)".
void write_file_atomic(const std::string& path, const std::string& bytes);

// Whole file as bytes. Throws "[io] <path>: does not exist" / "is a directory" / "cannot read
// (...)".
std::string read_text_file(const std::string& path);

// 64-bit FNV-1a of the file's bytes as 16 hex digits (a model's fingerprint in checkpoints and
// quantized files). Throws "[io] <path>: cannot read".
std::string file_fingerprint(const std::string& path);

bool file_exists(const std::string& path);  // a regular file (or link to one)
bool dir_exists(const std::string& path);

// Creates `path` and missing parents (mkdir -p). Throws naming the part that failed.
void make_dirs(const std::string& path);

// ---- building blocks shared with H5Writer / image writers ----
// A fresh, unused temporary name in the directory of `path`: "<dir>/.<base>.tmp-<pid>-<n>".
std::string temp_path_for(const std::string& path);
// fsync(path) then rename(tmp, path) then fsync(directory). Throws on failure (tmp is left to the
// caller).
void fsync_and_rename(const std::string& tmp, const std::string& path);
// Why `path` could not be created (err = the failing call's errno): "directory 'x' does not exist",
// "directory 'x' is not writable", or strerror(err).
std::string why_cannot_create(const std::string& path, int err);

}  // namespace genie::io
