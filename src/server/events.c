/* NATS publisher and completion listener for the built-in control plane.
 *
 * Threads: callers of tlm_events_publish (HTTP workers, the runner) only
 * serialise the payload and append it to a queue; one publisher thread of our
 * own hands queued messages to libnats and samples the connection state;
 * libnats' own threads deliver inbound messages and connection callbacks.
 * Nothing a caller does waits on libnats: its connection lock is held during
 * DNS lookups and TCP connects while it reconnects, for seconds when the
 * network swallows packets, so even natsConnection_Status is only called by
 * the publisher thread.
 *
 * nats_Close() is never called here: the library is process-global and the
 * engine (or a test) may still use it.  Whoever owns the process may call
 * nats_Close() once every user of libnats is freed (a test's main does, so
 * that valgrind sees libnats' threads joined). */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/events.h"
#include "util/nats_auth.h"
#include "util/nats_life.h"

#define EV_QUEUE_MAX       10000u      /* messages waiting for the publisher thread */
#define EV_QUEUE_BYTES_MAX (64u << 20) /* ... and their bytes: payloads may be 1 MiB each */
#define EV_INBOUND_MAX     (1u << 20)  /* larger inbound payloads are not parsed */
#define EV_ID_MAX          256u        /* a task id, with its NUL */
#define EV_SUBJECT_MAX     1024u       /* an outbound subject, with its NUL */
#define EV_URL_MAX         4096u
#define EV_POLL_MS         50   /* how stale tlm_events_state may be */
#define EV_DRAIN_MS        1000 /* tlm_events_free's budget for queued messages */
#define EV_RECONNECT_MS    250
#define EV_PING_MS         10000 /* a silently dead server is noticed in ~30 s */
#define EV_CLOSE_WAIT_MS   5000  /* for libnats' threads to let go of us */
#define EV_CONFIRM_MS      1000  /* a PING after a (re)connect */
#define EV_NSUBS           2

enum { ST_CONNECTING = 0, ST_CONNECTED, ST_RECONNECTING, ST_CLOSED };

struct ev_msg {
	struct ev_msg *next;
	char *data; /* compact JSON, from json_dumps */
	size_t len;
	char subject[];
};

struct tlm_events {
	natsConnection *nc;
	natsSubscription *subs[EV_NSUBS];
	tlm_events_task_cb cb;
	void *ctx;
	pthread_mutex_t cb_mu; /* the two subscriptions deliver on two threads */

	pthread_mutex_t mu; /* the queue and stopping */
	pthread_cond_t cond;
	struct ev_msg *head, *tail;
	size_t count, bytes;
	int stopping;
	struct timespec drain_deadline;
	pthread_t thread;
	int thread_started;

	atomic_int paused;
	atomic_int state;          /* ST_*, sampled by the publisher thread */
	atomic_int ever_connected; /* tells "connecting" from "reconnecting" */
	atomic_int confirm;        /* (re)connected: subscriptions to confirm */
	atomic_uint_fast64_t published, dropped;

	/* libnats calls back into this struct from its threads; tlm_events_free
	 * waits for the last callback (closed, subscriptions complete). */
	tlm_nats_life life;
	int locks_ready;
};

/* ---- time ---- */

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static long ms_left(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(ts->tv_sec - now.tv_sec) * 1000 + (ts->tv_nsec - now.tv_nsec) / 1000000L;
}

/* ---- URL checks ---- */

/* Copies url with every user:password@ replaced by ***@, so an error message
 * can quote what the user typed without leaking credentials. */
