#include "server/replication/jetstream_log.h"

#include <nats/nats.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

namespace walfeed {
namespace {

// An error of the NATS client as a Status with a sentence: what failed, the client's text (and
// `detail`, by default the client's last error on this thread) and, for JetStream API errors,
// the server's error code.
absl::Status NatsError(absl::string_view what, natsStatus status, jsErrCode js_error = jsErrCode{},
                       const char* detail = nullptr) {
  std::string text = natsStatus_GetText(status);
  if (detail == nullptr) detail = nats_GetLastError(nullptr);
  if (detail != nullptr && *detail != '\0' && text != detail) absl::StrAppend(&text, ": ", detail);
  if (js_error != 0) absl::StrAppend(&text, " (JetStream error ", static_cast<int>(js_error), ")");
  const std::string message = absl::StrCat(what, ": ", text);
  switch (status) {
    case NATS_TIMEOUT:
      return absl::DeadlineExceededError(message);
    case NATS_NOT_FOUND:
      return absl::NotFoundError(message);
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_NO_RESPONDERS:
    case NATS_IO_ERROR:
    case NATS_STALE_CONNECTION:
      return absl::UnavailableError(message);
    default:
      return absl::UnknownError(message);
  }
}

int64_t Millis(absl::Duration duration) { return absl::ToInt64Milliseconds(duration); }

// Unanswered messages at most (the writer keeps its own window below: ReplicationOptions).
constexpr int64_t kMaxPendingMessages = 64;

// One message's answer: the sequence it was stored at, or why it was not.
struct Answer {
  absl::Status error;
  uint64_t sequence = 0;
};

// The servers' answers to sent messages, by message id, as the client's thread delivers them.
struct PublishAnswers {
  std::string stream;
  absl::Mutex mu;
  std::map<std::string, Answer, std::less<>> by_id ABSL_GUARDED_BY(mu);
};

// What a publish answer or failure means for this writer.
Answer PublishResult(const std::string& stream, jsPubAck* ack, jsPubAckErr* failure) {
  if (ack != nullptr) return Answer{absl::OkStatus(), ack->Sequence};
  if (failure->ErrCode == JSStreamWrongLastSequenceErr ||
      failure->ErrCode == JSStreamWrongLastMsgIDErr) {
    return Answer{absl::FailedPreconditionError(absl::StrCat(
        "the JetStream stream ", stream,
        " does not end where this writer left it (another writer appended to it, the servers "
        "lost their memory of the last message id in a restart, or a message before this one "
        "failed)"))};
  }
  return Answer{NatsError(absl::StrCat("cannot publish to the JetStream stream ", stream),
                          failure->Err != NATS_OK ? failure->Err : NATS_ERR, failure->ErrCode,
                          failure->ErrText != nullptr ? failure->ErrText : "")};
}

// The client's answer callback: files the answer under the message's id.
void OnPublishAnswer(jsCtx*, natsMsg* message, jsPubAck* ack, jsPubAckErr* failure, void* closure) {
  auto* answers = static_cast<PublishAnswers*>(closure);
  const char* id = nullptr;
  if (natsMsgHeader_Get(message, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr &&
      (ack != nullptr || failure != nullptr)) {
    Answer answer = PublishResult(answers->stream, ack, failure);
    absl::MutexLock lock(&answers->mu);
    answers->by_id.insert_or_assign(id, std::move(answer));
  }
  natsMsg_Destroy(message);
}

// Copies a message's headers and data into `out` (present, with its id).
void CopyMessage(natsMsg* message, JetStreamLog::Message* out) {
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(message, &keys, &count) == NATS_OK) {
    for (int i = 0; i < count; ++i) {
      const char* value = nullptr;
      if (natsMsgHeader_Get(message, keys[i], &value) == NATS_OK && value != nullptr) {
        out->headers.emplace_back(keys[i], value);
      }
    }
    free(static_cast<void*>(keys));
  }
  out->present = true;
  out->data.assign(natsMsg_GetData(message), static_cast<size_t>(natsMsg_GetDataLength(message)));
  out->id = out->Header("Nats-Msg-Id");
}

}  // namespace

struct JetStreamLog::Handles {
  // Declared first, destroyed last: the client's thread may file an answer until the connection
  // is closed.
  PublishAnswers answers;
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* reader = nullptr;  // ReadFrom()'s pull consumer
  // Whether anything was published asynchronously: the client's list of unanswered messages
  // exists only then (asking for it before crashes libnats 3.4.1).
  bool published = false;
  void DropUnanswered() {
    if (!published) return;
    natsMsgList pending;
    if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK) natsMsgList_Destroy(&pending);
  }
  void CloseReader() {
    if (reader == nullptr) return;
    natsSubscription_Unsubscribe(reader);  // deletes the ephemeral consumer
    natsSubscription_Destroy(reader);
    reader = nullptr;
  }
  ~Handles() {
    CloseReader();
    if (js != nullptr) {
      // Unanswered messages are dropped, so no answer arrives for them any more.
      DropUnanswered();
      jsCtx_Destroy(js);
    }
    if (connection != nullptr) {
      natsConnection_Close(connection);
      natsConnection_Destroy(connection);
    }
  }
};

