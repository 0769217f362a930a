#include "fault_vfs.h"

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace deltasync {
namespace testing_util {

namespace {

// One open file: our sqlite3_file, then (at kRealOffset) the wrapped VFS's own.
struct FaultFile {
  sqlite3_file base;  // base.pMethods = &kMethods once the real file is open
  FaultVfs* owner;
  sqlite3_file* real;
  std::string* path;   // set while durability is tracked (owned; freed at close)
  int64_t generation;  // the owner's generation when opened: older handles are dead after a power cut
};

constexpr size_t kRealOffset = (sizeof(FaultFile) + 15) & ~size_t{15};

FaultFile* Cast(sqlite3_file* file) { return reinterpret_cast<FaultFile*>(file); }
sqlite3_file* Real(sqlite3_file* file) { return Cast(file)->real; }
FaultVfs* Owner(sqlite3_vfs* vfs) { return static_cast<FaultVfs*>(vfs->pAppData); }
sqlite3_vfs* RealVfs(sqlite3_vfs* vfs) { return Owner(vfs)->real(); }

// ---- file methods: the four counted ones, then plain forwarding

// A handle opened before the last power cut: the process that held it is gone.
bool Dead(sqlite3_file* file) { return Cast(file)->generation < Cast(file)->owner->generation(); }

int FileClose(sqlite3_file* file) {
  sqlite3_file* real = Real(file);
  const int rc = real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
  delete Cast(file)->path;
  Cast(file)->path = nullptr;
  file->pMethods = nullptr;
  return rc;
}

int FileRead(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
  if (Cast(file)->owner->ShouldFail(kFaultRead)) return SQLITE_IOERR_READ;
  return Real(file)->pMethods->xRead(Real(file), buffer, amount, offset);
}

int FileWrite(sqlite3_file* file, const void* buffer, int amount, sqlite3_int64 offset) {
  if (Dead(file)) return SQLITE_OK;
  if (Cast(file)->owner->ShouldFail(kFaultWrite)) return SQLITE_IOERR_WRITE;
  return Real(file)->pMethods->xWrite(Real(file), buffer, amount, offset);
}

int FileTruncate(sqlite3_file* file, sqlite3_int64 size) {
  if (Dead(file)) return SQLITE_OK;
  if (Cast(file)->owner->ShouldFail(kFaultTruncate)) return SQLITE_IOERR_TRUNCATE;
  return Real(file)->pMethods->xTruncate(Real(file), size);
}

int FileSync(sqlite3_file* file, int flags) {
  if (Dead(file)) return SQLITE_OK;
  if (Cast(file)->owner->ShouldFail(kFaultSync)) return SQLITE_IOERR_FSYNC;
  const int rc = Real(file)->pMethods->xSync(Real(file), flags);
  if (rc == SQLITE_OK && Cast(file)->path != nullptr) Cast(file)->owner->NoteSynced(*Cast(file)->path, Real(file));
  return rc;
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) { return Real(file)->pMethods->xFileSize(Real(file), size); }
int FileLock(sqlite3_file* file, int level) { return Real(file)->pMethods->xLock(Real(file), level); }
int FileUnlock(sqlite3_file* file, int level) { return Real(file)->pMethods->xUnlock(Real(file), level); }
int FileCheckReservedLock(sqlite3_file* file, int* out) {
  return Real(file)->pMethods->xCheckReservedLock(Real(file), out);
}
int FileControl(sqlite3_file* file, int op, void* arg) {
  return Real(file)->pMethods->xFileControl(Real(file), op, arg);
}
int FileSectorSize(sqlite3_file* file) { return Real(file)->pMethods->xSectorSize(Real(file)); }
int FileDeviceCharacteristics(sqlite3_file* file) {
  return Real(file)->pMethods->xDeviceCharacteristics(Real(file));
}
int FileShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return Real(file)->pMethods->xShmMap(Real(file), region, size, extend, out);
}
int FileShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return Real(file)->pMethods->xShmLock(Real(file), offset, n, flags);
}
void FileShmBarrier(sqlite3_file* file) { Real(file)->pMethods->xShmBarrier(Real(file)); }
int FileShmUnmap(sqlite3_file* file, int delete_flag) {
  return Real(file)->pMethods->xShmUnmap(Real(file), delete_flag);
}
int FileFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  return Real(file)->pMethods->xFetch(Real(file), offset, amount, out);
}
int FileUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* pointer) {
  return Real(file)->pMethods->xUnfetch(Real(file), offset, pointer);
}

