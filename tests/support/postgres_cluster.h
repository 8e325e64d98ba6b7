// PostgresCluster: a private PostgreSQL started for a test (scripts/pg-local.sh: initdb on a
// free port on 127.0.0.1, wal_level=logical) and stopped when the object goes away, plus the
// SQL helpers tests need. Each test makes its own database so tests never share data.
#ifndef WALFEED_TESTS_SUPPORT_POSTGRES_CLUSTER_H_
#define WALFEED_TESTS_SUPPORT_POSTGRES_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct pg_conn;

namespace walfeed::test {

// One kept-open connection to a database, for a test that queries often (a connection per
// query costs PostgreSQL a backend start each time, which on two cores slows what is measured).
// It connects again when its connection broke. Not thread-safe: one per thread.
class SqlSession {
 public:
  explicit SqlSession(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  SqlSession(const SqlSession&) = delete;
  SqlSession& operator=(const SqlSession&) = delete;
  ~SqlSession();

  // Runs `sql`; rows of text values, "<null>" for NULL.
  absl::StatusOr<std::vector<std::vector<std::string>>> Query(const std::string& sql);

 private:
  const std::string conninfo_;
  pg_conn* conn_ = nullptr;
};

class PostgresCluster {
 public:
  // `extra_conf` lines are appended to postgresql.conf.
  static absl::StatusOr<std::unique_ptr<PostgresCluster>> Start(const std::string& extra_conf = "");
  ~PostgresCluster();

  std::string Conninfo(const std::string& database = "postgres") const;

  // Runs `sql` (one or more statements, one implicit transaction) in `database`.
  absl::Status Exec(const std::string& database, const std::string& sql) const;
  absl::StatusOr<std::vector<std::vector<std::string>>> Query(const std::string& database,
                                                              const std::string& sql) const;

  // Creates a fresh database named after `prefix` with a unique suffix; returns its name.
  absl::StatusOr<std::string> CreateDatabase(const std::string& prefix);

  absl::Status Restart();
  // Stops the server (fast shutdown: connections are closed) / starts it again on its port.
  absl::Status StopServer();
  absl::Status StartServer();

  // A streaming physical standby of this cluster (pg_basebackup on loopback), started; stopped
  // and removed when the object goes away. Promote() makes it a primary.
  absl::StatusOr<std::unique_ptr<PostgresCluster>> StartStandby() const;
  absl::Status Promote();
  int port() const;

 private:
  explicit PostgresCluster(std::string dir) : dir_(std::move(dir)) {}
  // Keeps the last line of the script's output: the conninfo.
  void SetConninfo(const std::string& output);
  std::string dir_;
  std::string conninfo_base_;
  int databases_made_ = 0;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_POSTGRES_CLUSTER_H_
