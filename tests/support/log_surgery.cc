#include "tests/support/log_surgery.h"

#include <functional>
#include <memory>
#include <vector>

#include "rocksdb/db.h"

namespace walfeed::test {
namespace {

absl::Status FromRocks(const rocksdb::Status& status) {
  return status.ok() ? absl::OkStatus() : absl::InternalError(status.ToString());
}

// Opens the database in `log_dir` with all its column families and runs `operate` on it.
absl::Status WithDatabase(
    const std::string& log_dir,
    const std::function<rocksdb::Status(
        rocksdb::DB& db, std::vector<rocksdb::ColumnFamilyHandle*>& handles)>& operate) {
  std::vector<std::string> names;
  rocksdb::Status status = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), log_dir, &names);
  if (!status.ok()) return FromRocks(status);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  status = rocksdb::DB::Open(rocksdb::DBOptions(), log_dir, families, &handles, &raw);
  if (!status.ok()) return FromRocks(status);
  std::unique_ptr<rocksdb::DB> db(raw);
  status = operate(*db, handles);
  for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  return FromRocks(status);
}

}  // namespace

absl::Status ForgetIndexFormat(const std::string& log_dir) {
  return SetDefaultKey(log_dir, "compaction/index_format", std::nullopt);
}

absl::Status SetDefaultKey(const std::string& log_dir, const std::string& key,
                           const std::optional<std::string>& value) {
  return WithDatabase(log_dir, [&](rocksdb::DB& db, auto& handles) {
    rocksdb::WriteOptions options;
    options.sync = true;
    return value.has_value() ? db.Put(options, handles[0], key, *value)
                             : db.Delete(options, handles[0], key);
  });
}

absl::StatusOr<std::optional<std::string>> ReadDefaultKey(const std::string& log_dir,
                                                          const std::string& key) {
  std::optional<std::string> found;
  absl::Status status = WithDatabase(log_dir, [&](rocksdb::DB& db, auto& handles) {
    std::string value;
    rocksdb::Status got = db.Get(rocksdb::ReadOptions(), handles[0], key, &value);
    if (got.ok()) found = std::move(value);
    return got.IsNotFound() ? rocksdb::Status::OK() : got;
  });
  if (!status.ok()) return status;
  return found;
}

absl::Status AddColumnFamily(const std::string& log_dir, const std::string& name) {
  return WithDatabase(log_dir, [&](rocksdb::DB& db, auto&) {
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    rocksdb::Status created = db.CreateColumnFamily(rocksdb::ColumnFamilyOptions(), name, &handle);
    if (handle != nullptr) db.DestroyColumnFamilyHandle(handle);
    return created;
  });
}

}  // namespace walfeed::test
