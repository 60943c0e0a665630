/* A token bucket per client IP, as upstream does (docs/contract.md §3): all loopback
 * clients (127.0.0.0/8, ::1, ::ffff:127.x) share one bucket.  At most 4096
 * clients are tracked; past that the least recently seen one is forgotten and
 * comes back with a full bucket.  Monotonic clock; thread-safe. */
#ifndef TLM_SERVER_RATELIMIT_H
#define TLM_SERVER_RATELIMIT_H

typedef struct tlm_ratelimit tlm_ratelimit;

/* rps tokens per second (> 0), up to burst (0 is taken as 1); a new client
 * starts with a full bucket.  NULL when rps is not > 0 or out of memory. */
tlm_ratelimit *tlm_ratelimit_new(double rps, unsigned burst);
void tlm_ratelimit_free(tlm_ratelimit *rl);

/* Takes a token for client (an IP string): 0 when allowed, else the seconds
 * until a token is back (rounded up, 1..86400), for Retry-After.  A refused
 * call takes no token. */
unsigned tlm_ratelimit_take(tlm_ratelimit *rl, const char *client);

#endif
