/* Fault injection for the built-in control plane (docs/serve.md, "Fault injection").
 *
 * Faults live in one fixed array, in the order they were added: that order is
 * their precedence when several match one request, and a fixed array means
 * tlm_chaos_check() (called on every request) never allocates and costs
 * O(number of faults).  One mutex guards everything; nothing under it blocks
 * or allocates except adding a fault and listing. */
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/chaos.h"

/* Caps on what clients feed in: faults come over REST. */
#define MAX_FAULTS 256  /* listed faults, used-up ones included */
#define METHOD_MAX 15   /* longest method in a route */
#define PATH_MAX_  240  /* longest path pattern in a route */
#define ROUTE_MAX  256  /* longest route parameter */
#define SPEC_MAX   1024 /* longest --fault spec */
#define NUM_MAX    20   /* longest number in a spec value */

#define CHAOS_PREFIX "/v1/chaos"

typedef enum { K_ROUTE, K_NTH, K_COUNT, K_STATUS, K_RETRY_AFTER, K_MS, K_SECONDS, K_N } key_id;
typedef enum { KIND_ROUTE, KIND_UINT, KIND_SECONDS } key_kind;

#define T(type)       (1u << (type))
#define REQUEST_TYPES (T(TLM_FAULT_FAIL) | T(TLM_FAULT_DELAY) | T(TLM_FAULT_DROP))
#define WINDOW_TYPES  (T(TLM_FAULT_REFUSE) | T(TLM_FAULT_NATS_OFF))

/* Every parameter, which types take it and the range of its value.  The
 * range of "seconds" depends on the type and is checked in build_fault(). */
static const struct keydef {
	const char *name;
	key_kind kind;
	unsigned types;
	uint64_t min, max;
} KEYS[K_N] = {
	[K_ROUTE] = { "route", KIND_ROUTE, REQUEST_TYPES, 0, 0 },
	[K_NTH] = { "nth", KIND_UINT, REQUEST_TYPES, 1, 1000000000 },
	[K_COUNT] = { "count", KIND_UINT, REQUEST_TYPES, 0, 1000000000 },
	[K_STATUS] = { "status", KIND_UINT, T(TLM_FAULT_FAIL), 400, 599 },
	[K_RETRY_AFTER] = { "retry_after", KIND_UINT, T(TLM_FAULT_FAIL), 0, 86400 },
	[K_MS] = { "ms", KIND_UINT, T(TLM_FAULT_DELAY), 0, 300000 },
	[K_SECONDS] = { "seconds", KIND_SECONDS, WINDOW_TYPES, 0, 86400 },
};

static const struct typedef_ {
	const char *name;
	tlm_fault_type type;
	const char *keys; /* for messages */
} TYPES[] = {
	{ "fail", TLM_FAULT_FAIL, "route, nth, count, status, retry_after" },
	{ "delay", TLM_FAULT_DELAY, "route, nth, count, ms" },
	{ "drop", TLM_FAULT_DROP, "route, nth, count" },
	{ "refuse", TLM_FAULT_REFUSE, "seconds" },
	{ "nats-off", TLM_FAULT_NATS_OFF, "seconds" },
};
#define NTYPES (sizeof(TYPES) / sizeof(TYPES[0]))

/* Parameters as given, before defaults: one front end per form fills it. */
typedef struct params {
	unsigned given; /* bit per key_id */
	char route[ROUTE_MAX + 1];
	uint64_t num[K_N];
	double seconds;
} params;

typedef struct fault {
	char id[24];
	tlm_fault_type type;
	const char *type_name;
	char method[METHOD_MAX + 1]; /* "" when the fault has no route */
	char path[PATH_MAX_ + 1];
	uint64_t nth, count;
	uint64_t matched; /* matching calls seen while active */
	uint64_t fired;   /* calls this fault acted on */
	int status;
	unsigned retry_after, ms;
	double seconds, until; /* windows: until = 0 means no end */
	int active;
} fault;

