#include "server/log/disk_full_injection.h"

#ifdef WALFEED_FAULT_POINTS

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace walfeed {
namespace {

// Whether the disk is "full": a file exists at the path.
class FullFlag {
 public:
  explicit FullFlag(std::string path) : path_(std::move(path)) {}
  bool Raised() const { return ::access(path_.c_str(), F_OK) == 0; }

 private:
  const std::string path_;
};

// What RocksDB's POSIX file system answers a write on a full disk.
rocksdb::IOStatus NoSpace() {
  rocksdb::IOStatus status =
      rocksdb::IOStatus::NoSpace("While appending to file: No space left on device (injected)");
  status.SetRetryable(true);
  return status;
}

class FullableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FullableFile(std::unique_ptr<rocksdb::FSWritableFile> file, const FullFlag* full)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(file)), full_(full) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* debug) override {
    if (full_->Raised()) return NoSpace();
    return rocksdb::FSWritableFileOwnerWrapper::Append(data, options, debug);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& verification,
                           rocksdb::IODebugContext* debug) override {
    if (full_->Raised()) return NoSpace();
    return rocksdb::FSWritableFileOwnerWrapper::Append(data, options, verification, debug);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* debug) override {
    if (full_->Raised()) return NoSpace();
    return rocksdb::FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, debug);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& verification,
                                     rocksdb::IODebugContext* debug) override {
    if (full_->Raised()) return NoSpace();
    return rocksdb::FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options,
                                                                 verification, debug);
  }

 private:
  const FullFlag* full_;
};

class FullableFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FullableFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base, std::string flag_path)
      : rocksdb::FileSystemWrapper(base), full_(std::move(flag_path)) {}

  static const char* kClassName() { return "WalfeedFullableFileSystem"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* debug) override {
    if (!absl::EndsWith(name, ".sst")) return target()->NewWritableFile(name, options, file, debug);
    if (full_.Raised()) return NoSpace();
    std::unique_ptr<rocksdb::FSWritableFile> opened;
    rocksdb::IOStatus status = target()->NewWritableFile(name, options, &opened, debug);
    if (status.ok()) *file = std::make_unique<FullableFile>(std::move(opened), &full_);
    return status;
  }

 private:
  const FullFlag full_;
};

}  // namespace

rocksdb::Env* DiskFullInjectingEnv() {
  const char* path = std::getenv("WALFEED_FAULT_DISK_FULL");
  if (path == nullptr || *path == '\0') return nullptr;
  // One environment per flag path, kept for the process's life (a database must not outlive its
  // Env; a test may open logs with different flags in one process).
  static absl::Mutex mu;
  static auto* envs = new std::map<std::string, std::unique_ptr<rocksdb::Env>>();
  absl::MutexLock lock(&mu);
  std::unique_ptr<rocksdb::Env>& env = (*envs)[path];
  if (env == nullptr) {
    env = rocksdb::NewCompositeEnv(
        std::make_shared<FullableFileSystem>(rocksdb::FileSystem::Default(), path));
  }
  return env.get();
}

}  // namespace walfeed

#else

namespace walfeed {

rocksdb::Env* DiskFullInjectingEnv() { return nullptr; }

}  // namespace walfeed

#endif
