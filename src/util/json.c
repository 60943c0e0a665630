/* JSON helpers (json.h). */
#include <stdlib.h>

#include "util/json.h"

/* Allocation failures jansson met on this thread (tlm_json_loadb). */
static _Thread_local unsigned long alloc_failures;

static void *json_malloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		alloc_failures++;
	return p;
}

/* Installed before main() runs, so before any thread exists and before any
 * JSON value is made: jansson's allocator hooks are plain globals.  The
 * hashtable seed is chosen here too: jansson otherwise picks it lazily at
 * the first object, which two threads (the engine and the in-process
 * server) can race on (helgrind reports it). */
__attribute__((constructor)) static void json_alloc_install(void)
{
	json_set_alloc_funcs(json_malloc, free);
	json_object_seed(0);
}

char *tlm_json_dump_body(const json_t *v)
{
	unsigned long before = alloc_failures;
	char *text = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;

	/* Every allocation jansson made went through json_malloc: none failed,
	 * so nothing was dropped half-way and the text is whole. */
	if (text != NULL && alloc_failures != before) {
		free(text);
		return NULL;
	}
	return text;
}

json_t *tlm_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *jerr, int *oom)
{
	unsigned long before = alloc_failures;
	json_error_t local;
	json_t *v;

	if (jerr == NULL)
		jerr = &local;
	v = json_loadb(buf, len, flags, jerr);
	/* Even a value it returns may be wrong: jansson 2.14 can drop a byte
	 * of a string whose buffer could not grow ("tlm-x-agreeter" for
	 * "tlm-x-a-greeter").  Any failed allocation voids the parse. */
	*oom = alloc_failures != before ||
	       (v == NULL && json_error_code(jerr) == json_error_out_of_memory);
	if (*oom) {
		json_decref(v);
		v = NULL;
	}
	return v;
}
