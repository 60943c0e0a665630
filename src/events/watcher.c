/* The engine's NATS task-event watcher (include/telemachy/events.h).
 *
 * Threads: libnats delivers every team's messages on its one shared delivery
 * thread, and connection events on its callback thread.  Those threads only
 * parse, append to our queue under w->mu and call the wake function; the
 * engine thread drains.  Nobody holds w->mu while calling out: drain swaps
 * the list out under the lock and runs the callback without it.
 *
 * Losses are never silent: a reconnect, an event dropped because the queue is
 * full (or memory ran out), and a slow-consumer report from libnats all "owe"
 * one RECONCILE, which drain hands over at the position of the first loss.
 * One per drain is enough: the engine's REST reconcile happens after the
 * drain, so it covers every loss before it.
 *
 * Like src/server/events.c, nothing here waits on libnats' connection lock
 * outside tlm_watcher_new/_subscribe/_free (the state the engine reads is what
 * the callbacks last stored), and nats_Close() is never called: the library is
 * process-global. */
#include <assert.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client_internal.h"
#include "telemachy/events.h"
#include "telemachy/metrics.h"
#include "util/nats_auth.h"
#include "util/nats_life.h"
#include "util/opts.h"

#define W_URL_MAX          4096u
#define W_URL_SHOWN        512u  /* an URL quoted in an error message */
#define W_TIMEOUT_MS       5000L /* default first-connect timeout */
#define W_QUEUE_MAX        100000u
#define W_RECONNECT_MS     250
#define W_PING_MS          10000          /* a silently dead server is noticed in ~30 s */
#define W_SPENT_MAX        32u            /* handled messages destroyed together... */
#define W_SPENT_BYTES      (256u * 1024u) /* ...or once their payloads are this big */
#define W_CLOSE_WAIT_MS    5000           /* for libnats' threads to let go of us */
#define W_CONNECTED_UNSEEN (-1)           /* no callback has reported a state yet */

/* One queued event; the three strings live in buf. */
struct w_node {
	struct w_node *next;
	const char *team, *task, *status;
	int state;
	char buf[];
};

struct tlm_watcher {
	natsConnection *nc;
	long timeout_ms;
	size_t queue_max;
	tlm_watcher_wake_fn wake;
	void *wake_ctx;

	/* Teams subscribed so far: engine thread only. */
	char **teams;
	natsSubscription **subs;
	size_t nteams;

	pthread_mutex_t mu; /* the queue and the reconcile debt */
	struct w_node *head, *tail;
	size_t count;
	int owe_reconcile;
	size_t reconcile_at;         /* events queued before the first loss */
	natsMsg *spent[W_SPENT_MAX]; /* handled, not destroyed yet (see retire) */
	size_t nspent, spent_bytes;

	atomic_int connected; /* 1, 0, or W_CONNECTED_UNSEEN */
	atomic_uint_fast64_t received, queued, dropped, ignored, reconnects;

	/* tlm_watcher_free waits for libnats' last call into w. */
	tlm_nats_life life; /* libnats' last callbacks into w */
	int locks_ready;    /* 1: initialised; -1: leaked on purpose */
};

/* ---- URLs in messages ---- */

static size_t put(char *out, size_t size, size_t o, const char *s, size_t n)
{
	if (o + n >= size)
		n = size - 1 - o;
	memcpy(out + o, s, n);
	out[o + n] = '\0';
	return o + n;
}

/* url with each user[:password]@ replaced by ***@: error messages may quote
 * what the user gave without leaking a token or password. */
static void redact_url(const char *url, char *out, size_t size)
{
	const char *item = url;
	size_t o = 0;

	out[0] = '\0';
	while (*item != '\0') {
		const char *end = item + strcspn(item, ",");
		const char *at = memrchr(item, '@', (size_t)(end - item));
		const char *sep = strstr(item, "://");
		const char *from = item;

		if (at != NULL) {
			if (sep != NULL && sep < at)
				o = put(out, size, o, item, (size_t)(sep + 3 - item));
			o = put(out, size, o, "***", 3);
			from = at;
		}
		o = put(out, size, o, from, (size_t)(end - from));
		if (*end == ',') {
			o = put(out, size, o, ",", 1);
			end++;
		}
		item = end;
	}
}

