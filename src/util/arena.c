#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"

#define ARENA_BLOCK (64u * 1024u)
/* Pointer alignment is all a spec's structs need; strings take none. */
#define ARENA_ALIGN (sizeof(void *))

struct block {
	struct block *next;
	size_t size;
	size_t used;
	max_align_t data[];
};

struct tlm_arena {
	struct block *head;
	size_t total;
};

tlm_arena *tlm_arena_new(void)
{
	return calloc(1, sizeof(tlm_arena));
}

void tlm_arena_free(tlm_arena *a)
{
	struct block *b, *next;

	if (a == NULL)
		return;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

static struct block *new_block(size_t size)
{
	struct block *b = malloc(sizeof(*b) + size);

	if (b == NULL)
		return NULL;
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

static void *arena_get(tlm_arena *a, size_t size, size_t align)
{
	struct block *b = a->head;
	size_t pad = b ? (align - (b->used & (align - 1))) & (align - 1) : 0;
	size_t need = size + pad;
	void *p;

	if (need < size)
		return NULL;
	if (b == NULL || b->size - b->used < need) {
		/* Large requests get a block of their own, placed behind the
		 * current one so the current block's free tail is not lost. */
		size_t bsize = need > ARENA_BLOCK / 4 ? need : ARENA_BLOCK;
		struct block *nb = new_block(bsize);

		if (nb == NULL)
			return NULL;
		need = size;
		if (b != NULL && bsize != ARENA_BLOCK) {
			nb->next = b->next;
			b->next = nb;
			b = nb;
		} else {
			nb->next = a->head;
			a->head = nb;
			b = nb;
		}
	}
	p = (char *)b->data + b->used + (need - size);
	b->used += need;
	a->total += need;
	return p;
}

void *tlm_arena_alloc(tlm_arena *a, size_t size)
{
	void *p = arena_get(a, size, ARENA_ALIGN);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

void *tlm_arena_calloc(tlm_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return tlm_arena_alloc(a, n * size);
}

char *tlm_arena_strndup(tlm_arena *a, const char *s, size_t len)
{
	char *p = len + 1 > len ? arena_get(a, len + 1, 1) : NULL;

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

size_t tlm_arena_used(const tlm_arena *a)
{
	return a->total;
}
