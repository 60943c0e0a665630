/*
 * The status of a task event, read without building a document
 * (docs/internals/events.md#reading-an-events-status).
 *
 * Every status change of every task arrives as an event whose payload is the
 * whole task document, and all the watcher needs of it is one string.
 * jansson builds the whole tree first: about 6-12 us a document here, a tenth
 * of the engine's CPU on a run of 2,000 tasks.  yajl's callback parser reads
 * the same document in under 1 us and builds nothing.
 *
 * The two parsers must never read a document differently, or the status of a
 * task would depend on which one ran.  So the fast reading only answers for
 * documents on which they cannot differ, and declines everything else, which
 * jansson then reads as before:
 *   - bytes: only printable ASCII and the whitespace JSON allows (no byte
 *     >= 0x80, no other control byte: UTF-8 checks and \v or \f as
 *     whitespace differ), and no \u escape (surrogates, \u0000);
 *   - numbers: at most 18 characters and no exponent, so that neither
 *     overflows a long long or a double (jansson refuses those, yajl's raw
 *     number callback does not check them);
 *   - nesting: at most FAST_MAX_DEPTH deep (jansson stops at 2,048);
 *   - size: at most FAST_MAX_LEN bytes (see "Memory" below);
 *   - anything yajl refuses, and anything after the root object but
 *     whitespace: yajl's "trailing garbage" check misses a token left
 *     unfinished at the end ({...}"x), so the reader looks itself.
 * The precedence and the "the last duplicate key wins" rule are jansson's
 * (json_object_get on a document loaded without JSON_REJECT_DUPLICATES).
 * tests/fuzz/fuzz_event.c checks the two readings against each other.
 *
 * Memory: yajl does not check what its allocator returns (a failed malloc
 * is a crash), and this runs on libnats' delivery thread for every event.
 * So yajl allocates from an arena on our stack, sized so that it cannot run
 * out: yajl's two growing buffers (a string being decoded, a token cut at
 * the end of the input) each hold at most the payload plus one byte, start
 * at 2 KiB and double, so together they take at most 8 * len + 8 KiB; its
 * other blocks (the handle, the lexer, a 128-byte state stack for nesting
 * under 128) take well under 1 KiB.  Nothing is freed until the arena goes.
 */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "client/client_internal.h"

#define FAST_MAX_DEPTH  32 /* deeper documents go to jansson */
#define FAST_MAX_NUMBER 18 /* characters; 10^18 - 1 < 2^63, and no exponent */
#define FAST_MAX_LEN    TLM_EVSTAT_MAX_LEN
#define ARENA_BYTES     (8u * FAST_MAX_LEN + 16384u) /* the bound above, with room */
#define ARENA_ALIGN     16u

/* A bump allocator for yajl: each block is preceded by its size, so that
 * realloc can copy it; free returns nothing. */
typedef struct arena {
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char mem[ARENA_BYTES];
} arena;

/* The four places a status may come from, in precedence order
 * (docs/contract.md §7). */
enum source { SRC_TASK, SRC_ROOT, SRC_DATA, SRC_NEW, SRC_COUNT, SRC_NONE };

/* What a key names: at depth 1 one of the sources or a container of one
 * (task, data); at depth 2 (inside task or data) a status or not. */
enum key { KEY_OTHER, KEY_TASK, KEY_STATUS, KEY_DATA, KEY_NEWSTATUS };

typedef struct reader {
	int depth;       /* 0 outside the document; 1 inside the root */
	int map[3];      /* whether the container at depth 1 and 2 is an object */
	enum key key[3]; /* the last key read at depth 1 and 2 */
	char *found[SRC_COUNT];
	yajl_handle h;
	size_t end; /* just after the root object's '}', once read */
	int oom;
} reader;

static enum key key_of(const unsigned char *k, size_t len)
{
	static const struct {
		const char *name;
		size_t len;
		enum key key;
	} names[] = { { "task", 4, KEY_TASK },
		      { "status", 6, KEY_STATUS },
		      { "data", 4, KEY_DATA },
		      { "newStatus", 9, KEY_NEWSTATUS } };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == names[i].len && memcmp(k, names[i].name, len) == 0)
			return names[i].key;
	return KEY_OTHER;
}

/* Which source the value starting now would set, if any. */
static enum source source_of(const reader *r)
{
	if (r->depth == 1 && r->map[1]) {
		switch (r->key[1]) {
		case KEY_TASK: return SRC_TASK; /* a new "task" replaces the old one */
		case KEY_STATUS: return SRC_ROOT;
		case KEY_DATA: return SRC_DATA;
		case KEY_NEWSTATUS: return SRC_NEW;
		default: return SRC_NONE;
		}
	}
	if (r->depth == 2 && r->map[1] && r->map[2] && r->key[2] == KEY_STATUS) {
		if (r->key[1] == KEY_TASK)
			return SRC_TASK;
		if (r->key[1] == KEY_DATA)
			return SRC_DATA;
	}
	return SRC_NONE;
}

/* A value begins: it replaces what its source held (the last duplicate key
 * wins); only a non-empty string at a status key sets it again. */
