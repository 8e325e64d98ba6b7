#include "server/push/push_manager.h"

#include <google/protobuf/util/json_util.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/error_reason.h"
#include "server/core/table_name.h"
#include "server/push/push_settings.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

// `url` with a user and password in it shown as "***".
std::string RedactUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t host_start = scheme + 3;
  const size_t path = url.find_first_of("/?#", host_start);
  const size_t at = url.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at == std::string::npos || at < host_start) return url;
  return absl::StrCat(url.substr(0, host_start), "***", url.substr(at));
}

absl::StatusOr<v1::PushConfig> ReadPushConfig(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the push config '", path, "': ", std::strerror(errno)));
  }
  std::stringstream text;
  text << file.rdbuf();
  v1::PushConfig config;
  if (const auto parsed = google::protobuf::util::JsonStringToMessage(text.str(), &config);
      !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the push config '", path,
                     "' is not a walfeed.v1.PushConfig in JSON: ", parsed.message().as_string()));
  }
  return config;
}

}  // namespace

PushManager::PushManager(ChangeLog* log, SourceStatusFn source_status,
                         std::unique_ptr<PushStore> store)
    : log_(log), source_status_(std::move(source_status)), store_(std::move(store)) {}

PushManager::~PushManager() {
  {
    absl::MutexLock lock(&head_wake_->mu);
    head_wake_->manager = nullptr;
  }
  Stop();
}

void PushManager::WakeAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [name, deliverer] : deliverers_) deliverer->Wake();
}

absl::StatusOr<std::unique_ptr<PushManager>> PushManager::Load(ChangeLog* log,
                                                               SourceStatusFn source_status,
                                                               const std::string& config_path) {
  absl::StatusOr<std::unique_ptr<PushStore>> store = PushStore::Load(log);
  if (!store.ok()) return store.status();
  std::unique_ptr<PushManager> manager(
      new PushManager(log, std::move(source_status), *std::move(store)));
  if (!config_path.empty()) {
    absl::StatusOr<v1::PushConfig> config = ReadPushConfig(config_path);
    if (!config.ok()) return config.status();
    for (const v1::PushSubscription& settings : config->subscriptions()) {
      absl::StatusOr<v1::PushSubscription> complete = CompletePushSettings(settings);
      absl::StatusOr<v1::PushSubscriptionInfo> created =
          complete.ok() ? manager->CreateChecked(*complete, /*replace=*/true) : complete.status();
      if (!created.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("the push config '", config_path,
                                                       "', subscription '", settings.name(),
                                                       "': ", created.status().message()));
      }
    }
  }
  // Every head move wakes the deliverers.
  {
    absl::MutexLock lock(&manager->head_wake_->mu);
    manager->head_wake_->manager = manager.get();
  }
  log->AddHeadListener([wake = manager->head_wake_](const HeadAdvance&) {
    absl::MutexLock lock(&wake->mu);
    if (wake->manager != nullptr) wake->manager->WakeAll();
  });
  return manager;
}

void PushManager::Start() {
  absl::MutexLock lock(&mu_);
  started_ = true;
  for (const PushStore::Snapshot& snapshot : store_->All()) {
    StartDeliverer(snapshot.stored.subscription().name());
  }
}

void PushManager::StartDeliverer(const std::string& name) {
  if (!started_ || stopped_ || deliverers_.count(name) > 0) return;
  SourceStatusFn source_status = source_status_;
  auto deliverer = std::make_unique<PushDeliverer>(
      name, log_, store_.get(), [source_status] { return source_status().database; });
  deliverer->Start();
  deliverers_[name] = std::move(deliverer);
}

void PushManager::Stop() {
  std::map<std::string, std::unique_ptr<PushDeliverer>> deliverers;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    deliverers.swap(deliverers_);
  }
  // Every one abandons its request in flight at once (HttpPoster's cancel), then each is joined.
  for (auto& [name, deliverer] : deliverers) deliverer->RequestStop();
  deliverers.clear();
}

void PushManager::WakeDeliverer(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto found = deliverers_.find(name);
  if (found != deliverers_.end()) found->second->Wake();
}

