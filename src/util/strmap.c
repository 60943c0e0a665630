#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/strmap.h"

/* Keys come from outside (agent names, subjects, ids from a server), so the
 * hash is keyed with a secret chosen per process: with a fixed hash such as
 * FNV-1a, keys crafted to share their low bits make every lookup walk one
 * long run of the table, quadratic in the number of keys (docs/spec.md,
 * hostile input).  SipHash-1-3, as Rust and Python use for the same reason. */
static uint64_t sip_key[2];
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void sip_init(void)
{
	struct timespec ts;

	if (getrandom(sip_key, sizeof(sip_key), GRND_NONBLOCK) == (ssize_t)sizeof(sip_key))
		return;
	/* No entropy yet (early boot): still different per process and run. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sip_key[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
	sip_key[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
}

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13) ^ v0;                                                            \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16) ^ v2;                                                            \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21) ^ v0;                                                            \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17) ^ v2;                                                            \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

static size_t hash(const char *s)
{
	size_t len = strlen(s), i;
	uint64_t v0, v1, v2, v3, m;

	pthread_once(&sip_once, sip_init);
	v0 = sip_key[0] ^ 0x736f6d6570736575ull;
	v1 = sip_key[1] ^ 0x646f72616e646f6dull;
	v2 = sip_key[0] ^ 0x6c7967656e657261ull;
	v3 = sip_key[1] ^ 0x7465646279746573ull;
	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, s + i, 8); /* little-endian hosts; any order is a fine hash */
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	m = (uint64_t)len << 56;
	for (; i < len; i++)
		m |= (uint64_t)(unsigned char)s[i] << (8 * (i & 7));
	v3 ^= m;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (size_t)(v0 ^ v1 ^ v2 ^ v3);
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

char *tlm_strmap_pair_key(const char *a, const char *b)
{
	size_t al = strlen(a), bl = strlen(b);
	char *key = malloc(al + bl + 24);
	int p;

	if (key == NULL)
		return NULL;
	p = sprintf(key, "%zu:", al);
	memcpy(key + p, a, al);
	memcpy(key + (size_t)p + al, b, bl + 1);
	return key;
}
