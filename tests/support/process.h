// Test helpers for child processes: run a command to completion with a timeout, or start a
// long-running one and stop it by process id. Every started process is stopped by its owner.
#ifndef WALFEED_TESTS_SUPPORT_PROCESS_H_
#define WALFEED_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace walfeed::test {

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string output;  // stdout and stderr together
};

// Runs argv[0] with `argv`, waits at most `timeout` (then kills it).
RunResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                     const std::vector<std::string>& env = {});

// A child process whose stdout and stderr go to `log_path`.
class ChildProcess {
 public:
  // `env`: "NAME=value" entries added to the inherited environment.
  static absl::StatusOr<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                            const std::string& log_path,
                                            const std::vector<std::string>& env = {});
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal`, waits up to `timeout`, then SIGKILL. Returns the exit code (-1: signalled).
  int Stop(int signal, absl::Duration timeout = absl::Seconds(20));

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// A TCP socket bound to 127.0.0.1 on a port the kernel chose (stored in `*port`), ready for
// listen(); -1 when that failed.
int BindLoopback(int* port);

// A TCP port on 127.0.0.1 that was free a moment ago and that this process has not been given
// before (so two ports one test asks for always differ).
int FreePort();

// A "<field>: <n> kB" line of /proc/<pid>/status (VmRSS, VmHWM, Threads...): n, -1 if absent.
int64_t ProcStatusKib(pid_t pid, const std::string& field);

std::string ReadFile(const std::string& path);
// Replaces the file's contents; false when that failed.
bool WriteFile(const std::string& path, const std::string& contents);

// A new empty directory under the system temp dir, removed by RemoveTree.
std::string MakeTempDir(const std::string& prefix);
void RemoveTree(const std::string& path);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_PROCESS_H_
