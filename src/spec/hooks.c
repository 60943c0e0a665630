/* The "hooks" section (docs/hooks.md): event names, the webhook URL rule and
 * the decoding of each entry. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "spec/spec_internal.h"

static const char *const event_names[] = { "task_completed",  "task_failed", "task_skipped",
					   "run_completed",   "run_failed",  "run_cancelled",
					   "teardown_failed", NULL };
static const char *const hook_keys[] = { "event",       "command",         "url",
					 "secret_file", "timeout_seconds", NULL };

const char *tlm_hook_event_name(tlm_hook_event e)
{
	return (unsigned)e < TLM_HOOK_EVENTS ? event_names[e] : "?";
}

int tlm_hook_event_parse(const char *name, tlm_hook_event *out)
{
	int i;

	for (i = 0; event_names[i]; i++)
		if (strcmp(name, event_names[i]) == 0) {
			*out = (tlm_hook_event)i;
			return 0;
		}
	return TLM_EINVALID;
}

/* 127.0.0.0/8 written as a dotted quad, "localhost", or [::1]. */
static int loopback_host(const char *h, size_t n)
{
	unsigned a, b, c, d;
	char buf[64], tail;

	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return 1;
	if (n == 5 && memcmp(h, "[::1]", 5) == 0)
		return 1;
	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, h, n);
	buf[n] = '\0';
	return sscanf(buf, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 &&
	       b < 256 && c < 256 && d < 256 && strspn(buf, "0123456789.") == n;
}

int tlm_hook_url_check(const char *url, char *why, size_t n)
{
	const char *auth, *end, *host_end;
	int tls;

	if (strncasecmp(url, "https://", 8) == 0) {
		tls = 1;
		auth = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		tls = 0;
		auth = url + 7;
	} else {
		snprintf(why, n, "must start with https:// (or http:// to a loopback host)");
		return TLM_EINVALID;
	}
	if (strlen(url) > TLM_SPEC_HOOK_URL_MAX) {
		snprintf(why, n, "is longer than %d bytes", TLM_SPEC_HOOK_URL_MAX);
		return TLM_EINVALID;
	}
	if (strpbrk(url, " \t\r\n") != NULL) {
		snprintf(why, n, "must not contain white space");
		return TLM_EINVALID;
	}
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		/* It would be logged with the URL; a receiver authenticates
		 * the sender by the signature (secret_file). */
		snprintf(why, n, "must not hold a user or password; use secret_file to sign");
		return TLM_EINVALID;
	}
	if (*auth == '[') {
		const char *rb = memchr(auth, ']', (size_t)(end - auth));

		host_end = rb != NULL ? rb + 1 : end;
	} else {
		host_end = auth + strcspn(auth, ":/?#");
	}
	if (host_end == auth) {
		snprintf(why, n, "has no host");
		return TLM_EINVALID;
	}
	if (!tls && !loopback_host(auth, (size_t)(host_end - auth))) {
		snprintf(why, n,
			 "must use https:// for a host that is not loopback (127.0.0.0/8, "
			 "[::1], localhost)");
		return TLM_EINVALID;
	}
	return 0;
}

static void decode_command(tlm_spec_ctx *ctx, const tlm_node *v, const char *what, tlm_spec_hook *h)
{
	const tlm_node *a;
	uint32_t i;

	if (!tlm_field__is_seq(ctx, v, "\"command\" of a hook"))
		return;
	if (v->n == 0 || v->n > TLM_SPEC_HOOK_ARGS_MAX) {
		tlm_spec__report(ctx, v, "hook-command",
				 "\"command\" of %s must have 1 to %d entries (the program, then "
				 "its arguments), got %u",
				 what, TLM_SPEC_HOOK_ARGS_MAX, v->n);
		return;
	}
	h->argv = tlm_arena_calloc(ctx->spec->arena, v->n + 1, sizeof(*h->argv));
	if (h->argv == NULL) {
		ctx->oom = 1;
		return;
	}
	for (i = 0, a = tlm_node__first(v); i < v->n; i++, a = tlm_node__next(a)) {
		if (tlm_field__scalar(ctx, a, "\"command\" entries", &h->argv[h->nargv]) != 0)
			continue;
		if (h->nargv == 0 && h->argv[0][0] == '\0') {
			tlm_spec__report(ctx, a, "hook-command",
					 "the program of %s must not be empty", what);
			continue;
		}
		h->nargv++;
	}
	if (h->nargv != v->n)
		h->nargv = 0; /* reported; the spec will not load */
}

