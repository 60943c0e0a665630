#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/strmap.h"

/* FNV-1a: fast, good enough spread for identifiers; not a security boundary
 * because the map never grows past twice the number of keys it holds. */
static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

static size_t find_slot(const tlm_strmap *m, const char *key)
{
	size_t mask = m->capacity - 1;
	size_t i = hash(key) & mask;

	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & mask;
	return i;
}

static int grow(tlm_strmap *m)
{
	size_t ncap = m->capacity ? m->capacity * 2 : 16;
	tlm_strmap n = { NULL, NULL, ncap, 0 };
	size_t i;

	n.keys = calloc(ncap, sizeof(*n.keys));
	n.values = calloc(ncap, sizeof(*n.values));
	if (n.keys == NULL || n.values == NULL) {
		free(n.keys);
		free(n.values);
		return -1;
	}
	for (i = 0; i < m->capacity; i++) {
		if (m->keys[i] != NULL) {
			size_t s = find_slot(&n, m->keys[i]);
			n.keys[s] = m->keys[i];
			n.values[s] = m->values[i];
			n.count++;
		}
	}
	free(m->keys);
	free(m->values);
	*m = n;
	return 0;
}

int tlm_strmap_put(tlm_strmap *m, const char *key, size_t value, size_t *existing)
{
	size_t s;

	if ((m->count + 1) * 2 > m->capacity && grow(m) != 0)
		return -1;
	s = find_slot(m, key);
	if (m->keys[s] != NULL) {
		if (existing != NULL)
			*existing = m->values[s];
		return 1;
	}
	m->keys[s] = key;
	m->values[s] = value;
	m->count++;
	return 0;
}

int tlm_strmap_get(const tlm_strmap *m, const char *key, size_t *value)
{
	size_t s;

	if (m->capacity == 0)
		return -1;
	s = find_slot(m, key);
	if (m->keys[s] == NULL)
		return -1;
	*value = m->values[s];
	return 0;
}

void tlm_strmap_clear(tlm_strmap *m)
{
	free(m->keys);
	free(m->values);
	m->keys = NULL;
	m->values = NULL;
	m->capacity = 0;
	m->count = 0;
}
