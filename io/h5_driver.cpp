// H5Writer's file driver: POSIX pread/pwrite like HDF5's sec2 driver, recording the first I/O
// error instead of reporting it to HDF5 (see h5_driver.h for why).
#include "io/h5_driver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#if H5_VERSION_GE(1, 13, 0)
#include <H5FDdevelop.h>
#endif

namespace genie::io {

namespace {

// The largest address an off_t can hold (sec2's MAXADDR).
constexpr haddr_t kMaxAddr = (haddr_t(1) << (8 * sizeof(off_t) - 1)) - 1;
// One pread/pwrite moves at most this much (Linux caps a call at about 2 GiB anyway).
constexpr size_t kMaxIo = size_t(1) << 30;

// The driver's per-file state; HDF5 keeps a pointer to `pub`, which must come first.
struct File {
  H5FD_t pub;
  int fd = -1;
  haddr_t eoa = 0;  // end of the address space HDF5 has allocated
  haddr_t eof = 0;  // end of the file as written (sec2's bookkeeping)
  dev_t dev = 0;
  ino_t ino = 0;
  H5WriteLog* log = nullptr;
};

// The property-list payload: where to record.
struct Info {
  H5WriteLog* log;
};

bool region_overflows(haddr_t addr, size_t size) {
  return addr == HADDR_UNDEF || addr > kMaxAddr || size > kMaxAddr || addr + size > kMaxAddr;
}

// Records the first failure. The callback still reports success to HDF5 (see h5_driver.h).
void record(File* f, int err) {
  if (f->log->error == 0) f->log->error = err ? err : EIO;
}

H5FD_t* drv_open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  const auto* info = static_cast<const Info*>(H5Pget_driver_info(fapl));
  if (!info || !info->log || !name || !*name || maxaddr == 0 || maxaddr == HADDR_UNDEF ||
      maxaddr > kMaxAddr)
    return nullptr;
  int o = O_CLOEXEC | ((flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY);
  if (flags & H5F_ACC_TRUNC) o |= O_TRUNC;
  if (flags & H5F_ACC_CREAT) o |= O_CREAT;
  if (flags & H5F_ACC_EXCL) o |= O_EXCL;
  // HDF5 first probes without create/truncate flags (is the file open already?): that failure
  // is expected and overwritten by the real attempt's outcome.
  const int fd = ::open(name, o, 0666);
  if (fd < 0) {
    info->log->open_error = errno;
    return nullptr;
  }
  struct stat st;
  File* f = ::fstat(fd, &st) == 0 ? new (std::nothrow) File() : nullptr;
  if (!f) {
    info->log->open_error = errno ? errno : ENOMEM;
    ::close(fd);
    return nullptr;
  }
  info->log->open_error = 0;
  if (flags & H5F_ACC_CREAT) info->log->created = true;
  f->fd = fd;
  f->eof = haddr_t(st.st_size);
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->log = info->log;
  return &f->pub;
}

herr_t drv_close(H5FD_t* file) {
  auto* f = reinterpret_cast<File*>(file);
  // Linux releases the descriptor even when close() reports an error (EIO on NFS): record it.
  if (::close(f->fd) != 0) record(f, errno);
  delete f;
  return 0;
}

int drv_cmp(const H5FD_t* a, const H5FD_t* b) {
  const auto* x = reinterpret_cast<const File*>(a);
  const auto* y = reinterpret_cast<const File*>(b);
  if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
  return 0;
}

// sec2's flags: they decide how HDF5 aggregates and places metadata and small data, so the same
// calls give the same bytes as with sec2.
herr_t drv_query(const H5FD_t*, unsigned long* flags) {
  if (!flags) return 0;
  *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
           H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE |
           H5FD_FEAT_SUPPORTS_SWMR_IO;
#ifdef H5FD_FEAT_DEFAULT_VFD_COMPATIBLE  // HDF5 >= 1.10.7
  *flags |= H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
#endif
  return 0;
}

haddr_t drv_get_eoa(const H5FD_t* file, H5FD_mem_t) {
  return reinterpret_cast<const File*>(file)->eoa;
}

herr_t drv_set_eoa(H5FD_t* file, H5FD_mem_t, haddr_t addr) {
  if (addr == HADDR_UNDEF || addr > kMaxAddr) return -1;
  reinterpret_cast<File*>(file)->eoa = addr;
  return 0;
}

haddr_t drv_get_eof(const H5FD_t* file, H5FD_mem_t) {
  return reinterpret_cast<const File*>(file)->eof;
}

herr_t drv_get_handle(H5FD_t* file, hid_t, void** handle) {
  if (!handle) return -1;
  *handle = &reinterpret_cast<File*>(file)->fd;
  return 0;
}

herr_t drv_read(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buf) {
  auto* f = reinterpret_cast<File*>(file);
  if (region_overflows(addr, size) || addr + size > f->eoa) return -1;
  auto* p = static_cast<unsigned char*>(buf);
  while (size > 0) {
    const ssize_t n = ::pread(f->fd, p, std::min(size, kMaxIo), off_t(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) {  // past the end of the file: zeros, as sec2 reads them
      std::memset(p, 0, size);
      break;
    }
    p += n, addr += haddr_t(n), size -= size_t(n);
  }
  return 0;
}

herr_t drv_write(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, const void* buf) {
  auto* f = reinterpret_cast<File*>(file);
  if (region_overflows(addr, size) || addr + size > f->eoa) return -1;
  if (f->log->error) return 0;  // the file is abandoned: nothing more is written to it
  const auto* p = static_cast<const unsigned char*>(buf);
  while (size > 0) {
    const ssize_t n = ::pwrite(f->fd, p, std::min(size, kMaxIo), off_t(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      record(f, n < 0 ? errno : EIO);
      return 0;
    }
    p += n, addr += haddr_t(n), size -= size_t(n);
  }
  if (addr > f->eof) f->eof = addr;
  return 0;
}

// Makes the file exactly as long as the allocated address space (sec2: HDF5 reads past a short
// file's end as zeros, and the file's recorded end must match its size).
herr_t drv_truncate(H5FD_t* file, hid_t, hbool_t) {
  auto* f = reinterpret_cast<File*>(file);
  if (f->eoa == f->eof || f->log->error) return 0;
  if (::ftruncate(f->fd, off_t(f->eoa)) != 0)
    record(f, errno);
  else
    f->eof = f->eoa;
  return 0;
}

hid_t g_driver = H5I_INVALID_HID;

herr_t drv_terminate() {  // HDF5's shutdown unregisters every driver
  g_driver = H5I_INVALID_HID;
  return 0;
}

hid_t driver_id() {
  if (g_driver >= 0 && H5Iget_type(g_driver) == H5I_VFL) return g_driver;
  static H5FD_class_t cls = [] {
    H5FD_class_t c;
    std::memset(&c, 0, sizeof c);
#if H5_VERSION_GE(1, 13, 0)
    c.version = H5FD_CLASS_VERSION;
    c.value = H5FD_class_value_t(600);  // outside the values of HDF5's own drivers
#endif
    c.name = "genie_writer";
    c.maxaddr = kMaxAddr;
    c.fc_degree = H5F_CLOSE_WEAK;
    c.terminate = drv_terminate;
    c.fapl_size = sizeof(Info);
    c.open = drv_open;
    c.close = drv_close;
    c.cmp = drv_cmp;
    c.query = drv_query;
    c.get_eoa = drv_get_eoa;
    c.set_eoa = drv_set_eoa;
    c.get_eof = drv_get_eof;
    c.get_handle = drv_get_handle;
    c.read = drv_read;
    c.write = drv_write;
    c.truncate = drv_truncate;
    const H5FD_mem_t map[] = H5FD_FLMAP_DICHOTOMY;  // sec2's free-list map
    std::memcpy(c.fl_map, map, sizeof map);
    return c;
  }();
  g_driver = H5FDregister(&cls);
  return g_driver;
}

}  // namespace

hid_t h5_writer_fapl(H5WriteLog* log) {
  const hid_t id = driver_id();
  if (id < 0) return H5I_INVALID_HID;
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return H5I_INVALID_HID;
  const Info info{log};
  if (H5Pset_driver(fapl, id, &info) < 0) {
    H5Pclose(fapl);
    return H5I_INVALID_HID;
  }
  return fapl;
}

}  // namespace genie::io
