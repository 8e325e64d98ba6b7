// A change log's identity: a random id (a version-4 UUID in its text form) created once with the
// data directory and never changed. A cursor means something only on the log that sent it, so
// consumers keep the id beside their cursor and walfeed refuses a cursor of another log
// (LOG_MISMATCH) instead of streaming from a position that means something else here.
#ifndef WALFEED_SERVER_LOG_LOG_ID_H_
#define WALFEED_SERVER_LOG_LOG_ID_H_

#include <string>

namespace walfeed {

// A new random id, e.g. "3f2b8c1e-9a4d-4f6b-8e21-5c7d9a0b1e2f" (122 random bits).
std::string NewLogId();

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_LOG_ID_H_
