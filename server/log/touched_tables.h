// TouchedTables: the tables one append's changes belong to, gathered while the append builds its
// batch and told to head listeners (HeadAdvance), so that a subscriber filtered to other tables
// need not be woken. Cheap per change: a change of the same table as the one before it costs two
// string compares. Past kMaxTables it stops listing and says "all tables".
#ifndef WALFEED_SERVER_LOG_TOUCHED_TABLES_H_
#define WALFEED_SERVER_LOG_TOUCHED_TABLES_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/core/table_name.h"

namespace walfeed {

class TouchedTables {
 public:
  static constexpr size_t kMaxTables = 64;

  // A change of schema.table; a change without a table (a message) names none.
  void Add(absl::string_view schema, absl::string_view table) {
    if (all_ || table.empty() || (table == last_table_ && schema == last_schema_)) return;
    last_schema_.assign(schema.data(), schema.size());
    last_table_.assign(table.data(), table.size());
    std::string key = TableKey(schema, table);
    if (std::find(keys_.begin(), keys_.end(), key) != keys_.end()) return;
    if (keys_.size() == kMaxTables) {
      SetAll();
      return;
    }
    keys_.push_back(std::move(key));
  }
  // Changes whose tables are not told were appended too.
  void SetAll() {
    all_ = true;
    keys_.clear();
  }

  bool all() const { return all_; }
  absl::Span<const std::string> keys() const { return keys_; }

 private:
  bool all_ = false;
  std::string last_schema_;
  std::string last_table_;
  std::vector<std::string> keys_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_TOUCHED_TABLES_H_
