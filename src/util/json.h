/* JSON helpers shared by the library.  Internal. */
#ifndef TLM_UTIL_JSON_H
#define TLM_UTIL_JSON_H

#include <jansson.h>

/* json_dumps(v, JSON_COMPACT), or NULL when it failed — including when an
 * allocation failed half-way: jansson 2.14 can then return text with a key
 * missing (`{"a":1,":2}`), which a server would refuse or, worse, misread.
 * So the text is parsed back before it is trusted (a few microseconds for a
 * request body).  Caller frees. */
char *tlm_json_dump_body(const json_t *v);

#endif