/* libnats parses the rest; control characters are refused here because the
 * URL is quoted in messages that end up in logs. */
static int check_url(const char *url, tlm_error *err)
{
	size_t i, n;

	if (url == NULL || *url == '\0')
		return tlm_error_set(err, TLM_EINVALID, "no NATS URL");
	n = strlen(url);
	if (n >= W_URL_MAX)
		return tlm_error_set(err, TLM_EINVALID, "NATS URL is %zu bytes, over the limit", n);
	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f)
			return tlm_error_set(err, TLM_EINVALID, "NATS URL has a control character");
	return 0;
}

/* ---- the queue ---- */

/* Called with w->mu held; 1 when this is a new debt (worth a wake). */
static int owe_reconcile_locked(tlm_watcher *w)
{
	if (w->owe_reconcile)
		return 0;
	w->owe_reconcile = 1;
	w->reconcile_at = w->count;
	return 1;
}

static void wake(tlm_watcher *w)
{
	if (w->wake != NULL)
		w->wake(w->wake_ctx);
}

/* Appends n, or counts a loss when n is NULL (out of memory) or the queue is
 * full; either way the engine hears about it. */
static void enqueue(tlm_watcher *w, struct w_node *n)
{
	int woke;

	pthread_mutex_lock(&w->mu);
	if (n != NULL && w->count < w->queue_max) {
		if (w->tail != NULL)
			w->tail->next = n;
		else
			w->head = n;
		w->tail = n;
		/* Only the first event of a queue needs a wake: the engine takes
		 * the whole queue at once (tlm_watcher_drain), so a burst costs
		 * one wake and one turn, not one each. */
		woke = w->count++ == 0;
		atomic_fetch_add(&w->queued, 1);
		n = NULL;
	} else {
		atomic_fetch_add(&w->dropped, 1);
		woke = owe_reconcile_locked(w);
	}
	pthread_mutex_unlock(&w->mu);
	free(n);
	if (woke)
		wake(w);
}

static void owe_reconcile(tlm_watcher *w)
{
	int woke;

	pthread_mutex_lock(&w->mu);
	woke = owe_reconcile_locked(w);
	pthread_mutex_unlock(&w->mu);
	if (woke)
		wake(w);
}

static void queue_clear(tlm_watcher *w)
{
	struct w_node *n, *next;

	for (n = w->head; n != NULL; n = next) {
		next = n->next;
		free(n);
	}
	w->head = w->tail = NULL;
	w->count = 0;
}

/* ---- inbound messages (libnats' subscription threads) ---- */

/* A queue node for ev, or NULL with *ignore set when an id or the status is
 * over its cap (or NULL alone when out of memory). */
static struct w_node *node_new(const tlm_client_event *ev, int *ignore)
{
	size_t lt = strlen(ev->team_id), lk = strlen(ev->task_id), ls = strlen(ev->status);
	struct w_node *n;
	char *p;

	*ignore = lt > TLM_WATCHER_ID_MAX || lk > TLM_WATCHER_ID_MAX || ls > TLM_WATCHER_STATUS_MAX;
	if (*ignore)
		return NULL;
	n = malloc(sizeof(*n) + lt + lk + ls + 3);
	if (n == NULL)
		return NULL;
	n->next = NULL;
	n->state = (int)ev->state;
	p = n->buf;
	n->team = memcpy(p, ev->team_id, lt + 1);
	p += lt + 1;
	n->task = memcpy(p, ev->task_id, lk + 1);
	p += lk + 1;
	n->status = memcpy(p, ev->status, ls + 1);
	return n;
}

