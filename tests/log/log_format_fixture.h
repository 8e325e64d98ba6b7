// The change log format fixture: a log written once by a walfeed of a given format and kept in
// tests/log/testdata/, with a text description of everything a reader sees in it. A newer
// walfeed must open it (upgrading it) and see exactly that description: the test that keeps every
// stored log readable across format changes.
#ifndef WALFEED_TESTS_LOG_LOG_FORMAT_FIXTURE_H_
#define WALFEED_TESTS_LOG_LOG_FORMAT_FIXTURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/log/change_log.h"

namespace walfeed::test {

// Writes the fixture's history into the empty `log`: a staged snapshot, transactions of every
// kind (names with dots, quotes, spaces and Unicode; before images; a TRUNCATE; a logical
// message; values stored out of line), metadata, and a compaction pass that removes some of it.
absl::Status WriteFormatFixture(ChangeLog& log);

// Everything a reader of `log` sees, one fact per line: identity, head, oldest position, resume
// point, purge point, metadata, last compaction, every change (as text, with the size and hash
// of each of its large values) and the live row the index finds for each row key.
absl::StatusOr<std::string> DescribeLog(const ChangeLog& log);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_LOG_LOG_FORMAT_FIXTURE_H_
