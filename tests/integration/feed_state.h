// The first oracle of the integration tests: a feed applied to an empty state must equal what
// SELECT says. Rows are keyed by their "id" column (every test table has one), tables by
// relation (pg_class OID), values compared in PostgreSQL's ::text form.
#ifndef WALFEED_TESTS_INTEGRATION_FEED_STATE_H_
#define WALFEED_TESTS_INTEGRATION_FEED_STATE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "walfeed/v1/walfeed.pb.h"

namespace walfeed::test {

// The text PostgreSQL's ::text gives for a value as walfeed carries it (not walfeedctl's text
// format, which quotes and escapes for a person).
std::string TextForm(const v1::Column& column);

using Row = std::map<std::string, std::string>;  // column -> text form
using TableState = std::map<std::string, Row>;   // id -> row
// By relation (pg_class OID): a table renamed, or swapped in under an old name, is followed by
// what it is, not by what it is called (rows untouched since a rename keep their relation).
using State = std::map<uint32_t, TableState>;

void ApplyChange(const v1::Change& change, State* state);

std::string QuoteIdentifier(const std::string& identifier);
std::string QuoteLiteral(const std::string& text);

// Applies `feed` to an empty state and expects it to equal SELECT of every table of the database
// `query` runs in (gtest assertions).
using QueryFunction = std::function<std::vector<std::vector<std::string>>(const std::string& sql)>;
void ExpectFeedMatchesSelect(const std::vector<v1::Change>& feed, const QueryFunction& query);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_INTEGRATION_FEED_STATE_H_