struct tlm_chaos {
	pthread_mutex_t mu;
	uint64_t next_id; /* ids are never reused, so a stale id can not hit a new fault */
	unsigned refuses; /* refuse faults ever added, removed ones included */
	size_t n;
	fault faults[MAX_FAULTS];
};

/* Windows are measured on the monotonic clock: a wall-clock step must not
 * end or stretch a refuse window. */
static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tlm_chaos_new(tlm_chaos **out)
{
	tlm_chaos *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return TLM_ERROR;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return TLM_ERROR;
	}
	c->next_id = 1;
	*out = c;
	return 0;
}

void tlm_chaos_free(tlm_chaos *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ---- routes ---- */

static int bad_path_char(const char *seg, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)seg[i] <= ' ' || seg[i] == 0x7f || seg[i] == '?' ||
		    seg[i] == '#')
			return 1;
	return 0;
}

/* Checks the path pattern of a route and copies it to out: absolute, no
 * query, '*' only as a whole segment ("*" = one segment) or a final "**"
 * (any rest).  A segment "{name}", as the contract writes paths, is taken as
 * "*", so a route copied from there matches. */
static int copy_path_pattern(char *out, const char *path, tlm_error *err)
{
	const char *seg = path;

	if (path[0] != '/')
		return tlm_error_set(err, TLM_EINVALID, "the path must start with '/'");
	if (strlen(path) > PATH_MAX_)
		return tlm_error_set(err, TLM_EINVALID, "the path is longer than %d characters",
				     PATH_MAX_);
	while (*seg == '/') {
		size_t len = strcspn(++seg, "/");
		int braces = len >= 2 && seg[0] == '{' && seg[len - 1] == '}';

		if (bad_path_char(seg, len))
			return tlm_error_set(
				err, TLM_EINVALID,
				"the path must not contain spaces, control characters, "
				"'?' or '#' (query strings are never matched)");
		if (len == 2 && seg[0] == '*' && seg[1] == '*' && seg[2] != '\0')
			return tlm_error_set(err, TLM_EINVALID, "\"**\" may only end the path");
		if (memchr(seg, '*', len) &&
		    !(len == 1 || (len == 2 && seg[0] == '*' && seg[1] == '*')))
			return tlm_error_set(err, TLM_EINVALID,
					     "'*' must be a whole path segment (\"*\" or a final "
					     "\"**\")");
		*out++ = '/';
		memcpy(out, braces ? "*" : seg, braces ? 1 : len);
		out += braces ? 1 : len;
		seg += len;
	}
	*out = '\0';
	return 0;
}

/* Splits "METHOD /path" (or "/path", meaning any method) into f. */
static int parse_route(fault *f, const char *route, tlm_error *err)
{
	const char *p = route, *sp;
	size_t mlen, i;

	if (route[0] == '/') {
		strcpy(f->method, "*");
	} else {
		sp = strpbrk(route, " \t");
		mlen = sp ? (size_t)(sp - route) : strlen(route);
		if (sp == NULL || mlen > METHOD_MAX)
			return tlm_error_set(err, TLM_EINVALID,
					     "expected \"METHOD /path\", e.g. \"POST /v1/agents\"");
		for (i = 0; i < mlen; i++) {
			char ch = route[i];

			if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			      (ch == '*' && mlen == 1)))
				return tlm_error_set(err, TLM_EINVALID,
						     "the method must be letters or \"*\"");
			f->method[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
		}
		f->method[mlen] = '\0';
		p = sp + strspn(sp, " \t");
	}
	return copy_path_pattern(f->path, p, err);
}

/* Matches a request path (its query string ignored) against a pattern
 * made by copy_path_pattern().  No allocation: this is the hot path. */
