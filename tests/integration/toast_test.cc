// Unchanged TOASTed values end to end: PostgreSQL leaves a large unchanged value out of an
// UPDATE; walfeed fills it in from the newest image it holds.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"

namespace walfeed::testing {
namespace {

// 1 MiB of random hex, far too long to stay inline: PostgreSQL stores it out of line (TOAST).
constexpr char kBigValue[] =
    "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 32768))";

class ToastFill : public WalfeedTest {
 protected:
  std::vector<v1::Change> Updates(const std::string& marker) {
    absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead(marker);
    EXPECT_TRUE(changes.ok()) << changes.status();
    std::vector<v1::Change> updates;
    if (changes.ok()) {
      for (const v1::Change& change : *changes) {
        if (change.op() == v1::Change::UPDATE) updates.push_back(change);
      }
    }
    return updates;
  }

  std::string StoredDoc(int id) {
    return Query(absl::StrCat("SELECT doc FROM docs WHERE id = ", id))[0][0];
  }
};

TEST_F(ToastFill, UnchangedLargeValueIsFilledFromTheSnapshotAndFromEarlierChanges) {
  Sql("CREATE TABLE docs (id int PRIMARY KEY, version int, doc text)");
  Sql(absl::StrCat("INSERT INTO docs VALUES (1, 0, ", kBigValue, ")"));  // read by the snapshot
  StartWalfeed();
  Sql(absl::StrCat("INSERT INTO docs VALUES (2, 0, ", kBigValue, ")"));  // streamed
  Sql("UPDATE docs SET version = 1");
  Sql("UPDATE docs SET version = 2 WHERE id = 2");
  const std::vector<v1::Change> updates = Updates("updated");
  ASSERT_EQ(updates.size(), 3u);
  for (const v1::Change& update : updates) {
    const v1::Column* doc = FindColumn(update.after(), "doc");
    ASSERT_NE(doc, nullptr);
    const int id = static_cast<int>(FindColumn(update.key(), "id")->int_());
    EXPECT_FALSE(doc->unchanged_toast()) << "row " << id;
    EXPECT_EQ(doc->text(), StoredDoc(id)) << "row " << id;
  }
}

TEST_F(ToastFill, ValueStaysMarkedUnchangedWhenWalfeedNeverSawTheRow) {
  Sql("CREATE TABLE docs (id int PRIMARY KEY, version int, doc text)");
  Sql(absl::StrCat("INSERT INTO docs VALUES (1, 0, ", kBigValue, ")"));
  StartWalfeed({"--snapshot", "never"});
  Sql("UPDATE docs SET version = 1");
  const std::vector<v1::Change> updates = Updates("updated");
  ASSERT_EQ(updates.size(), 1u);
  const v1::Column* doc = FindColumn(updates[0].after(), "doc");
  ASSERT_NE(doc, nullptr);
  EXPECT_TRUE(doc->unchanged_toast());
}

}  // namespace
}  // namespace walfeed::testing
