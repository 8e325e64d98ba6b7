// SlotCreationWatch: says in the log what a logical slot being created is waiting for.
//
// Creating a logical replication slot waits until every transaction running at that moment has
// ended, prepared (two-phase) transactions included; one forgotten PREPARE TRANSACTION keeps it
// waiting for ever, and walfeed with it. While a watch lives, a thread of its own checks after
// `first_report` and then every `interval` on a separate plain connection and logs
// event=slot_creation_waiting with the prepared transactions and the oldest open transactions
// that hold it back, and the way out. It never cancels anything. Destruction stops and joins the
// thread. Thread-safe.
#ifndef WALFEED_SERVER_SOURCE_SLOT_CREATION_WATCH_H_
#define WALFEED_SERVER_SOURCE_SLOT_CREATION_WATCH_H_

#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace walfeed {

class SlotCreationWatch {
 public:
  SlotCreationWatch(std::string conninfo, std::string slot,
                    absl::Duration first_report = absl::Seconds(5),
                    absl::Duration interval = absl::Seconds(30));
  ~SlotCreationWatch();

  SlotCreationWatch(const SlotCreationWatch&) = delete;
  SlotCreationWatch& operator=(const SlotCreationWatch&) = delete;

 private:
  void Run(absl::Duration first_report, absl::Duration interval);
  void Report(absl::Duration waited);

  const std::string conninfo_;
  const std::string slot_;
  const absl::Time started_ = absl::Now();
  absl::Notification done_;
  std::thread thread_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_SLOT_CREATION_WATCH_H_