static int path_matches(const char *pat, const char *path)
{
	for (;;) {
		size_t plen, slen;

		if (strcmp(pat, "/**") == 0)
			return 1; /* any rest, including none */
		if (*path != '/')
			return *pat == '\0'; /* the request path ended */
		if (*pat != '/')
			return 0;
		pat++;
		path++;
		plen = strcspn(pat, "/");
		slen = strcspn(path, "/?");
		if (plen == 1 && pat[0] == '*') {
			if (slen == 0)
				return 0;
		} else if (plen != slen || memcmp(pat, path, plen) != 0) {
			return 0;
		}
		pat += plen;
		path += slen;
	}
}

static int route_matches(const fault *f, const char *method, const char *path)
{
	if (f->method[0] == '\0')
		return 1;
	if (strcmp(f->method, "*") != 0 && strcmp(f->method, method) != 0)
		return 0;
	return path_matches(f->path, path);
}

/* Requests to the chaos API itself are never faulted, so a test can always
 * list and remove its faults. */
static int is_chaos_path(const char *path)
{
	size_t n = sizeof(CHAOS_PREFIX) - 1;

	return strncmp(path, CHAOS_PREFIX, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/' || path[n] == '?');
}

/* ---- parameters ---- */

static const struct typedef_ *find_type(const char *name)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		if (strcmp(TYPES[i].name, name) == 0)
			return &TYPES[i];
	return NULL;
}

static int unknown_type(const char *name, tlm_error *err)
{
	return tlm_error_set(err, TLM_EINVALID,
			     "unknown fault type \"%.64s\" (expected fail, delay, drop, refuse or "
			     "nats-off)",
			     name);
}

/* Finds key for type t; an unknown key, one of another type or a repeated one
 * is an error naming it. */
static int find_key(const struct typedef_ *t, const char *name, const params *p, key_id *out,
		    tlm_error *err)
{
	int k;

	for (k = 0; k < K_N; k++)
		if (strcmp(KEYS[k].name, name) == 0)
			break;
	if (k == K_N)
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: unknown parameter \"%.64s\" (%s takes %s)", t->name, name,
				     t->name, t->keys);
	if (!(KEYS[k].types & T(t->type)))
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: parameter \"%s\" does not apply to %s (it takes %s)",
				     t->name, name, t->name, t->keys);
	if (p->given & (1u << k))
		return tlm_error_set(err, TLM_EINVALID, "%s: parameter \"%s\" is given twice",
				     t->name, name);
	*out = (key_id)k;
	return 0;
}

static int set_uint(const struct typedef_ *t, key_id k, uint64_t v, params *p, tlm_error *err)
{
	if (v < KEYS[k].min || v > KEYS[k].max)
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: parameter \"%s\" is out of range (%llu..%llu)", t->name,
				     KEYS[k].name, (unsigned long long)KEYS[k].min,
				     (unsigned long long)KEYS[k].max);
	p->num[k] = v;
	p->given |= 1u << k;
	return 0;
}

static int set_seconds(const struct typedef_ *t, double v, params *p, tlm_error *err)
{
	if (!(v >= 0 && v <= (double)KEYS[K_SECONDS].max))
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: parameter \"seconds\" is out of range (0..%llu)", t->name,
				     (unsigned long long)KEYS[K_SECONDS].max);
	p->seconds = v;
	p->given |= 1u << K_SECONDS;
	return 0;
}

static int set_route(const struct typedef_ *t, const char *v, params *p, tlm_error *err)
{
	tlm_error why = TLM_ERROR_INIT;
	fault probe;

	if (strlen(v) > ROUTE_MAX)
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: parameter \"route\" is longer than %d characters",
				     t->name, ROUTE_MAX);
	if (parse_route(&probe, v, &why) != 0)
		return tlm_error_set(err, TLM_EINVALID, "%s: parameter \"route\" \"%.64s\": %s",
				     t->name, v, why.message);
	strcpy(p->route, v);
	p->given |= 1u << K_ROUTE;
	return 0;
}

/* ---- the --fault form ---- */

