#include "client/large_values.h"

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/core/large_value.h"

namespace walfeed {
namespace {

absl::StatusOr<std::string> ReadWhole(v1::ChangeFeed::Stub& stub, const ContextSetup& setup,
                                      const v1::LargeValue& large) {
  grpc::ClientContext context;
  if (setup) setup(&context);
  v1::ReadValueRequest request;
  request.set_ref(large.ref());
  std::unique_ptr<grpc::ClientReader<v1::ValueChunk>> reader = stub.ReadValue(&context, request);
  std::string value;
  value.reserve(large.size());
  v1::ValueChunk chunk;
  bool contiguous = true;
  while (reader->Read(&chunk)) {
    contiguous = contiguous && chunk.offset() == value.size();
    value += chunk.data();
  }
  const grpc::Status status = reader->Finish();
  if (setup) setup(nullptr);
  if (!status.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("cannot fetch the value at '", large.ref(), "': ", status.error_message()));
  }
  if (!contiguous || value.size() != large.size()) {
    return absl::DataLossError(absl::StrCat("the value at '", large.ref(), "' arrived with ",
                                            value.size(), " bytes, expected ", large.size()));
  }
  return value;
}

}  // namespace

absl::Status FetchLargeValues(v1::ChangeFeed::Stub& stub, const ContextSetup& setup,
                              v1::Change* change) {
  return InlineLargeValues(
      change, [&](const v1::LargeValue& large) { return ReadWhole(stub, setup, large); });
}

}  // namespace walfeed
