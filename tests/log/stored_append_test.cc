// A replica's append (ChangeLog::AppendStored): records and value chunks written exactly as
// given; staged ones stay invisible until a commit and are discarded, chunks included, when the
// log reopens; positions must continue after the head and after what is staged; the counters
// count every committed change and transaction; an empty log takes another log's id, a full one
// refuses.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/log/change_log.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"

namespace walfeed {
namespace {

using test::TempLogTest;

LogRecord Stored(uint64_t lsn, uint32_t seq, bool last, const std::string& text) {
  v1::Change change;
  change.set_lsn(lsn);
  change.set_seq(seq);
  change.set_cursor(FormatCursor({lsn, seq}));
  change.set_op(v1::Change::INSERT);
  change.set_table("t");
  change.add_after()->set_text(text);
  change.set_last_in_transaction(last);
  return LogRecord{Position{lsn, seq}, change.SerializeAsString()};
}

std::vector<LogRecord> ReadAll(const ChangeLog& log) {
  std::vector<LogRecord> records;
  EXPECT_OK(log.Read(Position{}, 1000, ~size_t{0}, &records));
  return records;
}

class StoredAppend : public TempLogTest {};

TEST_F(StoredAppend, StagedPartsBecomeVisibleWholeAtTheCommitWithTheirBytesAndMetadata) {
  const std::vector<LogRecord> first = {Stored(100, 0, false, "a"), Stored(100, 1, false, "b")};
  ASSERT_OK(log_->AppendStored({}, first, /*commit=*/false, {}));
  EXPECT_TRUE(ReadAll(*log_).empty()) << "staged records are invisible";
  EXPECT_TRUE(log_->Head().IsZero());
  const std::vector<LogRecord> rest = {Stored(100, 2, true, "c"), Stored(200, 0, true, "d")};
  ASSERT_OK(log_->AppendStored({}, rest, /*commit=*/true, {{"follow.x", "7"}}));
  const std::vector<LogRecord> all = ReadAll(*log_);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].change, first[0].change);
  EXPECT_EQ(all[3].change, rest[1].change);
  EXPECT_EQ(log_->Head(), (Position{200, 0}));
  EXPECT_EQ(log_->ResumeLsn(), 201u);
  EXPECT_EQ(log_->Metadata("follow.x"), "7");
  EXPECT_EQ(log_->Stats().changes_appended, 4u);
  EXPECT_EQ(log_->Stats().transactions_appended, 2u);
}

TEST_F(StoredAppend, PositionsMustContinueAfterTheHeadAndWhatIsStaged) {
  ASSERT_OK(log_->AppendStored({}, {Stored(100, 0, true, "a")}, true, {}));
  EXPECT_EQ(log_->AppendStored({}, {Stored(100, 0, true, "again")}, true, {}).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(log_->AppendStored({}, {Stored(300, 0, false, "staged")}, false, {}));
  EXPECT_EQ(log_->AppendStored({}, {Stored(300, 0, true, "over it")}, true, {}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadAll(*log_).size(), 1u);
}

TEST_F(StoredAppend, AReopenDiscardsStagedRecordsAndTheirValueChunks) {
  ASSERT_OK(log_->AppendStored({}, {Stored(100, 0, true, "a")}, true, {}));
  const ValueRef ref{Position{200, 0}, ValuePart::kAfter, 0};
  std::vector<ChangeLog::StoredChunk> chunks = {{ref, 0, std::string(1000, 'x')}};
  // Only chunks staged: their change comes in a later segment, which the reopen lost.
  ASSERT_OK(log_->AppendStored(chunks, {}, false, {}));
  Reopen();
  EXPECT_EQ(log_->Head(), (Position{100, 0}));
  // The change at 200:0 committed now, without chunks: none of the staged ones is left.
  ASSERT_OK(log_->AppendStored({}, {Stored(200, 0, true, "b")}, true, {}));
  size_t chunks_found = 0;
  ASSERT_TRUE(log_->VisitValueChunks(Position{200, 0}, Position{200, 0},
                                     [&](const ValueRef&, uint64_t, absl::string_view) {
                                       ++chunks_found;
                                       return true;
                                     })
                  .ok());
  EXPECT_EQ(chunks_found, 0u);
  const std::vector<LogRecord> all = ReadAll(*log_);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].change, Stored(200, 0, true, "b").change);
}

TEST_F(StoredAppend, AnEmptyLogTakesAnotherLogsIdAndAFullOneRefuses) {
  ASSERT_OK(log_->AdoptLogId("11111111-2222-3333-4444-555555555555"));
  EXPECT_EQ(log_->LogId(), "11111111-2222-3333-4444-555555555555");
  Reopen();
  EXPECT_EQ(log_->LogId(), "11111111-2222-3333-4444-555555555555");
  ASSERT_OK(log_->AppendStored({}, {Stored(100, 0, true, "a")}, true, {}));
  const absl::Status refused = log_->AdoptLogId("99999999-2222-3333-4444-555555555555");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log_->LogId(), "11111111-2222-3333-4444-555555555555");
}

}  // namespace
}  // namespace walfeed
