// Conversions between absl's time types and protobuf's Timestamp and Duration, written once so
// that every part of walfeed (and its clients) converts the same way. Exact to the nanosecond;
// the protobuf values are taken as well formed (the Admin service checks what clients send).
#ifndef WALFEED_SERVER_CORE_PROTO_TIME_H_
#define WALFEED_SERVER_CORE_PROTO_TIME_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>

#include "absl/time/time.h"

namespace walfeed {

inline absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

inline absl::Duration FromProtoDuration(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

inline void ToProtoTimestamp(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(time);
  out->set_seconds(seconds);
  out->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
}

inline void ToProtoDuration(absl::Duration duration, google::protobuf::Duration* out) {
  out->set_seconds(absl::IDivDuration(duration, absl::Seconds(1), &duration));
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(duration)));
}

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_PROTO_TIME_H_
