#include "client/change_text_format.h"

#include "gtest/gtest.h"

namespace walfeed {
namespace {

v1::Column* Add(google::protobuf::RepeatedPtrField<v1::Column>* row, const std::string& name) {
  v1::Column* column = row->Add();
  column->set_name(name);
  return column;
}

TEST(ChangeTextFormat, InsertIsOneLineWithKeyAndTypedValues) {
  v1::Change change;
  change.set_cursor("0/16B3748:3");
  change.set_op(v1::Change::INSERT);
  change.set_schema("public");
  change.set_table("orders");
  Add(change.mutable_key(), "id")->set_int_(7);
  Add(change.mutable_after(), "id")->set_int_(7);
  Add(change.mutable_after(), "note")->set_text("two\nlines \"quoted\"");
  Add(change.mutable_after(), "gone")->set_null(true);
  Add(change.mutable_after(), "price")->set_numeric("1.50");
  Add(change.mutable_after(), "blob")->set_bytes(std::string("\xde\xad", 2));
  v1::Column* at = Add(change.mutable_after(), "at");
  at->mutable_timestamp()->set_seconds(1709251199);
  at->mutable_timestamp()->set_nanos(123456000);
  EXPECT_EQ(FormatChangeAsText(change),
            "0/16B3748:3 INSERT public.orders [id=7] id=7 note=\"two\\nlines \\\"quoted\\\"\" "
            "gone=NULL price=1.50 blob=\\xdead at=2024-02-29T23:59:59.123456Z");
}

TEST(ChangeTextFormat, AResynchronisedChangeSaysSo) {
  v1::Change change;
  change.set_cursor("0/20:1");
  change.set_op(v1::Change::DELETE);
  change.set_resync(true);
  change.set_schema("public");
  change.set_table("t");
  Add(change.mutable_key(), "id")->set_int_(4);
  EXPECT_EQ(FormatChangeAsText(change), "0/20:1 DELETE (resync) public.t [id=4]");
}

TEST(ChangeTextFormat, MessageShowsPrefixAndContent) {
  v1::Change change;
  change.set_cursor("0/10:0");
  change.set_op(v1::Change::MESSAGE);
  change.mutable_message()->set_prefix("outbox");
  change.mutable_message()->set_content("{}");
  EXPECT_EQ(FormatChangeAsText(change), "0/10:0 MESSAGE prefix=\"outbox\" content=\"{}\"");
}

}  // namespace
}  // namespace walfeed
