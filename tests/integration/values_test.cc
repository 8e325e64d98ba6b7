// Source fidelity: every type family a PostgreSQL user meets arrives exact and typed, or as
// PostgreSQL's own text form, never lossy; the snapshot and the stream agree; schema changes
// mid-stream are followed.
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"
#include "tests/support/walfeed_process.h"

namespace walfeed::test {
namespace {

using ::testing::ElementsAre;

const v1::Column& Col(const v1::Change& change, const std::string& name) {
  static const v1::Column missing;
  const v1::Column* column = FindColumn(change.after(), name);
  if (column == nullptr) ADD_FAILURE() << "no column " << name;
  return column == nullptr ? missing : *column;
}

std::vector<std::string> Names(const v1::Change& change) {
  std::vector<std::string> names;
  for (const v1::Column& column : change.after()) names.push_back(column.name());
  return names;
}

class Values : public WalfeedTest {
 protected:
  // One row of every type family with edge values; `id` picks the row.
  static constexpr char kTable[] =
      "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"
      "CREATE DOMAIN posint AS int CHECK (VALUE > 0);"
      "CREATE TYPE pair AS (n int, s text);"
      "CREATE TABLE v ("
      " id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, num numeric, num_nan numeric,"
      " num_inf numeric, f4 float4, f8 float8, f8_nan float8, f8_inf float8, m money, t text,"
      " t_empty text, t_null text, vc varchar(10), ch char(5), b bytea, b_empty bytea, flag bool,"
      " u uuid, j json, jb jsonb, d date, d_inf date, d_bc date, ts timestamp, tstz timestamptz,"
      " ts_inf timestamptz, tm time, tmtz timetz, iv interval, ai int[], at text[], e mood,"
      " dom posint, comp pair, net inet, mac macaddr, r int4range, x xml)";
  static constexpr char kRow[] =
      "(%d, -32768, 2147483647, -9223372036854775808, "
      "'-123456789012345678901234567890.000000000000000000000001', 'NaN', '-Infinity', "
      "'1.1', '1.7976931348623157e308', 'NaN', '-Infinity', '1234.56', "
      "'z\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80 e\xcc\x81 \"q\" \\ tab\there', '', NULL, 'ten chars!', "
      "'ab', '\\x00ff00', '', true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
      "'{\"k\": [1, 2.50, \"\xc3\xa9\"]}', '{\"b\": 1, \"a\": null}', '2024-02-29', 'infinity', "
      "'0044-03-15 BC', '2024-02-29 23:59:59.999999', '1999-12-31 23:59:59.000001+05:30', "
      "'infinity', '13:14:15.123456', '13:14:15+02', '-1 year 2 mons 3 days 04:05:06.789', "
      "'{1,NULL,3}', '{\"a,b\",\"c\\\"d\",NULL}', 'happy', 5, '(7,\"x y\")', '192.168.0.1/24', "
      "'08:00:2b:01:02:03', '[1,5)', '<a>x</a>')";

  std::string Row(int id) { return absl::StrFormat(kRow, id); }