static void decode_hook(tlm_spec_ctx *ctx, const tlm_node *map, size_t idx, tlm_spec_hook *h)
{
	char what[64], why[160];
	const tlm_node *cmd = tlm_node__get(map, "command"), *url = tlm_node__get(map, "url");
	const char *ev = NULL;
	long timeout = TLM_SPEC_HOOK_TIMEOUT_DEFAULT;

	h->pos = tlm_node__pos(map);
	snprintf(what, sizeof(what), "hooks[%zu]", idx);
	tlm_field__keys(ctx, map, what, hook_keys);
	if (tlm_field__string(ctx, map, "event", what, 1, &ev) == 0 &&
	    tlm_hook_event_parse(ev, &h->event) != 0)
		tlm_spec__report(ctx, tlm_node__get(map, "event"), "enum",
				 "\"event\" of %s must be one of task_completed, task_failed, "
				 "task_skipped, run_completed, run_failed, run_cancelled, "
				 "teardown_failed, got \"%s\"",
				 what, ev);
	if (cmd != NULL && url != NULL) {
		tlm_spec__report(ctx, url, "hook-kind",
				 "%s has both \"command\" and \"url\"; a hook is one or the other",
				 what);
	} else if (cmd == NULL && url == NULL) {
		tlm_spec__report(ctx, map, "hook-kind",
				 "%s needs a \"command\" (a list: program and arguments) or a "
				 "\"url\" (a webhook)",
				 what);
	} else if (cmd != NULL) {
		decode_command(ctx, cmd, what, h);
		if (tlm_node__get(map, "secret_file") != NULL)
			tlm_spec__report(ctx, tlm_node__get(map, "secret_file"), "hook-kind",
					 "\"secret_file\" of %s signs webhooks; a command hook "
					 "has none",
					 what);
	} else if (tlm_field__string(ctx, map, "url", what, 1, &h->url) == 0 &&
		   tlm_hook_url_check(h->url, why, sizeof(why)) != 0) {
		tlm_spec__report(ctx, url, "hook-url", "\"url\" of %s %s", what, why);
	}
	if (url != NULL &&
	    tlm_field__string(ctx, map, "secret_file", what, 0, &h->secret_file) == 0 &&
	    h->secret_file[0] != '/')
		tlm_spec__report(ctx, tlm_node__get(map, "secret_file"), "hook-secret-file",
				 "\"secret_file\" of %s must be an absolute path, got \"%s\"", what,
				 h->secret_file);
	tlm_field__int(ctx, map, "timeout_seconds", what, 1, TLM_SPEC_HOOK_TIMEOUT_MAX, &timeout);
	h->timeout_seconds = timeout;
}

void tlm_spec__decode_hooks(tlm_spec_ctx *ctx, const tlm_node *seq)
{
	tlm_spec *s = ctx->spec;
	const tlm_node *v;
	uint32_t i;

	if (!tlm_field__is_seq(ctx, seq, "\"hooks\""))
		return;
	if (seq->n > TLM_SPEC_HOOKS_MAX) {
		tlm_spec__report(ctx, seq, "too-many", "\"hooks\" has %u entries; at most %d",
				 seq->n, TLM_SPEC_HOOKS_MAX);
		return;
	}
	s->hooks = tlm_arena_calloc(s->arena, seq->n ? seq->n : 1, sizeof(*s->hooks));
	if (s->hooks == NULL) {
		ctx->oom = 1;
		return;
	}
	for (i = 0, v = tlm_node__first(seq); i < seq->n; i++, v = tlm_node__next(v))
		if (tlm_field__is_map(ctx, v, "a hook"))
			decode_hook(ctx, v, i, &s->hooks[s->nhooks++]);
}
