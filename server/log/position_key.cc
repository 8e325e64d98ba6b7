#include "server/log/position_key.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace walfeed {
namespace {

void PutBigEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian(absl::string_view bytes) {
  uint64_t value = 0;
  for (unsigned char c : bytes) value = (value << 8) | c;
  return value;
}

}  // namespace

void EncodePositionKeyTo(const Position& position, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(position.lsn >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<char>(position.seq >> (24 - 8 * i));
}

std::string EncodePositionKey(const Position& position) {
  std::string key;
  key.reserve(kPositionKeySize);
  PutBigEndian(position.lsn, 8, &key);
  PutBigEndian(position.seq, 4, &key);
  return key;
}

absl::StatusOr<Position> DecodePositionKey(absl::string_view key) {
  if (key.size() != kPositionKeySize) {
    return absl::DataLossError(
        absl::StrCat("change log key has ", key.size(), " bytes, expected ", kPositionKeySize));
  }
  return Position{GetBigEndian(key.substr(0, 8)),
                  static_cast<uint32_t>(GetBigEndian(key.substr(8, 4)))};
}

std::string EncodeUint64(uint64_t value) {
  std::string out;
  PutBigEndian(value, 8, &out);
  return out;
}

absl::StatusOr<uint64_t> DecodeUint64(absl::string_view bytes) {
  if (bytes.size() != 8) {
    return absl::DataLossError(
        absl::StrCat("stored integer has ", bytes.size(), " bytes, expected 8"));
  }
  return GetBigEndian(bytes);
}

}  // namespace walfeed
