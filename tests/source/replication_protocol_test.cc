#include "server/source/replication_protocol.h"

#include "gtest/gtest.h"
#include "tests/source/wire_bytes.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using test::WireBytes;

TEST(ReplicationProtocol, ParsesXLogDataAndKeepsThePayload) {
  WireBytes b;
  b.Char('w').U64(0x100).U64(0x200).U64(12345).Bytes("B-payload");
  absl::StatusOr<ReplicationFrame> frame = ParseReplicationFrame(b.str());
  ASSERT_OK(frame);
  EXPECT_EQ(frame->kind, ReplicationFrame::Kind::kXLogData);
  EXPECT_EQ(frame->wal_start, 0x100u);
  EXPECT_EQ(frame->wal_end, 0x200u);
  EXPECT_EQ(frame->send_time, 12345);
  EXPECT_EQ(frame->payload, "B-payload");
}

TEST(ReplicationProtocol, ParsesKeepaliveWithReplyRequested) {
  WireBytes b;
  b.Char('k').U64(0x300).U64(99).U8(1);
  absl::StatusOr<ReplicationFrame> frame = ParseReplicationFrame(b.str());
  ASSERT_OK(frame);
  EXPECT_EQ(frame->kind, ReplicationFrame::Kind::kKeepalive);
  EXPECT_EQ(frame->wal_end, 0x300u);
  EXPECT_TRUE(frame->reply_requested);
}

TEST(ReplicationProtocol, RejectsShortAndUnknownFrames) {
  EXPECT_FALSE(ParseReplicationFrame("").ok());
  EXPECT_FALSE(ParseReplicationFrame("x").ok());
  EXPECT_FALSE(ParseReplicationFrame(WireBytes().Char('w').U64(1).str()).ok());
  EXPECT_FALSE(ParseReplicationFrame(WireBytes().Char('k').U64(1).U64(2).str()).ok());
}

TEST(ReplicationProtocol, StandbyStatusIs34BytesReportingFlushEverywhere) {
  const std::string status = EncodeStandbyStatus(0x0102030405060708, 77, true);
  ASSERT_EQ(status.size(), 34u);
  EXPECT_EQ(status[0], 'r');
  const std::string lsn = WireBytes().U64(0x0102030405060708).str();
  EXPECT_EQ(status.substr(1, 8), lsn);
  EXPECT_EQ(status.substr(9, 8), lsn);
  EXPECT_EQ(status.substr(17, 8), lsn);
  EXPECT_EQ(status.substr(25, 8), WireBytes().U64(77).str());
  EXPECT_EQ(status[33], 1);
}

}  // namespace
}  // namespace walfeed
