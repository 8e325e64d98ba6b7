// SteadyWriter: a PostgreSQL session that writes table t (id int PRIMARY KEY, v text) of a test
// database on its own thread until stopped: small inserts, updates, deletes, non-transactional
// logical messages, and now and then a transaction of 300 rows. Row ids count up from the first
// one given, so a test can tell what was written after a moment.
#ifndef WALFEED_TESTS_INTEGRATION_STEADY_WRITER_H_
#define WALFEED_TESTS_INTEGRATION_STEADY_WRITER_H_

#include <atomic>
#include <string>
#include <thread>

namespace walfeed::test {

class SteadyWriter {
 public:
  SteadyWriter(std::string db, int first_id);
  ~SteadyWriter() { Stop(); }
  void Stop();
  // Transactions committed so far.
  int transactions() const { return transactions_; }
  // The id the next statement uses.
  int next_id() const { return next_id_; }

 private:
  void Run();

  const std::string db_;
  std::atomic<int> next_id_;
  std::atomic<bool> stop_{false};
  std::atomic<int> transactions_{0};
  std::thread thread_;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_INTEGRATION_STEADY_WRITER_H_
