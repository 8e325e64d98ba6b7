#include "server/feed/admin_service.h"

#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/error_reason.h"
#include "server/core/position.h"
#include "server/core/proto_time.h"
#include "server/feed/grpc_status.h"

namespace walfeed {
namespace {

// A request's duration field as an absl::Duration; InvalidArgument when it is malformed.
absl::StatusOr<absl::Duration> DurationField(const char* name,
                                             const google::protobuf::Duration& value) {
  const bool well_formed = value.nanos() > -1000000000 && value.nanos() < 1000000000 &&
                           !(value.seconds() > 0 && value.nanos() < 0) &&
                           !(value.seconds() < 0 && value.nanos() > 0);
  if (!well_formed || value.seconds() < 0 || value.nanos() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is ", value.seconds(), "s ", value.nanos(),
                     "ns; it must be a duration of zero or more (seconds >= 0, 0 <= nanos < 1e9)"));
  }
  return FromProtoDuration(value);
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::Compact(grpc::CallbackServerContext* context,
                                                const v1::CompactRequest* request,
                                                v1::CompactionResult* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status allowed = auth_->CheckAdmin(*context); !allowed.ok()) {
    reactor->Finish(allowed);
    return reactor;
  }
  CompactionPolicy policy = compactor_->policy();
  if (request->has_compaction_lag()) {
    absl::StatusOr<absl::Duration> lag = DurationField("compaction_lag", request->compaction_lag());
    if (!lag.ok()) {
      reactor->Finish(ToGrpcStatus(lag.status()));
      return reactor;
    }
    policy.lag = *lag;
  }
  if (request->has_delete_retention()) {
    absl::StatusOr<absl::Duration> retention =
        DurationField("delete_retention", request->delete_retention());
    if (!retention.ok()) {
      reactor->Finish(ToGrpcStatus(retention.status()));
      return reactor;
    }
    policy.delete_retention = *retention;
  }
  absl::Status requested =
      compactor_->Request(policy, [reactor, response](absl::StatusOr<v1::CompactionResult> result) {
        if (!result.ok()) {
          reactor->Finish(ToGrpcStatus(result.status()));
          return;
        }
        *response = *std::move(result);
        reactor->Finish(grpc::Status::OK);
      });
  if (!requested.ok()) {
    reactor->Finish(ToGrpcStatus(requested.code() == absl::StatusCode::kFailedPrecondition
                                     ? WithReason(requested, reason::kCompactionRunning)
                                     : requested));
  }
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ResetConsumer(grpc::CallbackServerContext* context,
                                                      const v1::ResetConsumerRequest* request,
                                                      v1::ConsumerInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status allowed = auth_->CheckAdmin(*context); !allowed.ok()) {
    reactor->Finish(allowed);
    return reactor;
  }
  const int targets = !request->cursor().empty() + request->to_start() + request->to_head();
  absl::Status done;
  Position cursor;
  const Position head = log_->Head();
  if (targets != 1) {
    done = WithReason(absl::InvalidArgumentError(
                          "give exactly one of cursor, to_start and to_head: where the consumer "
                          "resumes"),
                      reason::kRequestMalformed);
  } else if (request->to_head()) {
    cursor = head;
  } else if (!request->cursor().empty()) {
    absl::StatusOr<Position> parsed = ParseCursor(request->cursor());
    if (!parsed.ok()) {
      done = WithReason(parsed.status(), reason::kCursorMalformed);
    } else if (*parsed > head) {
      done = WithReason(
          absl::InvalidArgumentError(absl::StrCat("cursor ", request->cursor(),
                                                  " is past the log's head ", FormatCursor(head))),
          reason::kCursorMalformed);
    } else {
      cursor = *parsed;
    }
  }
  if (done.ok()) done = consumers_->Reset(request->consumer(), cursor);
  if (done.ok()) {
    for (v1::ConsumerInfo& consumer : consumers_->List(head)) {
      if (consumer.name() == request->consumer()) *response = std::move(consumer);
    }
  }
  reactor->Finish(ToGrpcStatus(done));
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::DeleteConsumer(grpc::CallbackServerContext* context,
                                                       const v1::DeleteConsumerRequest* request,
                                                       v1::DeleteConsumerResponse* /*response*/) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status allowed = auth_->CheckAdmin(*context); !allowed.ok()) {
    reactor->Finish(allowed);
    return reactor;
  }
  reactor->Finish(ToGrpcStatus(consumers_->Delete(request->consumer())));
  return reactor;
}

