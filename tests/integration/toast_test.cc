// Unchanged TOASTed values end to end: PostgreSQL leaves a large unchanged value out of an
// UPDATE; walfeed fills it in from the newest image it holds.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

// 1 MiB of random hex, far too long to stay inline: PostgreSQL stores it out of line (TOAST).
constexpr char kBigValue[] =
    "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 32768))";

class ToastFill : public WalfeedTest {
 protected:
  std::vector<v1::Change> Updates(const std::string& marker) {
    absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead(marker);
    EXPECT_OK(changes);
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

TEST_F(ToastFill, UnchangedLargeValueIsFilledFromEarlierChangesOfTheSession) {
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
    if (id == 1) {
      // The snapshot's image predates the replication session, which described the table
      // afresh: walfeed cannot prove nothing rewrote the table in between, so it marks.
      EXPECT_TRUE(doc->unchanged_toast()) << "row 1";
      continue;
    }
    EXPECT_FALSE(doc->unchanged_toast()) << "row " << id;
    EXPECT_EQ(doc->text(), StoredDoc(id)) << "row " << id;
  }
}

// Findings of the adversarial review: values a rewrite or a swapped-in table changed behind
// walfeed's back were filled from what it held before. Now they are marked, never guessed.
TEST_F(ToastFill, NoValueIsFilledAcrossATableSwapOrARewrite) {
  Sql("CREATE TABLE sw (id int PRIMARY KEY, n int, big text)");
  Sql("CREATE TABLE sw_new (id int PRIMARY KEY, n int, big text)");
  Sql("CREATE TABLE rw (id int PRIMARY KEY, n int, big text)");
  StartWalfeed();
  Sql(absl::StrCat("INSERT INTO sw VALUES (1, 0, ", kBigValue, ")"));
  Sql(absl::StrCat("INSERT INTO sw_new VALUES (1, 0, ", kBigValue, ")"));
  Sql(absl::StrCat("INSERT INTO rw VALUES (1, 0, 'x' || ", kBigValue, ")"));
  Sql("UPDATE rw SET n = 1");  // filled: nothing happened in between
  Sql("BEGIN; DROP TABLE sw; ALTER TABLE sw_new RENAME TO sw; COMMIT");
  Sql("UPDATE sw SET n = 1");
  Sql("ALTER TABLE rw ALTER COLUMN big TYPE text USING upper(big)");
  Sql("UPDATE rw SET n = 2");
  const std::vector<v1::Change> updates = Updates("updated");
  ASSERT_EQ(updates.size(), 3u);
  const auto big_of = [](const v1::Change& change) { return FindColumn(change.after(), "big"); };
  ASSERT_EQ(updates[0].table(), "rw");
  EXPECT_FALSE(big_of(updates[0])->unchanged_toast()) << "no reason to doubt the image";
  ASSERT_EQ(updates[1].table(), "sw");
  const v1::Column* swapped = big_of(updates[1]);
  EXPECT_TRUE(swapped->unchanged_toast() ||
              swapped->text() == Query("SELECT big FROM sw WHERE id = 1")[0][0])
      << "filled from the dropped table";
  ASSERT_EQ(updates[2].table(), "rw");
  const v1::Column* rewritten = big_of(updates[2]);
  EXPECT_TRUE(rewritten->unchanged_toast() ||
              rewritten->text() == Query("SELECT big FROM rw WHERE id = 1")[0][0])
      << "filled with the value from before the rewrite";
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
}  // namespace walfeed::test