absl::StatusOr<v1::PushSubscriptionInfo> PushManager::Create(const v1::PushSubscription& settings) {
  if (!settings.secret_file().empty()) {
    return WithReason(absl::InvalidArgumentError(
                          "secret_file is read from the --push-config file only; send the secret "
                          "itself (walfeedctl push create --secret-file reads it for you)"),
                      reason::kRequestMalformed);
  }
  absl::StatusOr<v1::PushSubscription> complete = CompletePushSettings(settings);
  if (!complete.ok()) return WithReason(complete.status(), reason::kRequestMalformed);
  return CreateChecked(*complete, /*replace=*/false);
}

absl::StatusOr<v1::PushSubscriptionInfo> PushManager::CreateChecked(
    const v1::PushSubscription& settings, bool replace) {
  // One creation or deletion at a time: the store and the deliverers change together.
  absl::MutexLock admin(&admin_mu_);
  const SourceStatus source = source_status_();
  PlanLimits limits;
  limits.tables_known = source.role != "replica" && !source.tables.empty();
  // The filters, and for a new subscription its start, judged as a Subscribe with them would be
  // (an existing one keeps its cursor: where it once started no longer matters).
  v1::SubscribeRequest request = FilterRequest(settings);
  if (store_->Get(settings.name()).has_value()) {
    request.clear_cursor();
    request.clear_from_head();
  }
  absl::StatusOr<SubscriptionPlan> plan = PlanSubscription(
      request, FeedBounds{log_->Head(), log_->PurgePoint(), source.server_wal_end, log_->LogId()},
      source.tables, limits);
  if (!plan.ok()) return plan.status();
  Position start;
  bool holds_state = false;
  if (!settings.start_cursor().empty()) {
    start = *ParseCursor(settings.start_cursor());
    holds_state = true;
  } else if (settings.from_head()) {
    start = log_->Head();
    holds_state = true;
  }
  absl::StatusOr<std::pair<PushStore::Snapshot, bool>> created =
      store_->Create(settings, start, holds_state, replace);
  if (!created.ok()) return created.status();
  if (created->second) {
    spdlog::info("event=push_created subscription={} url=\"{}\" cursor={}", settings.name(),
                 EscapeForLog(RedactUrl(settings.url())), FormatCursor(start));
  }
  {
    absl::MutexLock lock(&mu_);
    StartDeliverer(settings.name());
  }
  WakeDeliverer(settings.name());
  return Describe(created->first);
}

absl::StatusOr<v1::PushSubscriptionInfo> PushManager::Pause(const std::string& name) {
  absl::Status paused = store_->Update(name, [](v1::StoredPushSubscription* stored) {
    stored->set_paused(true);
    stored->set_pause_reason("operator");
  });
  if (!paused.ok()) return paused;
  spdlog::info("event=push_paused subscription={} reason=operator", name);
  WakeDeliverer(name);
  return DescribeNamed(name);
}

absl::StatusOr<v1::PushSubscriptionInfo> PushManager::Resume(
    const v1::PushSubscriptionRequest& request) {
  if (request.to_start() && request.to_head()) {
    return WithReason(absl::InvalidArgumentError("give to_start or to_head, not both"),
                      reason::kRequestMalformed);
  }
  const bool reset = request.to_start() || request.to_head();
  const Position head = log_->Head();
  const Position purge_point = log_->PurgePoint();
  absl::Status resumed = store_->Update(
      request.name(),
      [&](v1::StoredPushSubscription* stored) {
        stored->set_paused(false);
        stored->clear_pause_reason();
        stored->clear_last_error();
        if (!reset) return;
        stored->set_generation(stored->generation() + 1);
        PushStore::SetCursor(request.to_start() ? Position() : head, stored);
        stored->set_holds_state(request.to_head());
        PushStore::SetPurgeBaseline(request.to_head() ? purge_point : Position(), stored);
        stored->clear_pending_first_lsn();
        stored->clear_pending_first_seq();
        stored->clear_pending_last_lsn();
        stored->clear_pending_last_seq();
      },
      std::nullopt, /*new_epoch=*/reset);
  if (!resumed.ok()) return resumed;
  spdlog::info("event=push_resumed subscription={} from={}", request.name(),
               request.to_start()  ? "start"
               : request.to_head() ? "head"
                                   : "cursor");
  WakeDeliverer(request.name());
  return DescribeNamed(request.name());
}