static void redact_url(const char *url, char *out, size_t size)
{
	size_t o = 0;
	const char *item = url;

	while (*item != '\0' && o + 1 < size) {
		const char *end = strchr(item, ',');
		const char *at, *p, *body = item;

		if (end == NULL)
			end = item + strlen(item);
		for (at = NULL, p = item; p < end; p++)
			if (*p == '@')
				at = p;
		if (at != NULL) {
			const char *sep = strstr(item, "://");

			body = at;
			if (sep != NULL && sep < at)
				p = sep + 3;
			else
				p = item;
			for (; item < p && o + 1 < size; item++)
				out[o++] = *item;
			for (p = "***"; *p != '\0' && o + 1 < size; p++)
				out[o++] = *p;
		}
		for (p = body; p < end && o + 1 < size; p++)
			out[o++] = *p;
		if (*end == ',' && o + 1 < size)
			out[o++] = ',';
		item = *end == ',' ? end + 1 : end;
	}
	out[o] = '\0';
}

static int host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

/* One "[user[:pass]@]host[:port]" (after the scheme), between p and end. */
static const char *check_authority(const char *p, const char *end)
{
	const char *q, *at = NULL;
	unsigned long port = 0;

	for (q = p; q < end; q++)
		if (*q == '@')
			at = q;
	p = at != NULL ? at + 1 : p;
	if (p < end && *p == '[') {
		for (q = p + 1; q < end && *q != ']'; q++)
			if (!(host_char(*q) || *q == ':'))
				return "bad character in the IPv6 address";
		if (q == end || q == p + 1)
			return "unterminated or empty [IPv6] address";
		p = q + 1;
	} else {
		for (q = p; q < end && host_char(*q); q++)
			;
		if (q == p)
			return "no host";
		p = q;
	}
	if (p == end)
		return NULL;
	if (*p != ':' || p + 1 == end)
		return "expected :PORT after the host";
	if (end - p > 6)
		return "the port must be 1..65535";
	for (q = p + 1; q < end; q++) {
		if (*q < '0' || *q > '9')
			return "the port must be a number";
		port = port * 10 + (unsigned long)(*q - '0');
	}
	return port >= 1 && port <= 65535 ? NULL : "the port must be 1..65535";
}

/* libnats accepts nearly anything ("garbage" means garbage:4222) and would
 * then retry forever in silence, so a typo is caught here instead.  Accepts
 * a comma-separated list of nats:// or tls:// URLs without a path. */
static const char *check_url_list(const char *url)
{
	const char *item = url;

	if (strlen(url) >= EV_URL_MAX)
		return "too long";
	do {
		const char *end = strchr(item, ',');
		const char *why;

		if (end == NULL)
			end = item + strlen(item);
		while (item < end && *item == ' ')
			item++;
		while (end > item && end[-1] == ' ')
			end--;
		if (strncasecmp(item, "nats://", 7) == 0)
			item += 7;
		else if (strncasecmp(item, "tls://", 6) == 0)
			item += 6;
		else
			return "expected nats://[user:password@]host[:port] or tls://...";
		why = check_authority(item, end);
		if (why != NULL)
			return why;
		item = strchr(item, ',');
	} while (item != NULL && *++item != '\0');
	return item == NULL ? NULL : "empty URL after a comma";
}

static int check_url(const char *url, tlm_error *err)
{
	char shown[256];
	const char *why;

	if (url == NULL || *url == '\0')
		return tlm_error_set(err, TLM_EINVALID, "empty NATS URL");
	why = check_url_list(url);
	if (why == NULL)
		return 0;
	redact_url(url, shown, sizeof(shown));
	return tlm_error_set(err, TLM_EINVALID, "invalid NATS URL \"%s\": %s", shown, why);
}

/* ---- inbound: hi.tasks.<team>.<task>.completed|failed ---- */