/* A whole number of digits only: no sign, no spaces, no hex.  Longer than
 * NUM_MAX digits is reported as out of range, not as a parse error. */
static int parse_digits(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i, n = strlen(s);

	if (n == 0 || strspn(s, "0123456789") != n)
		return -1;
	for (i = 0; i < n; i++)
		v = v > UINT64_MAX / 100 ? UINT64_MAX / 10 : v * 10 + (uint64_t)(s[i] - '0');
	*out = v;
	return 0;
}

/* "2", "0.25", ".5": a decimal of our own, because strtod() follows the
 * locale's decimal point and accepts "inf", "nan", hex and exponents. */
static int parse_decimal(const char *s, double *out)
{
	double v = 0, scale = 1;
	size_t ndig = 0;

	for (; *s >= '0' && *s <= '9'; s++, ndig++)
		v = v * 10 + (*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, ndig++)
			v += (*s - '0') * (scale /= 10);
	if (ndig == 0 || ndig > NUM_MAX || *s != '\0')
		return -1;
	*out = v;
	return 0;
}

static int spec_value(const struct typedef_ *t, key_id k, const char *v, params *p, tlm_error *err)
{
	uint64_t u;
	double d;

	switch (KEYS[k].kind) {
	case KIND_ROUTE: return set_route(t, v, p, err);
	case KIND_UINT:
		if (parse_digits(v, &u) != 0)
			return tlm_error_set(
				err, TLM_EINVALID,
				"%s: parameter \"%s\": \"%.32s\" is not a whole number", t->name,
				KEYS[k].name, v);
		return set_uint(t, k, u, p, err);
	case KIND_SECONDS:
		if (parse_decimal(v, &d) != 0)
			return tlm_error_set(err, TLM_EINVALID,
					     "%s: parameter \"seconds\": \"%.32s\" is not a number "
					     "of seconds (e.g. 2 or 0.5)",
					     t->name, v);
		return set_seconds(t, d, p, err);
	}
	return TLM_ERROR;
}

