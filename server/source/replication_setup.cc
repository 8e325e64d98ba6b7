#include "server/source/replication_setup.h"

#include <libpq-fe.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/core/position.h"

namespace walfeed {

absl::StatusOr<SystemIdentity> IdentifySystem(PgConnection& conn) {
  absl::StatusOr<QueryRows> result = conn.Query("IDENTIFY_SYSTEM");
  if (!result.ok()) return result.status();
  if (result->rows.size() != 1 || result->rows[0].size() < 4) {
    return absl::InternalError("IDENTIFY_SYSTEM returned an unexpected result");
  }
  const std::vector<std::string>& row = result->rows[0];
  SystemIdentity identity;
  identity.system_identifier = row[0];
  if (!absl::SimpleAtoi(row[1], &identity.timeline)) {
    return absl::InternalError(
        absl::StrCat("IDENTIFY_SYSTEM timeline '", row[1], "' is not a number"));
  }
  absl::StatusOr<uint64_t> lsn = ParseLsn(row[2]);
  if (!lsn.ok()) return lsn.status();
  identity.wal_flush_lsn = *lsn;
  identity.database = row[3];
  return identity;
}

absl::Status CheckWalLevel(PgConnection& conn) {
  absl::StatusOr<QueryRows> result = conn.Query("SHOW wal_level");
  if (!result.ok()) return result.status();
  const std::string level = result->rows.empty() ? "" : result->rows[0][0];
  if (level != "logical") {
    return absl::FailedPreconditionError(absl::StrCat(
        "PostgreSQL has wal_level=", level,
        " but walfeed needs wal_level=logical: run ALTER SYSTEM SET wal_level = logical; and "
        "restart PostgreSQL"));
  }
  return absl::OkStatus();
}

absl::Status EnsurePublication(PgConnection& conn, const std::string& publication,
                               bool create_if_missing) {
  absl::StatusOr<QueryRows> found = conn.Query(absl::StrCat(
      "SELECT 1 FROM pg_publication WHERE pubname = ", conn.QuoteLiteral(publication)));
  if (!found.ok()) return found.status();
  if (!found->rows.empty()) return absl::OkStatus();
  if (!create_if_missing) {
    return absl::FailedPreconditionError(absl::StrCat(
        "publication '", publication, "' does not exist in database '", conn.database(),
        "': create it (CREATE PUBLICATION ", conn.QuoteIdentifier(publication),
        " FOR TABLE ...), or leave --publication unset and walfeed creates 'walfeed' FOR ALL "
        "TABLES"));
  }
  absl::StatusOr<QueryRows> created = conn.Query(
      absl::StrCat("CREATE PUBLICATION ", conn.QuoteIdentifier(publication), " FOR ALL TABLES"));
  if (!created.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "publication '", publication, "' does not exist and walfeed cannot create it: ",
        created.status().message(), " (create it yourself, e.g. CREATE PUBLICATION ", publication,
        " FOR TABLE ..., or let a superuser run walfeed once)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SlotState> CheckSlot(PgConnection& conn, const std::string& slot) {
  absl::StatusOr<QueryRows> found = conn.Query(
      absl::StrCat("SELECT plugin, slot_type, database, active, coalesce(active_pid::text, ''), "
                   "coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = ",
                   conn.QuoteLiteral(slot)));
  if (!found.ok()) return found.status();
  if (found->rows.empty()) return SlotState::kMissing;
  const std::vector<std::string>& row = found->rows[0];
  if (row[1] != "logical" || row[0] != "pgoutput") {
    return absl::FailedPreconditionError(absl::StrCat(
        "replication slot '", slot, "' exists but is a ", row[1], " slot with plugin '", row[0],
        "'; walfeed needs a logical pgoutput slot: pass another --slot name or drop that slot"));
  }
  if (row[2] != conn.database()) {
    return absl::FailedPreconditionError(
        absl::StrCat("replication slot '", slot, "' belongs to database '", row[2], "', not '",
                     conn.database(), "': pass another --slot name"));
  }
  if (row[3] == "t") {
    return absl::FailedPreconditionError(
        absl::StrCat("replication slot '", slot, "' is in use by another process (pid ", row[4],
                     "): stop that consumer or pass another --slot name"));
  }
  return row[5] == "lost" ? SlotState::kInvalidated : SlotState::kReady;
}

absl::StatusOr<uint64_t> CurrentWalInsertLsn(PgConnection& conn) {
  absl::StatusOr<QueryRows> result = conn.Query("SELECT pg_current_wal_insert_lsn()");
  if (!result.ok()) return result.status();
  if (result->rows.size() != 1) {
    return absl::InternalError("pg_current_wal_insert_lsn() returned an unexpected result");
  }
  return ParseLsn(result->rows[0][0]);
}

absl::StatusOr<uint64_t> AdvanceWalTo(PgConnection& conn, uint64_t lsn, uint64_t max_bytes) {
  constexpr uint64_t kMessageBytes = 1 << 20;
  uint64_t written = 0;
  for (;;) {
    absl::StatusOr<uint64_t> current = CurrentWalInsertLsn(conn);
    if (!current.ok()) return current.status();
    if (*current >= lsn) return written;
    if (written == 0 && lsn - *current > max_bytes) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the server's WAL (at ", FormatLsn(*current), ") is ", lsn - *current,
          " bytes behind what this data directory already holds (", FormatLsn(lsn),
          "), more than a promoted standby lags: this is not the server the log was filled from "
          "(a backup restored from long ago?). Start over with a new --data-dir"));
    }
    const uint64_t bytes = std::min(lsn - *current, kMessageBytes);
    absl::Status emitted =
        conn.Query(absl::StrCat("SELECT pg_logical_emit_message(false, 'walfeed.wal_advance', "
                                "repeat(' ', ",
                                bytes, "))"))
            .status();
    if (!emitted.ok()) return emitted;
    written += bytes;
  }
}

