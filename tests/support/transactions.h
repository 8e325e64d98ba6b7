// Builds Transactions for tests that fill a change log directly (log and feed tests), with
// every change's position fields set the way the source sets them.
#ifndef WALFEED_TESTS_SUPPORT_TRANSACTIONS_H_
#define WALFEED_TESTS_SUPPORT_TRANSACTIONS_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "server/core/position.h"
#include "server/core/transaction.h"

namespace walfeed::test {

// A transaction at `commit_lsn` with `count` changes to `schema.table`; change i sets column
// "id", the table's primary key, to `first_id + i`.
inline Transaction MakeTransaction(uint64_t commit_lsn, int count, const std::string& table = "t",
                                   v1::Change::Op op = v1::Change::INSERT, int64_t first_id = 0,
                                   size_t payload_bytes = 0) {
  Transaction txn;
  txn.commit_lsn = commit_lsn;
  txn.end_lsn = commit_lsn + 0x30;
  txn.xid = static_cast<uint32_t>(commit_lsn);
  for (int i = 0; i < count; ++i) {
    v1::Change& change = txn.changes.emplace_back();
    const Position position{commit_lsn, static_cast<uint32_t>(i)};
    change.set_lsn(position.lsn);
    change.set_seq(position.seq);
    change.set_cursor(FormatCursor(position));
    change.set_op(op);
    change.set_schema("public");
    change.set_table(table);
    v1::Column* id = change.add_after();
    id->set_name("id");
    id->set_type("int8");
    id->set_int_(first_id + i);
    change.set_key_kind(v1::Change::PRIMARY_KEY);
    *change.add_key() = *id;
    if (payload_bytes > 0) {
      v1::Column* payload = change.add_after();
      payload->set_name("payload");
      payload->set_type("text");
      payload->set_text(std::string(payload_bytes, 'x'));
    }
    change.set_last_in_transaction(i == count - 1);
  }
  return txn;
}

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_TRANSACTIONS_H_
