// subscriber_example: the C++ client library in a page. Prints every change as
// "cursor op schema.table", resumes after the last one printed (kept in a cursor file), and
// reconnects by itself while walfeed restarts. Stops cleanly on Ctrl-C.
//
//   subscriber_example HOST:PORT CURSOR_FILE
#include <signal.h>

#include <iostream>
#include <thread>

#include "client/subscriber.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: subscriber_example HOST:PORT CURSOR_FILE\n";
    return 2;
  }
  walfeed::FileCursorStore store(argv[2]);
  walfeed::SubscriberOptions options;
  options.server = argv[1];
  options.store = &store;
  walfeed::Subscriber subscriber(options);

  // Ctrl-C or SIGTERM: a watcher thread asks the subscriber to stop.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread watcher([&] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    subscriber.Stop();
  });
  watcher.detach();

  const absl::Status ended = subscriber.Run(
      [](const walfeed::v1::Change& change) {
        std::cout << change.cursor() << " " << walfeed::v1::Change::Op_Name(change.op()) << " "
                  << change.schema() << "." << change.table() << std::endl;
        return absl::OkStatus();  // the cursor file now says: resume after this change
      },
      nullptr,
      [](const absl::Status& error, absl::Duration backoff) {
        std::cerr << "walfeed unavailable (" << error.message() << "), retrying in "
                  << absl::FormatDuration(backoff) << "\n";
      });
  if (!ended.ok()) {
    std::cerr << "subscriber_example: " << ended << "\n";
    return 1;
  }
  return 0;
}