std::string JetStreamLog::Message::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::string();
}

absl::StatusOr<std::unique_ptr<JetStreamLog>> JetStreamLog::Open(const ReplicationOptions& options,
                                                                 bool create_missing) {
  natsOptions* raw_options = nullptr;
  if (natsStatus s = natsOptions_Create(&raw_options); s != NATS_OK) {
    return NatsError("cannot set up the NATS client", s);
  }
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> nats_options(raw_options,
                                                                    natsOptions_Destroy);
  std::vector<const char*> servers;
  for (const std::string& server : options.servers) servers.push_back(server.c_str());
  const bool tls = !options.tls_ca_file.empty() || !options.tls_cert_file.empty() ||
                   absl::StrJoin(options.servers, ",").find("tls://") != std::string::npos;
  const auto check = [](natsStatus s, absl::string_view what) -> absl::Status {
    return s == NATS_OK ? absl::OkStatus() : NatsError(what, s);
  };
  absl::Status set =
      check(natsOptions_SetServers(raw_options, servers.data(), static_cast<int>(servers.size())),
            absl::StrCat("cannot use the NATS servers ", absl::StrJoin(options.servers, ",")));
  if (set.ok()) set = check(natsOptions_SetName(raw_options, "walfeed"), "cannot name the client");
  if (set.ok()) {
    set = check(natsOptions_SetTimeout(raw_options, Millis(options.request_timeout)),
                "cannot set the NATS connect timeout");
  }
  // The connection reconnects for ever; a publish meanwhile times out and is retried.
  if (set.ok()) set = check(natsOptions_SetMaxReconnect(raw_options, -1), "cannot set reconnects");
  if (set.ok())
    set = check(natsOptions_SetReconnectWait(raw_options, 250), "cannot set reconnects");
  if (set.ok() && !options.user.empty()) {
    set =
        check(natsOptions_SetUserInfo(raw_options, options.user.c_str(), options.password.c_str()),
              "cannot use the NATS user and password");
  }
  if (set.ok() && !options.token.empty()) {
    set = check(natsOptions_SetToken(raw_options, options.token.c_str()),
                "cannot use the NATS token");
  }
  if (set.ok() && !options.credentials_file.empty()) {
    set = check(natsOptions_SetUserCredentialsFromFiles(raw_options,
                                                        options.credentials_file.c_str(), nullptr),
                absl::StrCat("cannot use the NATS credentials file ", options.credentials_file));
  }
  if (set.ok() && tls) set = check(natsOptions_SetSecure(raw_options, true), "cannot turn on TLS");
  if (set.ok() && !options.tls_ca_file.empty()) {
    set = check(natsOptions_LoadCATrustedCertificates(raw_options, options.tls_ca_file.c_str()),
                absl::StrCat("cannot load the CA certificates in ", options.tls_ca_file));
  }
  if (set.ok() && !options.tls_cert_file.empty()) {
    set = check(natsOptions_LoadCertificatesChain(raw_options, options.tls_cert_file.c_str(),
                                                  options.tls_key_file.c_str()),
                absl::StrCat("cannot load the client certificate ", options.tls_cert_file,
                             " and key ", options.tls_key_file));
  }
  if (!set.ok()) return set;

  auto handles = std::make_unique<Handles>();
  handles->answers.stream = options.stream;
  if (natsStatus s = natsConnection_Connect(&handles->connection, raw_options); s != NATS_OK) {
    return NatsError(
        absl::StrCat("cannot connect to NATS at ", absl::StrJoin(options.servers, ",")), s);
  }
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = Millis(options.request_timeout);
  js_options.PublishAsync.MaxPending = kMaxPendingMessages;
  js_options.PublishAsync.AckHandler = OnPublishAnswer;
  js_options.PublishAsync.AckHandlerClosure = &handles->answers;
  if (natsStatus s = natsConnection_JetStream(&handles->js, handles->connection, &js_options);
      s != NATS_OK) {
    return NatsError("cannot use JetStream", s);
  }
  std::unique_ptr<JetStreamLog> log(new JetStreamLog(options, std::move(handles)));
  if (absl::Status ensured = log->EnsureStream(create_missing); !ensured.ok()) return ensured;
  return log;
}

