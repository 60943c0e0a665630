/* The queue and the dispatcher thread: the engine's thread only copies an
 * event in (tlm_hooks_on_event), this thread runs the hooks, in order, so
 * no hook can delay or break the run (docs/hooks.md, "Delivery"). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hooks/hooks_internal.h"
#include "telemachy/metrics.h"
#include "util/esc.h"
#include "util/opts.h"

struct tlm_hooks {
	tlm_spec_hook *hooks; /* copies; their strings in strings[] */
	size_t nhooks;
	char **strings;
	size_t nstrings;
	char **env_base;
	tlm_hooks_log_fn log;
	void *log_ctx;
	size_t queue_max;
	tlm_journal *journal;                /* the ledger (ledger.c); NULL: none */
	char (*keys)[TLM_HOOKS_KEY_LEN + 1]; /* per hook, with a journal */

	pthread_mutex_t mu;
	pthread_cond_t cv;   /* an item queued, or stop */
	pthread_cond_t idle; /* the dispatcher finished an item */
	tlm_hooks_item *head, *tail;
	size_t queued;
	int busy;   /* the dispatcher is running an item's hooks */
	int closed; /* drained: no more events */
	int stop;   /* the thread must return once the queue is empty */
	atomic_int abort_now;
	int started;
	pthread_t thread;
	tlm_hooks_stats stats;
};

