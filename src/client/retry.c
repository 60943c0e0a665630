/* The retry policy as pure functions: which outcomes may be retried, and how
 * long to wait.  The Python predecessor retried POSTs blindly and made
 * duplicate, untracked resources (docs/lessons.md #3); it also ignored Retry-After and
 * had no jitter (docs/lessons.md #16).  Both rules live here so they can be tested
 * without a network. */
#include <time.h>

#include "client/client_internal.h"

static int is_idempotent(tlm_http_method m)
{
	return m != TLM_HTTP_POST_CREATE;
}

/* Failures that happen before a single byte of the request left us: the server
 * cannot have acted on it, whatever the method. */
static int never_sent(tlm_xfer x)
{
	return x == TLM_XFER_CONNECT_REFUSED || x == TLM_XFER_CONNECT_TIMEOUT ||
	       x == TLM_XFER_RESOLVE || x == TLM_XFER_TLS_HANDSHAKE || x == TLM_XFER_TLS_REFUSED;
}

tlm_verdict tlm_client__classify(tlm_http_method method, tlm_xfer xfer, int http_status)
{
	if (xfer != TLM_XFER_OK) {
		/* A certificate that is refused now is refused on the next try
		 * too: say so at once rather than after the retry budget. */
		if (xfer == TLM_XFER_TLS_REFUSED)
			return TLM_VERDICT_PERMANENT;
		if (never_sent(xfer) || is_idempotent(method))
			return TLM_VERDICT_RETRY;
		/* The create may have been committed and only the reply lost. */
		return TLM_VERDICT_UNKNOWN;
	}
	if (http_status >= 200 && http_status < 300)
		return TLM_VERDICT_SUCCESS;
	if (http_status == 404 && method == TLM_HTTP_DELETE)
		return TLM_VERDICT_GONE;
	/* 429 comes from the rate limiter, which runs before any handler; 408
	 * means the server gave up reading the request.  Neither acted on it. */
	if (http_status == 429 || http_status == 408)
		return TLM_VERDICT_RETRY;
	if (http_status >= 500 && http_status < 600)
		/* Upstream can fail after committing (e.g. while publishing the
		 * event), so a 5xx on a create proves nothing either way. */
		return is_idempotent(method) ? TLM_VERDICT_RETRY : TLM_VERDICT_UNKNOWN;
	/* Other 4xx, and anything we do not expect (1xx, 3xx, garbage). */
	return TLM_VERDICT_PERMANENT;
}

const char *tlm_client__verdict_name(tlm_verdict v)
{
	switch (v) {
	case TLM_VERDICT_SUCCESS: return "success";
	case TLM_VERDICT_GONE: return "gone";
	case TLM_VERDICT_RETRY: return "retry";
	case TLM_VERDICT_UNKNOWN: return "unknown-outcome";
	case TLM_VERDICT_PERMANENT: return "permanent";
	}
	return "?";
}

/* xorshift64*: the default jitter source.  Jitter needs no cryptographic
 * quality, only to differ between clients that failed together. */
static uint64_t default_random(void *ctx)
{
	uint64_t *s = ctx;

	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

void tlm_client__backoff_init(tlm_backoff *b, const tlm_backoff_opts *opts, tlm_random_fn rnd,
			      void *rnd_ctx)
{
	static const tlm_backoff_opts defaults = TLM_BACKOFF_OPTS_INIT;
	struct timespec ts;

	b->opts = opts ? *opts : defaults;
	b->attempts = 0;
	b->waited_ms = 0;
	b->rnd = rnd;
	b->rnd_ctx = rnd_ctx;
	if (rnd == NULL) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		b->rnd_state = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
			       (uint64_t)(uintptr_t)b;
		if (b->rnd_state == 0)
			b->rnd_state = 0x9E3779B97F4A7C15ULL;
		b->rnd = default_random;
		b->rnd_ctx = &b->rnd_state;
	}
}

int tlm_client__backoff_next(tlm_backoff *b, long retry_after_s, uint64_t *delay_ms, tlm_error *err)
{
	uint64_t ceiling, delay, floor_ms = 0, remaining;
	uint32_t shift;

	*delay_ms = 0;
	b->attempts++;
	if (b->attempts >= b->opts.max_attempts)
		return tlm_error_set(err, TLM_ETIMEOUT, "gave up after %u attempts",
				     (unsigned)b->attempts);
	/* base * 2^(attempt-1), saturating well before overflow. */
	shift = b->attempts - 1 > 32 ? 32 : b->attempts - 1;
	ceiling = (uint64_t)b->opts.base_ms << shift;
	if (ceiling > b->opts.cap_ms)
		ceiling = b->opts.cap_ms;
	/* Full jitter: uniform in [0, ceiling].  The modulo bias is at most
	 * ceiling / 2^64, far below anything that matters here. */
	delay = b->rnd(b->rnd_ctx) % (ceiling + 1);
	if (retry_after_s > 0) {
		floor_ms = (uint64_t)retry_after_s * 1000;
		if (delay < floor_ms)
			delay = floor_ms;
	}
	remaining = b->opts.max_total_ms > b->waited_ms ? b->opts.max_total_ms - b->waited_ms : 0;
	if (floor_ms > remaining)
		return tlm_error_set(err, TLM_ERATELIMIT,
				     "the server asks to wait %ld s, beyond the retry budget",
				     retry_after_s);
	if (remaining == 0)
		return tlm_error_set(err, TLM_ETIMEOUT, "gave up after waiting %llu ms in all",
				     (unsigned long long)b->waited_ms);
	/* The jittered part may be trimmed to fit the budget; the floor was
	 * checked above and is never trimmed. */
	if (delay > remaining)
		delay = remaining;
	b->waited_ms += delay;
	*delay_ms = delay;
	return 0;
}