/* Ids go back to the caller's store lookup: printable ASCII, no spaces. */
static int copy_id(const char *s, size_t n, char *out)
{
	size_t i;

	if (n == 0 || n >= EV_ID_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* 1: id found in the payload; 0: the payload names none (empty, or an object
 * without task_id); -1: malformed, ignore the message.  A payload that is
 * present but broken is not trusted to mean its subject either. */
static int payload_task_id(const char *data, size_t len, char *id)
{
	json_t *root, *v, *d;
	int rc = 0;

	if (len == 0)
		return 0;
	if (len > EV_INBOUND_MAX)
		return -1;
	root = json_loadb(data, len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	v = json_object_get(root, "task_id");
	d = json_object_get(root, "data");
	if (v == NULL && json_is_object(d))
		v = json_object_get(d, "task_id");
	if (v != NULL) {
		rc = json_is_string(v) &&
				     copy_id(json_string_value(v), json_string_length(v), id) == 0
			     ? 1
			     : -1;
	}
	json_decref(root);
	return rc;
}

/* The 4th token of hi.tasks.<team>.<task>.<verb>. */
static int subject_task_id(const char *subject, char *id)
{
	const char *p = subject, *end;
	int dots;

	for (dots = 0; dots < 3 && p != NULL; dots++) {
		p = strchr(p, '.');
		if (p != NULL)
			p++;
	}
	if (p == NULL)
		return -1;
	end = strchr(p, '.');
	if (end == NULL)
		return -1;
	return copy_id(p, (size_t)(end - p), id);
}

static void on_task_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	tlm_events *ev = closure;
	const char *subject = natsMsg_GetSubject(msg);
	const char *verb = strrchr(subject, '.');
	const char *status = NULL;
	char id[EV_ID_MAX];
	int len = natsMsg_GetDataLength(msg);
	int found = payload_task_id(natsMsg_GetData(msg), len > 0 ? (size_t)len : 0, id);

	(void)nc;
	(void)sub;
	if (verb != NULL && strcmp(verb, ".completed") == 0)
		status = "completed";
	else if (verb != NULL && strcmp(verb, ".failed") == 0)
		status = "failed";
	if (found == 0)
		found = subject_task_id(subject, id) == 0 ? 1 : -1;
	if (found == 1 && status != NULL && ev->cb != NULL) {
		pthread_mutex_lock(&ev->cb_mu);
		ev->cb(ev->ctx, id, status);
		pthread_mutex_unlock(&ev->cb_mu);
	}
	natsMsg_Destroy(msg);
}

/* ---- libnats lifetime callbacks ---- */

static void on_sub_complete(void *closure)
{
	tlm_nats_life_sub_done(&((tlm_events *)closure)->life);
}

static void on_closed(natsConnection *nc, void *closure)
{
	(void)nc;
	tlm_nats_life_closed(&((tlm_events *)closure)->life);
}

/* Connected (needed to make the first connect asynchronous) or reconnected:
 * the subscriptions were sent again, to be confirmed by sample_state even
 * if the connection went down and up between two samples. */
static void on_connected(natsConnection *nc, void *closure)
{
	tlm_events *ev = closure;

	(void)nc;
	atomic_store(&ev->confirm, 1);
}

/* ---- outbound ---- */

/* Caller-built subjects carry names from requests: a space or CR/LF would
 * corrupt the NATS protocol stream, a wildcard is not publishable. */
static int valid_subject(const char *s)
{
	size_t i, n = strlen(s), tok = 0;

	if (n == 0 || n >= EV_SUBJECT_MAX)
		return 0;
	for (i = 0; i <= n; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (tok == 0 || (tok == 1 && (s[i - 1] == '*' || s[i - 1] == '>')))
				return 0;
			tok = 0;
		} else if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f) {
			return 0;
		} else {
			tok++;
		}
	}
	return 1;
}

static void drop(tlm_events *ev, struct ev_msg *m)
{
	atomic_fetch_add(&ev->dropped, 1);
	if (m != NULL) {
		free(m->data);
		free(m);
	}
}

/* A message for subject; data (len bytes, NUL-terminated) is taken. */
static struct ev_msg *msg_new(const char *subject, char *data, size_t len)
{
	size_t n = strlen(subject) + 1;
	struct ev_msg *m = data != NULL ? malloc(sizeof(*m) + n) : NULL;

	if (m == NULL) {
		free(data);
		return NULL;
	}
	m->next = NULL;
	m->data = data;
	m->len = len;
	memcpy(m->subject, subject, n);
	return m;
}

