#include "server/core/free_memory.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstddef>

namespace walfeed {
namespace {

// jemalloc's control entry point, when jemalloc is the process's allocator (linked or preloaded).
using Mallctl = int (*)(const char* name, void* old_value, size_t* old_size, void* new_value,
                        size_t new_size);

Mallctl FindMallctl() {
  static const Mallctl found = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  return found;
}

}  // namespace

void ReleaseFreeMemory() {
  if (Mallctl mallctl = FindMallctl()) {
    // 4096 is MALLCTL_ARENAS_ALL: every arena.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  malloc_trim(0);
}

const char* AllocatorName() { return FindMallctl() != nullptr ? "jemalloc" : "glibc"; }

}  // namespace walfeed
