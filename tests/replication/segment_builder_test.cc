// Segments chained from the log's start are the log: every change once, in order, byte for byte,
// values stored out of line complete before their change, whole transactions unless one is too
// large, within the budget, and the same segment again when rebuilt from the same start.
#include "server/replication/segment_builder.h"

#include <map>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/value_ref.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"
#include "tests/support/transactions.h"

namespace walfeed::test {
namespace {

class SegmentBuilder : public TempLogTest {
 protected:
  void Append(const Transaction& txn) {
    absl::Status appended = log_->Append({txn}, txn.end_lsn);
    ASSERT_OK(appended);
  }

  // Every segment from `from` on, each checked against a rebuild from its own start.
  std::vector<std::pair<Segment, v1::LogSegment>> Chain(SegmentStart from, size_t budget) {
    std::vector<std::pair<Segment, v1::LogSegment>> chain;
    while (true) {
      absl::StatusOr<std::optional<Segment>> built = BuildSegment(*log_, "log-1", from, budget);
      EXPECT_OK(built);
      if (!built.ok() || !built->has_value()) break;
      absl::StatusOr<std::optional<Segment>> again = BuildSegment(*log_, "log-1", from, budget);
      EXPECT_TRUE(again.ok() && again->has_value() && (*again)->bytes == (*built)->bytes)
          << "rebuilt from " << FormatSegmentStart(from);
      v1::LogSegment parsed;
      EXPECT_TRUE(parsed.ParseFromString((*built)->bytes));
      EXPECT_FALSE((*built)->next == from) << "a segment must move on";
      from = (*built)->next;
      chain.emplace_back(**std::move(built), std::move(parsed));
      if (chain.size() > 10000) break;
    }
    return chain;
  }
};

TEST_F(SegmentBuilder, ChainedSegmentsAreTheLogWithValuesBeforeTheirChanges) {
  Append(MakeTransaction(0x1000, 3));
  Append(MakeTransaction(0x2000, 2, "t", v1::Change::INSERT, 10, 600 << 10));  // out of line
  Append(MakeTransaction(0x3000, 120, "t", v1::Change::INSERT, 100, 1000));    // over the budget
  Append(MakeTransaction(0x4000, 1));
  Append(MakeTransaction(0x5000, 5, "t", v1::Change::INSERT, 500, 2000));
  const size_t budget = 64 << 10;
  const auto chain = Chain(SegmentStart{}, budget);
  ASSERT_FALSE(chain.empty());

  std::vector<LogRecord> log;
  ASSERT_OK(log_->Read(Position{}, 100000, ~size_t{0}, &log));
  std::vector<std::string> streamed;
  std::map<std::string, std::string> values;  // ref -> bytes so far
  bool in_transaction = false;
  for (const auto& [segment, parsed] : chain) {
    EXPECT_EQ(parsed.log_id(), "log-1");
    const size_t items = parsed.changes_size() + parsed.values_size();
    if (items > 1) {
      EXPECT_LE(segment.bytes.size(), budget + 64);
    }
    for (const v1::LargeValueChunk& chunk : parsed.values()) {
      std::string& value = values[chunk.ref()];
      EXPECT_EQ(chunk.offset(), value.size()) << "chunks of " << chunk.ref() << " in order";
      value += chunk.data();
    }
    // A segment begins a transaction unless the one before it said it continues.
    if (parsed.changes_size() > 0 && !in_transaction) {
      EXPECT_EQ(parsed.changes(0).seq(), 0u) << parsed.first_cursor();
    }
    for (const v1::Change& change : parsed.changes()) {
      streamed.push_back(change.SerializeAsString());
      for (const v1::Column& column : change.after()) {
        if (column.value_case() != v1::Column::kLarge) continue;
        ASSERT_TRUE(values.count(column.large().ref())) << column.large().ref();
        EXPECT_EQ(values[column.large().ref()].size(), column.large().size());
        EXPECT_EQ(values[column.large().ref()], std::string(600 << 10, 'x'));
      }
      in_transaction = !change.last_in_transaction();
    }
    EXPECT_EQ(parsed.continued(), in_transaction);
    if (parsed.changes_size() > 0) {
      EXPECT_EQ(parsed.first_cursor(), parsed.changes(0).cursor());
      EXPECT_EQ(parsed.last_cursor(), parsed.changes(parsed.changes_size() - 1).cursor());
    }
  }
  ASSERT_EQ(streamed.size(), log.size());
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(streamed[i], log[i].change)
        << "change " << i << " at " << FormatCursor(log[i].position);
  }
  EXPECT_EQ(values.size(), 2u);
  EXPECT_GT(chain.size(), 10u) << "the budget splits the log";
}

TEST_F(SegmentBuilder, WholeTransactionsWhenTheyFit) {
  for (int i = 1; i <= 40; ++i)
    Append(MakeTransaction(0x1000 * i, 7, "t", v1::Change::INSERT, 0, 300));
  const auto chain = Chain(SegmentStart{}, 16 << 10);
  ASSERT_GT(chain.size(), 2u);
  for (const auto& [segment, parsed] : chain) {
    EXPECT_FALSE(parsed.continued());
    EXPECT_EQ(parsed.changes_size() % 7, 0) << "whole transactions of 7";
  }
}

TEST_F(SegmentBuilder, ContinuesFromAnyStartItMadeAndFromTheMiddleOfAValue) {
  Append(MakeTransaction(0x1000, 1, "t", v1::Change::INSERT, 0, 900 << 10));  // 4 chunks
  Append(MakeTransaction(0x2000, 1));
  // A budget below one chunk: every chunk is a segment of its own, then the changes.
  const auto chain = Chain(SegmentStart{}, 100 << 10);
  ASSERT_EQ(chain.size(), 5u);
  EXPECT_EQ(FormatSegmentStart(chain[0].first.next), "0/1000:0/after/1+262144");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(chain[i].second.values_size(), 1) << i;
    EXPECT_EQ(chain[i].second.changes_size(), 0) << i;
    EXPECT_EQ(chain[i].second.values(0).offset(), uint64_t{256 << 10} * i);
  }
  EXPECT_EQ(chain[2].second.first_cursor(), "") << "a segment of values names no change";
  EXPECT_EQ(chain[4].second.changes_size(), 2) << "the change after its chunks, then the next";
  EXPECT_EQ(chain[4].second.first_cursor(), "0/1000:0");
  EXPECT_EQ(FormatSegmentStart(chain[4].first.next), "0/2000:1");
  // Restarting from the middle of the value gives the same tail.
  const auto tail = Chain(chain[1].first.next, 100 << 10);
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail[0].first.bytes, chain[2].first.bytes);
  EXPECT_EQ(tail[2].first.bytes, chain[4].first.bytes);
}

TEST(SegmentStartText, RoundTripsAndRefusesWhatItDidNotWrite) {
  const ValueRef ref{Position{1, 0}, ValuePart::kAfter, 2};
  for (const SegmentStart& start : {SegmentStart{}, SegmentStart::At(Position{0x16B3748, 3}),
                                    SegmentStart{Position{1, 0}, ref, 262144}}) {
    absl::StatusOr<SegmentStart> parsed = ParseSegmentStart(FormatSegmentStart(start));
    ASSERT_OK(parsed);
    EXPECT_TRUE(*parsed == start);
  }
  for (const char* bad : {"", "0/1:0+", "0/1:0+7", "0/1:0/after/1+x", "nonsense",
                          "0/1:0/after/1+-1", "0/1:0/sideways/1+0"}) {
    EXPECT_FALSE(ParseSegmentStart(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace walfeed::test
