// Fuzzes what a client sends: any bytes as a SubscribeRequest, resolved against a log
// (PlanSubscription: start fields, cursor, table and op filters), and as a ReadValueRequest's
// value reference. Nothing may crash; a plan that is accepted must be consistent with the request;
// a reference that parses must format back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "google/protobuf/stubs/logging.h"
#include "server/core/error_reason.h"
#include "server/core/utf8.h"
#include "server/core/value_ref.h"
#include "server/feed/subscription_plan.h"
#include "walfeed/v1/walfeed.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Invalid UTF-8 in a string field is a parse failure; protobuf's log line about it is noise.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<walfeed::ValueRef> ref = walfeed::ParseValueRef(text); ref.ok()) {
    absl::StatusOr<walfeed::ValueRef> again = walfeed::ParseValueRef(walfeed::FormatValueRef(*ref));
    if (!again.ok() || *again != *ref) std::abort();
  }
  walfeed::v1::SubscribeRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const std::vector<std::string> tables = {"public.orders", "\"x.y\".z", "public.\"q.r\"",
                                           "\"public.q\".r", "app.\"UPPER\""};
  walfeed::FeedBounds bounds;
  bounds.head = walfeed::Position{0x5000000, 3};
  bounds.purge_point = walfeed::Position{0x1000, 0};
  bounds.server_wal_end = 0x6000000;
  bounds.log_id = "9c1f0a52-3b7e-4d21-8f60-2a4b5c6d7e8f";
  walfeed::PlanLimits limits;
  absl::StatusOr<walfeed::SubscriptionPlan> plan =
      walfeed::PlanSubscription(request, bounds, tables, limits);
  if (!plan.ok()) {
    if (plan.status().message().empty()) std::abort();  // every rejection says why
    // Any bytes may name a log; what comes back must still be text (gRPC metadata is proto3).
    for (const auto& [key, value] : walfeed::DetailsOf(plan.status())) {
      if (!walfeed::IsValidUtf8(key) || !walfeed::IsValidUtf8(value)) std::abort();
    }
    return 0;
  }
  if (!request.log_id().empty() && request.log_id() != bounds.log_id) std::abort();
  if (plan->max_batch_changes == 0 || plan->max_batch_changes > limits.max_batch_changes) {
    std::abort();
  }
  if (request.stop_at_head() != plan->stop_at.has_value()) std::abort();
  if (plan->holds_state && plan->start <= bounds.purge_point) std::abort();
  if (request.tables_size() == 0 && !plan->tables.empty()) std::abort();
  return 0;
}
