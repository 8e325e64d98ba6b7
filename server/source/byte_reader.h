// ByteReader: bounds-checked reading of PostgreSQL's big-endian wire formats.
//
// Every read checks the remaining length first; a short or malformed buffer sets an error that
// names the field being read, and later reads fail too. It never reads out of bounds.
#ifndef WALFEED_SERVER_SOURCE_BYTE_READER_H_
#define WALFEED_SERVER_SOURCE_BYTE_READER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace walfeed {

class ByteReader {
 public:
  explicit ByteReader(absl::string_view data) : data_(data) {}

  bool ReadU8(absl::string_view field, uint8_t* out) {
    if (!Need(1, field)) return false;
    *out = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool ReadU16(absl::string_view field, uint16_t* out) { return ReadBigEndian(2, field, out); }
  bool ReadU32(absl::string_view field, uint32_t* out) { return ReadBigEndian(4, field, out); }
  bool ReadU64(absl::string_view field, uint64_t* out) { return ReadBigEndian(8, field, out); }
  bool ReadI64(absl::string_view field, int64_t* out) {
    uint64_t raw;
    if (!ReadU64(field, &raw)) return false;
    *out = static_cast<int64_t>(raw);
    return true;
  }

  // A NUL-terminated string.
  bool ReadCString(absl::string_view field, std::string* out) {
    if (!status_.ok()) return false;
    const size_t nul = data_.find('\0');
    if (nul == absl::string_view::npos) {
      return Fail(absl::StrCat(field, ": string has no terminating NUL"));
    }
    out->assign(data_.data(), nul);
    data_.remove_prefix(nul + 1);
    return true;
  }

  bool ReadBytes(size_t size, absl::string_view field, std::string* out) {
    if (!Need(size, field)) return false;
    out->assign(data_.data(), size);
    data_.remove_prefix(size);
    return true;
  }

  size_t remaining() const { return data_.size(); }
  const absl::Status& status() const { return status_; }

  bool Fail(absl::string_view why) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(why);
    return false;
  }

 private:
  bool Need(size_t size, absl::string_view field) {
    if (!status_.ok()) return false;
    if (data_.size() < size) {
      return Fail(absl::StrCat(field, ": needs ", size, " bytes, ", data_.size(), " left"));
    }
    return true;
  }

  template <typename T>
  bool ReadBigEndian(size_t size, absl::string_view field, T* out) {
    if (!Need(size, field)) return false;
    uint64_t value = 0;
    for (size_t i = 0; i < size; ++i) value = (value << 8) | static_cast<uint8_t>(data_[i]);
    *out = static_cast<T>(value);
    data_.remove_prefix(size);
    return true;
  }

  absl::string_view data_;
  absl::Status status_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_BYTE_READER_H_
