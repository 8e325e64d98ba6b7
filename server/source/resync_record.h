// The durable record of resynchronisations, kept in the log's metadata (TransactionSink):
// whether one is under way (so that a start after a crash redoes it and drops the slot it left
// behind) and what the newest one did (FeedInfo.last_resync).
#ifndef WALFEED_SERVER_SOURCE_RESYNC_RECORD_H_
#define WALFEED_SERVER_SOURCE_RESYNC_RECORD_H_

#include <optional>

#include "server/core/transaction_sink.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// "running" from before a resynchronisation creates its slot until its commit clears it.
inline constexpr char kResyncStateKey[] = "resync/state";
// Why the running one started (the slot's fate), for a start that redoes it.
inline constexpr char kResyncReasonKey[] = "resync/reason";
// The consistent point of the slot the running one created ("" before it exists): proof that a
// slot found later is that one.
inline constexpr char kResyncSlotKey[] = "resync/slot_consistent_point";
// The newest committed one, a serialized walfeed.v1.Resynchronisation.
inline constexpr char kLastResyncKey[] = "resync/last";

bool ResyncInterrupted(const TransactionSink& sink);

std::optional<v1::Resynchronisation> LastResync(const TransactionSink& sink);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_RESYNC_RECORD_H_
