/* Files compiled into the binaries (see tools/embed-metaschemas.sh). */
#ifndef TRIBUTARY_EMBEDDED_H
#define TRIBUTARY_EMBEDDED_H
#include <stddef.h>

struct tjs_embedded {
	const char *path; /* relative to schemas/meta, e.g. "draft-07/schema.json" */
	const char *text; /* NUL-terminated */
	size_t len;
};

/* NULL-path terminated. */
extern const struct tjs_embedded tjs_embedded_metaschemas[];

#endif