/* Destroys msg, W_SPENT_MAX at a time.  libnats frees a message on its GC
 * thread and wakes that thread whenever it finds it idle: destroyed one by
 * one, that is a wake (two context switches) per event.  Destroyed in a
 * batch, the first wakes it and the rest join its list (docs/performance.md,
 * fix 21).  What is kept is bounded by count and by bytes. */
static void retire(tlm_watcher *w, natsMsg *msg)
{
	natsMsg *batch[W_SPENT_MAX];
	int len = natsMsg_GetDataLength(msg);
	size_t n = 0, i;

	pthread_mutex_lock(&w->mu);
	w->spent[w->nspent++] = msg;
	w->spent_bytes += len > 0 ? (size_t)len : 0;
	if (w->nspent == W_SPENT_MAX || w->spent_bytes >= W_SPENT_BYTES) {
		n = w->nspent;
		memcpy(batch, w->spent, n * sizeof(*batch));
		w->nspent = 0;
		w->spent_bytes = 0;
	}
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < n; i++)
		natsMsg_Destroy(batch[i]);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	tlm_watcher *w = closure;
	tlm_client_event ev = TLM_CLIENT_EVENT_INIT;
	int len = natsMsg_GetDataLength(msg), rc = TLM_ETOOBIG, ignore = 1;
	struct w_node *n = NULL;

	(void)nc;
	(void)sub;
	if (len >= 0 && (size_t)len <= TLM_CLIENT_MAX_BODY)
		rc = tlm_client__parse_event(&ev, natsMsg_GetSubject(msg), natsMsg_GetData(msg),
					     (size_t)len, NULL);
	if (rc == 0)
		n = node_new(&ev, &ignore);
	else if (rc == TLM_ERROR)
		ignore = 0; /* out of memory: a lost event, not a foreign one */
	tlm_client__event_clear(&ev);
	retire(w, msg);
	if (ignore)
		atomic_fetch_add(&w->ignored, 1);
	else
		enqueue(w, n);
	/* Last, so that received == N means the first N are all accounted
	 * for (queued, dropped or ignored): tests and metrics rely on it. */
	atomic_fetch_add(&w->received, 1);
	tlm_metrics_nats_event();
}

/* ---- connection callbacks (libnats' callback thread) ---- */

/* The engine says so and polls REST faster until NATS is back: wake it
 * now rather than at its next tick. */
static void on_disconnected(natsConnection *nc, void *closure)
{
	tlm_watcher *w = closure;

	(void)nc;
	atomic_store(&w->connected, 0);
	wake(w);
}

/* Events published while we were away are gone: the engine reconciles.
 * libnats has sent our subscriptions again before calling this. */
static void on_reconnected(natsConnection *nc, void *closure)
{
	tlm_watcher *w = closure;

	(void)nc;
	atomic_store(&w->connected, 1);
	atomic_fetch_add(&w->reconnects, 1);
	owe_reconcile(w);
}

/* A slow consumer means libnats dropped messages before we saw them. */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
	(void)nc;
	(void)sub;
	if (s == NATS_SLOW_CONSUMER)
		owe_reconcile(closure);
}

static void on_closed(natsConnection *nc, void *closure)
{
	tlm_watcher *w = closure;

	(void)nc;
	atomic_store(&w->connected, 0);
	tlm_nats_life_closed(&w->life);
}

static void on_sub_complete(void *closure)
{
	tlm_nats_life_sub_done(&((tlm_watcher *)closure)->life);
}

/* ---- connecting ---- */

static natsStatus set_callbacks(natsOptions *o, tlm_watcher *w)
{
	natsStatus s = natsOptions_SetDisconnectedCB(o, on_disconnected, w);

	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_reconnected, w);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, on_closed, w);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, on_async_error, w);
	return s;
}

/* The first connect fails fast (no retry in the background: the caller
 * reports it and exits); once connected, reconnect forever. */
