// The machine-readable reason a gRPC error carries (google.rpc.ErrorInfo in its details, AIP-193),
// for tests that check what a client can switch on.
#ifndef WALFEED_TESTS_SUPPORT_GRPC_REASON_H_
#define WALFEED_TESTS_SUPPORT_GRPC_REASON_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace walfeed::test {

// The google.rpc.ErrorInfo in a status's details (domain "walfeed"); empty when there is none.
inline google::rpc::ErrorInfo ErrorInfoOf(const grpc::Status& status) {
  google::rpc::Status details;
  google::rpc::ErrorInfo info;
  if (!details.ParseFromString(status.error_details())) return info;
  for (const google::protobuf::Any& any : details.details()) {
    if (any.UnpackTo(&info)) {
      EXPECT_EQ(info.domain(), "walfeed");
      return info;
    }
  }
  return info;
}

// Its reason, "" when there is none.
inline std::string ReasonOf(const grpc::Status& status) { return ErrorInfoOf(status).reason(); }

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_GRPC_REASON_H_
