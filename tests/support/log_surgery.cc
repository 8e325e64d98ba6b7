#include "tests/support/log_surgery.h"

#include <memory>
#include <vector>

#include "rocksdb/db.h"

namespace walfeed::test {

absl::Status ForgetIndexFormat(const std::string& log_dir) {
  std::vector<std::string> names;
  rocksdb::Status status = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), log_dir, &names);
  if (!status.ok()) return absl::InternalError(status.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  status = rocksdb::DB::Open(rocksdb::DBOptions(), log_dir, families, &handles, &raw);
  if (!status.ok()) return absl::InternalError(status.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  status = db->Delete(rocksdb::WriteOptions(), handles[0], "compaction/index_format");
  for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  if (!status.ok()) return absl::InternalError(status.ToString());
  return absl::OkStatus();
}

}  // namespace walfeed::test