static natsStatus set_options(natsOptions *o, const tlm_watcher_opts *opts, tlm_watcher *w)
{
	natsStatus s = natsOptions_SetURL(o, opts->url);

	if (s == NATS_OK)
		s = natsOptions_SetName(o, "telemachy-watcher");
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, w->timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(o, false, NULL, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, W_RECONNECT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, W_PING_MS);
	/* One delivery thread for all teams instead of one per team: a thread
	 * that is awake takes every message waiting for it, so a burst across
	 * teams costs fewer wakes; the order within a team is kept. */
	if (s == NATS_OK)
		s = natsOptions_UseGlobalMessageDelivery(o, true);
	if (s == NATS_OK)
		s = set_callbacks(o, w);
	return s;
}

static int connect_nats(tlm_watcher *w, const tlm_watcher_opts *opts, tlm_error *err)
{
	char shown[W_URL_SHOWN];
	tlm_nats_auth auth;
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	int expected = W_CONNECTED_UNSEEN, rc = 0;

	if (s == NATS_OK)
		s = set_options(o, opts, w);
	if (s != NATS_OK) {
		/* Not libnats' detailed text: it may quote the URL. */
		rc = tlm_error_set(err, TLM_EINVALID, "NATS options: %s", natsStatus_GetText(s));
		goto done;
	}
	auth.ca_file = opts->ca_file;
	auth.cert_file = opts->cert_file;
	auth.key_file = opts->key_file;
	auth.creds_file = opts->creds_file;
	auth.token = opts->token;
	if ((rc = tlm_nats_auth_apply(o, opts->url, &auth, err)) != 0)
		goto done;
	s = natsConnection_Connect(&w->nc, o);
	if (s != NATS_OK) {
		w->nc = NULL;
		redact_url(opts->url, shown, sizeof(shown));
		rc = tlm_error_set(err, s == NATS_TIMEOUT ? TLM_ETIMEOUT : TLM_ERROR,
				   "NATS: cannot connect to %s within %ld ms: %s%s", shown,
				   w->timeout_ms, natsStatus_GetText(s), tlm_nats_refusal(s));
		goto done;
	}
	/* Unless a disconnect was reported already. */
	atomic_compare_exchange_strong(&w->connected, &expected, 1);
done:
	natsOptions_Destroy(o);
	return rc;
}

static int init_locks(tlm_watcher *w)
{
	pthread_condattr_t ca;
	int rc = 0;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	/* Timed waits must not stretch when the wall clock steps. */
	rc |= pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc |= pthread_mutex_init(&w->mu, NULL);
	rc |= tlm_nats_life_init(&w->life);
	pthread_condattr_destroy(&ca);
	w->locks_ready = rc == 0;
	return rc == 0 ? 0 : -1;
}

int tlm_watcher_new(tlm_watcher **out, const tlm_watcher_opts *opts, tlm_error *err)
{
	tlm_watcher *w = NULL;
	int rc;

	assert(out != NULL && opts != NULL);
	*out = NULL;
	rc = tlm_opts_version_check(opts->version, TLM_WATCHER_OPTS_VERSION, "watcher",
				    "TLM_WATCHER_OPTS_INIT", err);
	if (rc == 0)
		rc = check_url(opts->url, err);
	if (rc != 0)
		goto done;
	w = calloc(1, sizeof(*w));
	if (w == NULL || init_locks(w) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	w->timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : W_TIMEOUT_MS;
	w->queue_max = opts->queue_max > 0 ? opts->queue_max : W_QUEUE_MAX;
	w->wake = opts->wake;
	w->wake_ctx = opts->wake_ctx;
	atomic_init(&w->connected, W_CONNECTED_UNSEEN);
	rc = connect_nats(w, opts, err);
done:
	if (rc != 0) {
		tlm_watcher_free(w);
		w = NULL;
	}
	*out = w;
	return rc;
}

/* ---- subscribing ---- */

/* A single subject token, safe to quote: printable ASCII, no wildcard. */
static int valid_team(const char *s)
{
	size_t i, n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n == 0 || n > TLM_WATCHER_ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == '.' || s[i] == '*' || s[i] == '>')
			return 0;
	return 1;
}