/* Whether a message for subject may be made now. */
static int publishable(tlm_events *ev, const char *subject)
{
	return !atomic_load(&ev->paused) && subject != NULL && valid_subject(subject);
}

/* Queues m, or drops (and counts) it; NULL counts as dropped. */
static void enqueue(tlm_events *ev, struct ev_msg *m)
{
	int queued = 0;

	if (m == NULL) {
		drop(ev, NULL);
		return;
	}
	pthread_mutex_lock(&ev->mu);
	if (!ev->stopping && ev->count < EV_QUEUE_MAX && ev->bytes + m->len <= EV_QUEUE_BYTES_MAX) {
		if (ev->tail != NULL)
			ev->tail->next = m;
		else
			ev->head = m;
		ev->tail = m;
		ev->count++;
		ev->bytes += m->len;
		queued = 1;
		pthread_cond_signal(&ev->cond);
	}
	pthread_mutex_unlock(&ev->mu);
	if (!queued)
		drop(ev, m);
}

void tlm_events_publish(tlm_events *ev, const char *subject, json_t *payload)
{
	struct ev_msg *m = NULL;
	char *data;

	if (ev == NULL) {
		json_decref(payload);
		return;
	}
	/* Serialised here, not on the publisher thread: the event must show the
	 * document as it is now, and the caller may go on changing objects the
	 * payload shares with its store. */
	if (payload != NULL && publishable(ev, subject) &&
	    (data = json_dumps(payload, JSON_COMPACT)) != NULL)
		m = msg_new(subject, data, strlen(data));
	json_decref(payload);
	enqueue(ev, m);
}

void tlm_events_publish_text(tlm_events *ev, const char *subject, const char *data, size_t len)
{
	struct ev_msg *m = NULL;
	char *copy;

	if (ev == NULL)
		return;
	if (data != NULL && publishable(ev, subject) && (copy = malloc(len + 1)) != NULL) {
		memcpy(copy, data, len);
		copy[len] = '\0';
		m = msg_new(subject, copy, len);
	}
	enqueue(ev, m);
}

static int map_status(natsConnStatus s)
{
	switch (s) {
	case NATS_CONN_STATUS_CONNECTED: return ST_CONNECTED;
	case NATS_CONN_STATUS_CLOSED: return ST_CLOSED;
	/* We never drain; if libnats does, the connection is still up. */
	case NATS_CONN_STATUS_DRAINING_SUBS:
	case NATS_CONN_STATUS_DRAINING_PUBS: return ST_CONNECTED;
	default: return ST_RECONNECTING;
	}
}

/* Samples natsConnection_Status for tlm_events_state; 1 when connected.
 * "connected" also promises that our subscriptions are registered: after
 * each (re)connect one PING round trip is made, and the server answers it
 * only after the SUBs libnats sent before it. */
static int sample_state(tlm_events *ev)
{
	int st = map_status(natsConnection_Status(ev->nc));

	if (st == ST_CONNECTED &&
	    (atomic_load(&ev->state) != ST_CONNECTED || atomic_load(&ev->confirm))) {
		atomic_store(&ev->confirm, 0);
		if (natsConnection_FlushTimeout(ev->nc, EV_CONFIRM_MS) != NATS_OK) {
			atomic_store(&ev->confirm, 1); /* try again next time */
			st = ST_RECONNECTING;
		}
	}
	if (st == ST_CONNECTED)
		atomic_store(&ev->ever_connected, 1);
	atomic_store(&ev->state, st);
	return st == ST_CONNECTED;
}

/* Pops the next message, waiting up to EV_POLL_MS; *stop when the queue is
 * empty and tlm_events_free asked us to end, *late past its drain budget. */
static struct ev_msg *next_msg(tlm_events *ev, int *stop, int *late)
{
	struct ev_msg *m;
	struct timespec deadline;

