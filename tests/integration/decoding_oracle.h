// The second oracle of the integration tests: PostgreSQL's own test_decoding plugin, read from a
// slot created at the same point as walfeed's, says in which order row changes and messages were
// committed; a feed must carry them in that order.
#ifndef WALFEED_TESTS_INTEGRATION_DECODING_ORACLE_H_
#define WALFEED_TESTS_INTEGRATION_DECODING_ORACLE_H_

#include <string>
#include <vector>

#include "walfeed/v1/walfeed.pb.h"

namespace walfeed::test {

// "OP schema.table" per row change, "MESSAGE prefix" per message, from the rows of
// pg_logical_slot_peek_changes(slot, NULL, NULL, 'skip-empty-xacts', '1') on a test_decoding
// slot.
std::vector<std::string> DecodedOrder(const std::vector<std::vector<std::string>>& rows);

// The same for a feed (snapshot READs, which test_decoding never sees, left out).
std::vector<std::string> FeedOrder(const std::vector<v1::Change>& feed);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_INTEGRATION_DECODING_ORACLE_H_
