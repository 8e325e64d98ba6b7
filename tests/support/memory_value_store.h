// MemoryValueStore: a ValueChunkStore in memory, and putting moved values back, for tests and the
// fuzz target of out-of-line values (no RocksDB needed).
#ifndef WALFEED_TESTS_SUPPORT_MEMORY_VALUE_STORE_H_
#define WALFEED_TESTS_SUPPORT_MEMORY_VALUE_STORE_H_

#include <map>
#include <string>
#include <utility>

#include "server/core/large_value.h"
#include "server/log/out_of_line_values.h"

namespace walfeed::test {

class MemoryValueStore final : public ValueChunkStore {
 public:
  absl::Status Put(const ValueRef& ref, uint64_t offset, absl::string_view data) override {
    chunks_[{FormatValueRef(ref), offset}] = std::string(data);
    return absl::OkStatus();
  }
  absl::Status Visit(const ValueRef& ref, const ChunkVisitor& visit) const override {
    const std::string name = FormatValueRef(ref);
    for (auto it = chunks_.lower_bound({name, 0}); it != chunks_.end() && it->first.first == name;
         ++it) {
      if (absl::Status s = visit(it->first.second, it->second); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // The whole value stored under `ref_text`, or "" with *found false.
  std::string Value(const std::string& ref_text, bool* found = nullptr) const {
    std::string value;
    bool any = false;
    for (auto it = chunks_.lower_bound({ref_text, 0});
         it != chunks_.end() && it->first.first == ref_text; ++it) {
      if (it->first.second != value.size()) break;
      value += it->second;
      any = true;
    }
    if (found != nullptr) *found = any;
    return value;
  }

  // Puts every referenced value of `change` back in place, as the client libraries do.
  void Restore(v1::Change* change) const {
    for (auto* part : {change->mutable_key(), change->mutable_before(), change->mutable_after()}) {
      for (v1::Column& column : *part) {
        if (column.value_case() != v1::Column::kLarge) continue;
        const v1::LargeValue large = column.large();
        RestoreValue(large.kind(), Value(large.ref()), &column);
      }
    }
    if (change->message().has_large_content()) {
      const std::string content = Value(change->message().large_content().ref());
      change->mutable_message()->clear_large_content();
      change->mutable_message()->set_content(content);
    }
  }

  size_t chunk_count() const { return chunks_.size(); }

 private:
  std::map<std::pair<std::string, uint64_t>, std::string> chunks_;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_MEMORY_VALUE_STORE_H_
