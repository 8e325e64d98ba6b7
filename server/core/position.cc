#include "server/core/position.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace walfeed {
namespace {

// Parses 1 to 8 hex digits, nothing else.
bool ParseHex32(absl::string_view text, uint32_t* out) {
  if (text.empty() || text.size() > 8) return false;
  uint32_t value = 0;
  for (char c : text) {
    uint32_t digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return false;
    }
    value = value * 16 + digit;
  }
  *out = value;
  return true;
}

bool AllDigits(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

Position Position::Successor() const {
  if (seq == std::numeric_limits<uint32_t>::max()) return Position{lsn + 1, 0};
  return Position{lsn, seq + 1};
}

namespace {

// Upper-case hex without leading zeros, as PostgreSQL prints LSN halves.
void AppendHex32(uint32_t value, std::string* out) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  char buffer[8];
  int length = 0;
  do {
    buffer[length++] = kDigits[value & 0xF];
    value >>= 4;
  } while (value != 0);
  while (length > 0) out->push_back(buffer[--length]);
}

}  // namespace

std::string FormatLsn(uint64_t lsn) {
  std::string out;
  out.reserve(17);
  AppendHex32(static_cast<uint32_t>(lsn >> 32), &out);
  out.push_back('/');
  AppendHex32(static_cast<uint32_t>(lsn), &out);
  return out;
}

absl::StatusOr<uint64_t> ParseLsn(absl::string_view text) {
  const size_t slash = text.find('/');
  if (slash == absl::string_view::npos) {
    uint64_t value;
    if (AllDigits(text) && absl::SimpleAtoi(text, &value)) return value;
    return absl::InvalidArgumentError(
        absl::StrCat("LSN '", text,
                     "' is malformed: expected PostgreSQL's 'X/Y' form (hex, e.g. '0/16B3748') "
                     "or a decimal number"));
  }
  uint32_t high, low;
  if (!ParseHex32(text.substr(0, slash), &high) || !ParseHex32(text.substr(slash + 1), &low)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LSN '", text,
                     "' is malformed: expected PostgreSQL's 'X/Y' form, two hex numbers of up "
                     "to 8 digits each, e.g. '0/16B3748'"));
  }
  return (static_cast<uint64_t>(high) << 32) | low;
}

absl::StatusOr<Position> FirstSyntheticPosition(const Position& head, uint64_t resume_lsn) {
  if (head.IsZero()) return Position{std::max<uint64_t>(resume_lsn, 2) - 1, 0};
  if (head.lsn >= resume_lsn) {
    return absl::FailedPreconditionError(
        absl::StrCat("the log's head ", FormatCursor(head), " is not below its resume LSN ",
                     FormatLsn(resume_lsn), ": no position is free for synthetic changes"));
  }
  if (head.lsn + 1 < resume_lsn) return Position{head.lsn + 1, 0};
  if (head.seq == std::numeric_limits<uint32_t>::max()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the log's head ", FormatCursor(head), " leaves no free position for synthetic changes"));
  }
  return Position{head.lsn, head.seq + 1};
}

std::string FormatCursor(const Position& position) {
  return absl::StrCat(FormatLsn(position.lsn), ":", position.seq);
}

absl::StatusOr<Position> ParseCursor(absl::string_view text) {
  const auto malformed = [text](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("cursor '", text, "' is malformed: ", why,
                     "; a cursor is the 'X/Y:seq' text of a delivered change, e.g. '0/16B3748:3'"));
  };
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) return malformed("expected LSN 'X/Y' followed by ':seq'");
  const absl::string_view lsn_text = text.substr(0, colon);
  const absl::string_view seq_text = text.substr(colon + 1);
  if (lsn_text.find('/') == absl::string_view::npos) {
    return malformed("expected the LSN in 'X/Y' form before ':'");
  }
  absl::StatusOr<uint64_t> lsn = ParseLsn(lsn_text);
  if (!lsn.ok()) return malformed("the LSN part is not 'X/Y' hex");
  uint32_t seq;
  if (!AllDigits(seq_text) || !absl::SimpleAtoi(seq_text, &seq)) {
    return malformed("the part after ':' must be a decimal sequence number");
  }
  return Position{*lsn, seq};
}

}  // namespace walfeed
