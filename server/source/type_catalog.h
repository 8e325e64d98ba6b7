// TypeCatalog: PostgreSQL type OID -> the type name a consumer sees ("int8", "myschema.mood").
//
// Filled from pg_type when the source connects and kept current by pgoutput's Type messages.
// Built-in types are named without their schema; others as "schema.name". An OID it has
// never seen is named "oid:<n>", so a change is never held back for want of a name. A domain
// keeps its own name, and BaseOf() gives the type its values are written in.
// Not thread-safe: it belongs to the source's streaming thread.
#ifndef WALFEED_SERVER_SOURCE_TYPE_CATALOG_H_
#define WALFEED_SERVER_SOURCE_TYPE_CATALOG_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace walfeed {

class TypeCatalog {
 public:
  // Records a type. `schema` "pg_catalog" or "" marks a built-in type; `base_oid` is the base
  // type of a domain (0 otherwise).
  void Add(uint32_t oid, absl::string_view schema, absl::string_view name, uint32_t base_oid = 0);
  // From pgoutput's Type message, which names a domain after its base type: recorded only for
  // an OID the catalog does not know yet.
  void AddIfUnknown(uint32_t oid, absl::string_view schema, absl::string_view name);
  std::string NameOf(uint32_t oid) const;
  // The type whose text form a value of `oid` has: the base type of a domain, else `oid`.
  uint32_t BaseOf(uint32_t oid) const;
  size_t size() const { return names_.size(); }

 private:
  absl::flat_hash_map<uint32_t, std::string> names_;
  absl::flat_hash_map<uint32_t, uint32_t> base_types_;  // domains only
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_TYPE_CATALOG_H_
