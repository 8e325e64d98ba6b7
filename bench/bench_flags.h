// The flags of the benchmark programs that drive the log directly: "--name value" pairs, each
// naming a string or an unsigned number. ParseBenchFlags() fills them in and returns false, after
// a line on stderr naming the program and the flag, on an unknown flag, a missing value or a
// value that is not a number.
#ifndef WALFEED_BENCH_BENCH_FLAGS_H_
#define WALFEED_BENCH_BENCH_FLAGS_H_

#include <cstdint>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/numbers.h"

namespace walfeed::bench {

inline bool ParseBenchFlags(int argc, char** argv, const char* program,
                            const std::map<std::string, std::string*>& strings,
                            const std::map<std::string, uint64_t*>& numbers) {
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = i + 1 < argc ? argv[i + 1] : "";
    bool ok = i + 1 < argc;
    if (auto text = strings.find(flag); ok && text != strings.end()) {
      *text->second = value;
    } else if (auto number = numbers.find(flag); ok && number != numbers.end()) {
      ok = absl::SimpleAtoi(value, number->second);
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << program << ": bad flag " << flag << " " << value << "\n";
      return false;
    }
  }
  return true;
}

}  // namespace walfeed::bench

#endif  // WALFEED_BENCH_BENCH_FLAGS_H_