static void say(tlm_hooks *h, tlm_engine_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(tlm_hooks *h, tlm_engine_level level, const char *fmt, ...)
{
	char msg[TLM_HOOKS_LOG_MAX + 1024];
	va_list ap;

	if (h->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	h->log(h->log_ctx, level, msg);
}

static const char *kind_name(const tlm_spec_hook *hk)
{
	return hk->url != NULL ? "webhook" : "command";
}

/* What a hook is, for messages: the program or the URL, escaped. */
static void describe(const tlm_spec_hook *hk, char *buf, size_t cap)
{
	tlm_esc_str(buf, cap, hk->url != NULL ? hk->url : hk->argv[0], NULL);
}

static int run_one(tlm_hooks *h, const tlm_spec_hook *hk, const tlm_hooks_item *it)
{
	const char *ev = tlm_hook_event_name(it->event);
	char why[512] = "", what[256], idesc[256];
	char *out = NULL;
	int rc, attempts = 0;

	describe(hk, what, sizeof(what));
	tlm_esc_str(idesc, sizeof(idesc), it->id, NULL);
	if (hk->url != NULL)
		rc = tlm_hooks__webhook(hk, it, &h->abort_now, &attempts, why, sizeof(why));
	else
		rc = tlm_hooks__command(hk, it, h->env_base, &h->abort_now, &out, why, sizeof(why));
	tlm_metrics_hook(ev, kind_name(hk), rc == 0);
	pthread_mutex_lock(&h->mu);
	if (rc == 0)
		h->stats.delivered++;
	else
		h->stats.failed++;
	pthread_mutex_unlock(&h->mu);
	if (rc == 0)
		say(h, TLM_ENGINE_DEBUG, "hook %s %s: delivered event %s", ev, what, idesc);
	else
		say(h, TLM_ENGINE_WARN, "hook %s %s failed for event %s: %s", ev, what, idesc, why);
	if (out != NULL && out[0] != '\0') {
		char *esc = malloc(TLM_HOOKS_LOG_MAX + 1);
		int cut = 0;

		/* A hook's output is text from outside: escaped, so it can
		 * neither forge a log line nor drive a terminal. */
		if (esc != NULL) {
			tlm_esc_str(esc, TLM_HOOKS_LOG_MAX + 1, out, &cut);
			say(h, rc == 0 ? TLM_ENGINE_INFO : TLM_ENGINE_WARN,
			    "hook %s %s output: %s%s", ev, what, esc, cut ? " [cut]" : "");
			free(esc);
		}
	}
	free(out);
	return rc;
}

static void count_dropped(tlm_hooks *h)
{
	tlm_metrics_hook_dropped();
	pthread_mutex_lock(&h->mu);
	h->stats.dropped++;
	pthread_mutex_unlock(&h->mu);
}

/* Hook i and it, remembering deliveries in the journal: a hook the journal
 * says had it is skipped (at least once, not more than needed); one it
 * cannot tell about runs (at least once). */
static void deliver_to(tlm_hooks *h, size_t i, const tlm_hooks_item *it)
{
	const char *ev = tlm_hook_event_name(it->event);
	char why[512], idesc[256];
	int had = 0;

	tlm_esc_str(idesc, sizeof(idesc), it->id, NULL);
	if (h->journal != NULL &&
	    (had = tlm_hooks__had(h->journal, it, h->keys[i], why, sizeof(why))) < 0)
		say(h, TLM_ENGINE_WARN,
		    "hook %s: the journal cannot tell whether event %s was "
		    "delivered (%s): delivering it",
		    ev, idesc, why);
	if (had == 1) {
		say(h, TLM_ENGINE_DEBUG, "hook %s: event %s was delivered before", ev, idesc);
		return;
	}
	if (run_one(h, &h->hooks[i], it) == 0 && h->journal != NULL &&
	    tlm_hooks__note(h->journal, it, h->keys[i], why, sizeof(why)) != 0)
		say(h, TLM_ENGINE_WARN,
		    "hook %s: event %s was delivered, the journal does not say so (%s): a "
		    "resume may deliver it again",
		    ev, idesc, why);
}

static void deliver(tlm_hooks *h, const tlm_hooks_item *it)
{
	size_t i;

	for (i = 0; i < h->nhooks; i++)
		if (h->hooks[i].event == it->event) {
			if (atomic_load(&h->abort_now))
				count_dropped(h);
			else
				deliver_to(h, i, it);
		}
}

/* A run picked up again: its journaled events, each to the hooks that have
 * not had it, before what this process sees. */
static void replay(tlm_hooks *h, const tlm_hooks_item *marker)
{
	char why[512] = "", run[64];
	size_t dropped = 0, n = 0;
	tlm_hooks_item *it = tlm_hooks__replay(h->journal, marker, &dropped, why, sizeof(why));

	tlm_esc_str(run, sizeof(run), marker->run, NULL);
	if (why[0] != '\0')
		say(h, TLM_ENGINE_WARN,
		    "hooks: run %s's journaled events cannot be read (%s): events an earlier "
		    "process did not deliver are not delivered now",
		    run, why);
	while (dropped-- > 0)
		count_dropped(h);
	while (it != NULL) {
		tlm_hooks_item *next = it->next;

		n++;
		deliver(h, it);
		tlm_hooks__item_free(it);
		it = next;
	}
	say(h, TLM_ENGINE_DEBUG, "hooks: run %s: %zu journaled events looked at", run, n);
}

static void *dispatcher(void *arg)
{
	tlm_hooks *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		tlm_hooks_item *it;

		while (h->head == NULL && !h->stop)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->head == NULL)
			break;
		it = h->head;
		h->head = it->next;
		if (h->head == NULL)
			h->tail = NULL;
		h->queued--;
		h->busy = 1;
		pthread_mutex_unlock(&h->mu);
		if (it->replay)
			replay(h, it);
		else
			deliver(h, it);
		tlm_hooks__item_free(it);
		pthread_mutex_lock(&h->mu);
		h->busy = 0;
		pthread_cond_broadcast(&h->idle);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static char *keep(tlm_hooks *h, const char *s)
{
	char *c;

	if (s == NULL)
		return NULL;
	if ((c = strdup(s)) == NULL)
		return NULL;
	h->strings[h->nstrings++] = c;
	return c;
}

static int copy_hooks(tlm_hooks *h, const tlm_spec_hook *src, size_t n)
{
	size_t i, j, nstr = 0;

	for (i = 0; i < n; i++)
		nstr += src[i].nargv + 2;
	h->hooks = calloc(n ? n : 1, sizeof(*h->hooks));
	h->strings = calloc(nstr ? nstr : 1, sizeof(*h->strings));
	if (h->hooks == NULL || h->strings == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		tlm_spec_hook *d = &h->hooks[h->nhooks++];

		*d = src[i];
		d->argv = NULL;
		if (src[i].url != NULL) {
			if ((d->url = keep(h, src[i].url)) == NULL ||
			    (src[i].secret_file != NULL &&
			     (d->secret_file = keep(h, src[i].secret_file)) == NULL))
				return -1;
			continue;
		}
		d->secret_file = NULL;
		d->argv = calloc(src[i].nargv + 1, sizeof(*d->argv));
		if (d->argv == NULL)
			return -1;
		for (j = 0; j < src[i].nargv; j++)
			if ((d->argv[j] = keep(h, src[i].argv[j])) == NULL)
				return -1;
		if (d->timeout_seconds <= 0)
			d->timeout_seconds = TLM_SPEC_HOOK_TIMEOUT_DEFAULT;
	}
	return 0;
}

static void free_parts(tlm_hooks *h)
{
	size_t i;

	for (i = 0; i < h->nhooks; i++)
		free((void *)h->hooks[i].argv);
	for (i = 0; i < h->nstrings; i++)
		free(h->strings[i]);
	free(h->strings);
	free(h->hooks);
	tlm_hooks__env_free(h->env_base);
	free(h->keys);
}

/* Each hook's key in the journal (ledger.c): identical hooks are told
 * apart by how many come before. */
static int make_keys(tlm_hooks *h)
{
	char(*base)[TLM_HOOKS_KEY_LEN + 1];
	size_t i, k;
	int rc = 0;

	h->keys = calloc(h->nhooks ? h->nhooks : 1, sizeof(*h->keys));
	base = calloc(h->nhooks ? h->nhooks : 1, sizeof(*base));
	for (i = 0; rc == 0 && h->keys != NULL && base != NULL && i < h->nhooks; i++)
		rc = tlm_hooks__key(&h->hooks[i], 0, base[i]);
	for (i = 0; rc == 0 && h->keys != NULL && base != NULL && i < h->nhooks; i++) {
		unsigned occurrence = 0;

		for (k = 0; k < i; k++)
			occurrence += strcmp(base[k], base[i]) == 0;
		rc = tlm_hooks__key(&h->hooks[i], occurrence, h->keys[i]);
	}
	free(base);
	return h->keys == NULL || base == NULL ? -1 : rc;
}

int tlm_hooks_new(tlm_hooks **out, const tlm_hooks_opts *o, tlm_error *err)
{
	tlm_hooks *h;
	int rc;

	*out = NULL;
	if ((rc = tlm_opts_version_check(o->version, TLM_HOOKS_OPTS_VERSION, "hooks",
					 "TLM_HOOKS_OPTS_INIT", err)) != 0)
		return rc;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return tlm_error_set(err, TLM_ERROR, "hooks: out of memory");
	h->log = o->log;
	h->log_ctx = o->log_ctx;
	h->queue_max = o->queue_max ? o->queue_max : TLM_HOOKS_QUEUE_DEFAULT;
	h->journal = o->journal;
	atomic_init(&h->abort_now, 0);
	if (copy_hooks(h, o->hooks, o->nhooks) != 0 || (h->journal != NULL && make_keys(h) != 0) ||
	    (h->env_base = tlm_hooks__env_base()) == NULL) {
		free_parts(h);
		free(h);
		return tlm_error_set(err, TLM_ERROR, "hooks: out of memory");
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	pthread_cond_init(&h->idle, NULL);
	if ((rc = pthread_create(&h->thread, NULL, dispatcher, h)) != 0) {
		tlm_hooks_free(h);
		return tlm_error_set(err, TLM_ERROR, "hooks: cannot start a thread: %s",
				     strerror(rc));
	}
	h->started = 1;
	*out = h;
	return 0;
}

static int listened(const tlm_hooks *h, tlm_hook_event e)
{
	size_t i;

	for (i = 0; i < h->nhooks; i++)
		if (h->hooks[i].event == e)
			return 1;
	return 0;
}

void tlm_hooks_on_event(void *ctx, const tlm_engine_event *ev)
{
	tlm_hooks *h = ctx;
	tlm_hooks_item *it;
	int ignored, full, closed;

	if (h == NULL)
		return;
	/* A run picked up again may have events an earlier process did not
	 * deliver: the dispatcher reads them first. */
	if (ev->kind == TLM_ENGINE_EV_RUN_STARTED && h->journal != NULL && ev->run_id != NULL &&
	    ev->state != NULL &&
	    (strcmp(ev->state, "resumed") == 0 || strcmp(ev->state, "teardown") == 0)) {
		ignored = 0;
		it = tlm_hooks__replay_marker(ev);
	} else {
		it = tlm_hooks__item_new(ev, &ignored);
	}
	if (it == NULL) {
		if (!ignored) {
			tlm_metrics_hook_dropped();
			say(h, TLM_ENGINE_WARN, "hooks: an event was dropped: out of memory");
		}
		return;
	}
	if (!it->replay && !listened(h, it->event)) {
		tlm_hooks__item_free(it);
		return;
	}
	pthread_mutex_lock(&h->mu);
	closed = h->closed;
	full = closed || h->queued >= h->queue_max;
	if (!full) {
		if (h->tail != NULL)
			h->tail->next = it;
		else
			h->head = it;
		h->tail = it;
		h->queued++;
		pthread_cond_signal(&h->cv);
	} else {
		h->stats.dropped++;
	}
	pthread_mutex_unlock(&h->mu);
	if (full) {
		char id[256];

		tlm_metrics_hook_dropped();
		tlm_esc_str(id, sizeof(id), it->id, NULL);
		if (closed)
			say(h, TLM_ENGINE_WARN, "hooks: event %s dropped: the hooks were drained",
			    id);
		else
			say(h, TLM_ENGINE_WARN,
			    "hooks: event %s dropped: %zu events are waiting already", id,
			    h->queue_max);
		tlm_hooks__item_free(it);
	}
}

int tlm_hooks_drain(tlm_hooks *h, long deadline_ms)
{
	struct timespec until;
	int cut = 0;

	if (h == NULL)
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += deadline_ms / 1000;
	until.tv_nsec += (deadline_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->mu);
	h->closed = 1;
	while ((h->head != NULL || h->busy) &&
	       pthread_cond_timedwait(&h->idle, &h->mu, &until) != ETIMEDOUT)
		;
	if (h->head != NULL || h->busy) {
		tlm_hooks_item *it = h->head;

		cut = 1;
		atomic_store(&h->abort_now, 1);
		for (; it != NULL; it = h->head) {
			size_t i;

			h->head = it->next;
			for (i = 0; !it->replay && i < h->nhooks; i++)
				if (h->hooks[i].event == it->event) {
					h->stats.dropped++;
					tlm_metrics_hook_dropped();
				}
			tlm_hooks__item_free(it);
		}
		h->tail = NULL;
		h->queued = 0;
	}
	h->stop = 1;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (cut)
		say(h, TLM_ENGINE_WARN,
		    "hooks: stopped after %ld ms at exit; hooks still running were stopped and the "
		    "events still waiting dropped",
		    deadline_ms);
	return cut;
}

long tlm_hooks_max_timeout_ms(const tlm_hooks *h)
{
	long m = 0;
	size_t i;

	for (i = 0; h != NULL && i < h->nhooks; i++)
		if (h->hooks[i].timeout_seconds * 1000L > m)
			m = h->hooks[i].timeout_seconds * 1000L;
	return m;
}

void tlm_hooks_stats_get(tlm_hooks *h, tlm_hooks_stats *st)
{
	pthread_mutex_lock(&h->mu);
	*st = h->stats;
	pthread_mutex_unlock(&h->mu);
}

void tlm_hooks_free(tlm_hooks *h)
{
	if (h == NULL)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->mu);
		int drained = h->stop;
		pthread_mutex_unlock(&h->mu);
		if (!drained)
			tlm_hooks_drain(h, 0);
		pthread_join(h->thread, NULL);
	}
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	pthread_cond_destroy(&h->idle);
	free_parts(h);
	free(h);
}

int tlm_hooks_parse_arg(const char *arg, tlm_spec_hook *hook, const char *argv_store[4],
			tlm_error *err)
{
	const char *eq = strchr(arg, '=');
	char name[32];
	size_t n = eq != NULL ? (size_t)(eq - arg) : 0;

	memset(hook, 0, sizeof(*hook));
	if (eq == NULL || n == 0 || n >= sizeof(name) || eq[1] == '\0')
		return tlm_error_set(err, TLM_EINVALID,
				     "--hook must be EVENT=COMMAND (EVENT one of task_completed, "
				     "task_failed, task_skipped, run_completed, run_failed, "
				     "run_cancelled, teardown_failed)");
	memcpy(name, arg, n);
	name[n] = '\0';
	if (tlm_hook_event_parse(name, &hook->event) != 0)
		return tlm_error_set(err, TLM_EINVALID,
				     "--hook: unknown event \"%.31s\"; use one of task_completed, "
				     "task_failed, task_skipped, run_completed, run_failed, "
				     "run_cancelled, teardown_failed",
				     name);
	argv_store[0] = "/bin/sh";
	argv_store[1] = "-c";
	argv_store[2] = eq + 1;
	argv_store[3] = NULL;
	hook->argv = argv_store;
	hook->nargv = 3;
	hook->timeout_seconds = TLM_SPEC_HOOK_TIMEOUT_DEFAULT;
	return 0;
}
