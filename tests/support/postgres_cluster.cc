#include "tests/support/postgres_cluster.h"

#include <libpq-fe.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/support/process.h"

namespace walfeed::test {
namespace {

const std::string kPgLocalScript = std::string(WALFEED_SOURCE_DIR) + "/scripts/pg-local.sh";

}  // namespace

SqlSession::~SqlSession() {
  if (conn_ != nullptr) PQfinish(conn_);
}

absl::StatusOr<std::vector<std::vector<std::string>>> SqlSession::Query(const std::string& sql) {
  if (conn_ != nullptr && PQstatus(conn_) != CONNECTION_OK) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  if (conn_ == nullptr) {
    conn_ = PQconnectdb(conninfo_.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string error = PQerrorMessage(conn_);
      PQfinish(conn_);
      conn_ = nullptr;
      return absl::UnavailableError(error);
    }
  }
  PGresult* result = PQexec(conn_, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    const std::string error = PQresultErrorMessage(result);
    PQclear(result);
    return absl::FailedPreconditionError(absl::StrCat(error, " in: ", sql.substr(0, 200)));
  }
  std::vector<std::vector<std::string>> rows(PQntuples(result));
  for (int r = 0; r < PQntuples(result); ++r) {
    for (int c = 0; c < PQnfields(result); ++c) {
      rows[r].push_back(PQgetisnull(result, r, c) ? "<null>" : PQgetvalue(result, r, c));
    }
  }
  PQclear(result);
  return rows;
}

absl::StatusOr<std::unique_ptr<PostgresCluster>> PostgresCluster::Start(
    const std::string& extra_conf) {
  const std::string dir = MakeTempDir("walfeed-pg");
  if (dir.empty()) return absl::InternalError("cannot make a temp dir for PostgreSQL");
  std::unique_ptr<PostgresCluster> cluster(new PostgresCluster(dir));
  RunResult started = RunCommand({"bash", kPgLocalScript, "start", dir}, absl::Seconds(120),
                                 {absl::StrCat("WALFEED_PG_CONF=", extra_conf)});
  if (started.exit_code != 0) {
    return absl::InternalError(absl::StrCat("cannot start PostgreSQL: ", started.output));
  }
  cluster->SetConninfo(started.output);
  return cluster;
}

void PostgresCluster::SetConninfo(const std::string& output) {
  conninfo_base_ = std::string(absl::StripAsciiWhitespace(output));
  if (const size_t newline = conninfo_base_.rfind('\n'); newline != std::string::npos) {
    conninfo_base_ = conninfo_base_.substr(newline + 1);
  }
}

absl::StatusOr<std::unique_ptr<PostgresCluster>> PostgresCluster::StartStandby() const {
  const std::string dir = MakeTempDir("walfeed-pg-standby");
  if (dir.empty()) return absl::InternalError("cannot make a temp dir for the standby");
  std::unique_ptr<PostgresCluster> standby(new PostgresCluster(dir));
  RunResult started =
      RunCommand({"bash", kPgLocalScript, "standby", dir, dir_}, absl::Seconds(120));
  if (started.exit_code != 0) {
    return absl::InternalError(absl::StrCat("cannot start a standby: ", started.output));
  }
  standby->SetConninfo(started.output);
  return standby;
}

absl::Status PostgresCluster::Promote() {
  RunResult promoted = RunCommand({"bash", kPgLocalScript, "promote", dir_}, absl::Seconds(90));
  if (promoted.exit_code != 0) return absl::InternalError(promoted.output);
  return absl::OkStatus();
}

int PostgresCluster::port() const {
  int port = 0;
  (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir_ + "/port")), &port);
  return port;
}

PostgresCluster::~PostgresCluster() {
  RunCommand({"bash", kPgLocalScript, "stop", dir_}, absl::Seconds(60));
  RemoveTree(dir_);
}

std::string PostgresCluster::Conninfo(const std::string& database) const {
  // The base ends with "dbname=postgres".
  std::string base = conninfo_base_;
  const size_t at = base.rfind("dbname=");
  if (at != std::string::npos) base.resize(at);
  return absl::StrCat(base, "dbname=", database);
}

absl::Status PostgresCluster::Exec(const std::string& database, const std::string& sql) const {
  return Query(database, sql).status();
}

absl::StatusOr<std::vector<std::vector<std::string>>> PostgresCluster::Query(
    const std::string& database, const std::string& sql) const {
  return SqlSession(Conninfo(database)).Query(sql);
}

absl::StatusOr<std::string> PostgresCluster::CreateDatabase(const std::string& prefix) {
  std::string name =
      absl::AsciiStrToLower(absl::StrCat(prefix, "_", getpid(), "_", ++databases_made_));
  for (char& c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) c = '_';
  }
  if (absl::Status s = Exec("postgres", absl::StrCat("CREATE DATABASE ", name)); !s.ok()) return s;
  return name;
}

absl::Status PostgresCluster::Restart() {
  if (absl::Status stopped = StopServer(); !stopped.ok()) return stopped;
  return StartServer();
}

absl::Status PostgresCluster::StopServer() {
  RunResult stopped = RunCommand({"bash", kPgLocalScript, "stop", dir_}, absl::Seconds(60));
  if (stopped.exit_code != 0) return absl::InternalError(stopped.output);
  return absl::OkStatus();
}

absl::Status PostgresCluster::StartServer() {
  RunResult started = RunCommand({"bash", kPgLocalScript, "start", dir_}, absl::Seconds(60));
  if (started.exit_code != 0) return absl::InternalError(started.output);
  return absl::OkStatus();
}

}  // namespace walfeed::test
