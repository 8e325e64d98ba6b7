#include "server/source/type_catalog.h"

#include "absl/strings/str_cat.h"
#include "server/core/utf8.h"

namespace walfeed {

void TypeCatalog::AddIfUnknown(uint32_t oid, absl::string_view schema, absl::string_view name) {
  if (!names_.contains(oid)) Add(oid, schema, name);
}

uint32_t TypeCatalog::BaseOf(uint32_t oid) const {
  // A domain over a domain: follow the chain (bounded, in case of a cycle in bad input).
  for (int depth = 0; depth < 16; ++depth) {
    auto it = base_types_.find(oid);
    if (it == base_types_.end()) break;
    oid = it->second;
  }
  return oid;
}

void TypeCatalog::Add(uint32_t oid, absl::string_view schema, absl::string_view name,
                      uint32_t base_oid) {
  if (base_oid != 0) base_types_[oid] = base_oid;
  if (schema.empty() || schema == "pg_catalog") {
    names_[oid] = ToValidUtf8(name);
  } else {
    names_[oid] = ToValidUtf8(absl::StrCat(schema, ".", name));
  }
}

std::string TypeCatalog::NameOf(uint32_t oid) const {
  auto it = names_.find(oid);
  if (it != names_.end()) return it->second;
  return absl::StrCat("oid:", oid);
}

}  // namespace walfeed