absl::StatusOr<uint64_t> SlotConfirmedFlushLsn(PgConnection& conn, const std::string& slot) {
  absl::StatusOr<QueryRows> found = conn.Query(
      absl::StrCat("SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots "
                   "WHERE slot_name = ",
                   conn.QuoteLiteral(slot)));
  if (!found.ok()) return found.status();
  if (found->rows.empty()) {
    return absl::NotFoundError(absl::StrCat("replication slot '", slot, "' does not exist"));
  }
  return ParseLsn(found->rows[0][0]);
}

namespace {

absl::StatusOr<QueryRows> CreateSlotCommand(PgConnection& conn, const std::string& slot,
                                            absl::string_view snapshot_mode,
                                            bool temporary = false) {
  absl::StatusOr<QueryRows> created = conn.Query(absl::StrCat(
      "CREATE_REPLICATION_SLOT ", conn.QuoteIdentifier(slot), temporary ? " TEMPORARY" : "",
      " LOGICAL pgoutput (SNAPSHOT '", snapshot_mode, "')"));
  if (!created.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create replication slot '", slot, "': ", created.status().message(),
        " (check max_replication_slots and that the role has the REPLICATION attribute)"));
  }
  return created;
}

}  // namespace

absl::Status EnsureSlot(PgConnection& conn, const std::string& slot) {
  absl::StatusOr<SlotState> state = CheckSlot(conn, slot);
  if (!state.ok()) return state.status();
  if (*state != SlotState::kMissing) return absl::OkStatus();
  return CreateSlotCommand(conn, slot, "nothing").status();
}

absl::StatusOr<ExportedSnapshot> CreateSlotWithSnapshot(PgConnection& conn, const std::string& slot,
                                                        bool temporary) {
  absl::StatusOr<QueryRows> created = CreateSlotCommand(conn, slot, "export", temporary);
  if (!created.ok()) return created.status();
  // slot_name, consistent_point, snapshot_name, output_plugin
  if (created->rows.size() != 1 || created->rows[0].size() < 3) {
    return absl::InternalError("CREATE_REPLICATION_SLOT returned an unexpected result");
  }
  absl::StatusOr<uint64_t> consistent_point = ParseLsn(created->rows[0][1]);
  if (!consistent_point.ok()) return consistent_point.status();
  return ExportedSnapshot{*consistent_point, created->rows[0][2]};
}