static char *trim(char *s)
{
	char *end = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

/* Parses "key=value,key=value" in place (buf is ours). */
static int spec_params(const struct typedef_ *t, char *buf, params *p, tlm_error *err)
{
	char *item = buf, *next, *eq, *key;
	key_id k;

	if (*trim(buf) == '\0')
		return 0; /* "fail:" = no parameters */
	for (; item != NULL; item = next) {
		next = strchr(item, ',');
		if (next != NULL)
			*next++ = '\0';
		eq = strchr(item, '=');
		if (eq == NULL && *trim(item) == '\0')
			return tlm_error_set(err, TLM_EINVALID,
					     "%s: empty parameter (a comma too many?)", t->name);
		if (eq == NULL)
			return tlm_error_set(err, TLM_EINVALID, "%s: \"%.64s\" is not key=value",
					     t->name, trim(item));
		*eq = '\0';
		key = trim(item);
		if (*key == '\0')
			return tlm_error_set(err, TLM_EINVALID, "%s: a parameter has no name",
					     t->name);
		if (find_key(t, key, p, &k, err) != 0 ||
		    spec_value(t, k, trim(eq + 1), p, err) != 0)
			return TLM_EINVALID;
	}
	return 0;
}

/* ---- the JSON form ---- */

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a fractional number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static int json_value(const struct typedef_ *t, key_id k, const json_t *v, params *p,
		      tlm_error *err)
{
	static const char *const want[] = { "a string", "an integer", "a number" };
	json_int_t i;

	if (KEYS[k].kind == KIND_ROUTE && json_is_string(v))
		return set_route(t, json_string_value(v), p, err);
	if (KEYS[k].kind == KIND_UINT && json_is_integer(v)) {
		i = json_integer_value(v);
		return set_uint(t, k, i < 0 ? UINT64_MAX : (uint64_t)i, p, err);
	}
	if (KEYS[k].kind == KIND_SECONDS && json_is_number(v))
		return set_seconds(t, json_number_value(v), p, err);
	return tlm_error_set(err, TLM_EINVALID, "%s: parameter \"%s\" must be %s, not %s", t->name,
			     KEYS[k].name, want[KEYS[k].kind], json_kind(v));
}

static int json_params(const struct typedef_ *t, const json_t *obj, params *p, tlm_error *err)
{
	const char *key;
	json_t *v;
	key_id k;

	if (obj == NULL || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: the parameters must be a JSON object, not %s", t->name,
				     json_kind(obj));
	json_object_foreach((json_t *)obj, key, v)
	{
		if (find_key(t, key, p, &k, err) != 0 || json_value(t, k, v, p, err) != 0)
			return TLM_EINVALID;
	}
	return 0;
}

/* ---- adding ---- */

/* Applies the defaults and the type-specific rules to p. */
static int build_fault(fault *f, const struct typedef_ *t, const params *p, tlm_error *err)
{
	memset(f, 0, sizeof(*f));
	f->type = t->type;
	f->type_name = t->name;
	f->active = 1;
	if ((p->given & (1u << K_ROUTE)) && parse_route(f, p->route, err) != 0)
		return TLM_EINVALID; /* checked by set_route() already */
	f->nth = (p->given & (1u << K_NTH)) ? p->num[K_NTH] : 1;
	f->count = (p->given & (1u << K_COUNT)) ? p->num[K_COUNT] : 1;
	f->status = (p->given & (1u << K_STATUS)) ? (int)p->num[K_STATUS] : 500;
	if (p->given & (1u << K_RETRY_AFTER))
		f->retry_after = (unsigned)p->num[K_RETRY_AFTER];
	else
		f->retry_after = (f->status == 429 || f->status == 503) ? 1 : 0;
	f->ms = (p->given & (1u << K_MS)) ? (unsigned)p->num[K_MS] : 1000;
	if (t->type == TLM_FAULT_REFUSE) {
		f->seconds = (p->given & (1u << K_SECONDS)) ? p->seconds : 2;
		if (!(f->seconds > 0 && f->seconds <= 3600))
			return tlm_error_set(err, TLM_EINVALID,
					     "refuse: parameter \"seconds\" is out of range (more "
					     "than 0, at most 3600)");
	} else if (t->type == TLM_FAULT_NATS_OFF) {
		f->seconds = (p->given & (1u << K_SECONDS)) ? p->seconds : 0;
	}
	return 0;
}

/* Marks windows that have run out as inactive.  Called under the lock. */
static void expire_windows(tlm_chaos *c, double now)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		fault *f = &c->faults[i];

		if (f->active && f->until > 0 && now >= f->until)
			f->active = 0;
	}
}

/* Makes room when the table is full by forgetting the oldest inactive fault;
 * a table full of active faults is the caller's problem.  Under the lock. */
static int make_room(tlm_chaos *c)
{
	size_t i;

	if (c->n < MAX_FAULTS)
		return 0;
	for (i = 0; i < c->n; i++) {
		if (!c->faults[i].active) {
			memmove(&c->faults[i], &c->faults[i + 1],
				(c->n - i - 1) * sizeof(c->faults[0]));
			c->n--;
			return 0;
		}
	}
	return -1;
}

