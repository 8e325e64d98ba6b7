// Small helpers tests use to look into delivered changes.
#ifndef WALFEED_TESTS_SUPPORT_CHANGE_HELPERS_H_
#define WALFEED_TESTS_SUPPORT_CHANGE_HELPERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "walfeed/v1/walfeed.pb.h"

namespace walfeed::test {

// The column called `name`, or nullptr.
inline const v1::Column* FindColumn(const google::protobuf::RepeatedPtrField<v1::Column>& columns,
                                    const std::string& name) {
  for (const v1::Column& column : columns) {
    if (column.name() == name) return &column;
  }
  return nullptr;
}

// The "id" key column of each change that has one, in feed order.
inline std::vector<int64_t> KeyIds(const std::vector<v1::Change>& changes) {
  std::vector<int64_t> ids;
  for (const v1::Change& change : changes) {
    if (const v1::Column* id = FindColumn(change.key(), "id")) ids.push_back(id->int_());
  }
  return ids;
}

// from, from + 1, ..., to.
inline std::vector<int64_t> IdRange(int64_t from, int64_t to) {
  std::vector<int64_t> ids;
  for (int64_t i = from; i <= to; ++i) ids.push_back(i);
  return ids;
}

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_CHANGE_HELPERS_H_
