#include "server/source/pg_connection.h"

#include <libpq-fe.h>

#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace walfeed {
namespace {

// Session settings that make pgoutput's text output predictable and exact.
constexpr char kSessionOptions[] =
    "-c datestyle=ISO,YMD -c timezone=UTC -c bytea_output=hex -c extra_float_digits=3 "
    "-c intervalstyle=postgres";

// The options (server settings) the conninfo itself gives, "" when none (or it does not parse:
// connecting then says why).
std::string UserOptions(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (parsed == nullptr) return "";
  std::string options;
  for (const PQconninfoOption* option = parsed; option->keyword != nullptr; ++option) {
    if (std::string_view(option->keyword) == "options" && option->val != nullptr) {
      options = option->val;
    }
  }
  PQconninfoFree(parsed);
  return options;
}

// Adds the fix to the error a user most often meets when connecting.
std::string ExplainConnectError(const std::string& error, PgConnection::Mode mode) {
  if (mode == PgConnection::Mode::kReplication &&
      (error.find("must be superuser or replication role") != std::string::npos ||
       error.find("permission denied to start WAL sender") != std::string::npos ||
       error.find("no pg_hba.conf entry for replication") != std::string::npos)) {
    return absl::StrCat(
        error,
        " (walfeed connects as a replication client: give its role the REPLICATION attribute, "
        "ALTER ROLE <user> WITH REPLICATION, and allow it in pg_hba.conf)");
  }
  return error;
}

}  // namespace

std::string PgErrorMessage(PGconn* conn) {
  std::string message = conn == nullptr ? "out of memory" : PQerrorMessage(conn);
  absl::StripAsciiWhitespace(&message);
  absl::StrReplaceAll({{"\n", " "}}, &message);
  return message;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& conninfo,
                                                                    Mode mode) {
  // dbname comes first so that the keywords after it override what the conninfo says.
  // client_encoding UTF8: PostgreSQL converts text (values and names, pgoutput's too) from any
  // server encoding to UTF-8. SQL_ASCII is the exception, below.
  // The user's own options (say, -c wal_sender_timeout=10s) are kept; walfeed's come after them
  // and win where both set something.
  const std::string options = absl::StrCat(UserOptions(conninfo), " ", kSessionOptions);
  std::vector<const char*> keywords = {"dbname", "options", "fallback_application_name",
                                       "client_encoding"};
  std::vector<const char*> values = {conninfo.c_str(), options.c_str(), "walfeed", "UTF8"};
  if (mode == Mode::kReplication) {
    keywords.push_back("replication");
    values.push_back("database");
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    const std::string error = PgErrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to PostgreSQL: ", ExplainConnectError(error, mode)));
  }
  // A SQL_ASCII database holds bytes PostgreSQL never checked; asking for UTF-8 would make it
  // refuse to send the ones that are not. Take them as stored (value_converter.h).
  const char* server_encoding = PQparameterStatus(conn, "server_encoding");
  if (server_encoding != nullptr && std::string(server_encoding) == "SQL_ASCII" &&
      PQsetClientEncoding(conn, "SQL_ASCII") != 0) {
    const std::string error = PgErrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(
        absl::StrCat("cannot set client_encoding SQL_ASCII for a SQL_ASCII database: ", error));
  }
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

absl::StatusOr<QueryRows> PgConnection::Query(absl::string_view sql) {
  const std::string statement(sql);
  PGresult* result = PQexec(conn_, statement.c_str());
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string error = result ? PQresultErrorMessage(result) : PgErrorMessage(conn_);
    absl::StripAsciiWhitespace(&error);
    absl::StrReplaceAll({{"\n", " "}}, &error);
    PQclear(result);
    if (PQstatus(conn_) != CONNECTION_OK) return absl::UnavailableError(error);
    return absl::FailedPreconditionError(error);
  }
  QueryRows out;
  const int rows = PQntuples(result);
  const int columns = PQnfields(result);
  for (int c = 0; c < columns; ++c) {
    out.column_names.emplace_back(PQfname(result, c));
    out.column_types.push_back(PQftype(result, c));
  }
  out.rows.resize(rows);
  out.nulls.resize(rows);
  for (int r = 0; r < rows; ++r) {
    out.rows[r].reserve(columns);
    out.nulls[r].reserve(columns);
    for (int c = 0; c < columns; ++c) {
      out.rows[r].emplace_back(PQgetvalue(result, r, c), PQgetlength(result, r, c));
      out.nulls[r].push_back(PQgetisnull(result, r, c) != 0);
    }
  }
  PQclear(result);
  return out;
}

std::string PgConnection::QuoteLiteral(absl::string_view text) {
  char* quoted = PQescapeLiteral(conn_, text.data(), text.size());
  std::string out = quoted ? quoted : "''";
  PQfreemem(quoted);
  return out;
}

std::string PgConnection::QuoteIdentifier(absl::string_view text) {
  char* quoted = PQescapeIdentifier(conn_, text.data(), text.size());
  std::string out = quoted ? quoted : "\"\"";
  PQfreemem(quoted);
  return out;
}

std::string PgConnection::Describe() const {
  const char* host = PQhost(conn_);
  return absl::StrCat("host=", host ? host : "", " port=", PQport(conn_), " dbname=", PQdb(conn_),
                      " user=", PQuser(conn_));
}

std::string PgConnection::database() const { return PQdb(conn_); }

}  // namespace walfeed
