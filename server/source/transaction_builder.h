// TransactionBuilder: turns the stream of decoded pgoutput messages into whole Transactions.
//
// It keeps the relation cache (pgoutput's Relation messages) and the type catalog, opens a
// transaction on Begin, turns each row message into a walfeed.v1.Change with its position,
// and hands out the finished Transaction on Commit. A non-transactional logical message
// becomes a transaction of its own just before the LSN pgoutput gives it (its record's end).
// Protocol violations (a change outside a transaction, an unknown relation id, a Commit that does
// not match its Begin) are errors; the caller reconnects and PostgreSQL re-sends the transaction
// whole. Not thread-safe: it belongs to the source's streaming thread.
#ifndef WALFEED_SERVER_SOURCE_TRANSACTION_BUILDER_H_
#define WALFEED_SERVER_SOURCE_TRANSACTION_BUILDER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "server/core/transaction.h"
#include "server/source/pgoutput_messages.h"
#include "server/source/table_filter.h"
#include "server/source/type_catalog.h"

namespace walfeed {

class TransactionBuilder {
 public:
  // `server_time` (microseconds since 2000-01-01) stamps non-transactional messages, which
  // have no commit time of their own.
  absl::StatusOr<std::optional<Transaction>> Consume(pgoutput::Message message,
                                                     int64_t server_time);

  // True between a Begin and its Commit.
  bool in_transaction() const { return open_.has_value(); }

  // For transactions too large to hold: hands out the changes of the open transaction received
  // so far, all but the newest (which stays, so that the commit always has a change to mark
  // last_in_transaction). Their positions are final; the Transaction returned at commit holds
  // only what came after, starting at the next seq. Empty when fewer than two are held.
  std::vector<v1::Change> TakeOpenChanges();
  // The commit LSN of the open transaction (0 when none is open).
  uint64_t open_commit_lsn() const { return open_ ? open_->transaction.commit_lsn : 0; }

  TypeCatalog& types() { return types_; }

  // Changes of tables the filter excludes are dropped, and so are excluded columns. `filter`
  // must outlive the builder; the default lets everything through.
  void set_filter(const TableFilter* filter) { filter_ = filter; }

  // The relation a change names, or nullptr when no Relation message described it.
  const pgoutput::Relation* FindRelation(uint32_t relation_id) const;
  // The same, but nullptr as well when the filter excludes its table: the decision taken once,
  // when its Relation message arrived.
  const pgoutput::Relation* FindIncludedRelation(uint32_t relation_id) const;

 private:
  struct OpenTransaction {
    pgoutput::Begin begin;
    Transaction transaction;
    std::string lsn_text;  // FormatLsn(commit LSN), computed once per transaction
    // Value-initialized (zero) by optional::emplace(); no default member initializer, which
    // clang rejects in a nested struct used inside its enclosing class.
    uint32_t next_seq;  // changes handed out by TakeOpenChanges() keep their seqs
  };
  enum class Columns { kKey, kAll };
  // kMove when the tuple is not needed afterwards: its values move into the change.
  enum class Values { kCopy, kMove };

  absl::StatusOr<const pgoutput::Relation*> RelationFor(absl::string_view what,
                                                        uint32_t relation_id) const;
  // Appends a change with its position to the open transaction; `relation` may be null (messages).
  absl::StatusOr<v1::Change*> StartChange(absl::string_view what,
                                          const pgoutput::Relation* relation);
  void FillColumns(const pgoutput::Relation& relation, pgoutput::TupleData& tuple, Columns which,
                   Values take, google::protobuf::RepeatedPtrField<v1::Column>* out) const;
  // False when the filter drops the changes of this relation.
  bool Included(uint32_t relation_id) const;

  absl::StatusOr<std::optional<Transaction>> OnCommit(const pgoutput::Commit& commit);
  absl::StatusOr<std::optional<Transaction>> OnMessage(pgoutput::LogicalMessage message,
                                                       int64_t server_time);

  // What the filter says of one relation, worked out once per Relation message.
  struct RelationFilter {
    bool included = true;
    std::vector<bool> excluded_columns;  // empty when none is excluded
  };

  TypeCatalog types_;
  const TableFilter* filter_ = &kNoFilter;
  static const TableFilter kNoFilter;
  absl::flat_hash_map<uint32_t, pgoutput::Relation> relations_;
  absl::flat_hash_map<uint32_t, RelationFilter> relation_filters_;
  // Relations described by a Relation message since their last change: that change is marked
  // relation_redescribed.
  absl::flat_hash_set<uint32_t> redescribed_;
  std::optional<OpenTransaction> open_;
};

// Microseconds since 2000-01-01 (PostgreSQL's epoch) to a protobuf Timestamp.
void SetPgTimestamp(int64_t pg_micros, google::protobuf::Timestamp* out);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_TRANSACTION_BUILDER_H_