	pthread_mutex_lock(&ev->mu);
	if (ev->head == NULL && !ev->stopping) {
		deadline_in(&deadline, EV_POLL_MS);
		pthread_cond_timedwait(&ev->cond, &ev->mu, &deadline);
	}
	m = ev->head;
	if (m != NULL) {
		ev->head = m->next;
		if (ev->head == NULL)
			ev->tail = NULL;
		ev->count--;
		ev->bytes -= m->len;
	}
	*stop = ev->stopping && m == NULL;
	*late = ev->stopping && ms_left(&ev->drain_deadline) <= 0;
	pthread_mutex_unlock(&ev->mu);
	return m;
}

/* Sampling takes libnats' connection lock, which its reconnect thread holds
 * through a whole connect attempt (up to 2 s against a silent host), and a
 * confirmation may wait 1 s for a PONG: so at most once per EV_POLL_MS, not
 * once per message, or an outage would slow the queue to a crawl. */
static int sample_if_due(tlm_events *ev, int up, struct timespec *next)
{
	if (ms_left(next) > 0)
		return up;
	up = sample_state(ev);
	deadline_in(next, EV_POLL_MS);
	return up;
}

static void *publisher_main(void *arg)
{
	tlm_events *ev = arg;
	struct timespec next_sample = { 0, 0 };
	int stop = 0, late = 0, up = 0;

	while (!stop) {
		struct ev_msg *m = next_msg(ev, &stop, &late);

		if (m != NULL && late) {
			drop(ev, m); /* tlm_events_free's budget is spent */
			continue;
		}
		up = sample_if_due(ev, up, &next_sample);
		if (m == NULL)
			continue;
		/* Publishing while not connected would fill libnats' reconnect
		 * buffer and deliver stale events much later; drop instead.
		 * (A message sent in the EV_POLL_MS after a disconnect may
		 * still be buffered that way.) */
		if (!up || atomic_load(&ev->paused) ||
		    natsConnection_Publish(ev->nc, m->subject, m->data, (int)m->len) != NATS_OK) {
			drop(ev, m);
			continue;
		}
		atomic_fetch_add(&ev->published, 1);
		free(m->data);
		free(m);
	}
	return NULL;
}

/* ---- lifecycle ---- */

static int init_locks(tlm_events *ev)
{
	pthread_condattr_t ca;
	int rc = 0;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	/* Waits are timed against CLOCK_MONOTONIC: a wall clock step must not
	 * stretch the drain budget. */
	rc |= pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc |= pthread_mutex_init(&ev->mu, NULL);
	rc |= pthread_mutex_init(&ev->cb_mu, NULL);
	rc |= tlm_nats_life_init(&ev->life);
	rc |= pthread_cond_init(&ev->cond, &ca);
	pthread_condattr_destroy(&ca);
	ev->locks_ready = rc == 0;
	return rc == 0 ? 0 : -1;
}

/* Options of both connects below: where, TLS and credentials, our name. */
static int base_options(natsOptions **out, const tlm_events_opts *opts, tlm_error *err)
{
	tlm_nats_auth auth = { opts->ca_file, opts->cert_file, opts->key_file, opts->creds_file,
			       opts->token };
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	int rc = 0;

	if (s == NATS_OK)
		s = natsOptions_SetURL(o, opts->url);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, "telemachy-serve");
	if (s != NATS_OK) {
		rc = tlm_error_set(err, TLM_ERROR, "NATS options: %s", natsStatus_GetText(s));
		goto done;
	}
	/* A file that cannot be loaded is a bad setting, not NATS being down. */
	rc = tlm_nats_auth_apply(o, opts->url, &auth, err);
done:
	if (rc != 0)
		natsOptions_Destroy(o);
	*out = rc == 0 ? o : NULL;
	return rc;
}

/* With TLS or credentials, one attempt of its own before the real connect:
 * what retrying cannot fix (a certificate or a token refused) stops serve at
 * start with the reason, where the retrying connect would say nothing or
 * "no server available" and run without events.  NATS that is only down
 * (refused, silent) is left to the retrying connect.  The probe has no
 * callbacks, so nothing of libnats' refers to ev afterwards. */
