#include "server/source/resync_record.h"

namespace walfeed {

bool ResyncInterrupted(const TransactionSink& sink) {
  return sink.Metadata(kResyncStateKey) == "running";
}

std::optional<v1::Resynchronisation> LastResync(const TransactionSink& sink) {
  const std::string stored = sink.Metadata(kLastResyncKey);
  v1::Resynchronisation last;
  if (stored.empty() || !last.ParseFromString(stored)) return std::nullopt;
  return last;
}

}  // namespace walfeed