  // PostgreSQL's text form of every column of row `id`.
  std::map<std::string, std::string> TextForms(int id) {
    const auto columns = Query(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'v'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum");
    std::vector<std::string> casts;
    for (const auto& column : columns) casts.push_back(absl::StrCat(column[0], "::text"));
    const auto rows = Query(absl::StrCat("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SELECT ",
                                         absl::StrJoin(casts, ", "), " FROM v WHERE id = ", id));
    std::map<std::string, std::string> out;
    for (size_t c = 0; c < columns.size(); ++c) out[columns[c][0]] = rows.at(0).at(c);
    return out;
  }
};

TEST_F(Values, EveryTypeFamilyArrivesExactOrAsItsTextForm) {
  Sql(kTable);
  Sql(absl::StrCat("INSERT INTO v VALUES ", Row(1)));  // read by the snapshot
  StartWalfeed();
  Sql(absl::StrCat("INSERT INTO v VALUES ", Row(2)));  // streamed
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  ASSERT_EQ(changes->size(), 2u);
  const v1::Change& read = (*changes)[0];
  const v1::Change& insert = (*changes)[1];
  ASSERT_EQ(read.op(), v1::Change::READ);
  ASSERT_EQ(insert.op(), v1::Change::INSERT);

  for (const v1::Change* change : {&read, &insert}) {
    SCOPED_TRACE(v1::Change::Op_Name(change->op()));
    const v1::Change& c = *change;
    EXPECT_EQ(Col(c, "i2").int_(), -32768);
    EXPECT_EQ(Col(c, "i4").int_(), 2147483647);
    EXPECT_EQ(Col(c, "i8").int_(), INT64_MIN);
    EXPECT_EQ(Col(c, "num").numeric(), "-123456789012345678901234567890.000000000000000000000001");
    EXPECT_EQ(Col(c, "num_nan").numeric(), "NaN");
    EXPECT_EQ(Col(c, "num_inf").numeric(), "-Infinity");
    EXPECT_EQ(static_cast<float>(Col(c, "f4").float_()), 1.1f);
    EXPECT_EQ(Col(c, "f8").float_(), 1.7976931348623157e308);
    EXPECT_TRUE(std::isnan(Col(c, "f8_nan").float_()));
    EXPECT_EQ(Col(c, "f8_inf").float_(), -INFINITY);
    EXPECT_EQ(Col(c, "t").text(),
              "z\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80 e\xcc\x81 \"q\" \\ tab\there");
    EXPECT_EQ(Col(c, "t_empty").value_case(), v1::Column::kText);
    EXPECT_EQ(Col(c, "t_empty").text(), "");
    EXPECT_EQ(Col(c, "t_null").value_case(), v1::Column::kNull);
    EXPECT_EQ(Col(c, "vc").text(), "ten chars!");
    EXPECT_EQ(Col(c, "ch").text(), "ab   ");
    EXPECT_EQ(Col(c, "b").bytes(), std::string("\x00\xff\x00", 3));
    EXPECT_EQ(Col(c, "b_empty").value_case(), v1::Column::kBytes);
    EXPECT_TRUE(Col(c, "flag").bool_());
    EXPECT_EQ(Col(c, "u").uuid(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    EXPECT_EQ(Col(c, "j").json(), "{\"k\": [1, 2.50, \"\xc3\xa9\"]}");
    EXPECT_EQ(Col(c, "jb").json(), "{\"a\": null, \"b\": 1}");
    EXPECT_EQ(Col(c, "d").date(), "2024-02-29");
    EXPECT_EQ(Col(c, "d_inf").text(), "infinity");
    EXPECT_EQ(Col(c, "d_bc").text(), "0044-03-15 BC");
    EXPECT_EQ(Col(c, "ts").timestamp().seconds(), 1709251199);
    EXPECT_EQ(Col(c, "ts").timestamp().nanos(), 999999000);
    EXPECT_EQ(Col(c, "tstz").timestamp().seconds(), 946664999);
    EXPECT_EQ(Col(c, "tstz").timestamp().nanos(), 1000);
    EXPECT_EQ(Col(c, "ts_inf").text(), "infinity");
    EXPECT_EQ(Col(c, "e").type(), "public.mood");
    EXPECT_EQ(Col(c, "e").text(), "happy");
    EXPECT_EQ(Col(c, "ai").type(), "int4[]");
    EXPECT_EQ(Col(c, "dom").type(), "public.posint") << "a domain keeps its own name";
    EXPECT_EQ(Col(c, "dom").int_(), 5) << "and its value its base type's field";
    EXPECT_EQ(Col(c, "i8").type(), "int8");
    EXPECT_EQ(Col(c, "tstz").type(), "timestamptz");
  }
  // Types without their own field travel exactly as PostgreSQL prints them.
  const std::map<std::string, std::string> text = TextForms(2);
  for (const char* name :
       {"m", "tm", "tmtz", "iv", "ai", "at", "e", "comp", "net", "mac", "r", "x", "d_bc"}) {
    EXPECT_EQ(Col(insert, name).text(), text.at(name)) << name;
    EXPECT_EQ(Col(read, name).text(), text.at(name)) << name << " (snapshot)";
  }
  // The snapshot and the stream deliver identical values for identical rows.
  ASSERT_EQ(read.after_size(), insert.after_size());
  for (int i = 1; i < read.after_size(); ++i) {
    EXPECT_EQ(read.after(i).SerializeAsString(), insert.after(i).SerializeAsString())
        << read.after(i).name();
  }
}

TEST_F(Values, SchemaChangesMidStreamAreFollowed) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, a text)");
  StartWalfeed();
  Sql("INSERT INTO t VALUES (1, 'x')");
  Sql("ALTER TABLE t ADD COLUMN b int DEFAULT 7");
  Sql("INSERT INTO t VALUES (2, 'y', 8)");
  Sql("ALTER TABLE t DROP COLUMN a");
  Sql("INSERT INTO t VALUES (3, 9)");
  Sql("ALTER TABLE t RENAME COLUMN b TO c");
  Sql("INSERT INTO t VALUES (4, 10)");
  Sql("ALTER TABLE t ALTER COLUMN c TYPE numeric");
  Sql("INSERT INTO t VALUES (5, 11.5)");
  Sql("UPDATE t SET c = 12 WHERE id = 1");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  ASSERT_EQ(changes->size(), 6u);
  const std::vector<v1::Change>& c = *changes;
  EXPECT_THAT(Names(c[0]), ElementsAre("id", "a"));
  EXPECT_THAT(Names(c[1]), ElementsAre("id", "a", "b"));
  EXPECT_EQ(Col(c[1], "b").int_(), 8);
  EXPECT_THAT(Names(c[2]), ElementsAre("id", "b"));
  EXPECT_THAT(Names(c[3]), ElementsAre("id", "c"));
  EXPECT_EQ(Col(c[3], "c").type(), "int4");
  EXPECT_EQ(Col(c[4], "c").type(), "numeric");
  EXPECT_EQ(Col(c[4], "c").numeric(), "11.5");
  EXPECT_EQ(c[5].op(), v1::Change::UPDATE);
  EXPECT_EQ(Col(c[5], "c").numeric(), "12");
}

TEST_F(Values, ATableDroppedMidStreamDoesNotStopTheStream) {
  Sql("CREATE TABLE gone (id int PRIMARY KEY); CREATE TABLE stays (id int PRIMARY KEY)");
  StartWalfeed();
  Sql("INSERT INTO gone VALUES (1)");
  Sql("DROP TABLE gone");
  Sql("INSERT INTO stays VALUES (2)");
  Sql("CREATE TABLE gone (id text PRIMARY KEY, extra int)");  // same name, new relation
  Sql("INSERT INTO gone VALUES ('again', 3)");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  ASSERT_EQ(changes->size(), 3u);
  EXPECT_EQ((*changes)[0].after(0).int_(), 1);
  EXPECT_EQ((*changes)[1].table(), "stays");
  EXPECT_EQ((*changes)[2].table(), "gone");
  EXPECT_EQ((*changes)[2].after(0).text(), "again");
  EXPECT_THAT(Names((*changes)[2]), ElementsAre("id", "extra"));
}

TEST_F(Values, ReplicaIdentityDecidesKeyAndBefore) {
  Sql("CREATE TABLE d (id int PRIMARY KEY, v text)");
  Sql("CREATE TABLE f (id int PRIMARY KEY, v text); ALTER TABLE f REPLICA IDENTITY FULL");
  Sql("CREATE TABLE i (id int PRIMARY KEY, code text NOT NULL, v text);"
      "CREATE UNIQUE INDEX i_code ON i (code); ALTER TABLE i REPLICA IDENTITY USING INDEX i_code");
  Sql("CREATE TABLE n (id int, v text); ALTER TABLE n REPLICA IDENTITY NOTHING");
  StartWalfeed();
  Sql("INSERT INTO d VALUES (1, 'a'); UPDATE d SET v = 'b'; UPDATE d SET id = 2; DELETE FROM d");
  Sql("INSERT INTO f VALUES (1, 'a'); UPDATE f SET v = 'b'; DELETE FROM f");
  Sql("INSERT INTO i VALUES (1, 'k1', 'a'); UPDATE i SET code = 'k2'; DELETE FROM i");
  Sql("INSERT INTO n VALUES (1, 'a')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  ASSERT_EQ(changes->size(), 11u);
  const std::vector<v1::Change>& c = *changes;
  // DEFAULT: key is the primary key; before holds the old key only when the key changed, and
  // on DELETE.
  EXPECT_EQ(c[1].before_size(), 0) << "UPDATE that keeps the key: no old row";
  ASSERT_EQ(c[2].before_size(), 1);
  EXPECT_EQ(c[2].before(0).int_(), 1);
  EXPECT_EQ(c[2].key(0).int_(), 2);
  ASSERT_EQ(c[3].before_size(), 1);
  EXPECT_EQ(c[3].key(0).int_(), 2);
  // FULL: before is the whole old row; key holds every column.
  ASSERT_EQ(c[5].before_size(), 2);
  EXPECT_EQ(c[5].before(1).text(), "a");
  EXPECT_EQ(c[6].before(1).text(), "b");
  EXPECT_EQ(c[6].key_size(), 2);
  // USING INDEX: key is the index's columns.
  ASSERT_EQ(c[7].key_size(), 1);
  EXPECT_EQ(c[7].key(0).name(), "code");
  ASSERT_EQ(c[8].before_size(), 1);
  EXPECT_EQ(c[8].before(0).text(), "k1");
  EXPECT_EQ(c[9].key(0).text(), "k2");
  // NOTHING: inserts still arrive, with no key.
  EXPECT_EQ(c[10].table(), "n");
  EXPECT_EQ(c[10].key_size(), 0);
}

// Databases that are not UTF-8. A LATIN1 database's text arrives converted to UTF-8 (walfeed
// asks PostgreSQL for UTF-8); a SQL_ASCII database passes bytes through unchecked, and those that
// are not UTF-8 travel byte for byte in `raw_text`, never in a string field that clients reject.
class Encodings : public WalfeedTest {
 protected:
  void UseDatabase(const std::string& encoding) {
    const std::string name = absl::StrCat(db_, "_", absl::AsciiStrToLower(encoding));
    ASSERT_TRUE(
        SharedPostgres()
            .Exec("postgres", absl::StrCat("CREATE DATABASE ", name, " ENCODING '", encoding,
                                           "' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"))
            .ok());
    db_ = name;
  }
};

TEST_F(Encodings, Latin1TextArrivesAsUtf8) {
  UseDatabase("LATIN1");
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  // The test's connection speaks the database's encoding: these are LATIN1 bytes.
  Sql("INSERT INTO t VALUES (1, 'caf\xe9 na\xefve')");
  StartWalfeed();
  Sql("INSERT INTO t VALUES (2, '\xe0 la carte')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ(Col((*changes)[0], "v").text(), "caf\xc3\xa9 na\xc3\xafve");
  EXPECT_EQ(Col((*changes)[1], "v").text(), "\xc3\xa0 la carte");
}

TEST_F(Encodings, SqlAsciiBytesThatAreNotUtf8ArriveExactlyAsRawText) {
  UseDatabase("SQL_ASCII");
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text, j json)");
  Sql("INSERT INTO t VALUES (1, E'bad-\\xff\\xfe', '\"ok\"')");  // read by the snapshot
  StartWalfeed();
  Sql("INSERT INTO t VALUES (2, 'fine', E'\"\\xc3\\x28\"'), (3, E'\\xc3\\xa9', NULL)");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  ASSERT_EQ(changes->size(), 3u);
  EXPECT_EQ(Col((*changes)[0], "v").raw_text(), "bad-\xff\xfe");
  EXPECT_EQ(Col((*changes)[0], "v").raw_text_encoding(), "SQL_ASCII");
  EXPECT_EQ(Col((*changes)[0], "j").json(), "\"ok\"");
  EXPECT_EQ(Col((*changes)[1], "v").text(), "fine");
  EXPECT_EQ(Col((*changes)[1], "j").raw_text(), "\"\xc3\x28\"");
  EXPECT_EQ(Col((*changes)[2], "v").text(), "\xc3\xa9") << "valid UTF-8 stays text";

  // walfeedctl prints every row, the bad bytes escaped, and exits 0.
  const RunResult printed = RunCommand({WalfeedctlBinary(), "subscribe", "--server",
                                        walfeed_->address(), "--stop-at-head", "--format", "text"},
                                       absl::Seconds(30));
  EXPECT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_THAT(printed.output, ::testing::HasSubstr("raw\"bad-\\xff\\xfe\""));
  EXPECT_THAT(printed.output, ::testing::HasSubstr("fine"));
}

// Names are bytes in a SQL_ASCII database too: a schema, table, column or message prefix that is
// not UTF-8 never stops the feed or breaks a client. The string fields hold the name with each
// invalid byte replaced by U+FFFD; the raw_* fields hold the exact bytes.
TEST_F(Encodings, SqlAsciiNamesThatAreNotUtf8ArriveExactlyAsRawNames) {
  UseDatabase("SQL_ASCII");
  Sql("CREATE SCHEMA \"s\xff\"");
  Sql("CREATE TABLE \"s\xff\".\"t\xfe\" (id int PRIMARY KEY, \"c\xfd\" text)");
  Sql("INSERT INTO \"s\xff\".\"t\xfe\" VALUES (1, 'snapshot')");
  StartWalfeed();
  Sql("INSERT INTO \"s\xff\".\"t\xfe\" VALUES (2, 'streamed')");
  Sql("CREATE TABLE \"added\xfc\" (id int PRIMARY KEY)");  // added mid-stream: snapshotted
  Sql("INSERT INTO \"added\xfc\" VALUES (3)");
  Sql("SELECT pg_logical_emit_message(true, E'p\\xfb', 'content')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  // The snapshot's row, the streamed one, the added table's row (read by its snapshot, and
  // streamed), the message.
  ASSERT_EQ(changes->size(), 5u);
  for (int i : {0, 1}) {
    const v1::Change& change = (*changes)[i];
    EXPECT_EQ(change.schema(), "s\xef\xbf\xbd");
    EXPECT_EQ(change.raw_schema(), "s\xff");
    EXPECT_EQ(change.table(), "t\xef\xbf\xbd");
    EXPECT_EQ(change.raw_table(), "t\xfe");
    EXPECT_EQ(change.after(1).name(), "c\xef\xbf\xbd");
    EXPECT_EQ(change.after(1).raw_name(), "c\xfd");
    EXPECT_TRUE(change.after(0).raw_name().empty()) << "a valid name has no raw form";
  }
  EXPECT_EQ((*changes)[0].after(1).text(), "snapshot");
  EXPECT_EQ((*changes)[1].after(1).text(), "streamed");
  for (int i : {2, 3}) {
    EXPECT_EQ((*changes)[i].raw_table(), "added\xfc");
    EXPECT_EQ((*changes)[i].table(), "added\xef\xbf\xbd");
    EXPECT_TRUE((*changes)[i].raw_schema().empty());
    EXPECT_EQ((*changes)[i].key(0).int_(), 3);
  }
  EXPECT_EQ((*changes)[4].message().prefix(), "p\xef\xbf\xbd");
  EXPECT_EQ((*changes)[4].message().raw_prefix(), "p\xfb");
  // GetFeedInfo lists the table (a string field: its name with U+FFFD in place of bad bytes).
  const v1::FeedInfo info = FeedInfo();
  EXPECT_THAT(info.tables(), ::testing::Contains("\"s\xef\xbf\xbd\".\"t\xef\xbf\xbd\""));
  // walfeedctl reads all of it, the raw names base64 in its JSON, and a filter by the shown name
  // selects the table.
  const RunResult printed =
      RunCommand({WalfeedctlBinary(), "subscribe", "--server", walfeed_->address(),
                  "--stop-at-head", "--table", "\"s\xef\xbf\xbd\".\"t\xef\xbf\xbd\""},
                 absl::Seconds(30));
  EXPECT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_THAT(printed.output, ::testing::HasSubstr("\"rawTable\":\"dP4=\""));  // base64 of t\xfe
  EXPECT_THAT(printed.output, ::testing::Not(::testing::HasSubstr("added")));
}

}  // namespace
}  // namespace walfeed::test
