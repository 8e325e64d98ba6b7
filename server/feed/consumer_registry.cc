#include "server/feed/consumer_registry.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/error_reason.h"
#include "server/core/metadata_keys.h"
#include "server/core/proto_time.h"

namespace walfeed {
namespace {

constexpr absl::string_view kHeader = "consumers-v1\n";
constexpr size_t kMaxNameLength = 128;

bool NameCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

absl::Status Busy(const std::string& name) {
  return WithReason(
      absl::FailedPreconditionError(absl::StrCat(
          "consumer '", name,
          "' is streaming on another call: one stream per consumer name at a time (end the "
          "other stream, or use another name)")),
      reason::kConsumerBusy);
}

}  // namespace

absl::Status ConsumerRegistry::ValidateName(absl::string_view name) {
  bool valid = !name.empty() && name.size() <= kMaxNameLength;
  for (char c : name) valid = valid && NameCharacter(c);
  if (valid) return absl::OkStatus();
  return WithReason(absl::InvalidArgumentError(absl::StrCat(
                        "consumer name '", absl::CHexEscape(name.substr(0, kMaxNameLength)),
                        "' is not 1 to 128 letters, digits, '.', '_' or '-'")),
                    reason::kRequestMalformed);
}

absl::StatusOr<std::unique_ptr<ConsumerRegistry>> ConsumerRegistry::Load(ChangeLog* log) {
  std::unique_ptr<ConsumerRegistry> registry(new ConsumerRegistry(log));
  const std::string stored = log->Metadata(kConsumersKey);
  if (stored.empty()) return registry;
  const auto damaged = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("the named consumers stored in the log cannot be read (", why, ")"));
  };
  if (!absl::StartsWith(stored, kHeader)) return damaged("unknown format");
  absl::MutexLock lock(&registry->mu_);
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(stored).substr(kHeader.size()), '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    int64_t micros = 0;
    if (fields.size() != 3 || !ValidateName(fields[0]).ok() ||
        !absl::SimpleAtoi(fields[2], &micros)) {
      return damaged(absl::StrCat("line '", absl::CHexEscape(line), "'"));
    }
    Consumer consumer;
    if (!fields[1].empty()) {
      absl::StatusOr<Position> cursor = ParseCursor(fields[1]);
      if (!cursor.ok()) return damaged(cursor.status().message());
      consumer.cursor = *cursor;
    }
    consumer.committed_at = absl::FromUnixMicros(micros);
    registry->consumers_[std::string(fields[0])] = consumer;
  }
  return registry;
}

std::string ConsumerRegistry::Encode() const {
  std::string out(kHeader);
  for (const auto& [name, consumer] : consumers_) {
    absl::StrAppend(&out, name, "\t", consumer.cursor.IsZero() ? "" : FormatCursor(consumer.cursor),
                    "\t", absl::ToUnixMicros(consumer.committed_at), "\n");
  }
  return out;
}

absl::Status ConsumerRegistry::Persist() {
  return write_.Persist(
      mu_, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return Encode(); },
      [this](const std::string& table) { return log_->SetMetadata(kConsumersKey, table); });
}

absl::StatusOr<std::unique_ptr<ConsumerRegistry::Lease>> ConsumerRegistry::Acquire(
    const std::string& name) {
  if (absl::Status valid = ValidateName(name); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  if (!streaming_.emplace(name, true).second) return Busy(name);
  return std::unique_ptr<Lease>(new Lease(this, name));
}

ConsumerRegistry::Lease::~Lease() { registry_->Release(name_); }

void ConsumerRegistry::Release(const std::string& name) {
  absl::MutexLock lock(&mu_);
  streaming_.erase(name);
}

std::optional<Position> ConsumerRegistry::Cursor(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  const auto found = consumers_.find(name);
  if (found == consumers_.end()) return std::nullopt;
  return found->second.cursor;
}

absl::StatusOr<std::pair<Position, bool>> ConsumerRegistry::Commit(const std::string& name,
                                                                   const Position& cursor) {
  if (absl::Status valid = ValidateName(name); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  auto [it, created] = consumers_.try_emplace(name);
  const bool moved = created || cursor > it->second.cursor;
  if (moved) {
    it->second.cursor = cursor;
    it->second.committed_at = absl::Now();
    write_.Changed();
  }
  // Persist() lets go of mu_ while it writes: others may change consumers_ meanwhile, which
  // invalidates `it`.
  const Position stored = it->second.cursor;
  if (absl::Status persisted = Persist(); !persisted.ok()) return persisted;
  return std::make_pair(stored, moved);
}

absl::Status ConsumerRegistry::Reset(const std::string& name, const Position& cursor) {
  if (absl::Status valid = ValidateName(name); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  if (streaming_.contains(name)) return Busy(name);
  consumers_[name] = Consumer{cursor, absl::Now()};
  write_.Changed();
  return Persist();
}

absl::Status ConsumerRegistry::Delete(const std::string& name) {
  if (absl::Status valid = ValidateName(name); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  if (streaming_.contains(name)) return Busy(name);
  if (consumers_.erase(name) == 0) {
    return WithReason(absl::NotFoundError(absl::StrCat("there is no consumer '", name, "'")),
                      reason::kConsumerNotFound);
  }
  write_.Changed();
  return Persist();
}

std::optional<Position> ConsumerRegistry::OldestUncommitted() const {
  absl::MutexLock lock(&mu_);
  std::optional<Position> oldest;
  for (const auto& [name, consumer] : consumers_) {
    const Position next = consumer.cursor.IsZero() ? Position{} : consumer.cursor.Successor();
    if (!oldest.has_value() || next < *oldest) oldest = next;
  }
  return oldest;
}

std::vector<v1::ConsumerInfo> ConsumerRegistry::List(const Position& head) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::ConsumerInfo> list;
  for (const auto& [name, consumer] : consumers_) {
    v1::ConsumerInfo& info = list.emplace_back();
    info.set_name(name);
    if (!consumer.cursor.IsZero()) info.set_cursor(FormatCursor(consumer.cursor));
    ToProtoTimestamp(consumer.committed_at, info.mutable_committed_at());
    info.set_streaming(streaming_.contains(name));
    info.set_lag_wal_bytes(head.lsn > consumer.cursor.lsn ? head.lsn - consumer.cursor.lsn : 0);
  }
  for (const auto& [name, streaming] : streaming_) {
    if (consumers_.contains(name)) continue;
    v1::ConsumerInfo& info = list.emplace_back();  // streaming, nothing committed yet
    info.set_name(name);
    info.set_streaming(true);
  }
  return list;
}

}  // namespace walfeed
