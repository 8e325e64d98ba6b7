// Unchanged TOASTed values are filled in from the newest image of the row the log holds, and
// stay marked only when there is none.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/log/change_log.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"

namespace walfeed {
namespace {

constexpr uint32_t kTextOid = 25;

v1::Column IntColumn(const std::string& name, int64_t value) {
  v1::Column column;
  column.set_name(name);
  column.set_type("int4");
  column.set_type_oid(23);
  column.set_int_(value);
  return column;
}

constexpr uint32_t kDocsRelation = 16400;

v1::Column DocColumn(const std::string& text) {
  v1::Column column;
  column.set_name("doc");
  column.set_type("text");
  column.set_type_oid(kTextOid);
  if (text.empty()) {
    column.set_unchanged_toast(true);
  } else {
    column.set_text(text);
  }
  return column;
}

// A change of row `id` of public.docs; `doc` "" means "left out" (unchanged TOAST).
v1::Change RowChange(v1::Change::Op op, int64_t id, int64_t version, const std::string& doc) {
  v1::Change change;
  change.set_op(op);
  change.set_schema("public");
  change.set_table("docs");
  change.set_key_kind(v1::Change::PRIMARY_KEY);
  change.set_relation_id(kDocsRelation);
  *change.add_key() = IntColumn("id", id);
  if (op == v1::Change::DELETE) {
    *change.add_before() = IntColumn("id", id);
    return change;
  }
  *change.add_after() = IntColumn("id", id);
  *change.add_after() = IntColumn("version", version);
  *change.add_after() = DocColumn(doc);
  return change;
}

class ToastFillTest : public test::TempLogTest {
 protected:
  // Appends one transaction of `changes` at the next LSN.
  void Append(std::vector<v1::Change> changes) {
    next_lsn_ += 0x100;
    Transaction txn;
    txn.commit_lsn = next_lsn_;
    txn.end_lsn = next_lsn_ + 0x30;
    for (size_t i = 0; i < changes.size(); ++i) {
      changes[i].set_lsn(next_lsn_);
      changes[i].set_seq(static_cast<uint32_t>(i));
      txn.changes.push_back(changes[i]);
    }
    ASSERT_OK(log_->Append({txn}, next_lsn_ + 0x30));
  }

  // Appends a transaction of two changes at the next LSN the way one too large to hold arrives:
  // `first` staged ahead, `last` appended at commit (not filled, not indexed yet).
  void AppendStagedInParts(v1::Change first, v1::Change last) {
    next_lsn_ += 0x100;
    first.set_lsn(next_lsn_);
    first.set_seq(0);
    ASSERT_OK(log_->StageChanges({first}));
    last.set_lsn(next_lsn_);
    last.set_seq(1);
    Transaction txn;
    txn.commit_lsn = next_lsn_;
    txn.end_lsn = next_lsn_ + 0x30;
    txn.changes.push_back(last);
    ASSERT_OK(log_->Append({txn}, next_lsn_ + 0x30));
  }

  // The stored doc column of the newest change.
  v1::Column LastDoc() {
    std::vector<LogRecord> records;
    EXPECT_OK(log_->Read({}, 1 << 20, size_t{1} << 30, &records));
    v1::Change change;
    EXPECT_TRUE(change.ParseFromString(records.back().change));
    for (const v1::Column& column : change.after()) {
      if (column.name() == "doc") return column;
    }
    return v1::Column();
  }