JetStreamLog::JetStreamLog(const ReplicationOptions& options, std::unique_ptr<Handles> handles)
    : options_(options), subject_(options.subject()), handles_(std::move(handles)) {}

JetStreamLog::~JetStreamLog() = default;

absl::Status JetStreamLog::EnsureStream(bool create_missing, bool retried) {
  jsStreamInfo* info = nullptr;
  jsErrCode js_error = jsErrCode{};
  natsStatus s = js_GetStreamInfo(&info, handles_->js, options_.stream.c_str(), nullptr, &js_error);
  if (s == NATS_OK) {
    bool has_subject = false;
    for (int i = 0; info->Config != nullptr && i < info->Config->SubjectsLen; ++i) {
      has_subject = has_subject || subject_ == info->Config->Subjects[i];
    }
    jsStreamInfo_Destroy(info);
    if (!has_subject) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the JetStream stream ", options_.stream, " exists but does not take the subject ",
          subject_, ": it is not walfeed's; name another with --replication-stream"));
    }
    return absl::OkStatus();
  }
  if (s != NATS_NOT_FOUND && js_error != JSStreamNotFoundErr) {
    if (js_error == JSNotEnabledErr || js_error == JSNotEnabledForAccountErr ||
        s == NATS_NO_RESPONDERS) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the NATS servers at ", absl::StrJoin(options_.servers, ","),
          " do not run JetStream (no answer to its API): start nats-server with JetStream on "
          "(-js, or a jetstream block in its config)"));
    }
    return NatsError(absl::StrCat("cannot read the JetStream stream ", options_.stream), s,
                     js_error);
  }
  if (!create_missing) {
    return absl::NotFoundError(
        absl::StrCat("the NATS servers at ", absl::StrJoin(options_.servers, ","),
                     " have no JetStream stream ", options_.stream,
                     ": start the walfeed that publishes it (--replicate-to), or name its "
                     "stream with --replication-stream"));
  }
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  const char* subjects[] = {subject_.c_str()};
  config.Name = options_.stream.c_str();
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.Replicas = options_.replicas;
  config.Description = "walfeed's change log (walfeed.v1.LogSegment messages)";
  s = js_AddStream(&info, handles_->js, &config, nullptr, &js_error);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(info);
    return absl::OkStatus();
  }
  // Another walfeed created it at the same time: use it (once).
  if (js_error == JSStreamNameExistErr && !retried) {
    return EnsureStream(create_missing, /*retried=*/true);
  }
  return NatsError(absl::StrCat("cannot create the JetStream stream ", options_.stream, " (",
                                options_.replicas, " replicas)"),
                   s, js_error);
}