static int probe(const tlm_events_opts *opts, tlm_error *err)
{
	natsConnection *nc = NULL;
	natsOptions *o = NULL;
	char shown[256];
	natsStatus s;
	int rc;

	if (opts->ca_file == NULL && opts->cert_file == NULL && opts->creds_file == NULL &&
	    opts->token == NULL && !tlm_nats_wants_tls(opts->url))
		return 0;
	if ((rc = base_options(&o, opts, err)) != 0)
		return rc;
	s = natsConnection_Connect(&nc, o);
	natsOptions_Destroy(o);
	if (s == NATS_OK) {
		natsConnection_Destroy(nc);
		return 0;
	}
	if (!tlm_nats_refused(s))
		return 0;
	redact_url(opts->url, shown, sizeof(shown));
	return tlm_error_set(err, TLM_ERROR, "NATS: %s refused the connection: %s%s", shown,
			     natsStatus_GetText(s), tlm_nats_refusal(s));
}

/* Connects, or starts retrying in the background when NATS is down. */
static int connect_nats(tlm_events *ev, const tlm_events_opts *opts, tlm_error *err)
{
	natsOptions *o = NULL;
	natsStatus s = NATS_OK;
	int rc;

	if ((rc = probe(opts, err)) != 0 || (rc = base_options(&o, opts, err)) != 0)
		return rc;
	s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, ev);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, EV_RECONNECT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, EV_PING_MS);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_connected, ev);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, on_closed, ev);
	if (s == NATS_OK)
		s = natsConnection_Connect(&ev->nc, o);
	natsOptions_Destroy(o);
	/* Even when connected already, "connected" waits for the publisher
	 * thread to confirm the subscriptions. */
	atomic_store(&ev->state, ST_CONNECTING);
	if (s != NATS_OK && !(s == NATS_NOT_YET_CONNECTED && ev->nc != NULL))
		/* natsStatus_GetText only: libnats' detailed error may quote
		 * the URL, credentials included. */
		rc = tlm_error_set(err, TLM_ERROR, "NATS: %s", natsStatus_GetText(s));
	return rc;
}

static int subscribe_tasks(tlm_events *ev, tlm_error *err)
{
	static const char *const subjects[EV_NSUBS] = { "hi.tasks.*.*.completed",
							"hi.tasks.*.*.failed" };
	natsStatus s = NATS_OK;
	int i;

	/* Subscribing works before the first connect: libnats sends the
	 * subscriptions when it connects, and again on every reconnect. */
	for (i = 0; i < EV_NSUBS && s == NATS_OK; i++) {
		s = natsConnection_Subscribe(&ev->subs[i], ev->nc, subjects[i], on_task_msg, ev);
		if (s == NATS_OK) {
			tlm_nats_life_sub_opened(&ev->life);
			s = natsSubscription_SetOnCompleteCB(ev->subs[i], on_sub_complete, ev);
		}
	}
	if (s == NATS_OK)
		return 0;
	/* libnats closes at once on what retrying cannot fix (TLS wanted by
	 * one side only, bad credentials); subscribing then fails, but the
	 * connection's own error is the one that tells the user why. */
	if (natsConnection_Status(ev->nc) == NATS_CONN_STATUS_CLOSED) {
		const char *text; /* not shown: libnats' text may quote the URL */

		s = natsConnection_GetLastError(ev->nc, &text);
		return tlm_error_set(err, TLM_ERROR, "NATS closed the connection: %s",
				     natsStatus_GetText(s));
	}
	return tlm_error_set(err, TLM_ERROR, "NATS subscribe: %s", natsStatus_GetText(s));
}

int tlm_events_new(tlm_events **out, const char *url, tlm_events_task_cb cb, void *ctx,
		   tlm_error *err)
{
	tlm_events_opts o = TLM_EVENTS_OPTS_INIT;

	o.url = url;
	return tlm_events_new_opts(out, &o, cb, ctx, err);
}