namespace {

// Answers an admin call: the admin check, then `call` (refused with `absent` when the part it
// needs does not run here), its errors marked: NotFound with `not_found`, InvalidArgument as
// REQUEST_MALFORMED.
template <typename Response>
grpc::ServerUnaryReactor* AnswerAdminCall(grpc::CallbackServerContext* context,
                                          const Authenticator& auth, const absl::Status& absent,
                                          const char* not_found,
                                          const std::function<absl::StatusOr<Response>()>& call,
                                          Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status allowed = auth.CheckAdmin(*context); !allowed.ok()) {
    reactor->Finish(allowed);
    return reactor;
  }
  absl::StatusOr<Response> result = absent.ok() ? call() : absent;
  if (!result.ok()) {
    absl::Status error = result.status();
    if (absl::IsNotFound(error) && ReasonOf(error).empty()) error = WithReason(error, not_found);
    if (absl::IsInvalidArgument(error) && ReasonOf(error).empty()) {
      error = WithReason(error, reason::kRequestMalformed);
    }
    reactor->Finish(ToGrpcStatus(error));
    return reactor;
  }
  *response = *std::move(result);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

absl::Status BackfillsAbsent(const BackfillControl* backfills) {
  if (backfills != nullptr) return absl::OkStatus();
  return WithReason(absl::FailedPreconditionError(
                        "this walfeed does not read PostgreSQL on its own (a replica, or a "
                        "member of an ingest group): run backfills on a walfeed started "
                        "without --follow and --ingest=auto"),
                    reason::kNotIngester);
}

absl::Status PushesAbsent(const PushControl* pushes) {
  if (pushes != nullptr) return absl::OkStatus();
  return absl::UnimplementedError("this walfeed runs no push subscriptions");
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::Backfill(grpc::CallbackServerContext* context,
                                                 const v1::BackfillRequest* request,
                                                 v1::BackfillInfo* response) {
  return AnswerAdminCall<v1::BackfillInfo>(
      context, *auth_, BackfillsAbsent(backfills_), reason::kTableNotFound,
      [this, request] { return backfills_->Enqueue(*request); }, response);
}

grpc::ServerUnaryReactor* AdminService::CancelBackfill(grpc::CallbackServerContext* context,
                                                       const v1::CancelBackfillRequest* request,
                                                       v1::BackfillInfo* response) {
  return AnswerAdminCall<v1::BackfillInfo>(
      context, *auth_, BackfillsAbsent(backfills_), reason::kBackfillNotFound,
      [this, request] { return backfills_->Cancel(request->id()); }, response);
}

grpc::ServerUnaryReactor* AdminService::CreatePushSubscription(grpc::CallbackServerContext* context,
                                                               const v1::PushSubscription* request,
                                                               v1::PushSubscriptionInfo* response) {
  return AnswerAdminCall<v1::PushSubscriptionInfo>(
      context, *auth_, PushesAbsent(pushes_), reason::kTableNotFound,
      [this, request] { return pushes_->Create(*request); }, response);
}

grpc::ServerUnaryReactor* AdminService::ListPushSubscriptions(
    grpc::CallbackServerContext* context, const v1::ListPushSubscriptionsRequest* /*request*/,
    v1::PushSubscriptionList* response) {
  return AnswerAdminCall<v1::PushSubscriptionList>(
      context, *auth_, PushesAbsent(pushes_), reason::kPushNotFound,
      [this]() -> absl::StatusOr<v1::PushSubscriptionList> {
        v1::PushSubscriptionList list;
        for (v1::PushSubscriptionInfo& info : pushes_->List()) {
          *list.add_subscriptions() = std::move(info);
        }
        return list;
      },
      response);
}

grpc::ServerUnaryReactor* AdminService::PausePushSubscription(
    grpc::CallbackServerContext* context, const v1::PushSubscriptionRequest* request,
    v1::PushSubscriptionInfo* response) {
  return AnswerAdminCall<v1::PushSubscriptionInfo>(
      context, *auth_, PushesAbsent(pushes_), reason::kPushNotFound,
      [this, request] { return pushes_->Pause(request->name()); }, response);
}

grpc::ServerUnaryReactor* AdminService::ResumePushSubscription(
    grpc::CallbackServerContext* context, const v1::PushSubscriptionRequest* request,
    v1::PushSubscriptionInfo* response) {
  return AnswerAdminCall<v1::PushSubscriptionInfo>(
      context, *auth_, PushesAbsent(pushes_), reason::kPushNotFound,
      [this, request] { return pushes_->Resume(*request); }, response);
}

grpc::ServerUnaryReactor* AdminService::DeletePushSubscription(
    grpc::CallbackServerContext* context, const v1::PushSubscriptionRequest* request,
    v1::DeletePushSubscriptionResponse* response) {
  return AnswerAdminCall<v1::DeletePushSubscriptionResponse>(
      context, *auth_, PushesAbsent(pushes_), reason::kPushNotFound,
      [this, request]() -> absl::StatusOr<v1::DeletePushSubscriptionResponse> {
        if (absl::Status deleted = pushes_->Delete(request->name()); !deleted.ok()) return deleted;
        return v1::DeletePushSubscriptionResponse();
      },
      response);
}

}  // namespace walfeed
