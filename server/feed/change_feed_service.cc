#include "server/feed/change_feed_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/error_reason.h"
#include "server/core/position.h"
#include "server/feed/grpc_status.h"
#include "server/feed/source_health.h"
#include "server/feed/subscribe_reactor.h"
#include "server/feed/subscription_plan.h"
#include "server/feed/value_read_reactor.h"

namespace walfeed {

ChangeFeedService::ChangeFeedService(const ChangeLog* log, SubscriberHub* hub,
                                     ConsumerRegistry* consumers, const FeedOptions* options,
                                     const Authenticator* auth, SourceStatusFn source_status,
                                     ReplicationStatusFn replication_status, FeedControls controls)
    : log_(log),
      hub_(hub),
      consumers_(consumers),
      options_(options),
      auth_(auth),
      source_status_(std::move(source_status)),
      replication_status_(std::move(replication_status)),
      backfills_(controls.backfills),
      pushes_(controls.pushes) {}

grpc::ServerWriteReactor<grpc::ByteBuffer>* ChangeFeedService::Subscribe(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request) {
  if (grpc::Status allowed = auth_->Check(*context); !allowed.ok()) {
    return new RejectedStream<grpc::ByteBuffer>(allowed);
  }
  if (hub_->shutting_down()) {
    return new RejectedStream<grpc::ByteBuffer>(
        GrpcError(grpc::StatusCode::UNAVAILABLE,
                  "walfeed is shutting down; resume from your last cursor", reason::kShuttingDown));
  }
  v1::SubscribeRequest parsed;
  const v1::SubscribeRequest* request = &parsed;
  grpc::ByteBuffer request_bytes(*raw_request);  // shares the slices; parsing consumes it
  if (!grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&request_bytes, &parsed).ok()) {
    return new RejectedStream<grpc::ByteBuffer>(
        GrpcError(grpc::StatusCode::INVALID_ARGUMENT,
                  "the request is not a walfeed.v1.SubscribeRequest", reason::kRequestMalformed));
  }
  // A named consumer resumes from its stored cursor; the start fields count only while none is.
  std::unique_ptr<ConsumerRegistry::Lease> lease;
  if (!request->consumer().empty()) {
    absl::StatusOr<std::unique_ptr<ConsumerRegistry::Lease>> acquired =
        consumers_->Acquire(request->consumer());
    if (!acquired.ok()) {
      return new RejectedStream<grpc::ByteBuffer>(ToGrpcStatus(acquired.status()));
    }
    lease = *std::move(acquired);
    if (std::optional<Position> stored = consumers_->Cursor(request->consumer())) {
      parsed.clear_from_lsn();
      parsed.clear_from_head();
      parsed.clear_cursor();
      if (!stored->IsZero()) parsed.set_cursor(FormatCursor(*stored));
    }
  }
  const SourceStatus source = source_status_();
  PlanLimits limits;
  limits.default_batch_changes = options_->default_batch_changes;
  limits.max_batch_changes = options_->max_batch_changes;
  limits.tables_known = source.role != "replica";
  absl::StatusOr<SubscriptionPlan> plan = PlanSubscription(
      *request, FeedBounds{log_->Head(), log_->PurgePoint(), source.server_wal_end, log_->LogId()},
      source.tables, limits);
  if (!plan.ok()) return new RejectedStream<grpc::ByteBuffer>(ToGrpcStatus(plan.status()));
  return new SubscribeReactor(log_, hub_, &shared_batches_, options_, *std::move(plan),
                              std::move(lease));
}

grpc::ServerWriteReactor<v1::ValueChunk>* ChangeFeedService::ReadValue(
    grpc::CallbackServerContext* context, const v1::ReadValueRequest* request) {
  using Rejected = RejectedStream<v1::ValueChunk>;
  if (grpc::Status allowed = auth_->Check(*context); !allowed.ok()) return new Rejected(allowed);
  absl::StatusOr<ValueRef> ref = ParseValueRef(request->ref());
  if (!ref.ok()) return new Rejected(ToGrpcStatus(ref.status()));
  absl::StatusOr<v1::LargeValue> value = log_->FindLargeValue(*ref);
  if (!value.ok()) return new Rejected(ToGrpcStatus(value.status()));
  if (request->offset() > value->size()) {
    return new Rejected(
        GrpcError(grpc::StatusCode::OUT_OF_RANGE,
                  absl::StrCat("offset ", request->offset(), " is past the end of ",
                               "the value at '", request->ref(), "' (", value->size(), " bytes)"),
                  reason::kRequestMalformed));
  }
  return new ValueReadReactor(log_, *ref, *value, request->offset());
}

