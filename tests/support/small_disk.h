// SmallDisk: a small tmpfs mounted on a directory, which a test can fill to the last few MiB and
// free again, to see what walfeed does when its disk is full. Mounting needs CAP_SYS_ADMIN: Mount()
// says why it could not. Without it a test simulates the disk instead (Simulate()): the change
// log's file system then answers ENOSPC to table-file writes while a flag file exists
// (server/log/disk_full_injection.h, in the test suite's builds), Fill() raising the flag and
// Free() removing it. The destructor frees and unmounts what it mounted (whoever wrote there must
// have closed their files: a busy mount is left, with a message).
#ifndef WALFEED_TESTS_SUPPORT_SMALL_DISK_H_
#define WALFEED_TESTS_SUPPORT_SMALL_DISK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace walfeed::test {

// True in CI (CI=true): a test that cannot set up what it checks fails instead of skipping.
bool MustNotSkip();

class SmallDisk {
 public:
  SmallDisk() = default;
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  ~SmallDisk();

  // Creates `dir` and mounts a tmpfs of `size_mib` on it (never with
  // WALFEED_TEST_SIMULATE_FULL_DISK=1, which tries the simulated disk where mounting works).
  absl::Status Mount(const std::string& dir, int size_mib);
  // Creates `dir` as a plain directory whose fullness is simulated (see above).
  absl::Status Simulate(const std::string& dir);
  bool simulated() const { return !flag_.empty(); }
  // What the process holding the log needs in its environment for a simulated disk
  // ("WALFEED_FAULT_DISK_FULL=<flag>"); empty for a mounted one.
  std::vector<std::string> Environment() const;

  // Fills the filesystem with 1 MiB files until a write fails, then frees `leave_mib` of them.
  absl::Status Fill(int leave_mib);
  // Fills what is left to the last byte the filesystem will give.
  absl::Status FillCompletely();
  // Removes every file Fill() and FillCompletely() wrote.
  absl::Status Free();

  const std::string& dir() const { return dir_; }

 private:
  // Writes files of `chunk` bytes until one fails (with the disk full, not otherwise).
  absl::Status WriteFillers(size_t chunk);
  absl::Status FreeOneFiller();

  std::string dir_;
  bool mounted_ = false;
  // The flag file of a simulated disk: it exists while the disk is full.
  std::string flag_;
  std::vector<std::string> fillers_;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_SMALL_DISK_H_