static int has_team(const tlm_watcher *w, const char *team)
{
	size_t i;

	for (i = 0; i < w->nteams; i++)
		if (strcmp(w->teams[i], team) == 0)
			return 1;
	return 0;
}

/* Room for one more team, made before subscribing so that nothing can fail
 * between the server's confirmation and recording the subscription. */
static int reserve_team(tlm_watcher *w, tlm_error *err)
{
	char **t;
	natsSubscription **s;

	if (w->nteams >= TLM_WATCHER_TEAMS_MAX)
		return tlm_error_set(err, TLM_ETOOBIG, "more than %d teams to watch",
				     TLM_WATCHER_TEAMS_MAX);
	t = realloc(w->teams, (w->nteams + 1) * sizeof(*t));
	if (t != NULL)
		w->teams = t;
	s = realloc(w->subs, (w->nteams + 1) * sizeof(*s));
	if (s != NULL)
		w->subs = s;
	return t != NULL && s != NULL ? 0 : tlm_error_set(err, TLM_ERROR, "out of memory");
}

/* Subscribes, with the completion callback that tlm_watcher_free waits for. */
static natsStatus subscribe_tracked(tlm_watcher *w, const char *subject, natsSubscription **out)
{
	natsStatus s = natsConnection_Subscribe(out, w->nc, subject, on_msg, w);

	if (s != NATS_OK)
		return s;
	s = natsSubscription_SetOnCompleteCB(*out, on_sub_complete, w);
	if (s != NATS_OK) {
		natsSubscription_Unsubscribe(*out);
		natsSubscription_Destroy(*out);
		*out = NULL;
		return s;
	}
	tlm_nats_life_sub_opened(&w->life);
	return NATS_OK;
}

/* Subscribes one team without waiting for the server (appended to the
 * watcher's list; it takes copy). */