int tlm_events_new_opts(tlm_events **out, const tlm_events_opts *opts, tlm_events_task_cb cb,
			void *ctx, tlm_error *err)
{
	tlm_events *ev = NULL;
	int rc;

	*out = NULL;
	rc = check_url(opts->url, err);
	if (rc != 0)
		goto done;
	ev = calloc(1, sizeof(*ev));
	if (ev == NULL || init_locks(ev) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	ev->cb = cb;
	ev->ctx = ctx;
	rc = connect_nats(ev, opts, err);
	if (rc == 0)
		rc = subscribe_tasks(ev, err);
	if (rc == 0 && pthread_create(&ev->thread, NULL, publisher_main, ev) != 0)
		rc = tlm_error_set(err, TLM_ERROR, "cannot start the NATS publisher thread");
	ev->thread_started = rc == 0;
done:
	if (rc != 0) {
		tlm_events_free(ev);
		ev = NULL;
	}
	*out = ev;
	return rc;
}

void tlm_events_pause(tlm_events *ev, int paused)
{
	if (ev != NULL)
		atomic_store(&ev->paused, paused != 0);
}

const char *tlm_events_state(tlm_events *ev)
{
	int ever;

	if (ev == NULL)
		return "closed";
	ever = atomic_load(&ev->ever_connected);
	switch (atomic_load(&ev->state)) {
	case ST_CONNECTED: return "connected";
	case ST_CLOSED: return "closed";
	default: return ever ? "reconnecting" : "connecting";
	}
}

void tlm_events_stats(tlm_events *ev, uint64_t *published, uint64_t *dropped)
{
	if (published != NULL)
		*published = ev != NULL ? (uint64_t)atomic_load(&ev->published) : 0;
	if (dropped != NULL)
		*dropped = ev != NULL ? (uint64_t)atomic_load(&ev->dropped) : 0;
}

/* Lets the publisher thread hand over what is queued, within the budget. */
static void stop_publisher(tlm_events *ev)
{
	pthread_mutex_lock(&ev->mu);
	ev->stopping = 1;
	deadline_in(&ev->drain_deadline, EV_DRAIN_MS);
	pthread_cond_signal(&ev->cond);
	pthread_mutex_unlock(&ev->mu);
	pthread_join(ev->thread, NULL);
}

static void close_nats(tlm_events *ev)
{
	int i, released;

	if (ev->nc == NULL)
		return;
	if (ev->thread_started) {
		long left = ms_left(&ev->drain_deadline);

		if (natsConnection_Status(ev->nc) == NATS_CONN_STATUS_CONNECTED)
			natsConnection_FlushTimeout(ev->nc, left > 50 ? left : 50);
	}
	/* Close ends the subscriptions' delivery threads and queues the closed
	 * callback behind every other callback of this connection. */
	natsConnection_Close(ev->nc);
	released = tlm_nats_life_wait(&ev->life, EV_CLOSE_WAIT_MS) == 0;
	for (i = 0; i < EV_NSUBS; i++)
		natsSubscription_Destroy(ev->subs[i]);
	natsConnection_Destroy(ev->nc);
	ev->nc = NULL;
	if (!released)
		ev->locks_ready = -1; /* a libnats thread may still use ev: keep it */
}

void tlm_events_free(tlm_events *ev)
{
	struct ev_msg *m, *next;

	if (ev == NULL)
		return;
	if (ev->thread_started)
		stop_publisher(ev);
	close_nats(ev);
	for (m = ev->head; m != NULL; m = next) {
		next = m->next;
		free(m->data);
		free(m);
	}
	ev->head = ev->tail = NULL;
	if (ev->locks_ready < 0)
		return; /* leaked on purpose, see close_nats */
	if (ev->locks_ready) {
		pthread_mutex_destroy(&ev->mu);
		pthread_mutex_destroy(&ev->cb_mu);
		pthread_cond_destroy(&ev->cond);
		tlm_nats_life_destroy(&ev->life);
	}
	free(ev);
}
