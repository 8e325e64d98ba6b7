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

// "16B3748" style: PostgreSQL's "X/Y" form, upper-case hex, e.g. "0/16B3748".
std::string FormatLsn(uint64_t lsn);

// Accepts PostgreSQL's "X/Y" form or a plain decimal number.
absl::StatusOr<uint64_t> ParseLsn(absl::string_view text);

// "X/Y:seq", e.g. "0/16B3748:3".
std::string FormatCursor(const Position& position);

absl::StatusOr<Position> ParseCursor(absl::string_view text);

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_POSITION_H_
