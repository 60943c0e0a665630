/* JSON helpers shared by the library.  Internal. */
#ifndef TLM_UTIL_JSON_H
#define TLM_UTIL_JSON_H

#include <jansson.h>

/* json_dumps(v, JSON_COMPACT), or NULL when it failed — including when an
 * allocation failed half-way: jansson 2.14 can then return text with a key
 * missing (`{"a":1,":2}`), which a server would refuse or, worse, misread.
 * So a dump during which any allocation failed is thrown away (jansson's
 * allocations are counted, as for tlm_json_loadb).  Caller frees. */
char *tlm_json_dump_body(const json_t *v);

/* json_loadb(), or NULL with *oom set to 1 when any allocation failed
 * during the parse.  jansson 2.14 reports most allocation failures inside
 * its lexer as a syntax error ("invalid token"), and may even return a
 * string with a byte missing, so the library installs its own allocator
 * (json.c) and counts failures per thread: a reply that could not be held
 * is "out of memory", never "not valid JSON" nor a wrong value.  jerr may
 * be NULL. */
json_t *tlm_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *jerr, int *oom);

#endif
