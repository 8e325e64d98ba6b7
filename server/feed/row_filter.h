// RowFilter: SubscribeRequest.where, a condition over a change's column values evaluated by the
// server, so that a consumer receives only the rows it cares about.
//
// The language is a small part of SQL's WHERE:
//   condition := disjunct (OR disjunct)*      disjunct := term (AND term)*
//   term      := NOT term | '(' condition ')' | column test
//   test      := op literal | [NOT] IN '(' literal (',' literal)* ')' | IS [NOT] NULL
//   op        := = | != | <> | < | <= | > | >=
// A column is a bare name (matched lower-cased, as PostgreSQL folds it) or a "double-quoted" one
// (matched exactly); a literal is a number, a 'string' ('' for a quote), TRUE or FALSE. Keywords
// are case-insensitive. Parse() fails with InvalidArgument naming the 1-based character where the
// mistake is.
//
// Typing follows the column's value in each change: a number (int, float, numeric) compares
// numerically with a number literal, a boolean with TRUE or FALSE, a timestamp as a time with a
// 'YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|+HH[:MM]]' literal, text, json, uuid and dates as text with a
// string literal. A comparison the types do not allow (a number column against 'abc', say) fails
// the evaluation with InvalidArgument naming the column, like PostgreSQL's "operator does not
// exist". Logic is SQL's three-valued one: a NULL, or a column the change does not carry, makes a
// comparison unknown, and only true passes.
//
// Which image is judged, and what is delivered (Judge):
// - INSERT and READ: the new row; delivered when it matches.
// - UPDATE: the new row; when it matches, delivered. When it does not, the row may have been in
//   the consumer's view: the change is delivered marked Change.left_filter (remove the row from
//   your view), unless its old row (`before`, with REPLICA IDENTITY FULL) is known and did not
//   match either. A value the change does not carry (unchanged TOAST, one sent out of line) makes
//   the new row unknown: delivered, unmarked.
// - DELETE: judged on the old row (with REPLICA IDENTITY FULL) or the key; delivered when it
//   matches or cannot tell (a condition on columns outside the key).
// - TRUNCATE and MESSAGE: always delivered.
// Immutable after Parse(); thread-compatible. Judging allocates nothing for the common cases.
#ifndef WALFEED_SERVER_FEED_ROW_FILTER_H_
#define WALFEED_SERVER_FEED_ROW_FILTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class RowFilter {
 public:
  static absl::StatusOr<RowFilter> Parse(absl::string_view text);

  enum class Verdict {
    kSkip,     // not for this consumer
    kDeliver,  // deliver as stored
    kLeft,     // an UPDATE that moved the row out of the filter: deliver marked left_filter
  };
  // InvalidArgument when a comparison does not fit the column's type (see above).
  absl::StatusOr<Verdict> Judge(const v1::Change& change) const;

  struct Node;  // the parsed condition (row_filter.cc)

 private:
  explicit RowFilter(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const Node> root_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_ROW_FILTER_H_