  uint64_t next_lsn_ = 0x1000;
};

TEST_F(ToastFillTest, FilledFromTheRowsNewestStoredChange) {
  const std::string big(5000, 'x');
  Append({RowChange(v1::Change::INSERT, 1, 0, big)});
  Append({RowChange(v1::Change::UPDATE, 1, 1, "")});
  EXPECT_EQ(LastDoc().text(), big);
  EXPECT_EQ(LastDoc().type_oid(), kTextOid);
  // And again, from that (filled) update.
  Append({RowChange(v1::Change::UPDATE, 1, 2, "")});
  EXPECT_EQ(LastDoc().text(), big);
}

TEST_F(ToastFillTest, FilledFromAnEarlierChangeOfTheSameAppend) {
  Append({RowChange(v1::Change::INSERT, 1, 0, "first"),
          RowChange(v1::Change::UPDATE, 1, 1, "second"), RowChange(v1::Change::UPDATE, 1, 2, "")});
  EXPECT_EQ(LastDoc().text(), "second");
}

TEST_F(ToastFillTest, StaysMarkedWithoutAnEarlierImage) {
  Append({RowChange(v1::Change::UPDATE, 7, 1, "")});  // never seen before
  EXPECT_TRUE(LastDoc().unchanged_toast());
  Append({RowChange(v1::Change::INSERT, 8, 0, "old"), RowChange(v1::Change::DELETE, 8, 0, "")});
  Append({RowChange(v1::Change::UPDATE, 8, 1, "")});  // deleted since
  EXPECT_TRUE(LastDoc().unchanged_toast());
  v1::Change truncate;
  truncate.set_op(v1::Change::TRUNCATE);
  truncate.set_schema("public");
  truncate.set_table("docs");
  truncate.set_relation_id(kDocsRelation);
  Append({RowChange(v1::Change::INSERT, 9, 0, "before truncate")});
  Append({truncate});
  Append({RowChange(v1::Change::UPDATE, 9, 1, "")});  // truncated since
  EXPECT_TRUE(LastDoc().unchanged_toast());
}

TEST_F(ToastFillTest, KeyChangingUpdateIsFilledFromTheOldKeysImage) {
  Append({RowChange(v1::Change::INSERT, 1, 0, "of row 1")});
  Append({RowChange(v1::Change::INSERT, 2, 0, "of row 2")});
  Append({RowChange(v1::Change::DELETE, 2, 0, "")});
  v1::Change moved = RowChange(v1::Change::UPDATE, 2, 1, "");  // id 1 -> 2
  *moved.add_before() = IntColumn("id", 1);
  Append({moved});
  EXPECT_EQ(LastDoc().text(), "of row 1");
}

TEST_F(ToastFillTest, ImageOlderThanAChangeTheIndexDoesNotFollowIsNotUsed) {
  Append({RowChange(v1::Change::INSERT, 1, 0, "stale")});
  v1::Change full = RowChange(v1::Change::UPDATE, 1, 1, "newer");  // table switched to FULL
  full.set_key_kind(v1::Change::FULL_ROW);
  Append({full});
  Append({RowChange(v1::Change::UPDATE, 1, 2, "")});  // back to DEFAULT
  EXPECT_TRUE(LastDoc().unchanged_toast());
}

TEST_F(ToastFillTest, FilledFromTheOldRowUnderReplicaIdentityFull) {
  v1::Change update = RowChange(v1::Change::UPDATE, 1, 1, "");
  update.set_key_kind(v1::Change::FULL_ROW);
  *update.add_before() = DocColumn("from the old row");
  Append({update});
  EXPECT_EQ(LastDoc().text(), "from the old row");
}

TEST_F(ToastFillTest, FilledAfterASnapshotLeftTheIndexBehindAndAfterCompaction) {
  v1::Change read = RowChange(v1::Change::READ, 1, 0, "snapshot image");
  read.set_lsn(0x500);
  read.set_seq(0);
  read.set_last_in_transaction(true);
  ASSERT_OK(log_->StageChanges({read}));
  ASSERT_OK(log_->CommitStaged({0x500, 0}, 0x500, {}));
  EXPECT_FALSE(log_->IndexIsCurrent());
  Append({RowChange(v1::Change::UPDATE, 1, 1, "")});
  EXPECT_EQ(LastDoc().text(), "snapshot image");
  EXPECT_TRUE(log_->IndexIsCurrent());

  CompactionPolicy policy;
  policy.lag = absl::ZeroDuration();
  ASSERT_OK(log_->Compact(policy, absl::Now() + absl::Hours(1)));
  Append({RowChange(v1::Change::UPDATE, 1, 2, "")});
  EXPECT_EQ(LastDoc().text(), "snapshot image");
}

TEST_F(ToastFillTest, TransactionStagedInPartsKeepsItsMarkers) {
  Append({RowChange(v1::Change::INSERT, 1, 0, "image")});
  AppendStagedInParts(RowChange(v1::Change::UPDATE, 2, 1, "x"),
                      RowChange(v1::Change::UPDATE, 1, 1, ""));
  EXPECT_TRUE(LastDoc().unchanged_toast());
  EXPECT_FALSE(log_->IndexIsCurrent());
  ASSERT_OK(log_->CatchUpIndex());
  EXPECT_TRUE(log_->IndexIsCurrent());
}

// The update kept its marker (staged in parts); compaction must not remove the image it needs,
// or a consumer rebuilding from 0 would never get the value walfeed had (issue: a lost value).
TEST_F(ToastFillTest, CompactionKeepsTheImageANewerMarkedUpdateNeeds) {
  Append({RowChange(v1::Change::INSERT, 1, 0, "image")});
  Append({RowChange(v1::Change::UPDATE, 1, 1, "second image")});
  AppendStagedInParts(RowChange(v1::Change::UPDATE, 2, 1, "x"),
                      RowChange(v1::Change::UPDATE, 1, 2, ""));
  ASSERT_TRUE(LastDoc().unchanged_toast());

  CompactionPolicy policy;
  policy.lag = absl::ZeroDuration();
  ASSERT_OK(log_->Compact(policy, absl::Now() + absl::Hours(1)));
  // Rebuilt from 0: the newest value walfeed held reaches the consumer before the marker.
  std::vector<LogRecord> records;
  ASSERT_OK(log_->Read({}, 1 << 20, size_t{1} << 30, &records));
  std::string doc;
  for (const LogRecord& record : records) {
    v1::Change change;
    ASSERT_TRUE(change.ParseFromString(record.change));
    if (change.key(0).int_() != 1) continue;
    for (const v1::Column& column : change.after()) {
      if (column.name() == "doc" && !column.unchanged_toast()) doc = column.text();
    }
  }
  EXPECT_EQ(doc, "second image");

  // Once a change carries every value again, the older images may go.
  Append({RowChange(v1::Change::UPDATE, 1, 3, "third image")});
  ASSERT_OK(log_->Compact(policy, absl::Now() + absl::Hours(1)));
  records.clear();
  ASSERT_OK(log_->Read({}, 1 << 20, size_t{1} << 30, &records));
  size_t row_one = 0;
  for (const LogRecord& record : records) {
    v1::Change change;
    ASSERT_TRUE(change.ParseFromString(record.change));
    row_one += change.key(0).int_() == 1;
  }
  EXPECT_EQ(row_one, 1u);
}

// After PostgreSQL described the table afresh (DDL, a rewrite, a new session), nothing walfeed
// held from before is used: ALTER COLUMN ... TYPE ... USING upper(doc) changes every value
// without a change event.
TEST_F(ToastFillTest, NoImageFromBeforeARedescribedChangeIsUsed) {
  Append({RowChange(v1::Change::INSERT, 1, 0, "lower"), RowChange(v1::Change::INSERT, 2, 0, "x")});
  v1::Change redescribed = RowChange(v1::Change::UPDATE, 2, 1, "y");
  redescribed.set_relation_redescribed(true);
  Append({redescribed, RowChange(v1::Change::UPDATE, 1, 1, "")});
  EXPECT_TRUE(LastDoc().unchanged_toast()) << "filled across a redescription";
  Append({RowChange(v1::Change::UPDATE, 2, 2, "")});
  EXPECT_EQ(LastDoc().text(), "y") << "an image from after it is fine";

  // The same across appends, and when the index catches up after a staged snapshot.
  Append({RowChange(v1::Change::INSERT, 3, 0, "three")});
  v1::Change again = RowChange(v1::Change::INSERT, 4, 0, "four");
  again.set_relation_redescribed(true);
  Append({again});
  Append({RowChange(v1::Change::UPDATE, 3, 1, "")});
  EXPECT_TRUE(LastDoc().unchanged_toast());
}

// A table swapped in under the same name (DROP TABLE sw; ALTER TABLE sw_new RENAME TO sw) is
// another relation: the dropped table's row with the same key is not its image.
TEST_F(ToastFillTest, ImageOfAnotherRelationWithTheSameNameIsNotUsed) {
  Append({RowChange(v1::Change::INSERT, 1, 0, "dropped table's value")});
  v1::Change swapped = RowChange(v1::Change::UPDATE, 1, 1, "");
  swapped.set_relation_id(kDocsRelation + 1);
  Append({swapped});
  EXPECT_TRUE(LastDoc().unchanged_toast());
}

// In a SQL_ASCII database two column names may differ only in bytes that are not UTF-8: shown
// alike (U+FFFD), told apart by their raw names, each column is filled from its own value.
TEST_F(ToastFillTest, ColumnsNamedAlikeAreFilledEachFromItsOwnValue) {
  const auto with_raw_name = [](v1::Change change, const std::string& raw) {
    v1::Column* doc = change.mutable_after(2);
    doc->set_name("a\xef\xbf\xbd");
    doc->set_raw_name(raw);
    return change;
  };
  v1::Change insert = with_raw_name(RowChange(v1::Change::INSERT, 1, 0, "first value"), "a\xe9");
  *insert.add_after() =
      with_raw_name(RowChange(v1::Change::INSERT, 1, 0, "second value"), "a\xe8").after(2);
  Append({insert});
  v1::Change update = with_raw_name(RowChange(v1::Change::UPDATE, 1, 1, ""), "a\xe9");
  *update.add_after() = with_raw_name(RowChange(v1::Change::UPDATE, 1, 1, ""), "a\xe8").after(2);
  Append({update});
  std::vector<LogRecord> records;
  ASSERT_OK(log_->Read({}, 10, size_t{1} << 30, &records));
  v1::Change stored;
  ASSERT_TRUE(stored.ParseFromString(records.back().change));
  ASSERT_EQ(stored.after_size(), 4);
  EXPECT_EQ(stored.after(2).text(), "first value");
  EXPECT_EQ(stored.after(3).text(), "second value");
  EXPECT_EQ(stored.after(3).raw_name(), "a\xe8");
}

}  // namespace
}  // namespace walfeed