static int commit(tlm_chaos *c, fault *f, char **id, tlm_error *err)
{
	double now = now_mono();
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	expire_windows(c, now);
	/* Past the limit the listener could not be reopened: a refuse that
	 * would be listed but do nothing is an error instead. */
	if (f->type == TLM_FAULT_REFUSE && c->refuses >= TLM_CHAOS_REFUSE_MAX) {
		rc = tlm_error_set(
			err, TLM_EINVALID,
			"refuse: this server has taken %d refuse faults, the most it can in "
			"its life (each closes and reopens the listener); restart it for more",
			TLM_CHAOS_REFUSE_MAX);
		goto done;
	}
	if (make_room(c) != 0) {
		rc = tlm_error_set(err, TLM_ETOOBIG,
				   "too many active faults (%d); remove some with DELETE "
				   "/v1/chaos/{id}",
				   MAX_FAULTS);
		goto done;
	}
	snprintf(f->id, sizeof(f->id), "f%llu", (unsigned long long)c->next_id);
	*id = strdup(f->id);
	if (*id == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	c->next_id++;
	if (f->type == TLM_FAULT_REFUSE)
		c->refuses++;
	if (f->type == TLM_FAULT_REFUSE || (f->type == TLM_FAULT_NATS_OFF && f->seconds > 0))
		f->until = now + f->seconds;
	c->faults[c->n++] = *f;
done:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int tlm_chaos_add(tlm_chaos *c, const char *type, const json_t *params_obj, char **id,
		  tlm_error *err)
{
	const struct typedef_ *t;
	params p;
	fault f;

	assert(c != NULL && type != NULL && id != NULL);
	*id = NULL;
	memset(&p, 0, sizeof(p));
	t = find_type(type);
	if (t == NULL)
		return unknown_type(type, err);
	if (json_params(t, params_obj, &p, err) != 0 || build_fault(&f, t, &p, err) != 0)
		return TLM_EINVALID;
	return commit(c, &f, id, err);
}

/* Parses the --fault form into t and p; buf is a copy of spec we may cut. */
static int parse_spec(char *buf, const struct typedef_ **t, params *p, tlm_error *err)
{
	char *colon = strchr(buf, ':');

	if (colon != NULL)
		*colon = '\0';
	*t = find_type(trim(buf));
	if (*t == NULL)
		return unknown_type(trim(buf), err);
	return colon != NULL ? spec_params(*t, colon + 1, p, err) : 0;
}

int tlm_chaos_add_spec(tlm_chaos *c, const char *spec, char **id, tlm_error *err)
{
	char buf[SPEC_MAX + 1];
	const struct typedef_ *t = NULL;
	tlm_error why = TLM_ERROR_INIT;
	params p;
	fault f;
	int rc;

	assert(c != NULL && spec != NULL && id != NULL);
	*id = NULL;
	memset(&p, 0, sizeof(p));
	if (strlen(spec) > SPEC_MAX)
		return tlm_error_set(err, TLM_EINVALID, "fault spec is longer than %d characters",
				     SPEC_MAX);
	strcpy(buf, spec);
	rc = parse_spec(buf, &t, &p, &why);
	if (rc == 0)
		rc = build_fault(&f, t, &p, &why);
	if (rc == 0)
		rc = commit(c, &f, id, &why);
	/* Name the whole spec: several --fault flags may be given. */
	if (rc != 0)
		tlm_error_set(err, rc, "fault \"%.200s\": %s", spec, why.message);
	return rc;
}

/* ---- listing and removing ---- */

static json_t *fault_json(const fault *f, double now)
{
	char route[METHOD_MAX + PATH_MAX_ + 2];
	const char *r = NULL;

	if (f->method[0] != '\0') {
		snprintf(route, sizeof(route), "%s %s", f->method, f->path);
		r = route;
	}
	switch (f->type) {
	case TLM_FAULT_FAIL:
		return json_pack("{s:s,s:s,s:s?,s:I,s:I,s:i,s:I,s:I,s:I,s:b}", "id", f->id, "type",
				 f->type_name, "route", r, "nth", (json_int_t)f->nth, "count",
				 (json_int_t)f->count, "status", f->status, "retry_after",
				 (json_int_t)f->retry_after, "matched", (json_int_t)f->matched,
				 "fired", (json_int_t)f->fired, "active", f->active);
	case TLM_FAULT_DELAY:
		return json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:I,s:I,s:b}", "id", f->id, "type",
				 f->type_name, "route", r, "nth", (json_int_t)f->nth, "count",
				 (json_int_t)f->count, "ms", (json_int_t)f->ms, "matched",
				 (json_int_t)f->matched, "fired", (json_int_t)f->fired, "active",
				 f->active);
	case TLM_FAULT_DROP:
		return json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:I,s:b}", "id", f->id, "type",
				 f->type_name, "route", r, "nth", (json_int_t)f->nth, "count",
				 (json_int_t)f->count, "matched", (json_int_t)f->matched, "fired",
				 (json_int_t)f->fired, "active", f->active);
	default:
		/* remaining: null for a nats-off without end. */
		return json_pack("{s:s,s:s,s:f,s:o,s:b}", "id", f->id, "type", f->type_name,
				 "seconds", f->seconds, "remaining",
				 f->until > 0 ? json_real(f->active ? f->until - now : 0)
					      : json_null(),
				 "active", f->active);
	}
}

