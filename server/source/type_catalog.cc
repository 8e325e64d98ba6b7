#include "server/source/type_catalog.h"

#include "absl/strings/str_cat.h"

namespace walfeed {

void TypeCatalog::Add(uint32_t oid, absl::string_view schema, absl::string_view name) {
  if (schema.empty() || schema == "pg_catalog") {
    names_[oid] = std::string(name);
  } else {
    names_[oid] = absl::StrCat(schema, ".", name);
  }
}

std::string TypeCatalog::NameOf(uint32_t oid) const {
  auto it = names_.find(oid);
  if (it != names_.end()) return it->second;
  return absl::StrCat("oid:", oid);
}

}  // namespace walfeed
