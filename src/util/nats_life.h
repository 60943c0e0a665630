/* When libnats has let go of an object of ours.  A connection's closed
 * callback and each subscription's complete callback run on libnats' threads
 * after nats*_Destroy() returned, and they use the object passed as their
 * closure: it may be freed only after the last of them.  Shared by the
 * server's event publisher and the engine's watcher.  Internal. */
#ifndef TLM_UTIL_NATS_LIFE_H
#define TLM_UTIL_NATS_LIFE_H

#include <pthread.h>

typedef struct tlm_nats_life {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC */
	int subs_open;       /* subscriptions whose complete callback has not run */
	int closed;          /* the connection's closed callback has run */
} tlm_nats_life;

/* 0, or -1 when a lock could not be made. */
int tlm_nats_life_init(tlm_nats_life *l);
void tlm_nats_life_destroy(tlm_nats_life *l);

/* A subscription was made (call before its complete callback can run). */
void tlm_nats_life_sub_opened(tlm_nats_life *l);

/* For natsSubscription_SetOnCompleteCB and natsOptions_SetClosedCB. */
void tlm_nats_life_sub_done(tlm_nats_life *l);
void tlm_nats_life_closed(tlm_nats_life *l);

/* Waits up to ms for every callback above; 0 when all ran, -1 if not (the
 * caller must then leak the object rather than free it under a thread). */
int tlm_nats_life_wait(tlm_nats_life *l, long ms);

#endif
