/* Hooks at least once (docs/hooks.md, "At least once"): what each hook is
 * called in the journal, whether it had an event, and the run's journaled
 * events read back as engine events when a run is picked up again.  Only
 * the dispatcher thread calls these, on the journal connection it was
 * given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hooks/hooks_internal.h"

/* The hook's key: the SHA-256 of its event, what it runs (kind, argv or
 * URL) and how many identical hooks come before it, so a hook keeps its
 * key across processes and lists, and two identical hooks both run. */
int tlm_hooks__key(const tlm_spec_hook *hk, unsigned occurrence, char key[TLM_HOOKS_KEY_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	const char *ev;
	char n[16];
	size_t k;
	int ok;

	if (c == NULL)
		return -1;
	snprintf(n, sizeof(n), "%u", occurrence);
	ev = tlm_hook_event_name(hk->event);
	ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, ev, strlen(ev) + 1) &&
	     EVP_DigestUpdate(c, hk->url != NULL ? "url" : "command", hk->url != NULL ? 4 : 8);
	if (hk->url != NULL)
		ok = ok && EVP_DigestUpdate(c, hk->url, strlen(hk->url) + 1);
	for (k = 0; hk->url == NULL && k < hk->nargv; k++)
		ok = ok && EVP_DigestUpdate(c, hk->argv[k], strlen(hk->argv[k]) + 1);
	ok = ok && EVP_DigestUpdate(c, n, strlen(n)) && EVP_DigestFinal_ex(c, md, &len) == 1 &&
	     len * 2 >= TLM_HOOKS_KEY_LEN;
	EVP_MD_CTX_free(c);
	if (!ok)
		return -1;
	for (i = 0; i < TLM_HOOKS_KEY_LEN / 2; i++)
		snprintf(key + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int tlm_hooks__had(tlm_journal *j, const tlm_hooks_item *it, const char *key, char *why,
		   size_t whycap)
{
	tlm_error err = TLM_ERROR_INIT;
	int had = 0;

	if (tlm_journal_delivery_get(j, it->run, it->id, key, &had, &err) != 0) {
		snprintf(why, whycap, "%s", err.message);
		return -1;
	}
	return had;
}

int tlm_hooks__note(tlm_journal *j, const tlm_hooks_item *it, const char *key, char *why,
		    size_t whycap)
{
	tlm_error err = TLM_ERROR_INIT;

	if (tlm_journal_delivery_put(j, it->run, it->id, key, &err) != 0) {
		snprintf(why, whycap, "%s", err.message);
		return -1;
	}
	return 0;
}

typedef struct replay {
	const char *run, *workflow;
	tlm_hooks_item *head, *tail;
	size_t n, dropped;
} replay;

static tlm_engine_event_kind kind_of(const char *word)
{
	return strcmp(word, "task") == 0              ? TLM_ENGINE_EV_TASK
	       : strcmp(word, "teardown_failed") == 0 ? TLM_ENGINE_EV_TEARDOWN_FAILED
						      : TLM_ENGINE_EV_RUN_ENDED;
}

static int on_event(const tlm_journal_event *je, void *ctx)
{
	replay *r = ctx;
	tlm_engine_event ev;
	tlm_hooks_item *it;
	int ignored;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind_of(je->kind);
	ev.run_id = r->run;
	ev.workflow = r->workflow;
	ev.team = je->team;
	ev.name = je->name;
	ev.state = je->state;
	ev.message = je->message;
	ev.attempt = je->attempt;
	ev.count = je->count > 0 ? (size_t)je->count : 0;
	ev.at_ms = je->at_ms;
	if ((it = tlm_hooks__item_new(&ev, &ignored)) == NULL) {
		r->dropped += !ignored;
		return 0;
	}
	if (r->tail != NULL)
		r->tail->next = it;
	else
		r->head = it;
	r->tail = it;
	r->n++;
	return 0;
}

tlm_hooks_item *tlm_hooks__replay(tlm_journal *j, const tlm_hooks_item *start, size_t *dropped,
				  char *why, size_t whycap)
{
	replay r = { start->run, start->workflow, NULL, NULL, 0, 0 };
	tlm_error err = TLM_ERROR_INIT;

	why[0] = '\0';
	if (tlm_journal_events(j, start->run, on_event, &r, &err) != 0)
		snprintf(why, whycap, "%s", err.message);
	*dropped = r.dropped;
	return r.head;
}
