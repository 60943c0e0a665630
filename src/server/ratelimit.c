/* Token buckets per client, in one fixed table: a hash index for lookup and an
 * LRU list for eviction.  The table is capped because client addresses come
 * from outside; past the cap the least recently seen client is forgotten
 * (it comes back with a full bucket, which only errs on the lenient side). */
#include <math.h> /* isfinite: a macro, no libm */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/ratelimit.h"

#define MAX_CLIENTS 4096
#define NBUCKETS    8192 /* power of two, twice the clients: short chains */
#define KEY_MAX     63   /* an IPv6 address with a zone fits in 46 */
#define WAIT_MAX    86400u
#define NIL         (-1)

typedef struct entry {
	char key[KEY_MAX + 1];
	double tokens, last;
	int32_t next;         /* hash chain */
	int32_t older, newer; /* LRU list */
} entry;

struct tlm_ratelimit {
	pthread_mutex_t mu;
	double rps, burst;
	uint32_t seed;
	int32_t used, newest, oldest;
	int32_t heads[NBUCKETS];
	entry entries[MAX_CLIENTS];
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

tlm_ratelimit *tlm_ratelimit_new(double rps, unsigned burst)
{
	tlm_ratelimit *rl;
	size_t i;

	if (!(rps > 0) || !isfinite(rps))
		return NULL;
	rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return NULL;
	if (pthread_mutex_init(&rl->mu, NULL) != 0) {
		free(rl);
		return NULL;
	}
	rl->rps = rps;
	/* A bucket that can never hold a token would refuse everything. */
	rl->burst = burst > 0 ? (double)burst : 1;
	/* Seeded so that nobody can pick addresses that share one chain. */
	rl->seed = (uint32_t)((uintptr_t)rl >> 4) ^ (uint32_t)(now_mono() * 1e6);
	rl->newest = rl->oldest = NIL;
	for (i = 0; i < NBUCKETS; i++)
		rl->heads[i] = NIL;
	return rl;
}

void tlm_ratelimit_free(tlm_ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

/* The contract: all loopback clients share one bucket, whichever loopback
 * address or notation they arrive with. */
static void client_key(const char *client, char key[KEY_MAX + 1])
{
	if (strncmp(client, "127.", 4) == 0 || strcmp(client, "::1") == 0 ||
	    strncmp(client, "::ffff:127.", 11) == 0 || strcmp(client, "localhost") == 0)
		client = "loopback";
	strncpy(key, client, KEY_MAX);
	key[KEY_MAX] = '\0';
}

static uint32_t hash(const tlm_ratelimit *rl, const char *key)
{
	uint32_t h = 2166136261u ^ rl->seed; /* FNV-1a */

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return h & (NBUCKETS - 1);
}

static void lru_unlink(tlm_ratelimit *rl, int32_t i)
{
	entry *e = &rl->entries[i];

	if (e->older != NIL)
		rl->entries[e->older].newer = e->newer;
	else
		rl->oldest = e->newer;
	if (e->newer != NIL)
		rl->entries[e->newer].older = e->older;
	else
		rl->newest = e->older;
}

static void lru_push(tlm_ratelimit *rl, int32_t i)
{
	entry *e = &rl->entries[i];

	e->older = rl->newest;
	e->newer = NIL;
	if (rl->newest != NIL)
		rl->entries[rl->newest].newer = i;
	else
		rl->oldest = i;
	rl->newest = i;
}

static void hash_unlink(tlm_ratelimit *rl, int32_t i)
{
	int32_t *link = &rl->heads[hash(rl, rl->entries[i].key)];

	while (*link != i)
		link = &rl->entries[*link].next;
	*link = rl->entries[i].next;
}

/* The entry for key, made (evicting the least recently seen client when the
 * table is full) if absent, and marked as the most recently seen. */
static entry *lookup(tlm_ratelimit *rl, const char *key, double now)
{
	uint32_t h = hash(rl, key);
	int32_t i;

	for (i = rl->heads[h]; i != NIL; i = rl->entries[i].next)
		if (strcmp(rl->entries[i].key, key) == 0)
			break;
	if (i != NIL) {
		lru_unlink(rl, i);
	} else {
		if (rl->used < MAX_CLIENTS) {
			i = rl->used++;
		} else {
			i = rl->oldest;
			lru_unlink(rl, i);
			hash_unlink(rl, i);
		}
		strcpy(rl->entries[i].key, key);
		rl->entries[i].tokens = rl->burst;
		rl->entries[i].last = now;
		rl->entries[i].next = rl->heads[h];
		rl->heads[h] = i;
	}
	lru_push(rl, i);
	return &rl->entries[i];
}

unsigned tlm_ratelimit_take(tlm_ratelimit *rl, const char *client)
{
	char key[KEY_MAX + 1];
	double now, wait;
	unsigned out = 0;
	entry *e;

	client_key(client != NULL ? client : "", key);
	pthread_mutex_lock(&rl->mu);
	now = now_mono(); /* under the lock, so that time never runs backwards for a bucket */
	e = lookup(rl, key, now);
	e->tokens += (now - e->last) * rl->rps;
	if (e->tokens > rl->burst)
		e->tokens = rl->burst;
	e->last = now;
	if (e->tokens >= 1) {
		e->tokens -= 1;
	} else {
		/* Until one whole token is back; Retry-After has no fractions. */
		wait = (1 - e->tokens) / rl->rps;
		out = wait >= WAIT_MAX ? WAIT_MAX : (unsigned)wait;
		if (out < WAIT_MAX && ((double)out < wait || out == 0))
			out++; /* ceil, without libm; and at least 1 */
	}
	pthread_mutex_unlock(&rl->mu);
	return out;
}
