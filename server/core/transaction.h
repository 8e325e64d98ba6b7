// Transaction: one committed source transaction, as the source hands it to the log.
//
// Its changes are complete `walfeed.v1.Change` messages in commit order: each already carries
// its position (lsn = commit_lsn, seq = index), cursor, xid and commit time, and the last one
// is marked last_in_transaction. A transaction too large to hold arrives in parts: the earlier
// changes were staged (TransactionSink::StageChanges) and `changes` starts at a later seq. A
// Transaction is a plain value; it promises nothing by itself.
#ifndef WALFEED_SERVER_CORE_TRANSACTION_H_
#define WALFEED_SERVER_CORE_TRANSACTION_H_

#include <cstdint>
#include <vector>

#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct Transaction {
  // LSN of the commit record: the `lsn` of every change in it.
  uint64_t commit_lsn = 0;
  // LSN just past the commit record: confirming it to PostgreSQL means "never send this again".
  uint64_t end_lsn = 0;
  uint32_t xid = 0;
  std::vector<v1::Change> changes;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_TRANSACTION_H_