// The wrapper's methods, at the version of the real file's methods (a version 1 file has no
// WAL shared memory, a version 2 one no memory-mapped I/O).
constexpr sqlite3_io_methods MethodsOfVersion(int version) {
  return {version,
          FileClose,
          FileRead,
          FileWrite,
          FileTruncate,
          FileSync,
          FileSize,
          FileLock,
          FileUnlock,
          FileCheckReservedLock,
          FileControl,
          FileSectorSize,
          FileDeviceCharacteristics,
          version >= 2 ? FileShmMap : nullptr,
          version >= 2 ? FileShmLock : nullptr,
          version >= 2 ? FileShmBarrier : nullptr,
          version >= 2 ? FileShmUnmap : nullptr,
          version >= 3 ? FileFetch : nullptr,
          version >= 3 ? FileUnfetch : nullptr};
}
constexpr sqlite3_io_methods kMethods[] = {MethodsOfVersion(1), MethodsOfVersion(2), MethodsOfVersion(3)};

// ---- VFS methods: open wraps, the rest forward to the real VFS

int VfsOpen(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  FaultFile* wrapper = Cast(file);
  wrapper->base.pMethods = nullptr;
  wrapper->owner = Owner(vfs);
  wrapper->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  wrapper->real->pMethods = nullptr;
  wrapper->path = nullptr;
  wrapper->generation = Owner(vfs)->generation();
  const int rc = RealVfs(vfs)->xOpen(RealVfs(vfs), name, wrapper->real, flags, out_flags);
  if (rc == SQLITE_OK && wrapper->real->pMethods != nullptr) {
    const int version = wrapper->real->pMethods->iVersion;
    wrapper->base.pMethods = &kMethods[version >= 3 ? 2 : version <= 1 ? 0 : 1];
    if (name != nullptr && Owner(vfs)->tracking()) {
      wrapper->path = new std::string(name);
      Owner(vfs)->NoteOpened(*wrapper->path, wrapper->real);
    }
  }
  return rc;
}

int VfsDelete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  if (Owner(vfs)->powered_off()) return SQLITE_OK;  // a dead process deletes nothing
  if (name != nullptr && Owner(vfs)->tracking()) Owner(vfs)->NoteDeleted(name);
  return RealVfs(vfs)->xDelete(RealVfs(vfs), name, sync_dir);
}

// The whole content of an open file, read through its own handle.
std::optional<std::string> ReadWhole(sqlite3_file* real) {
  sqlite3_int64 size = 0;
  if (real->pMethods->xFileSize(real, &size) != SQLITE_OK) return std::nullopt;
  std::string content(static_cast<size_t>(size), '\0');
  if (size > 0 && real->pMethods->xRead(real, content.data(), static_cast<int>(size), 0) != SQLITE_OK) {
    return std::nullopt;
  }
  return content;
}
int VfsAccess(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return RealVfs(vfs)->xAccess(RealVfs(vfs), name, flags, out);
}
int VfsFullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return RealVfs(vfs)->xFullPathname(RealVfs(vfs), name, size, out);
}
void* VfsDlOpen(sqlite3_vfs* vfs, const char* name) { return RealVfs(vfs)->xDlOpen(RealVfs(vfs), name); }
void VfsDlError(sqlite3_vfs* vfs, int size, char* out) { RealVfs(vfs)->xDlError(RealVfs(vfs), size, out); }
void (*VfsDlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return RealVfs(vfs)->xDlSym(RealVfs(vfs), handle, symbol);
}
void VfsDlClose(sqlite3_vfs* vfs, void* handle) { RealVfs(vfs)->xDlClose(RealVfs(vfs), handle); }
int VfsRandomness(sqlite3_vfs* vfs, int size, char* out) {
  return RealVfs(vfs)->xRandomness(RealVfs(vfs), size, out);
}
int VfsSleep(sqlite3_vfs* vfs, int microseconds) { return RealVfs(vfs)->xSleep(RealVfs(vfs), microseconds); }
int VfsCurrentTime(sqlite3_vfs* vfs, double* out) { return RealVfs(vfs)->xCurrentTime(RealVfs(vfs), out); }
int VfsGetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return RealVfs(vfs)->xGetLastError ? RealVfs(vfs)->xGetLastError(RealVfs(vfs), size, out) : 0;
}
int VfsCurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return RealVfs(vfs)->xCurrentTimeInt64(RealVfs(vfs), out);
}

}  // namespace