absl::StatusOr<JetStreamLog::Message> JetStreamLog::ReadLast() {
  jsStreamInfo* info = nullptr;
  jsErrCode js_error = jsErrCode{};
  natsStatus s = js_GetStreamInfo(&info, handles_->js, options_.stream.c_str(), nullptr, &js_error);
  if (s != NATS_OK) {
    return NatsError(absl::StrCat("cannot read the end of the JetStream stream ", options_.stream),
                     s, js_error);
  }
  Message last;
  last.sequence = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  if (last.sequence == 0) return last;
  natsMsg* message = nullptr;
  s = js_GetMsg(&message, handles_->js, options_.stream.c_str(), last.sequence, nullptr, &js_error);
  if (s == NATS_NOT_FOUND) return last;  // gone: not present
  if (s != NATS_OK) {
    return NatsError(absl::StrCat("cannot read message ", last.sequence,
                                  " of the JetStream stream ", options_.stream),
                     s, js_error);
  }
  CopyMessage(message, &last);
  natsMsg_Destroy(message);
  return last;
}

absl::StatusOr<uint64_t> JetStreamLog::FirstSequence() {
  jsStreamInfo* info = nullptr;
  jsErrCode js_error = jsErrCode{};
  natsStatus s = js_GetStreamInfo(&info, handles_->js, options_.stream.c_str(), nullptr, &js_error);
  if (s != NATS_OK) {
    return NatsError(absl::StrCat("cannot read the JetStream stream ", options_.stream), s,
                     js_error);
  }
  // An emptied stream (purged, or every message expired) reports the next sequence to be stored.
  const uint64_t first = info->State.FirstSeq;
  jsStreamInfo_Destroy(info);
  return first;
}

absl::StatusOr<std::vector<JetStreamLog::Message>> JetStreamLog::ReadFrom(uint64_t sequence,
                                                                          int max,
                                                                          absl::Duration wait) {
  if (handles_->reader == nullptr || reader_next_ != sequence) {
    handles_->CloseReader();
    jsSubOptions subscribe;
    jsSubOptions_Init(&subscribe);
    subscribe.Stream = options_.stream.c_str();
    subscribe.Config.DeliverPolicy = js_DeliverByStartSequence;
    subscribe.Config.OptStartSeq = sequence;
    subscribe.Config.AckPolicy = js_AckNone;
    jsErrCode js_error = jsErrCode{};
    natsStatus s = js_PullSubscribe(&handles_->reader, handles_->js, subject_.c_str(), nullptr,
                                    nullptr, &subscribe, &js_error);
    if (s != NATS_OK) {
      handles_->reader = nullptr;
      return NatsError(absl::StrCat("cannot read the JetStream stream ", options_.stream,
                                    " from message ", sequence),
                       s, js_error);
    }
    reader_next_ = sequence;
  }
  natsMsgList list = {nullptr, 0};
  jsErrCode js_error = jsErrCode{};
  natsStatus s = natsSubscription_Fetch(&list, handles_->reader, max, Millis(wait), &js_error);
  std::vector<Message> messages;
  if (s == NATS_TIMEOUT) return messages;
  if (s != NATS_OK) {
    handles_->CloseReader();
    return NatsError(absl::StrCat("cannot read the JetStream stream ", options_.stream), s,
                     js_error);
  }
  for (int i = 0; i < list.Count; ++i) {
    jsMsgMetaData* meta = nullptr;
    if (natsStatus got = natsMsg_GetMetaData(&meta, list.Msgs[i]); got != NATS_OK) {
      natsMsgList_Destroy(&list);
      handles_->CloseReader();
      return NatsError(absl::StrCat("cannot read the position of a message of the JetStream "
                                    "stream ",
                                    options_.stream),
                       got);
    }
    Message message;
    message.sequence = meta->Sequence.Stream;
    message.pending = meta->NumPending;
    jsMsgMetaData_Destroy(meta);
    CopyMessage(list.Msgs[i], &message);
    messages.push_back(std::move(message));
  }
  natsMsgList_Destroy(&list);
  if (!messages.empty()) reader_next_ = messages.back().sequence + 1;
  return messages;
}