absl::Status PushManager::Delete(const std::string& name) {
  absl::MutexLock admin(&admin_mu_);
  if (absl::Status removed = store_->Remove(name); !removed.ok()) return removed;
  std::unique_ptr<PushDeliverer> deliverer;
  {
    absl::MutexLock lock(&mu_);
    auto found = deliverers_.find(name);
    if (found != deliverers_.end()) {
      deliverer = std::move(found->second);
      deliverers_.erase(found);
    }
  }
  deliverer.reset();  // joins its thread, outside mu_ (a head move may wake the others meanwhile)
  spdlog::info("event=push_deleted subscription={}", name);
  return absl::OkStatus();
}

std::vector<v1::PushSubscriptionInfo> PushManager::List() const {
  std::vector<v1::PushSubscriptionInfo> all;
  for (const PushStore::Snapshot& snapshot : store_->All()) all.push_back(Describe(snapshot));
  return all;
}

absl::StatusOr<v1::PushSubscriptionInfo> PushManager::DescribeNamed(const std::string& name) const {
  std::optional<PushStore::Snapshot> snapshot = store_->Get(name);
  if (!snapshot.has_value()) return PushNotFound(name);
  return Describe(*snapshot);
}

v1::PushSubscriptionInfo PushManager::Describe(const PushStore::Snapshot& snapshot) const {
  v1::StoredPushSubscription stored = snapshot.stored;
  PushDeliverer::Runtime runtime;
  {
    absl::MutexLock lock(&mu_);
    auto found = deliverers_.find(stored.subscription().name());
    if (found != deliverers_.end()) runtime = found->second->runtime();
  }
  // The running delivery is ahead of what is stored (an acknowledgement is stored with the next
  // batch's bounds).
  if (runtime.progress.has_value() && runtime.epoch == snapshot.epoch) {
    CopyDeliveryState(*runtime.progress, &stored);
  }
  v1::PushSubscriptionInfo info;
  *info.mutable_subscription() = stored.subscription();
  info.set_secret_set(!stored.subscription().secret().empty());
  // What could let a reader act as walfeed towards the receiver stays out (FeedInfo is read with
  // a consumer's token): the secret, header values, a password in the URL.
  info.mutable_subscription()->clear_secret();
  info.mutable_subscription()->clear_secret_file();
  info.mutable_subscription()->set_url(RedactUrl(stored.subscription().url()));
  for (auto& [name, value] : *info.mutable_subscription()->mutable_headers()) value = "(set)";
  info.set_generation(stored.generation());
  // Resumed, and its deliverer has not looked yet: it is about to deliver.
  info.set_state(stored.paused()             ? "paused"
                 : runtime.state == "paused" ? "delivering"
                                             : runtime.state);
  const Position cursor = PushStore::CursorOf(stored);
  info.set_cursor(cursor.IsZero() ? "" : FormatCursor(cursor));
  info.set_pause_reason(stored.pause_reason());
  info.set_last_error(stored.last_error().empty() ? runtime.last_error : stored.last_error());
  info.set_last_status(stored.last_status());
  info.set_delivered_batches(stored.delivered_batches());
  info.set_delivered_changes(stored.delivered_changes());
  info.set_retries(stored.retries());
  info.set_lag_changes(runtime.lag_changes);
  info.set_lag_seconds(runtime.lag_seconds);
  const Position pending_first{stored.pending_first_lsn(), stored.pending_first_seq()};
  const Position pending_last{stored.pending_last_lsn(), stored.pending_last_seq()};
  if (!pending_last.IsZero()) {
    info.set_pending_first_cursor(FormatCursor(pending_first));
    info.set_pending_last_cursor(FormatCursor(pending_last));
  }
  *info.mutable_created_at() = stored.created_at();
  if (stored.has_last_delivered_at()) {
    *info.mutable_last_delivered_at() = stored.last_delivered_at();
  }
  info.set_http_version(runtime.http_version);
  return info;
}

}  // namespace walfeed
