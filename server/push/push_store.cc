#include "server/push/push_store.h"

#include <google/protobuf/util/message_differencer.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/error_reason.h"
#include "server/core/metadata_keys.h"
#include "server/core/proto_time.h"

namespace walfeed {

absl::Status PushNotFound(const std::string& name) {
  return WithReason(absl::NotFoundError(absl::StrCat("there is no push subscription '", name,
                                                     "' (walfeedctl push list shows them)")),
                    reason::kPushNotFound);
}

void CopyDeliveryState(const v1::StoredPushSubscription& from, v1::StoredPushSubscription* to) {
  v1::PushSubscription settings = std::move(*to->mutable_subscription());
  const google::protobuf::Timestamp created_at = to->created_at();
  const bool paused = to->paused();
  std::string reason = to->pause_reason();
  *to = from;
  *to->mutable_subscription() = std::move(settings);
  *to->mutable_created_at() = created_at;
  to->set_paused(paused);
  to->set_pause_reason(std::move(reason));
}

Position PushStore::CursorOf(const v1::StoredPushSubscription& stored) {
  return Position{stored.cursor_lsn(), stored.cursor_seq()};
}

void PushStore::SetCursor(const Position& cursor, v1::StoredPushSubscription* stored) {
  stored->set_cursor_lsn(cursor.lsn);
  stored->set_cursor_seq(cursor.seq);
}

Position PushStore::PurgeBaselineOf(const v1::StoredPushSubscription& stored) {
  return Position{stored.purge_baseline_lsn(), stored.purge_baseline_seq()};
}

void PushStore::SetPurgeBaseline(const Position& purge_point, v1::StoredPushSubscription* stored) {
  stored->set_purge_baseline_lsn(purge_point.lsn);
  stored->set_purge_baseline_seq(purge_point.seq);
}

absl::StatusOr<std::unique_ptr<PushStore>> PushStore::Load(ChangeLog* log) {
  std::unique_ptr<PushStore> store(new PushStore(log));
  const std::string stored = log->Metadata(kPushSubscriptionsKey);
  if (stored.empty()) return store;
  v1::StoredPushSubscriptions all;
  if (!all.ParseFromString(stored)) {
    return absl::DataLossError("the push subscriptions stored in the log cannot be read");
  }
  absl::MutexLock lock(&store->mu_);
  for (v1::StoredPushSubscription& subscription : *all.mutable_subscriptions()) {
    const std::string name = subscription.subscription().name();
    store->subscriptions_[name] = Snapshot{std::move(subscription), store->next_epoch_++};
  }
  return store;
}

absl::Status PushStore::Persist() {
  return write_.Persist(
      mu_,
      [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        v1::StoredPushSubscriptions all;
        for (const auto& [name, snapshot] : subscriptions_) {
          *all.add_subscriptions() = snapshot.stored;
        }
        return all.SerializeAsString();
      },
      [this](const std::string& table) { return log_->SetMetadata(kPushSubscriptionsKey, table); });
}

absl::StatusOr<std::pair<PushStore::Snapshot, bool>> PushStore::Create(
    const v1::PushSubscription& settings, const Position& start, bool holds_state, bool replace) {
  absl::MutexLock lock(&mu_);
  auto found = subscriptions_.find(settings.name());
  if (found != subscriptions_.end()) {
    if (google::protobuf::util::MessageDifferencer::Equals(found->second.stored.subscription(),
                                                           settings)) {
      return std::make_pair(found->second, false);
    }
    if (!replace) {
      return WithReason(
          absl::AlreadyExistsError(absl::StrCat(
              "push subscription '", settings.name(),
              "' exists with other settings: delete it first, or choose another name")),
          reason::kPushExists);
    }
    // New settings, the same cursor (Persist() lets go of mu_: look the record up again after).
    const v1::PushSubscription before = found->second.stored.subscription();
    *found->second.stored.mutable_subscription() = settings;
    const Snapshot answer = found->second;
    write_.Changed();
    if (absl::Status persisted = Persist(); !persisted.ok()) {
      auto again = subscriptions_.find(settings.name());
      if (again != subscriptions_.end()) *again->second.stored.mutable_subscription() = before;
      return persisted;
    }
    return std::make_pair(answer, true);
  } else {
    Snapshot snapshot;
    *snapshot.stored.mutable_subscription() = settings;
    SetCursor(start, &snapshot.stored);
    snapshot.stored.set_holds_state(holds_state);
    if (holds_state) SetPurgeBaseline(log_->PurgePoint(), &snapshot.stored);
    ToProtoTimestamp(absl::Now(), snapshot.stored.mutable_created_at());
    snapshot.stored.set_generation(1);
    snapshot.epoch = next_epoch_++;
    found = subscriptions_.emplace(settings.name(), std::move(snapshot)).first;
  }
  const Snapshot answer = found->second;
  write_.Changed();
  if (absl::Status persisted = Persist(); !persisted.ok()) {
    subscriptions_.erase(settings.name());
    return persisted;
  }
  return std::make_pair(answer, true);
}

std::optional<PushStore::Snapshot> PushStore::Get(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto found = subscriptions_.find(name);
  if (found == subscriptions_.end()) return std::nullopt;
  return found->second;
}

std::vector<PushStore::Snapshot> PushStore::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<Snapshot> all;
  for (const auto& [name, snapshot] : subscriptions_) all.push_back(snapshot);
  return all;
}

absl::Status PushStore::Update(const std::string& name,
                               const std::function<void(v1::StoredPushSubscription*)>& change,
                               std::optional<uint64_t> epoch, bool new_epoch) {
  absl::MutexLock lock(&mu_);
  auto found = subscriptions_.find(name);
  if (found == subscriptions_.end()) return PushNotFound(name);
  if (epoch.has_value() && *epoch != found->second.epoch) {
    return absl::AbortedError(absl::StrCat("push subscription '", name, "' was reset meanwhile"));
  }
  // Undone when the write fails, so that nothing acts on a state that is not stored.
  const Snapshot before = found->second;
  change(&found->second.stored);
  if (new_epoch) found->second.epoch = next_epoch_++;
  write_.Changed();
  absl::Status persisted = Persist();
  if (!persisted.ok()) {
    auto again = subscriptions_.find(name);
    if (again != subscriptions_.end()) again->second = before;
  }
  return persisted;
}

absl::Status PushStore::Remove(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto found = subscriptions_.find(name);
  if (found == subscriptions_.end()) return PushNotFound(name);
  const Snapshot before = found->second;
  subscriptions_.erase(found);
  write_.Changed();
  absl::Status persisted = Persist();
  if (!persisted.ok()) subscriptions_.emplace(name, before);
  return persisted;
}

std::optional<Position> PushStore::OldestUndelivered() const {
  absl::MutexLock lock(&mu_);
  std::optional<Position> oldest;
  for (const auto& [name, snapshot] : subscriptions_) {
    const Position cursor = CursorOf(snapshot.stored);
    const Position next = cursor.IsZero() ? cursor : cursor.Successor();
    if (!oldest.has_value() || next < *oldest) oldest = next;
  }
  return oldest;
}

}  // namespace walfeed
