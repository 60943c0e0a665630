/* A string -> index map with open addressing, for O(1) name lookups while
 * validating (agents by name, tasks by subject).  Keys are borrowed: they must
 * outlive the map.  Internal to the library. */
#ifndef TLM_UTIL_STRMAP_H
#define TLM_UTIL_STRMAP_H

#include <stddef.h>

typedef struct tlm_strmap {
	const char **keys;
	size_t *values;
	size_t capacity; /* power of two */
	size_t count;
} tlm_strmap;

#define TLM_STRMAP_INIT                                                                            \
	{                                                                                          \
		NULL, NULL, 0, 0                                                                   \
	}

/* Adds key -> value unless key is present.  0 when added, 1 when the key was
 * already there (*existing, if not NULL, gets its value), -1 out of memory. */
int tlm_strmap_put(tlm_strmap *m, const char *key, size_t value, size_t *existing);

/* 0 and *value when found, -1 when not. */
int tlm_strmap_get(const tlm_strmap *m, const char *key, size_t *value);

/* Frees the table (not the keys). */
void tlm_strmap_clear(tlm_strmap *m);

/* A key for the pair (a, b) that no other pair makes: "LEN(a):" a b.
 * Caller frees; NULL out of memory. */
char *tlm_strmap_pair_key(const char *a, const char *b);

#endif