absl::Status JetStreamLog::Send(absl::string_view data, const Headers& headers,
                                absl::string_view id, const Expectation& expect) {
  natsMsg* message = nullptr;
  natsStatus s = natsMsg_Create(&message, subject_.c_str(), nullptr, data.data(),
                                static_cast<int>(data.size()));
  if (s != NATS_OK) return NatsError("cannot build a NATS message", s);
  std::unique_ptr<natsMsg, void (*)(natsMsg*)> owned(message, natsMsg_Destroy);
  for (const auto& [key, value] : headers) {
    if (s = natsMsgHeader_Set(message, key.c_str(), value.c_str()); s != NATS_OK) {
      return NatsError("cannot set a NATS message header", s);
    }
  }
  const std::string id_text(id);
  jsPubOptions publish;
  jsPubOptions_Init(&publish);
  publish.MaxWait = Millis(options_.request_timeout);
  publish.MsgId = id_text.c_str();
  publish.ExpectStream = options_.stream.c_str();
  if (!expect.last_id.empty()) {
    publish.ExpectLastMsgId = expect.last_id.c_str();
  } else {
    // The client sends this expectation only when it is above 0: "the stream must be empty" is
    // set by hand.
    s = natsMsgHeader_Set(message, "Nats-Expected-Last-Sequence",
                          std::to_string(expect.last_sequence).c_str());
    if (s != NATS_OK) return NatsError("cannot set a NATS message header", s);
  }
  {
    absl::MutexLock lock(&handles_->answers.mu);
    handles_->answers.by_id.erase(id_text);
  }
  // On success the client owns the message (and clears the pointer); the answer callback
  // destroys it.
  natsMsg* sent = owned.release();
  s = js_PublishMsgAsync(handles_->js, &sent, &publish);
  natsMsg_Destroy(sent);
  if (s == NATS_OK) handles_->published = true;
  if (s != NATS_OK) {
    return NatsError(absl::StrCat("cannot publish to the JetStream stream ", options_.stream), s);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> JetStreamLog::AwaitAck(absl::string_view id) {
  PublishAnswers& answers = handles_->answers;
  absl::MutexLock lock(&answers.mu);
  const auto answered = [&answers, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(answers.mu) {
    return answers.by_id.find(id) != answers.by_id.end();
  };
  // The client answers a message it got no reply for within the request timeout itself; this
  // bound only covers a client that stopped answering.
  if (!answers.mu.AwaitWithTimeout(absl::Condition(&answered),
                                   options_.request_timeout + absl::Seconds(5))) {
    return absl::DeadlineExceededError(
        absl::StrCat("no answer from the JetStream stream ", options_.stream, " within ",
                     absl::FormatDuration(options_.request_timeout + absl::Seconds(5))));
  }
  auto found = answers.by_id.find(id);
  const Answer answer = std::move(found->second);
  answers.by_id.erase(found);
  if (!answer.error.ok()) return answer.error;
  return answer.sequence;
}

void JetStreamLog::Abandon() {
  handles_->DropUnanswered();
  absl::MutexLock lock(&handles_->answers.mu);
  handles_->answers.by_id.clear();
}

int64_t JetStreamLog::MaxPayload() const {
  return natsConnection_GetMaxPayload(handles_->connection);
}

std::string JetStreamLog::ConnectedUrl() const {
  char url[512] = {0};
  if (natsConnection_GetConnectedUrl(handles_->connection, url, sizeof(url)) != NATS_OK) {
    return std::string();
  }
  return url;
}

}  // namespace walfeed
