// TempLogTest: a gtest fixture with a change log of its own in a temporary directory (not
// synced: these tests do not crash the process), removed after the test. Log and feed unit tests
// derive from it; a test that needs other options reopens with Reopen().
#ifndef WALFEED_TESTS_SUPPORT_TEMP_LOG_TEST_H_
#define WALFEED_TESTS_SUPPORT_TEMP_LOG_TEST_H_

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/log/change_log.h"
#include "tests/support/process.h"

namespace walfeed::test {

class TempLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("walfeed-log");
    Reopen();
  }
  void TearDown() override {
    log_.reset();
    RemoveTree(dir_);
  }

  // (Re)opens the log in dir_ with `options` (path and sync are set here).
  void Reopen(ChangeLogOptions options = {}) {
    log_.reset();
    options.path = dir_;
    options.sync = false;
    absl::StatusOr<std::unique_ptr<ChangeLog>> log = ChangeLog::Open(options);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }

  std::string dir_;
  std::unique_ptr<ChangeLog> log_;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_TEMP_LOG_TEST_H_
