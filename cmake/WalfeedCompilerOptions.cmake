# Warning and sanitizer flags shared by every walfeed target.
add_compile_options(-Wall -Wextra)
if(WALFEED_WERROR)
  add_compile_options(-Werror)
endif()
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # Checks ABSL_GUARDED_BY and friends.
  add_compile_options(-Wthread-safety)
endif()
if(WALFEED_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(WALFEED_FUZZ)
  # Coverage instrumentation for libFuzzer in every target; the fuzz targets link libFuzzer.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
# WALFEED_INVARIANT checks (server/core/invariant.h): in the sanitizer build, which CI runs the
# whole suite with, and in Debug builds.
if(WALFEED_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_definitions(WALFEED_DEBUG_CHECKS)
endif()
# Fault points (server/core/fault_point.h): compiled in with the test suite, which arms them; a
# build without tests (the container image) has none.
if(WALFEED_BUILD_TESTS)
  add_compile_definitions(WALFEED_FAULT_POINTS)
endif()
