/* Includes a header that is not installed. */
#include <no_such_library.h>
typedef int (*never_seen_fn)(int);
