/* libdemo: the smallest library worth checking. */
#include <stddef.h>

/* A table of string pointers costs a dynamic relocation per entry, written by the loader in
 * every process (see `relrocheck report`). `const char *const` at least lets it become
 * read-only after load (.data.rel.ro); the baseline accepts this one table as it is. */
const char *const demo_colors[] = {"red", "green", "blue"};

const char *demo_color(size_t i) { return i < 3 ? demo_colors[i] : NULL; }
