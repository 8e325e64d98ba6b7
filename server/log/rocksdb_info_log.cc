#include "server/log/rocksdb_info_log.h"

#include <cstdio>
#include <string>

#include "server/core/table_name.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

spdlog::level::level_enum WalfeedLevel(rocksdb::InfoLogLevel level) {
  switch (level) {
    case rocksdb::InfoLogLevel::DEBUG_LEVEL:
      return spdlog::level::trace;
    case rocksdb::InfoLogLevel::INFO_LEVEL:
    case rocksdb::InfoLogLevel::HEADER_LEVEL:
      return spdlog::level::debug;
    case rocksdb::InfoLogLevel::WARN_LEVEL:
      return spdlog::level::warn;
    case rocksdb::InfoLogLevel::ERROR_LEVEL:
    case rocksdb::InfoLogLevel::FATAL_LEVEL:
    case rocksdb::InfoLogLevel::NUM_INFO_LOG_LEVELS:
      break;
  }
  return spdlog::level::err;
}

// vsnprintf into a string of the size the message needs.
std::string Format(const char* format, va_list ap) {
  va_list measure;
  va_copy(measure, ap);
  const int size = std::vsnprintf(nullptr, 0, format, measure);
  va_end(measure);
  if (size <= 0) return std::string();
  std::string text(static_cast<size_t>(size) + 1, '\0');
  std::vsnprintf(text.data(), text.size(), format, ap);
  text.resize(static_cast<size_t>(size));
  return text;
}

}  // namespace

rocksdb::InfoLogLevel RocksDbInfoLog::LevelForWalfeedsLog() {
  if (spdlog::should_log(spdlog::level::trace)) return rocksdb::InfoLogLevel::DEBUG_LEVEL;
  if (spdlog::should_log(spdlog::level::debug)) return rocksdb::InfoLogLevel::INFO_LEVEL;
  return rocksdb::InfoLogLevel::WARN_LEVEL;
}

RocksDbInfoLog::RocksDbInfoLog() : rocksdb::Logger(LevelForWalfeedsLog()) {}

void RocksDbInfoLog::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void RocksDbInfoLog::Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  const spdlog::level::level_enum walfeed_level = WalfeedLevel(level);
  if (level < GetInfoLogLevel() || !spdlog::should_log(walfeed_level)) return;
  spdlog::log(walfeed_level, "event=rocksdb_log message=\"{}\"", EscapeForLog(Format(format, ap)));
}

}  // namespace walfeed
