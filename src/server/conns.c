/* Connection limits and the request timeout (see conns.h).
 *
 * One list, oldest first, under one mutex.  Limits are enforced when a
 * connection opens, by a linear scan: the list is bounded by the limits
 * (plus the few being closed), a thousand or so records, and a scan is
 * cheaper than keeping per-address tables in step. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server/conns.h"

#define WATCH_MS 100 /* how often the watcher looks: the timeout's precision */

enum { WAITING, READING, BUSY };

struct tlm_conn {
	tlm_conn *prev, *next;
	int fd;
	unsigned char ip[16]; /* IPv4 as ::ffff:a.b.c.d */
	int has_ip;
	int phase;     /* WAITING, READING or BUSY */
	int64_t since; /* ms: when it began to wait for its request */
	int closing;   /* shut down by us, not counted any more */
};

struct tlm_conns {
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_t thread;
	int stopping;
	unsigned max, per_ip, timeout_ms;
	tlm_conn *head, *tail; /* oldest first */
	unsigned open;         /* not closing */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under mu. */
static void shut(tlm_conns *cs, tlm_conn *c)
{
	c->closing = 1;
	cs->open--;
	shutdown(c->fd, SHUT_RDWR);
}

/* The connection waiting longest for its request (of c's address when
 * same_ip), or NULL when all are busy.  Under mu. */
static tlm_conn *victim(tlm_conns *cs, const tlm_conn *c, int same_ip)
{
	tlm_conn *p, *best = NULL;

	for (p = cs->head; p != NULL; p = p->next) {
		if (p->closing || p->phase == BUSY)
			continue;
		if (same_ip && (!p->has_ip || memcmp(p->ip, c->ip, sizeof(c->ip)) != 0))
			continue;
		if (best == NULL || p->since < best->since)
			best = p;
	}
	return best;
}

static unsigned count_ip(const tlm_conns *cs, const tlm_conn *c)
{
	const tlm_conn *p;
	unsigned n = 0;

	for (p = cs->head; p != NULL; p = p->next)
		n += !p->closing && p->has_ip && memcmp(p->ip, c->ip, sizeof(c->ip)) == 0;
	return n;
}

/* Makes room for c, which was just added.  Under mu. */
static void enforce(tlm_conns *cs, tlm_conn *c)
{
	tlm_conn *v;

	if (cs->per_ip > 0 && c->has_ip && count_ip(cs, c) > cs->per_ip &&
	    (v = victim(cs, c, 1)) != NULL)
		shut(cs, v);
	if (!c->closing && cs->open > cs->max && (v = victim(cs, c, 0)) != NULL)
		shut(cs, v);
}

static void key_of(tlm_conn *c, const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (sa != NULL && sa->sa_family == AF_INET) {
		memcpy(c->ip, mapped, sizeof(mapped));
		memcpy(c->ip + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		c->has_ip = 1;
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		memcpy(c->ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		c->has_ip = 1;
	}
}

tlm_conn *tlm_conns_open(tlm_conns *cs, int fd, const struct sockaddr *sa)
{
	tlm_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		shutdown(fd, SHUT_RDWR);
		return NULL;
	}
	c->fd = fd;
	c->phase = WAITING;
	c->since = now_ms();
	key_of(c, sa);
	pthread_mutex_lock(&cs->mu);
	c->prev = cs->tail;
	if (cs->tail != NULL)
		cs->tail->next = c;
	else
		cs->head = c;
	cs->tail = c;
	cs->open++;
	enforce(cs, c);
	pthread_mutex_unlock(&cs->mu);
	return c;
}

void tlm_conns_close(tlm_conns *cs, tlm_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&cs->mu);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		cs->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		cs->tail = c->prev;
	if (!c->closing)
		cs->open--;
	pthread_mutex_unlock(&cs->mu);
	free(c);
}

static void set_phase(tlm_conns *cs, tlm_conn *c, int phase)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&cs->mu);
	c->phase = phase;
	if (phase == WAITING)
		c->since = now_ms();
	pthread_mutex_unlock(&cs->mu);
}

void tlm_conns_reading(tlm_conns *cs, tlm_conn *c)
{
	set_phase(cs, c, READING);
}

void tlm_conns_busy(tlm_conns *cs, tlm_conn *c)
{
	set_phase(cs, c, BUSY);
}

void tlm_conns_idle(tlm_conns *cs, tlm_conn *c)
{
	set_phase(cs, c, WAITING);
}

unsigned tlm_conns_count(tlm_conns *cs)
{
	unsigned n;

	pthread_mutex_lock(&cs->mu);
	n = cs->open;
	pthread_mutex_unlock(&cs->mu);
	return n;
}

/* Closes every connection whose request is late.  Under mu. */
static void reap(tlm_conns *cs)
{
	int64_t now = now_ms();
	tlm_conn *p;

	for (p = cs->head; p != NULL; p = p->next) {
		if (!p->closing && p->phase != BUSY && now - p->since >= (int64_t)cs->timeout_ms)
			shut(cs, p);
	}
}

static void *watch(void *arg)
{
	tlm_conns *cs = arg;

	pthread_mutex_lock(&cs->mu);
	while (!cs->stopping) {
		struct timespec until;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += WATCH_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&cs->wake, &cs->mu, &until) == ETIMEDOUT)
			reap(cs);
	}
	pthread_mutex_unlock(&cs->mu);
	return NULL;
}

tlm_conns *tlm_conns_new(unsigned max, unsigned per_ip, unsigned timeout_ms)
{
	tlm_conns *cs = calloc(1, sizeof(*cs));
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	if (cs == NULL)
		return NULL;
	cs->max = max;
	cs->per_ip = per_ip;
	cs->timeout_ms = timeout_ms;
	pthread_mutex_init(&cs->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cs->wake, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals are for the server's own threads (serve waits in sigwait). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&cs->thread, NULL, watch, cs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&cs->wake);
		pthread_mutex_destroy(&cs->mu);
		free(cs);
		return NULL;
	}
	return cs;
}

void tlm_conns_free(tlm_conns *cs)
{
	tlm_conn *p, *next;

	if (cs == NULL)
		return;
	pthread_mutex_lock(&cs->mu);
	cs->stopping = 1;
	pthread_cond_broadcast(&cs->wake);
	pthread_mutex_unlock(&cs->mu);
	pthread_join(cs->thread, NULL);
	for (p = cs->head; p != NULL; p = next) {
		next = p->next;
		free(p);
	}
	pthread_cond_destroy(&cs->wake);
	pthread_mutex_destroy(&cs->mu);
	free(cs);
}
