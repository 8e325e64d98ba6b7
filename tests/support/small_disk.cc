#include "tests/support/small_disk.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace walfeed::test {

bool MustNotSkip() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

SmallDisk::~SmallDisk() {
  if (simulated()) unlink(flag_.c_str());
  if (!mounted_) return;
  Free().IgnoreError();
  RunResult unmounted = RunCommand({"umount", dir_}, absl::Seconds(10));
  if (unmounted.exit_code != 0) std::cerr << "cannot unmount " << dir_ << ": " << unmounted.output;
}

absl::Status SmallDisk::Mount(const std::string& dir, int size_mib) {
  if (const char* simulate = std::getenv("WALFEED_TEST_SIMULATE_FULL_DISK");
      simulate != nullptr && std::string(simulate) == "1") {
    return absl::FailedPreconditionError("WALFEED_TEST_SIMULATE_FULL_DISK=1: no tmpfs mounted");
  }
  dir_ = dir;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("cannot create", dir);
  RunResult mounted = RunCommand({"mount", "-t", "tmpfs", "-o",
                                  absl::StrCat("size=", size_mib, "m"), "walfeed-small-disk", dir},
                                 absl::Seconds(10));
  if (mounted.exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("mounting a tmpfs needs root: ", mounted.output));
  }
  mounted_ = true;
  return absl::OkStatus();
}

absl::Status SmallDisk::Simulate(const std::string& dir) {
  dir_ = dir;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("cannot create", dir);
  flag_ = dir + ".full";
  return absl::OkStatus();
}

std::vector<std::string> SmallDisk::Environment() const {
  if (!simulated()) return {};
  return {absl::StrCat("WALFEED_FAULT_DISK_FULL=", flag_)};
}

absl::Status SmallDisk::WriteFillers(size_t chunk_bytes) {
  if (simulated()) {
    if (!WriteFile(flag_, "full")) return Errno("cannot create", flag_);
    return absl::OkStatus();
  }
  const std::string chunk(chunk_bytes, 'x');
  for (;;) {
    const std::string path = absl::StrCat(dir_, "/filler-", fillers_.size());
    FILE* file = fopen(path.c_str(), "w");
    if (file == nullptr) {
      if (errno == ENOSPC) return absl::OkStatus();
      return Errno("cannot create", path);
    }
    fillers_.push_back(path);
    const bool whole = fwrite(chunk.data(), 1, chunk.size(), file) == chunk.size();
    const bool closed = fclose(file) == 0;
    if (!whole || !closed) return absl::OkStatus();
  }
}

absl::Status SmallDisk::Fill(int leave_mib) {
  if (absl::Status filled = WriteFillers(1 << 20); !filled.ok()) return filled;
  for (int i = 0; i < leave_mib + 1 && !fillers_.empty(); ++i) {
    if (absl::Status freed = FreeOneFiller(); !freed.ok()) return freed;
  }
  return absl::OkStatus();
}

absl::Status SmallDisk::FillCompletely() {
  if (absl::Status filled = WriteFillers(1 << 20); !filled.ok()) return filled;
  return WriteFillers(4096);
}

absl::Status SmallDisk::Free() {
  if (simulated() && unlink(flag_.c_str()) != 0 && errno != ENOENT) {
    return Errno("cannot remove", flag_);
  }
  while (!fillers_.empty()) {
    if (absl::Status freed = FreeOneFiller(); !freed.ok()) return freed;
  }
  return absl::OkStatus();
}

absl::Status SmallDisk::FreeOneFiller() {
  if (unlink(fillers_.back().c_str()) != 0) return Errno("cannot remove", fillers_.back());
  fillers_.pop_back();
  return absl::OkStatus();
}

}  // namespace walfeed::test
