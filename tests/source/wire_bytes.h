// WireBytes: builds PostgreSQL wire-format byte strings (big-endian) for decoder tests.
#ifndef WALFEED_TESTS_SOURCE_WIRE_BYTES_H_
#define WALFEED_TESTS_SOURCE_WIRE_BYTES_H_

#include <cstdint>
#include <string>

namespace walfeed::test {

class WireBytes {
 public:
  WireBytes& U8(uint8_t v) { return Raw(v, 1); }
  WireBytes& U16(uint16_t v) { return Raw(v, 2); }
  WireBytes& U32(uint32_t v) { return Raw(v, 4); }
  WireBytes& U64(uint64_t v) { return Raw(v, 8); }
  WireBytes& Char(char c) {
    bytes_.push_back(c);
    return *this;
  }
  WireBytes& CString(const std::string& s) {
    bytes_ += s;
    bytes_.push_back('\0');
    return *this;
  }
  WireBytes& Bytes(const std::string& s) {
    bytes_ += s;
    return *this;
  }
  // A TupleData text column.
  WireBytes& Text(const std::string& s) {
    return Char('t').U32(static_cast<uint32_t>(s.size())).Bytes(s);
  }
  const std::string& str() const { return bytes_; }

 private:
  WireBytes& Raw(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string bytes_;
};

inline std::string FromHex(const std::string& hex) {
  std::string out;
  std::string digits;
  for (char c : hex) {
    if (c != ' ') digits.push_back(c);
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SOURCE_WIRE_BYTES_H_
