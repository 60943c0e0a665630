/* A bump allocator: many small, same-lifetime allocations (a spec's strings and
 * arrays) freed in one call.  Internal to the library. */
#ifndef TLM_UTIL_ARENA_H
#define TLM_UTIL_ARENA_H

#include <stddef.h>

typedef struct tlm_arena tlm_arena;

/* New empty arena; NULL when out of memory. */
tlm_arena *tlm_arena_new(void);

/* Frees every block of the arena; NULL is a no-op. */
void tlm_arena_free(tlm_arena *a);

/* size bytes aligned for any type, zeroed; NULL when out of memory. */
void *tlm_arena_alloc(tlm_arena *a, size_t size);

/* n elements of size bytes, with overflow check; zeroed. */
void *tlm_arena_calloc(tlm_arena *a, size_t n, size_t size);

/* Copy of s[0..len) plus a NUL; NULL when out of memory. */
char *tlm_arena_strndup(tlm_arena *a, const char *s, size_t len);

/* Bytes handed out so far (for memory accounting in benchmarks). */
size_t tlm_arena_used(const tlm_arena *a);

#endif
