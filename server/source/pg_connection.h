// PgConnection: one libpq connection, owned and closed on every path, with plain-SQL helpers.
//
// Connects with walfeed's session settings (ISO dates, UTC, hex bytea, exact floats) so
// pgoutput's text values are in the forms the value converter expects. Error messages carry
// PostgreSQL's own words plus what to do; they never contain the password, because they never
// repeat the conninfo. libpq types stay inside source/.
#ifndef WALFEED_SERVER_SOURCE_PG_CONNECTION_H_
#define WALFEED_SERVER_SOURCE_PG_CONNECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace walfeed {

// The rows of a query in text form (NULL becomes "" with its flag set in `nulls`), with the
// result's column names and type OIDs.
struct QueryRows {
  std::vector<std::string> column_names;
  std::vector<uint32_t> column_types;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::vector<bool>> nulls;
};

class PgConnection {
 public:
  enum class Mode { kPlain, kReplication };

  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo,
                                                               Mode mode);
  ~PgConnection();

  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one statement with the simple query protocol (all a replication connection allows).
  absl::StatusOr<QueryRows> Query(absl::string_view sql);

  // SQL literal / identifier quoting by libpq.
  std::string QuoteLiteral(absl::string_view text);
  std::string QuoteIdentifier(absl::string_view text);

  // "host=... port=... dbname=... user=...", for log lines; never the password.
  std::string Describe() const;
  std::string database() const;

  PGconn* raw() { return conn_; }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_;
};

// The last libpq error of `conn`, trimmed to one line.
std::string PgErrorMessage(PGconn* conn);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_PG_CONNECTION_H_
