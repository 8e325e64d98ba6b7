// A full disk on demand, for the disk-full tests where mounting a small tmpfs is not allowed
// (that needs CAP_SYS_ADMIN). Compiled in only with fault points (WALFEED_FAULT_POINTS, the test
// suite's builds): WALFEED_FAULT_DISK_FULL=<path> opens the change log's RocksDB on a file system
// that answers ENOSPC, exactly as a full disk does (a retryable NoSpace error), to every write of
// a table file (*.sst) while a file exists at <path>. Writes of the write-ahead log go on, as on
// a real full disk where RocksDB preallocated it: the first failure is a memtable flush's.
// Removing the file is space coming back. Unset (and in builds without fault points) the change
// log uses RocksDB's default environment.
#ifndef WALFEED_SERVER_LOG_DISK_FULL_INJECTION_H_
#define WALFEED_SERVER_LOG_DISK_FULL_INJECTION_H_

namespace rocksdb {
class Env;
}

namespace walfeed {

// The Env to open the change log with: nullptr (RocksDB's default) unless WALFEED_FAULT_DISK_FULL
// is set in a build with fault points. Lives as long as the process.
rocksdb::Env* DiskFullInjectingEnv();

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_DISK_FULL_INJECTION_H_
