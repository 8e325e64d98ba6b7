// Position: where a change sits in the feed, and its text forms (LSN and cursor).
//
// A position is (lsn, seq): the commit LSN of the source transaction and the change's 0-based
// ordinal inside it. Positions order the feed: they are unique, strictly increasing in commit
// order, and never change. A cursor is a position as text, "X/Y:seq" with the LSN in
// PostgreSQL's own form, for example "0/16B3748:3". Parsing rejects anything else with a
// sentence that names the bad input and the expected form.
#ifndef WALFEED_SERVER_CORE_POSITION_H_
#define WALFEED_SERVER_CORE_POSITION_H_

#include <cstdint>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walfeed {

struct Position {
  uint64_t lsn = 0;
  uint32_t seq = 0;

  // The smallest position after this one.
  Position Successor() const;
  bool IsZero() const { return lsn == 0 && seq == 0; }

  friend bool operator==(const Position& a, const Position& b) {
    return a.lsn == b.lsn && a.seq == b.seq;
  }
  friend bool operator!=(const Position& a, const Position& b) { return !(a == b); }
  friend bool operator<(const Position& a, const Position& b) {
    return std::tie(a.lsn, a.seq) < std::tie(b.lsn, b.seq);
  }
  friend bool operator<=(const Position& a, const Position& b) { return !(b < a); }
  friend bool operator>(const Position& a, const Position& b) { return b < a; }
  friend bool operator>=(const Position& a, const Position& b) { return !(a < b); }
};

// Where synthetic changes go: the rule that keeps them from colliding with any later commit.
//
// Synthetic changes have no commit record of their own: the existing rows of a table first seen
// mid-stream (and, later, resynchronisation and backfill rows) are inserted between the log's
// head and whatever streams next. Every change the source stores after now has lsn >= the log's
// resume LSN: it skips transactions whose commit LSN is below it, and a non-transactional message
// (stored at its record's end - 1, see TransactionBuilder) whose end - 1 is below it. The log's
// head always sits below its resume LSN (a transaction's commit LSN is below its end LSN, a
// message's end - 1 below its end, a snapshot's rows below its consistent point). So every
// position in (head, (resume_lsn, 0)) is free for good, and synthetic changes take the first
// ones: (head.lsn + 1, 0) when that LSN is below the resume LSN, else (head.lsn, head.seq + 1),
// continuing the head's sequence (the head is then a message at resume_lsn - 1). An empty log
// starts at (resume_lsn - 1, 0) (1/0 at the least). Fails when `head` is not below `resume_lsn`
// or the head's sequence is exhausted, rather than risk a collision.
absl::StatusOr<Position> FirstSyntheticPosition(const Position& head, uint64_t resume_lsn);

// "16B3748" style: PostgreSQL's "X/Y" form, upper-case hex, e.g. "0/16B3748".
std::string FormatLsn(uint64_t lsn);

// Accepts PostgreSQL's "X/Y" form or a plain decimal number.
absl::StatusOr<uint64_t> ParseLsn(absl::string_view text);

// "X/Y:seq", e.g. "0/16B3748:3".
std::string FormatCursor(const Position& position);

absl::StatusOr<Position> ParseCursor(absl::string_view text);

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_POSITION_H_
