// ReleaseFreeMemory: hands memory the allocator holds free back to the system, whichever
// allocator the process runs on: jemalloc (the walfeed binary links it, see server/CMakeLists.txt)
// purges its arenas; glibc's malloc trims its heaps. Call it after freeing much at once (a large
// transaction's staged part, a crowd of streams ending); it takes milliseconds, not microseconds.
#ifndef WALFEED_SERVER_CORE_FREE_MEMORY_H_
#define WALFEED_SERVER_CORE_FREE_MEMORY_H_

namespace walfeed {

void ReleaseFreeMemory();

// "jemalloc" or "glibc": the allocator this process runs on (for its start-up log line).
const char* AllocatorName();

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_FREE_MEMORY_H_