FaultVfs::FaultVfs() {
  real_ = sqlite3_vfs_find(nullptr);
  vfs_.iVersion = 2;
  vfs_.szOsFile = static_cast<int>(kRealOffset) + real_->szOsFile;
  vfs_.mxPathname = real_->mxPathname;
  vfs_.pNext = nullptr;
  vfs_.zName = kName;
  vfs_.pAppData = this;
  vfs_.xOpen = VfsOpen;
  vfs_.xDelete = VfsDelete;
  vfs_.xAccess = VfsAccess;
  vfs_.xFullPathname = VfsFullPathname;
  vfs_.xDlOpen = VfsDlOpen;
  vfs_.xDlError = VfsDlError;
  vfs_.xDlSym = VfsDlSym;
  vfs_.xDlClose = VfsDlClose;
  vfs_.xRandomness = VfsRandomness;
  vfs_.xSleep = VfsSleep;
  vfs_.xCurrentTime = VfsCurrentTime;
  vfs_.xGetLastError = VfsGetLastError;
  vfs_.xCurrentTimeInt64 = VfsCurrentTimeInt64;
  sqlite3_vfs_register(&vfs_, /*makeDflt=*/0);
}

FaultVfs& FaultVfs::Get() {
  // Registered once per process and never unregistered: SQLite keeps a pointer to it.
  static FaultVfs instance;
  return instance;
}

void FaultVfs::Arm(int64_t fail_at, unsigned ops, bool persistent) {
  armed_.store(false);
  operations_.store(0);
  failures_.store(0);
  fail_at_.store(fail_at);
  ops_.store(ops);
  persistent_.store(persistent);
  armed_.store(true);
}

void FaultVfs::Disarm() { armed_.store(false); }

bool FaultVfs::ShouldFail(FaultOp op) {
  if (!armed_.load() || (ops_.load() & op) == 0) return false;
  const int64_t n = operations_.fetch_add(1) + 1;
  const int64_t fail_at = fail_at_.load();
  if (n == fail_at || (persistent_.load() && n > fail_at)) {
    failures_.fetch_add(1);
    return true;
  }
  return false;
}

ScopedDefaultVfs::ScopedDefaultVfs() : previous_(sqlite3_vfs_find(nullptr)) {
  sqlite3_vfs_register(FaultVfs::Get().vfs(), /*makeDflt=*/1);
}

ScopedDefaultVfs::~ScopedDefaultVfs() { sqlite3_vfs_register(previous_, /*makeDflt=*/1); }

void FaultVfs::TrackDurability(bool on) {
  std::lock_guard<std::mutex> lock(durable_mutex_);
  durable_.clear();
  tracking_ = on;
}

void FaultVfs::NoteOpened(const std::string& path, sqlite3_file* real) {
  std::lock_guard<std::mutex> lock(durable_mutex_);
  // A file that existed before it was first opened counts as synced, as it is.
  if (durable_.count(path) == 0) durable_[path] = ReadWhole(real);
}

void FaultVfs::NoteSynced(const std::string& path, sqlite3_file* real) {
  std::optional<std::string> content = ReadWhole(real);
  std::lock_guard<std::mutex> lock(durable_mutex_);
  durable_[path] = std::move(content);
}

void FaultVfs::NoteDeleted(const std::string& path) {
  std::lock_guard<std::mutex> lock(durable_mutex_);
  durable_[path] = std::nullopt;
}

void FaultVfs::PowerCut() {
  powered_off_ = true;
  ++generation_;
}

void FaultVfs::Restore() {
  std::lock_guard<std::mutex> lock(durable_mutex_);
  for (const auto& [path, content] : durable_) {
    std::error_code ignored;
    std::filesystem::remove(path + "-shm", ignored);  // shared memory does not survive a power cut
    if (!content) {
      std::filesystem::remove(path, ignored);
      continue;
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content->data(), static_cast<std::streamsize>(content->size()));
  }
  powered_off_ = false;
}

}  // namespace testing_util
}  // namespace deltasync
