/* libnats lifetime bookkeeping (nats_life.h). */
#include <time.h>

#include "util/nats_life.h"

int tlm_nats_life_init(tlm_nats_life *l)
{
	pthread_condattr_t ca;
	int rc = 0;

	l->subs_open = 0;
	l->closed = 0;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	/* A wall-clock step must not stretch the wait. */
	rc |= pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc |= pthread_mutex_init(&l->mu, NULL);
	rc |= pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	return rc == 0 ? 0 : -1;
}

void tlm_nats_life_destroy(tlm_nats_life *l)
{
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cond);
}

static void change(tlm_nats_life *l, int subs, int closed)
{
	pthread_mutex_lock(&l->mu);
	l->subs_open += subs;
	if (closed)
		l->closed = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
}

void tlm_nats_life_sub_opened(tlm_nats_life *l)
{
	change(l, 1, 0);
}

void tlm_nats_life_sub_done(tlm_nats_life *l)
{
	change(l, -1, 0);
}

void tlm_nats_life_closed(tlm_nats_life *l)
{
	change(l, 0, 1);
}

int tlm_nats_life_wait(tlm_nats_life *l, long ms)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->mu);
	while (rc == 0 && (l->subs_open > 0 || !l->closed))
		rc = pthread_cond_timedwait(&l->cond, &l->mu, &deadline);
	pthread_mutex_unlock(&l->mu);
	return rc == 0 ? 0 : -1;
}
