// Reading an HDF5 file from outside in a child process first. libhdf5 (1.10 in Debian 12) can
// crash or loop on a file whose metadata is damaged — its own defects, out of genie's reach (a
// mutation fuzzer finds them in minutes: a corrupt attribute message, a corrupt global heap). So
// before a file is opened in this process for the first time, a forked child opens it and reads
// everything genie's readers can read from it: every dataset's shape, type and values (as stored
// and as float32), every attribute (as a string and as numbers). When the child dies from a signal
// or outlives its time limit, the file is reported as corrupt and never opened here; otherwise the
// same reads are safe in this process (libhdf5 is deterministic). A file is probed once per
// (path, size, modification time) and process.
//
// The child has a minute, and ten seconds more per 100 MB of file (GENIE_H5_PROBE_SECONDS sets the
// minute). The verdict is kept: a file refused once is refused again at once.
// GENIE_H5_PROBE=0 turns the probe off (files are then opened directly, as before).
// GENIE_H5_PROBE_LOG=DIR keeps each failed probe's stderr in DIR (for triage; otherwise the
// child's output is discarded).
#pragma once
#include <string>

namespace genie::io {

// Throws genie::Error "[h5] <path>: corrupt HDF5 file: reading it crashed the HDF5 library
// (<signal>) …" or "… did not finish within N s …"; returns when the file is safe to read here
// (whether or not it is a valid genie file: that is for the readers to say).
void probe_h5_file(const std::string& path);

// Whether this process is a probe child (its readers do not probe again).
bool in_h5_probe();

}  // namespace genie::io
