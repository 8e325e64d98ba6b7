// walfeedctl push: the push subscriptions' admin calls (README: Push to your web app).
//
//   walfeedctl push create NAME --url URL [--format json|debezium] [--table SCHEMA.TABLE]...
//                          [--tables A,B] [--op OP]... [--where CONDITION] [--secret-file FILE]
//                          [--header 'Name: value']... [--batch-changes N] [--batch-bytes N]
//                          [--timeout DURATION] [--ca-file PEM] [--http-version auto|1.1|2]
//                          [--from-head | --cursor CURSOR]
//   walfeedctl push list | pause NAME | resume NAME [--to-start | --to-head] | delete NAME
//
// create, pause and resume print the subscription as JSON; list prints one a line. The secret is
// read from --secret-file here and sent to walfeed, which never answers it back.
#ifndef WALFEED_CLIENT_PUSH_COMMAND_H_
#define WALFEED_CLIENT_PUSH_COMMAND_H_

#include <functional>
#include <optional>
#include <string>

#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {

struct PushCommand {
  std::string subcommand;  // create, list, pause, resume, delete
  v1::PushSubscription settings;
  v1::PushSubscriptionRequest target;
};

// Reads the subcommand and its NAME at argv[2..]; sets *first_flag to the first argument after
// them. Returns an error message, or "".
std::string ParsePushSubcommand(int argc, char** argv, int* first_flag, PushCommand* command);

// Takes `flag` when it is one of the subcommand's (`take_value` reads its value): nullopt when it
// is not, else an error message or "".
std::optional<std::string> ParsePushFlag(const std::string& flag,
                                         const std::function<bool(std::string*)>& take_value,
                                         PushCommand* command);

// What is wrong with the whole command once every flag is read, or "".
std::string CheckPushCommand(const PushCommand& command);

// Makes the call; `authorize` adds the credentials to a call. Returns the exit status.
int RunPushCommand(v1::Admin::Stub& admin,
                   const std::function<void(grpc::ClientContext*)>& authorize,
                   const PushCommand& command);

}  // namespace walfeed

#endif  // WALFEED_CLIENT_PUSH_COMMAND_H_