absl::Status DropSlot(PgConnection& conn, const std::string& slot) {
  return conn.Query(absl::StrCat("DROP_REPLICATION_SLOT ", conn.QuoteIdentifier(slot))).status();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> PublishedRelations(
    PgConnection& conn, const std::string& publication) {
  absl::StatusOr<QueryRows> result = conn.Query(
      absl::StrCat("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = ",
                   conn.QuoteLiteral(publication)));
  if (!result.ok()) return result.status();
  std::vector<std::pair<std::string, std::string>> relations;
  relations.reserve(result->rows.size());
  for (std::vector<std::string>& row : result->rows) {
    relations.emplace_back(std::move(row[0]), std::move(row[1]));
  }
  std::sort(relations.begin(), relations.end());
  return relations;
}

absl::StatusOr<ColumnRole> DescribeColumn(PgConnection& conn, const std::string& schema,
                                          const std::string& table, const std::string& column) {
  const std::string relation =
      absl::StrCat(conn.QuoteIdentifier(schema), ".", conn.QuoteIdentifier(table));
  absl::StatusOr<QueryRows> found = conn.Query(
      absl::StrCat("SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                   "  WHERE i.indrelid = a.attrelid AND a.attnum = ANY (i.indkey) AND "
                   "  ((c.relreplident = 'i' AND i.indisreplident) OR "
                   "   (c.relreplident = 'd' AND i.indisprimary))) "
                   "FROM pg_attribute a WHERE a.attrelid = to_regclass(",
                   conn.QuoteLiteral(relation), ") AND a.attname = ", conn.QuoteLiteral(column),
                   " AND a.attnum > 0 AND NOT a.attisdropped"));
  if (!found.ok()) return found.status();
  if (found->rows.empty()) return ColumnRole::kMissing;
  return found->rows[0][0] == "t" ? ColumnRole::kKey : ColumnRole::kOther;
}

absl::Status LoadTypes(PgConnection& conn, TypeCatalog* types) {
  // Arrays are named after their element type, "int4[]" rather than pg_type's "_int4".
  absl::StatusOr<QueryRows> result = conn.Query(
      "SELECT t.oid, n.nspname, CASE WHEN t.typcategory = 'A' AND e.oid IS NOT NULL "
      "THEN e.typname || '[]' ELSE t.typname END, "
      "t.typbasetype "
      "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
      "LEFT JOIN pg_type e ON e.oid = t.typelem");
  if (!result.ok()) return result.status();
  for (const std::vector<std::string>& row : result->rows) {
    uint32_t oid, base_oid;
    if (absl::SimpleAtoi(row[0], &oid) && absl::SimpleAtoi(row[3], &base_oid)) {
      types->Add(oid, row[1], row[2], base_oid);
    }
  }
  return absl::OkStatus();
}

absl::Status StartReplication(PgConnection& conn, const std::string& slot,
                              const std::string& publication, uint64_t start_lsn) {
  // publication_names is a list of identifiers inside a string literal.
  const std::string names = conn.QuoteLiteral(conn.QuoteIdentifier(publication));
  const std::string command = absl::StrCat(
      "START_REPLICATION SLOT ", conn.QuoteIdentifier(slot), " LOGICAL ", FormatLsn(start_lsn),
      " (\"proto_version\" '1', \"publication_names\" ", names, ", \"messages\" 'true')");
  PGresult* result = PQexec(conn.raw(), command.c_str());
  const ExecStatusType status = PQresultStatus(result);
  std::string error = result ? PQresultErrorMessage(result) : "";
  PQclear(result);
  if (status != PGRES_COPY_BOTH) {
    if (error.empty()) error = PgErrorMessage(conn.raw());
    return absl::FailedPreconditionError(absl::StrCat("START_REPLICATION failed: ", error));
  }
  return absl::OkStatus();
}

}  // namespace walfeed