static int add_team(tlm_watcher *w, const char *team_id, tlm_error *err)
{
	char subject[TLM_WATCHER_ID_MAX + 16];
	natsSubscription *sub = NULL;
	char *copy = NULL;
	int rc;

	if (!valid_team(team_id))
		return tlm_error_set(err, TLM_EINVALID,
				     "team id is not a NATS subject token (1..%d printable ASCII "
				     "characters without '.', '*', '>')",
				     TLM_WATCHER_ID_MAX);
	if (has_team(w, team_id))
		return 0;
	if ((rc = reserve_team(w, err)) != 0)
		return rc;
	if ((copy = strdup(team_id)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	snprintf(subject, sizeof(subject), "hi.tasks.%s.>", team_id);
	if (subscribe_tracked(w, subject, &sub) != NATS_OK) {
		free(copy);
		return tlm_error_set(err, TLM_ERROR, "NATS subscription to team \"%s\" failed",
				     team_id);
	}
	w->teams[w->nteams] = copy;
	w->subs[w->nteams] = sub;
	w->nteams++;
	return 0;
}

/* Drops the teams from index `from` on (a batch the server never
 * confirmed): no half-subscribed team, the caller may try again. */
static void drop_teams(tlm_watcher *w, size_t from)
{
	while (w->nteams > from) {
		w->nteams--;
		natsSubscription_Unsubscribe(w->subs[w->nteams]);
		natsSubscription_Destroy(w->subs[w->nteams]);
		free(w->teams[w->nteams]);
	}
}

int tlm_watcher_subscribe_all(tlm_watcher *w, const char *const *team_ids, size_t n, tlm_error *err)
{
	size_t from, i;
	natsStatus s;
	int rc = 0;

	assert(w != NULL);
	from = w->nteams;
	for (i = 0; i < n && rc == 0; i++)
		rc = add_team(w, team_ids[i], err);
	if (rc != 0) {
		drop_teams(w, from);
		return rc;
	}
	if (w->nteams == from)
		return 0;
	/* One PING for the whole batch: its PONG comes after the server has
	 * processed every SUB before it, so the wait is one round trip (at
	 * most timeout_ms), however many teams. */
	s = natsConnection_FlushTimeout(w->nc, w->timeout_ms);
	if (s != NATS_OK) {
		drop_teams(w, from);
		if (n == 1)
			return tlm_error_set(
				err, TLM_ETIMEOUT,
				"NATS subscription to team \"%s\" not confirmed within %ld ms: %s",
				team_ids[0], w->timeout_ms, natsStatus_GetText(s));
		return tlm_error_set(
			err, TLM_ETIMEOUT,
			"NATS subscriptions to %zu teams not confirmed within %ld ms: %s", n,
			w->timeout_ms, natsStatus_GetText(s));
	}
	return 0;
}

int tlm_watcher_subscribe(tlm_watcher *w, const char *team_id, tlm_error *err)
{
	return tlm_watcher_subscribe_all(w, &team_id, 1, err);
}

/* ---- the engine's side ---- */

size_t tlm_watcher_drain(tlm_watcher *w, tlm_watcher_item_cb cb, void *ctx)
{
	static const tlm_watcher_item reconcile = { TLM_WATCHER_RECONCILE, NULL, NULL, NULL,
						    TLM_TASK_UNKNOWN };
	struct w_node *n, *next;
	size_t i, items = 0, at;
	int owe;

	assert(w != NULL && cb != NULL);
	pthread_mutex_lock(&w->mu);
	n = w->head;
	w->head = w->tail = NULL;
	w->count = 0;
	owe = w->owe_reconcile;
	at = w->reconcile_at;
	w->owe_reconcile = 0;
	pthread_mutex_unlock(&w->mu);
	for (i = 0; n != NULL; n = next, i++) {
		tlm_watcher_item it = { TLM_WATCHER_EVENT, n->team, n->task, n->status, n->state };

		if (owe && i == at) {
			cb(ctx, &reconcile);
			items++;
			owe = 0;
		}
		next = n->next;
		cb(ctx, &it);
		free(n);
		items++;
	}
	if (owe) {
		cb(ctx, &reconcile);
		items++;
	}
	return items;
}

int tlm_watcher_connected(const tlm_watcher *w)
{
	return w != NULL && atomic_load(&w->connected) == 1;
}

void tlm_watcher_stats_get(const tlm_watcher *w, tlm_watcher_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (w == NULL)
		return;
	out->received = atomic_load(&w->received);
	out->queued = atomic_load(&w->queued);
	out->dropped = atomic_load(&w->dropped);
	out->ignored = atomic_load(&w->ignored);
	out->reconnects = atomic_load(&w->reconnects);
}

/* ---- lifecycle ---- */

static void close_nats(tlm_watcher *w)
{
	size_t i;
	int released;

	if (w->nc == NULL)
		return;
	/* Close ends the subscriptions' delivery threads and queues the closed
	 * callback behind every other callback of this connection. */
	natsConnection_Close(w->nc);
	released = tlm_nats_life_wait(&w->life, W_CLOSE_WAIT_MS) == 0;
	for (i = 0; i < w->nteams; i++)
		natsSubscription_Destroy(w->subs[i]);
	natsConnection_Destroy(w->nc);
	w->nc = NULL;
	if (!released)
		w->locks_ready = -1; /* a libnats thread may still use w: keep it */
}

void tlm_watcher_free(tlm_watcher *w)
{
	size_t i;

	if (w == NULL)
		return;
	close_nats(w);
	if (w->locks_ready < 0)
		return; /* leaked on purpose, see close_nats */
	queue_clear(w);
	while (w->nspent > 0)
		natsMsg_Destroy(w->spent[--w->nspent]);
	for (i = 0; i < w->nteams; i++)
		free(w->teams[i]);
	free(w->teams);
	free(w->subs);
	if (w->locks_ready) {
		pthread_mutex_destroy(&w->mu);
		tlm_nats_life_destroy(&w->life);
	}
	free(w);
}
