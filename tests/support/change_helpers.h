// Small helpers tests use to look into delivered changes.
#ifndef WALFEED_TESTS_SUPPORT_CHANGE_HELPERS_H_
#define WALFEED_TESTS_SUPPORT_CHANGE_HELPERS_H_

#include <string>

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

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_CHANGE_HELPERS_H_