grpc::ServerUnaryReactor* ChangeFeedService::Commit(grpc::CallbackServerContext* context,
                                                    const v1::CommitRequest* request,
                                                    v1::CommitResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status allowed = auth_->Check(*context); !allowed.ok()) {
    reactor->Finish(allowed);
    return reactor;
  }
  const auto finish = [&](const absl::Status& status) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  };
  if (absl::Status valid = ConsumerRegistry::ValidateName(request->consumer()); !valid.ok()) {
    return finish(valid);
  }
  if (!request->log_id().empty() && request->log_id() != log_->LogId()) {
    return finish(
        WithReason(absl::FailedPreconditionError(absl::StrCat(
                       "the cursor comes from log ", request->log_id(), " but this is log ",
                       log_->LogId(), ": it names other changes here; nothing was stored")),
                   reason::kLogMismatch));
  }
  absl::StatusOr<Position> cursor = ParseCursor(request->cursor());
  if (!cursor.ok()) return finish(WithReason(cursor.status(), reason::kCursorMalformed));
  const Position head = log_->Head();
  if (*cursor > head) {
    return finish(WithReason(absl::InvalidArgumentError(absl::StrCat(
                                 "cursor ", request->cursor(), " is past the log's head ",
                                 FormatCursor(head), ": a consumer commits only what it was sent")),
                             reason::kCursorMalformed));
  }
  absl::StatusOr<std::pair<Position, bool>> stored =
      consumers_->Commit(request->consumer(), *cursor);
  if (!stored.ok()) return finish(stored.status());
  response->set_cursor(stored->first.IsZero() ? "" : FormatCursor(stored->first));
  response->set_moved(stored->second);
  return finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* ChangeFeedService::GetFeedInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetFeedInfoRequest* /*request*/,
                                                         v1::FeedInfo* response) {
  if (grpc::Status allowed = auth_->Check(*context); !allowed.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(allowed);
    return reactor;
  }
  *response = Describe();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

v1::FeedInfo ChangeFeedService::Describe() const {
  v1::FeedInfo info;
  const Position oldest = log_->Oldest();
  const Position head = log_->Head();
  if (!head.IsZero()) {
    info.set_oldest_cursor(FormatCursor(oldest));
    info.set_newest_cursor(FormatCursor(head));
    info.set_oldest_lsn(oldest.lsn);
    info.set_newest_lsn(head.lsn);
  }
  info.set_log_id(log_->LogId());
  const SourceStatus source = source_status_();
  info.set_database(source.database);
  info.set_system_identifier(source.system_identifier);
  info.set_slot(source.slot);
  info.set_publication(source.publication);
  for (const std::string& table : source.tables) info.add_tables(table);
  info.set_role(source.role);
  info.set_source_state(source.state);
  info.set_source_problem(SourceProblem(source, options_->unhealthy_after, absl::Now()));
  info.set_source_last_error(source.last_error);
  info.set_confirmed_flush_lsn(FormatLsn(source.confirmed_flush_lsn));
  info.set_snapshot_state(source.snapshot_state);
  info.set_snapshot_tables_total(source.snapshot_tables_total);
  info.set_snapshot_tables_copied(source.snapshot_tables_copied);
  info.set_snapshot_rows_copied(source.snapshot_rows_copied);
  if (source.last_resync.has_value()) *info.mutable_last_resync() = *source.last_resync;
  if (replication_status_) *info.mutable_replication() = replication_status_();
  info.set_subscribers(hub_->subscribers());
  const ChangeLogStats stats = log_->Stats();
  info.set_changes_appended(stats.changes_appended);
  info.set_transactions_appended(stats.transactions_appended);
  const Position purge_point = log_->PurgePoint();
  if (!purge_point.IsZero()) info.set_purge_cursor(FormatCursor(purge_point));
  info.set_log_bytes(log_->DiskBytes());
  for (v1::ConsumerInfo& consumer : consumers_->List(head)) {
    *info.add_consumers() = std::move(consumer);
  }
  if (backfills_ != nullptr) {
    for (v1::BackfillInfo& backfill : backfills_->List()) {
      *info.add_backfills() = std::move(backfill);
    }
  }
  if (pushes_ != nullptr) {
    for (v1::PushSubscriptionInfo& push : pushes_->List()) {
      *info.add_push_subscriptions() = std::move(push);
    }
  }
  if (std::optional<v1::CompactionResult> last = log_->LastCompaction()) {
    info.set_live_keys(last->live_keys());
    *info.mutable_last_compaction() = *std::move(last);
  }
  return info;
}

}  // namespace walfeed
