// Fuzzes the large-value path: a change built from the input (columns of every movable kind and
// of any length, in any part, a message, references to other positions), moved out of line under
// small limits drawn from the input. Restored the way the clients restore it, it must equal the
// original exactly; no movable value over the value limit may stay inline; and a change still over
// the change limit may hold only values too short to be worth a reference.
#include <fuzzer/FuzzedDataProvider.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "server/core/large_value.h"
#include "server/log/out_of_line_values.h"
#include "tests/support/memory_value_store.h"

namespace {

using walfeed::v1::Change;

[[noreturn]] void Fail(const char* why) {
  std::fprintf(stderr, "out_of_line_fuzz: %s\n", why);
  std::abort();
}
using walfeed::v1::Column;

void AddColumn(FuzzedDataProvider& input, google::protobuf::RepeatedPtrField<Column>* part) {
  Column* column = part->Add();
  column->set_name(input.ConsumeRandomLengthString(70));
  column->set_type("text");
  column->set_type_oid(input.ConsumeIntegral<uint32_t>());
  const size_t length = input.ConsumeIntegralInRange<size_t>(0, 5000);
  std::string value = input.ConsumeBytesAsString(std::min(length, input.remaining_bytes()));
  value.resize(length, 'v');
  switch (input.ConsumeIntegralInRange(0, 7)) {
    case 0:
      column->set_text(value);
      break;
    case 1:
      column->set_numeric(value);
      break;
    case 2:
      column->set_bytes(value);
      break;
    case 3:
      column->set_json(value);
      break;
    case 4:
      column->set_raw_text(value);
      column->set_raw_text_encoding("SQL_ASCII");
      break;
    case 5:
      column->set_int_(input.ConsumeIntegral<int64_t>());
      break;
    case 6:
      column->set_null(true);
      break;
    default:
      column->set_unchanged_toast(true);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  walfeed::OutOfLineLimits limits;
  limits.value_bytes = input.ConsumeIntegralInRange<size_t>(1, 4096);
  limits.change_bytes = input.ConsumeIntegralInRange<size_t>(1, 16384);
  limits.chunk_bytes = input.ConsumeIntegralInRange<size_t>(1, 2048);
  Change original;
  original.set_op(static_cast<Change::Op>(input.ConsumeIntegralInRange(1, 6)));
  original.set_key_kind(static_cast<Change::KeyKind>(input.ConsumeIntegralInRange(0, 4)));
  original.set_schema(input.ConsumeRandomLengthString(40));
  const int columns = input.ConsumeIntegralInRange(0, 24);
  for (int i = 0; i < columns; ++i) {
    switch (input.ConsumeIntegralInRange(0, 2)) {
      case 0:
        AddColumn(input, original.mutable_key());
        break;
      case 1:
        AddColumn(input, original.mutable_before());
        break;
      default:
        AddColumn(input, original.mutable_after());
        break;
    }
  }
  if (input.ConsumeBool()) {
    original.mutable_message()->set_prefix(input.ConsumeRandomLengthString(20));
    original.mutable_message()->set_content(input.ConsumeRandomLengthString(8000));
  }
  const walfeed::Position position{input.ConsumeIntegral<uint64_t>(),
                                   input.ConsumeIntegral<uint32_t>()};
  walfeed::test::MemoryValueStore store;
  Change moved = original;
  const bool may_move = walfeed::MayMoveOutOfLine(moved, limits);
  if (!walfeed::MoveOutOfLine(limits, position, &moved, &store).ok()) Fail("MoveOutOfLine failed");
  const bool merged_key =
      moved.key_kind() == Change::PRIMARY_KEY || moved.key_kind() == Change::UNIQUE_INDEX;
  bool short_values_only = true;
  // A merged row's identity stays in the change: its key columns and their old values in
  // `before` (same name and raw name) are never moved.
  const auto holds_merged_key = [&](const auto* part, const Column& column) {
    if (!merged_key) return false;
    if (part == &moved.key()) return true;
    if (part != &moved.before()) return false;
    for (const Column& key : moved.key()) {
      if (key.name() == column.name() && key.raw_name() == column.raw_name()) return true;
    }
    return false;
  };
  for (const auto* part : {&moved.key(), &moved.before(), &moved.after()}) {
    for (const Column& column : *part) {
      if (holds_merged_key(part, column)) continue;
      const std::string* value = walfeed::MovableValue(column);
      if (value == nullptr) continue;
      // (Below 64 bytes a value is not worth a reference, whatever the limit.)
      if (value->size() > limits.value_bytes && value->size() >= 64) {
        Fail("a value over the limit stayed inline");
      }
      if (value->size() >= 64) short_values_only = false;
    }
  }
  if (moved.message().content().size() > std::max<size_t>(limits.value_bytes, 63)) {
    Fail("a message content over the limit stayed inline");
  }
  // Over the change limit only with nothing left worth moving (or a merged key, which stays).
  if (moved.ByteSizeLong() > limits.change_bytes + 64 * 1024 && !short_values_only && !merged_key) {
    Fail("a change over the limit kept values worth moving");
  }
  // Judged by its values alone, a change that fits moves nothing.
  if (!may_move && original.ByteSizeLong() <= limits.change_bytes &&
      !google::protobuf::util::MessageDifferencer::Equals(moved, original)) {
    Fail("MayMoveOutOfLine said no, yet values moved");
  }
  store.Restore(&moved);
  if (!google::protobuf::util::MessageDifferencer::Equals(moved, original)) {
    Fail("the restored change differs from the original");
  }
  return 0;
}
