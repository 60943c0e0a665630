/*
 * A reading of a JSON object's members two levels deep that builds nothing
 * (docs/internals/client.md#reading-without-a-tree), for the hot paths that
 * need one or two strings of a document: the status of a NATS event, the id
 * in a create's reply.  jansson builds the whole tree first, 6-12 us for a
 * task document here; yajl's callback parser reads it in under 1 us.
 *
 * Two parsers must never read a document differently, so the scan only
 * reads documents on which yajl and jansson (loaded without
 * JSON_REJECT_DUPLICATES) cannot differ, and declines the rest, which the
 * caller then gives to jansson:
 *   - bytes: only printable ASCII and the whitespace JSON allows (no byte
 *     >= 0x80, no other control byte: UTF-8 checks and \v or \f as
 *     whitespace differ), and no \u escape (surrogates, \u0000);
 *   - numbers: at most 18 characters and no exponent, so that neither
 *     overflows a long long or a double (jansson refuses those, yajl's raw
 *     number callback does not check them);
 *   - nesting: at most SCAN_MAX_DEPTH deep (jansson stops at 2,048);
 *   - size: at most TLM_SCAN_MAX_LEN bytes (see "Memory" below);
 *   - anything yajl refuses, and anything after the root object but
 *     whitespace: yajl's "trailing garbage" check misses a token left
 *     unfinished at the end ({...}"x), so the scan looks itself.
 * The readers on top keep jansson's rule that a later duplicate key
 * replaces an earlier one; the fuzz targets check them against jansson.
 *
 * Memory: yajl does not check what its allocator returns (a failed malloc
 * is a crash), and the event reader runs on libnats' delivery thread.  So
 * yajl allocates from an arena on our stack, sized so that it cannot run
 * out: yajl's two growing buffers (a string being decoded, a token cut at
 * the end of the input) each hold at most the document plus one byte,
 * start at 2 KiB and double, so together they take at most 8 * len + 8 KiB;
 * its other blocks (the handle, the lexer, a 128-byte state stack for
 * nesting under 128) take well under 1 KiB.  Nothing is freed until the
 * arena goes.
 */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "client/client_internal.h"

#define SCAN_MAX_DEPTH  32 /* deeper documents go to jansson */
#define SCAN_MAX_NUMBER 18 /* characters; 10^18 - 1 < 2^63, and no exponent */
#define ARENA_BYTES     (8u * TLM_SCAN_MAX_LEN + 16384u) /* the bound above, with room */
#define ARENA_ALIGN     16u

/* A bump allocator for yajl: each block is preceded by its size, so that
 * realloc can copy it; free returns nothing. */
typedef struct arena {
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char mem[ARENA_BYTES];
} arena;

typedef struct scan {
	const tlm_scan_visitor *v;
	int depth;  /* 0 outside the document; 1 inside the root */
	int map[3]; /* whether the container at depth 1 and 2 is an object */
	int key[3]; /* the code of the last key read at depth 1 and 2 */
	yajl_handle h;
	size_t end; /* just after the root object's '}', once read */
	int stopped;
} scan;

static int key_code(const tlm_scan_visitor *v, const unsigned char *k, size_t len)
{
	for (size_t i = 0; i < v->nnames; i++)
		if (strlen(v->names[i]) == len && memcmp(k, v->names[i], len) == 0)
			return (int)i + 1;
	return 0;
}

/* A value begins at the current depth: reported when it is a member of the
 * root object, or of an object that is one. */
static int value(scan *s, tlm_scan_type type, const unsigned char *str, size_t len)
{
	if (s->depth < 1 || s->depth > 2 || !s->map[1] || !s->map[s->depth])
		return 1;
	if (s->v->value(s->v->ctx, s->depth, s->key, type, str, len) != 0) {
		s->stopped = 1;
		return 0;
	}
	return 1;
}

static int on_null(void *ctx)
{
	return value(ctx, TLM_SCAN_NULL, NULL, 0);
}

static int on_boolean(void *ctx, int b)
{
	(void)b;
	return value(ctx, TLM_SCAN_BOOL, NULL, 0);
}

static int on_number(void *ctx, const char *s, size_t len)
{
	if (len > SCAN_MAX_NUMBER || memchr(s, 'e', len) != NULL || memchr(s, 'E', len) != NULL)
		return 0; /* declined */
	return value(ctx, TLM_SCAN_NUMBER, NULL, 0);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	return value(ctx, TLM_SCAN_STRING, s, len);
}

static int open_container(scan *s, int is_map)
{
	if (!value(s, is_map ? TLM_SCAN_OBJECT : TLM_SCAN_ARRAY, NULL, 0))
		return 0;
	if (++s->depth > SCAN_MAX_DEPTH)
		return 0; /* declined */
	if (s->depth <= 2) {
		s->map[s->depth] = is_map;
		s->key[s->depth] = 0;
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
	scan *s = ctx;

	if (--s->depth == 0 && s->map[1])
		s->end = yajl_get_bytes_consumed(s->h);
	return 1;
}

static int on_map_key(void *ctx, const unsigned char *k, size_t len)
{
	scan *s = ctx;

	if (s->depth <= 2)
		s->key[s->depth] = key_code(s->v, k, len);
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
		 * the heap still serves (and a build with assertions stops). */
		assert(!"scan arena too small");
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

/* The whitespace JSON allows (RFC 8259), which jansson takes and no more. */
static int json_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The bytes on which yajl and jansson cannot differ (see the top). */
static int plain(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x80 || (c < 0x20 && !json_space(c)))
			return 0;
		if (c == '\\' && i + 1 < len && p[i + 1] == 'u')
			return 0;
	}
	return 1;
}

/* Whether only JSON's whitespace follows the root object. */
static int nothing_after(const scan *s, const char *doc, size_t len)
{
	for (size_t i = s->end; i < len; i++)
		if (!json_space((unsigned char)doc[i]))
			return 0;
	return 1;
}

int tlm_client__scan(const char *doc, size_t len, const tlm_scan_visitor *v, int *is_object)
{
	arena a;
	yajl_alloc_funcs funcs = { arena_malloc, arena_realloc, arena_free, &a };
	scan s;
	int ok;

	*is_object = 0;
	if (len > TLM_SCAN_MAX_LEN || !plain(doc, len))
		return TLM_SCAN_DECLINED;
	a.used = 0;
	memset(&s, 0, sizeof(s));
	s.v = v;
	if ((s.h = yajl_alloc(&callbacks, &funcs, &s)) == NULL)
		return TLM_SCAN_DECLINED; /* cannot happen: the arena serves */
	ok = yajl_parse(s.h, (const unsigned char *)doc, len) == yajl_status_ok &&
	     yajl_complete_parse(s.h) == yajl_status_ok;
	yajl_free(s.h);
	if (s.stopped)
		return TLM_SCAN_STOPPED;
	/* A root that is not an object leaves end at 0 and is read as such. */
	if (!ok || (s.end != 0 && !nothing_after(&s, doc, len)))
		return TLM_SCAN_DECLINED;
	*is_object = s.end != 0;
	return TLM_SCAN_READ;
}
