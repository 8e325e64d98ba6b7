// WALFEED_INVARIANT(condition, what): a check of an invariant the code's correctness rests on
// (never of input: bad input gets a Status with a sentence). Compiled in when
// WALFEED_DEBUG_CHECKS is defined (the sanitizer build that CI runs the whole suite with, and
// Debug builds), where a violation prints `what` with the file and line and aborts, like etcd's
// panics on a watcher added twice; elsewhere the condition is not even evaluated.
#ifndef WALFEED_SERVER_CORE_INVARIANT_H_
#define WALFEED_SERVER_CORE_INVARIANT_H_

#ifdef WALFEED_DEBUG_CHECKS
#include <cstdio>
#include <cstdlib>

#define WALFEED_INVARIANT(condition, what)                                                   \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant violated: %s (%s)\n", __FILE__, __LINE__, what, \
                   #condition);                                                              \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)
#else
#define WALFEED_INVARIANT(condition, what) \
  do {                                     \
  } while (false && (condition))
#endif

// True when WALFEED_INVARIANT checks run (tests of the checks themselves need to know).
inline constexpr bool kInvariantsChecked =
#ifdef WALFEED_DEBUG_CHECKS
    true;
#else
    false;
#endif

#endif  // WALFEED_SERVER_CORE_INVARIANT_H_