json_t *tlm_chaos_list(tlm_chaos *c)
{
	json_t *arr = json_array();
	double now = now_mono();
	int ok = arr != NULL;
	size_t i;

	assert(c != NULL);
	pthread_mutex_lock(&c->mu);
	expire_windows(c, now);
	for (i = 0; ok && i < c->n; i++)
		ok = json_array_append_new(arr, fault_json(&c->faults[i], now)) == 0;
	pthread_mutex_unlock(&c->mu);
	if (!ok) {
		json_decref(arr);
		return NULL;
	}
	return json_pack("{s:o}", "faults", arr);
}

int tlm_chaos_remove(tlm_chaos *c, const char *id)
{
	int rc = TLM_ENOTFOUND;
	size_t i;

	assert(c != NULL);
	if (id == NULL)
		return TLM_ENOTFOUND;
	pthread_mutex_lock(&c->mu);
	for (i = 0; i < c->n; i++) {
		if (strcmp(c->faults[i].id, id) == 0) {
			memmove(&c->faults[i], &c->faults[i + 1],
				(c->n - i - 1) * sizeof(c->faults[0]));
			c->n--;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ---- the hot path ---- */

/* Every active request fault that matches counts the call (so "nth" always
 * means the nth matching call since the fault was added); the first one,
 * in order of addition, whose window covers this call acts on it. */
void tlm_chaos_check(tlm_chaos *c, const char *method, const char *path, tlm_fault_action *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	if (c == NULL || is_chaos_path(path))
		return;
	pthread_mutex_lock(&c->mu);
	for (i = 0; i < c->n; i++) {
		fault *f = &c->faults[i];

		if (!f->active || !(T(f->type) & REQUEST_TYPES) || !route_matches(f, method, path))
			continue;
		f->matched++;
		if (f->matched < f->nth)
			continue;
		if (out->type == TLM_FAULT_NONE) {
			out->type = f->type;
			if (f->type == TLM_FAULT_FAIL) {
				out->status = f->status;
				out->retry_after = f->retry_after;
			} else if (f->type == TLM_FAULT_DELAY) {
				out->delay_ms = f->ms;
			}
			f->fired++;
		}
		if (f->count != 0 && f->matched >= f->nth + f->count - 1)
			f->active = 0;
	}
	pthread_mutex_unlock(&c->mu);
}

double tlm_chaos_refuse_remaining(tlm_chaos *c)
{
	double now = now_mono(), left = 0;
	size_t i;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	expire_windows(c, now);
	for (i = 0; i < c->n; i++) {
		const fault *f = &c->faults[i];

		if (f->active && f->type == TLM_FAULT_REFUSE && f->until - now > left)
			left = f->until - now;
	}
	pthread_mutex_unlock(&c->mu);
	return left;
}

int tlm_chaos_nats_off(tlm_chaos *c)
{
	double now = now_mono();
	int off = 0;
	size_t i;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	expire_windows(c, now);
	for (i = 0; i < c->n && !off; i++)
		off = c->faults[i].active && c->faults[i].type == TLM_FAULT_NATS_OFF;
	pthread_mutex_unlock(&c->mu);
	return off;
}