static int value(reader *r, const unsigned char *s, size_t len)
{
	enum source src = source_of(r);
	int is_status = r->depth == 2 || src == SRC_ROOT || src == SRC_NEW;

	if (src == SRC_NONE)
		return 1;
	free(r->found[src]);
	r->found[src] = NULL;
	if (s == NULL || len == 0 || !is_status)
		return 1;
	if ((r->found[src] = strndup((const char *)s, len)) == NULL) {
		r->oom = 1;
		return 0;
	}
	return 1;
}

static int on_null(void *ctx)
{
	return value(ctx, NULL, 0);
}

static int on_boolean(void *ctx, int b)
{
	(void)b;
	return value(ctx, NULL, 0);
}

static int on_number(void *ctx, const char *s, size_t len)
{
	reader *r = ctx;

	if (len > FAST_MAX_NUMBER || memchr(s, 'e', len) != NULL || memchr(s, 'E', len) != NULL)
		return 0; /* declined */
	return value(r, NULL, 0);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	return value(ctx, s, len);
}

static int open_container(reader *r, int is_map)
{
	if (!value(r, NULL, 0))
		return 0;
	if (++r->depth > FAST_MAX_DEPTH)
		return 0; /* declined */
	if (r->depth <= 2) {
		r->map[r->depth] = is_map;
		r->key[r->depth] = KEY_OTHER;
	}
	return 1;
}

static int on_start_map(void *ctx)
{
	return open_container(ctx, 1);
}

static int on_start_array(void *ctx)
{
	return open_container(ctx, 0);
}

static int on_end(void *ctx)
{
	reader *r = ctx;

	if (--r->depth == 0 && r->map[1])
		r->end = yajl_get_bytes_consumed(r->h);
	return 1;
}

static int on_map_key(void *ctx, const unsigned char *k, size_t len)
{
	reader *r = ctx;

	if (r->depth <= 2)
		r->key[r->depth] = key_of(k, len);
	return 1;
}

static int in_arena(const arena *a, const void *p)
{
	return (const unsigned char *)p >= a->mem &&
	       (const unsigned char *)p < a->mem + ARENA_BYTES;
}

static void *arena_malloc(void *ctx, size_t n)
{
	arena *a = ctx;
	size_t need = (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN + ARENA_ALIGN;
	unsigned char *p;

	if (n > ARENA_BYTES || need > ARENA_BYTES - a->used) {
		/* The bound at the top says this cannot happen; if it were wrong,
		 * the heap still serves (and the sanitizer build stops here). */
		assert(!"event status arena too small");
		return malloc(n);
	}
	p = a->mem + a->used;
	memcpy(p, &n, sizeof(n));
	a->used += need;
	return p + ARENA_ALIGN;
}

static void arena_free(void *ctx, void *p)
{
	if (p != NULL && !in_arena(ctx, p))
		free(p);
}

static void *arena_realloc(void *ctx, void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return arena_malloc(ctx, n);
	if (!in_arena(ctx, p))
		return realloc(p, n);
	memcpy(&old, (unsigned char *)p - ARENA_ALIGN, sizeof(old));
	if ((q = arena_malloc(ctx, n)) != NULL)
		memcpy(q, p, old < n ? old : n);
	return q;
}

static const yajl_callbacks callbacks = { on_null,   on_boolean,     NULL,         NULL,
					  on_number, on_string,      on_start_map, on_map_key,
					  on_end,    on_start_array, on_end };

/* The bytes on which yajl and jansson cannot differ (see the top). */
static int plain(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x80 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r'))
			return 0;
		if (c == '\\' && i + 1 < len && p[i + 1] == 'u')
			return 0;
	}
	return 1;
}

/* Whether only JSON's whitespace follows the root object. */
static int nothing_after(const reader *r, const char *payload, size_t len)
{
	for (size_t i = r->end; i < len; i++)
		if (payload[i] != ' ' && payload[i] != '\t' && payload[i] != '\n' &&
		    payload[i] != '\r')
			return 0;
	return 1;
}

static int read_all(reader *r, const char *payload, size_t len)
{
	arena a;
	yajl_alloc_funcs funcs = { arena_malloc, arena_realloc, arena_free, &a };
	int ok;

	a.used = 0;
	if ((r->h = yajl_alloc(&callbacks, &funcs, r)) == NULL) {
		r->oom = 1;
		return 0;
	}
	ok = yajl_parse(r->h, (const unsigned char *)payload, len) == yajl_status_ok &&
	     yajl_complete_parse(r->h) == yajl_status_ok;
	yajl_free(r->h);
	/* A root that is not an object has no status (end stays 0). */
	return ok && (r->end == 0 || nothing_after(r, payload, len));
}

int tlm_client__event_status_fast(const char *payload, size_t len, char **status)
{
	reader r;
	int rc = TLM_EVSTAT_NONE;

	*status = NULL;
	if (len > FAST_MAX_LEN || !plain(payload, len))
		return TLM_EVSTAT_DECLINED;
	memset(&r, 0, sizeof(r));
	if (!read_all(&r, payload, len))
		rc = r.oom ? TLM_EVSTAT_NOMEM : TLM_EVSTAT_DECLINED;
	for (int i = 0; i < SRC_COUNT; i++) {
		if (rc == TLM_EVSTAT_NONE && r.found[i] != NULL) {
			*status = r.found[i];
			rc = TLM_EVSTAT_FOUND;
		} else {
			free(r.found[i]);
		}
	}
	return rc;
}
