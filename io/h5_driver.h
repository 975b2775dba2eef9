// The file driver (HDF5 "VFD") under H5Writer: sec2's POSIX I/O (the same feature flags, hence the
// same bytes in the file), plus a record of the first failed write, truncate or close and its
// errno, so that a full disk is reported as "No space left on device" naming the file.
//
// Why H5Writer does not use sec2: HDF5 1.10 cannot recover from a failed write during a flush.
// Its metadata cache is left mid-flush ("slist already enabled?"), so every later flush or close
// fails too, and a failed H5Fclose leaves a freed file behind a live identifier, which the
// library's shutdown at exit closes again (SIGSEGV in H5F__close_cb). So this driver never reports
// a failed write or truncate to HDF5: it records the first one, skips all later writes (the file
// is abandoned) and lets HDF5 carry on as if they had succeeded. H5Writer checks the record after
// every step and throws; its temporary file is then closed — HDF5's close cannot fail on I/O — and
// deleted. Internal to io/ (h5.cpp).
#pragma once
#include <hdf5.h>

namespace genie::io {

// What the driver saw on one file; must outlive the file's HDF5 identifier.
struct H5WriteLog {
  int error = 0;         // errno of the first failed write, truncate or close; 0: none
  int open_error = 0;    // errno of the last failed open (why the file could not be created)
  bool created = false;  // the driver created the file (it is the writer's to delete)
};

// A new file-access property list using the driver and recording into *log (caller closes it).
// Returns a negative id on failure, with HDF5's error stack set.
hid_t h5_writer_fapl(H5WriteLog* log);

}  // namespace genie::io
