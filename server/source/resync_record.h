// The durable record of resynchronisations, kept in the log's metadata (TransactionSink):
// whether one is under way (so that a start after a crash redoes it and drops the slot it left
// behind) and what the newest one did (FeedInfo.last_resync).
#ifndef WALFEED_SERVER_SOURCE_RESYNC_RECORD_H_
#define WALFEED_SERVER_SOURCE_RESYNC_RECORD_H_

#include <optional>

#include "server/core/metadata_keys.h"
#include "server/core/transaction_sink.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

bool ResyncInterrupted(const TransactionSink& sink);

std::optional<v1::Resynchronisation> LastResync(const TransactionSink& sink);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_RESYNC_RECORD_H_
