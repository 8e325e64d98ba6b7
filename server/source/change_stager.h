// ChangeStager: gives synthetic changes (snapshot rows, resynchronisation differences) their
// positions and stages them in the sink as one transaction.
//
// Changes take the positions `first`, (first.lsn, first.seq + 1), ... in the order they are
// added, all with the same commit time; `first` comes from the caller (FirstSyntheticPosition, or
// a snapshot's place before its slot's consistent point). They are staged in batches of bounded
// size, the newest held back until the next one or Finish(), which marks it
// last_in_transaction. Nothing becomes visible until the caller commits up to last(), so an
// interrupted stage never looks complete. Not thread-safe.
#ifndef WALFEED_SERVER_SOURCE_CHANGE_STAGER_H_
#define WALFEED_SERVER_SOURCE_CHANGE_STAGER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/core/position.h"
#include "server/core/transaction_sink.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class ChangeStager {
 public:
  // `sink` must outlive the stager.
  ChangeStager(TransactionSink* sink, Position first);

  // Gives `change` the next position (lsn, seq, cursor, lsn_text) and the commit time.
  absl::Status Add(v1::Change change);

  // Stages what is held, the last change marked last_in_transaction.
  absl::Status Finish();

  const Position& first() const { return first_; }
  // The position of the last change added; zero when none was.
  Position last() const;
  uint64_t count() const { return next_seq_ - first_.seq; }

 private:
  // Stages `pending_`, all of it when `final`, else all but its newest change.
  absl::Status Stage(bool final);

  TransactionSink* const sink_;
  const Position first_;
  const std::string lsn_text_;
  google::protobuf::Timestamp time_;
  uint64_t next_seq_;
  std::vector<v1::Change> pending_;
  size_t pending_bytes_ = 0;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_CHANGE_STAGER_H_
