/* The hostile control plane (hostile.h). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/hostile.h"

#define BODY_MAX (64 * 1024)
#define LOG_MAX  20000

enum { AGENT = 0, TEAM, TASK };

typedef struct rec {
	int kind;
	char *id, *name;
	char *team_id, *subject; /* tasks */
	int deleted;
	int dup; /* listed only: the NAME-dup of an agent (dup_name) */
} rec;

struct tlm_h_hostile {
	tlm_h_hostile_opts o;
	struct MHD_Daemon *d;
	char url[64];
	pthread_mutex_t mu;
	rec *recs;
	size_t n, cap;
	size_t agents_made, teams_made, tasks_made;
	char run_prefix[64]; /* "tlm-RUN-a-" of the first agent created */
	char **log;
	size_t nlog;
	size_t misses, pages, items;
};

typedef struct upload {
	char *data;
	size_t len;
} upload;

void tlm_h_pct(char *out, size_t cap, const char *id)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t n = 0;

	for (p = (const unsigned char *)id; *p != '\0' && n + 4 < cap; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
}

static int unhex(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
				      : -1;
}

/* seg (n bytes) percent-decoded into a new string; NULL when malformed. */
static char *pct_decode(const char *seg, size_t n)
{
	char *out = malloc(n + 1);
	size_t i, k = 0;

	assert_non_null(out);
	for (i = 0; i < n; i++) {
		if (seg[i] == '%') {
			int hi = i + 2 < n ? unhex(seg[i + 1]) : -1;
			int lo = hi >= 0 ? unhex(seg[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			out[k++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[k++] = seg[i];
		}
	}
	out[k] = '\0';
	return out;
}

static rec *add(tlm_h_hostile *h, int kind, const char *id, const char *name)
{
	rec *r;

	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 64;
		h->recs = realloc(h->recs, h->cap * sizeof(*h->recs));
		assert_non_null(h->recs);
	}
	r = &h->recs[h->n++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->id = strdup(id);
	r->name = strdup(name != NULL ? name : "");
	assert_true(r->id != NULL && r->name != NULL);
	return r;
}

/* The record a request by id reaches: the first of its kind that had the
 * id (the server's index), deleted or not. */
static rec *by_id(tlm_h_hostile *h, int kind, const char *id)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (h->recs[i].kind == kind && !h->recs[i].dup && strcmp(h->recs[i].id, id) == 0)
			return &h->recs[i];
	return NULL;
}

/* The id in raw path segment seg: it must be exactly the encoding of an id
 * this server gave to a resource of kind.  Else a miss (NULL). */
static rec *resolve(tlm_h_hostile *h, int kind, const char *seg, size_t n)
{
	char *id = pct_decode(seg, n), canon[16384];
	rec *r = NULL;

	if (id != NULL) {
		tlm_h_pct(canon, sizeof(canon), id);
		if (strlen(canon) == n && memcmp(canon, seg, n) == 0)
			r = by_id(h, kind, id);
	}
	free(id);
	if (r == NULL)
		h->misses++;
	return r;
}

static json_t *agent_json(const rec *r)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "id", r->id, "name", r->name, "status", "online",
			 "createdAt", "2020-01-01T00:00:00Z");
}

static json_t *team_json(const rec *r)
{
	return json_pack("{s:s, s:s, s:s}", "id", r->id, "name", r->name, "createdAt",
			 "2020-01-01T00:00:00Z");
}

static json_t *task_json(const tlm_h_hostile *h, const rec *r)
{
	json_t *k = json_pack("{s:s, s:s, s:s, s:s}", "id", r->id, "teamId", r->team_id, "subject",
			      r->subject, "status",
			      h->o.task_status != NULL ? h->o.task_status : "completed");

	if (h->o.task_message != NULL)
		json_object_set_new(k, "statusMessage", json_string(h->o.task_message));
	return k;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *body,
				  size_t len)
{
	struct MHD_Response *res =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	MHD_add_response_header(res, "Content-Type", "application/json");
	ok = MHD_queue_response(c, status, res);
	MHD_destroy_response(res);
	return ok;
}

/* Takes j. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	enum MHD_Result ok;

	assert_non_null(s);
	ok = reply_text(c, status, s, strlen(s));
	free(s);
	json_decref(j);
	return ok;
}

static enum MHD_Result not_found(struct MHD_Connection *c)
{
	return reply(c, 404, json_pack("{s:s}", "error", "not found"));
}

static size_t arg_size(struct MHD_Connection *c, const char *name, size_t dflt)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);

	return v != NULL ? (size_t)strtoul(v, NULL, 10) : dflt;
}

/* One page of kind's list: the live records, then the filler (agents), or
 * an endless run of new items. */
static enum MHD_Result list(tlm_h_hostile *h, struct MHD_Connection *c, int kind,
			    const char *team_id)
{
	size_t limit = arg_size(c, "limit", 100), offset = arg_size(c, "offset", 0);
	size_t live = 0, total, i, k = 0;
	json_t *items = json_array();
	const char *key = kind == AGENT ? "agents" : kind == TEAM ? "teams" : "tasks";
	char name[64], id[64];

	if (h->o.page_max > 0)
		limit = h->o.page_max;
	for (i = 0; i < h->n; i++) {
		rec *r = &h->recs[i];

		if (r->kind != kind || r->deleted ||
		    (kind == TASK && strcmp(r->team_id, team_id) != 0))
			continue;
		if (live >= offset && k < limit) {
			json_array_append_new(items, kind == AGENT  ? agent_json(r)
						     : kind == TEAM ? team_json(r)
								    : task_json(h, r));
			k++;
		}
		live++;
	}
	total = live + (kind == AGENT ? h->o.filler : 0);
	for (i = offset + k > live ? offset + k : live; k < limit && i < total; i++, k++) {
		snprintf(name, sizeof(name), "tlm-fill0000-a-%zu", i - live);
		snprintf(id, sizeof(id), "fill-%zu", i - live);
		json_array_append_new(items, json_pack("{s:s, s:s, s:s}", "id", id, "name", name,
						       "createdAt", "2020-01-01T00:00:00Z"));
	}
	if (h->o.endless && kind != TASK) {
		for (; k < limit; k++) {
			snprintf(name, sizeof(name), "tlm-endless0-%c-%zu", key[0], offset + k);
			snprintf(id, sizeof(id), "endless-%zu", offset + k);
			json_array_append_new(items,
					      json_pack("{s:s, s:s}", "id", id, "name", name));
		}
		total = offset + k + 1000;
	}
	h->pages++;
	h->items += k;
	return reply(c, 200,
		     json_pack("{s:o, s:I, s:I, s:I}", key, items, "total", (json_int_t)total,
			       "limit", (json_int_t)limit, "offset", (json_int_t)offset));
}

static const char *nth_id(const char *const *ids, size_t n, const char *kind, char *buf, size_t cap)
{
	if (n < TLM_H_HOSTILE_IDS && ids[n] != NULL)
		return ids[n];
	snprintf(buf, cap, "%s-%zu", kind, n + 1);
	return buf;
}

static enum MHD_Result create_agent(tlm_h_hostile *h, struct MHD_Connection *c, json_t *body)
{
	const char *name = json_string_value(json_object_get(body, "name"));
	char buf[64];
	const char *id;
	size_t ri = h->n; /* add() may move the records: an index, not a pointer */
	rec *r;

	if (name == NULL)
		return reply(c, 400, json_pack("{s:s}", "error", "no name"));
	id = h->o.same_agent_id && h->agents_made > 0
		     ? nth_id(h->o.agent_ids, 0, "agent", buf, sizeof(buf))
		     : nth_id(h->o.agent_ids, h->agents_made, "agent", buf, sizeof(buf));
	h->agents_made++;
	add(h, AGENT, id, name);
	if (h->o.dup_name) {
		char dup[512];

		snprintf(dup, sizeof(dup), "%s-dup", name);
		add(h, AGENT, id, dup)->dup = 1;
	}
	if (h->run_prefix[0] == '\0' && strncmp(name, "tlm-", 4) == 0 &&
	    strlen(name) < sizeof(h->run_prefix) - 16) {
		snprintf(h->run_prefix, sizeof(h->run_prefix), "%.15s", name);
		if (h->o.stray_suffix != NULL) {
			char sname[512], sid[512];

			snprintf(sname, sizeof(sname), "%sa-%s", h->run_prefix, h->o.stray_suffix);
			snprintf(sid, sizeof(sid), "stray%s", h->o.stray_suffix);
			add(h, AGENT, sid, sname);
		}
	}
	r = &h->recs[ri];
	if (h->o.create_reply == 1)
		return reply_text(c, 201, "<html>201 Created</html>", 24);
	if (h->o.create_reply == 2) {
		size_t n = (1u << 20) + 4096;
		char *big = malloc(n);
		enum MHD_Result ok;

		assert_non_null(big);
		memset(big, ' ', n);
		big[0] = '{';
		memcpy(big + n - 2, "{}", 2); /* not even valid: it is never read */
		ok = reply_text(c, 201, big, n);
		free(big);
		return ok;
	}
	return reply(c, 201, json_pack("{s:o, s:s}", "agent", agent_json(r), "id", r->id));
}

static enum MHD_Result create_team(tlm_h_hostile *h, struct MHD_Connection *c, json_t *body)
{
	const char *name = json_string_value(json_object_get(body, "name"));
	char buf[64];
	rec *r;

	if (name == NULL)
		return reply(c, 400, json_pack("{s:s}", "error", "no name"));
	r = add(h, TEAM, nth_id(h->o.team_ids, h->teams_made++, "team", buf, sizeof(buf)), name);
	return reply(c, 201, json_pack("{s:o}", "team", team_json(r)));
}

static enum MHD_Result create_task(tlm_h_hostile *h, struct MHD_Connection *c, const rec *team,
				   json_t *body)
{
	const char *subject = json_string_value(json_object_get(body, "subject"));
	char id[64], *team_id = strdup(team->id); /* add() may move team */
	rec *r;

	snprintf(id, sizeof(id), "task-%zu", ++h->tasks_made);
	r = add(h, TASK, id, NULL);
	r->team_id = team_id;
	r->subject = strdup(subject != NULL ? subject : "");
	if (h->o.task_create_reply == 1)
		return reply_text(c, 201, "<html>201 Created</html>", 24);
	if (h->o.task_create_reply == 2) {
		json_t *k = task_json(h, r);

		json_object_set_new(k, "id", json_integer((json_int_t)h->tasks_made));
		return reply(c, 201, json_pack("{s:o}", "task", k));
	}
	return reply(c, 201, json_pack("{s:o}", "task", task_json(h, r)));
}

/* The raw path split at "/": up to 6 segments. */
typedef struct segs {
	const char *s[6];
	size_t len[6];
	size_t n;
} segs;

static void split(const char *path, segs *sg)
{
	const char *p = path;

	sg->n = 0;
	while (*p == '/' && sg->n < 6) {
		const char *end = strchr(p + 1, '/');

		sg->s[sg->n] = p + 1;
		sg->len[sg->n] = end != NULL ? (size_t)(end - p - 1) : strlen(p + 1);
		sg->n++;
		if (end == NULL)
			break;
		p = end;
	}
}

static int is(const segs *sg, size_t i, const char *word)
{
	return i < sg->n && sg->len[i] == strlen(word) && memcmp(sg->s[i], word, sg->len[i]) == 0;
}

static enum MHD_Result route(tlm_h_hostile *h, struct MHD_Connection *c, const char *m,
			     const char *path, json_t *body)
{
	segs sg;
	rec *r, *t;

	split(path, &sg);
	if (!is(&sg, 0, "v1"))
		goto miss;
	if (is(&sg, 1, "agents")) {
		if (sg.n == 2 && strcmp(m, "GET") == 0)
			return list(h, c, AGENT, NULL);
		if (sg.n == 2 && strcmp(m, "POST") == 0)
			return create_agent(h, c, body);
		if (sg.n == 4 && is(&sg, 2, "by-name")) {
			char *name = pct_decode(sg.s[3], sg.len[3]);
			size_t i;

			for (i = 0; name != NULL && i < h->n; i++) {
				r = &h->recs[i];
				if (r->kind == AGENT && !r->deleted && !r->dup &&
				    strcmp(r->name, name) == 0) {
					free(name);
					return reply(c, 200,
						     json_pack("{s:o}", "agent", agent_json(r)));
				}
			}
			free(name);
			return not_found(c);
		}
		if (sg.n < 3 || sg.n > 4 || (r = resolve(h, AGENT, sg.s[2], sg.len[2])) == NULL)
			goto miss;
		if (r->deleted)
			return not_found(c);
		if (sg.n == 3 && strcmp(m, "GET") == 0)
			return reply(c, 200, json_pack("{s:o}", "agent", agent_json(r)));
		if (sg.n == 3 && strcmp(m, "DELETE") == 0) {
			r->deleted = 1;
			return reply(c, 200, json_pack("{s:s}", "deleted", r->id));
		}
		if (sg.n == 4 && strcmp(m, "POST") == 0 &&
		    (is(&sg, 3, "start") || is(&sg, 3, "stop")))
			return reply(c, 200,
				     json_pack("{s:s, s:s}", "id", r->id, "status",
					       is(&sg, 3, "start") ? "online" : "offline"));
		goto miss;
	}
	if (is(&sg, 1, "teams")) {
		if (sg.n == 2 && strcmp(m, "GET") == 0)
			return list(h, c, TEAM, NULL);
		if (sg.n == 2 && strcmp(m, "POST") == 0)
			return create_team(h, c, body);
		if (sg.n < 3 || (t = resolve(h, TEAM, sg.s[2], sg.len[2])) == NULL)
			goto miss;
		if (t->deleted)
			return not_found(c);
		if (sg.n == 3 && strcmp(m, "DELETE") == 0) {
			t->deleted = 1;
			return reply(c, 200, json_pack("{s:s}", "deleted", t->id));
		}
		if (sg.n == 3 && strcmp(m, "GET") == 0)
			return reply(c, 200, json_pack("{s:o}", "team", team_json(t)));
		if (sg.n == 4 && is(&sg, 3, "tasks") && strcmp(m, "POST") == 0)
			return create_task(h, c, t, body);
		if (sg.n == 4 && is(&sg, 3, "tasks") && strcmp(m, "GET") == 0)
			return list(h, c, TASK, t->id);
		if (sg.n == 5 && is(&sg, 3, "tasks") &&
		    (r = resolve(h, TASK, sg.s[4], sg.len[4])) != NULL)
			return reply(c, 200, json_pack("{s:o}", "task", task_json(h, r)));
		goto miss;
	}
miss:
	h->misses++;
	return not_found(c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	tlm_h_hostile *h = cls;
	upload *u = *con_cls;
	json_t *body;
	enum MHD_Result ok;
	int is_list;

	(void)version;
	if (u == NULL) {
		u = calloc(1, sizeof(*u));
		assert_non_null(u);
		*con_cls = u;
		return MHD_YES;
	}
	if (*data_size > 0) {
		if (u->len + *data_size <= BODY_MAX) {
			u->data = realloc(u->data, u->len + *data_size + 1);
			assert_non_null(u->data);
			memcpy(u->data + u->len, data, *data_size);
			u->len += *data_size;
			u->data[u->len] = '\0';
		}
		*data_size = 0;
		return MHD_YES;
	}
	body = u->data != NULL ? json_loads(u->data, 0, NULL) : NULL;
	pthread_mutex_lock(&h->mu);
	is_list = strcmp(method, "GET") == 0 &&
		  (strcmp(url, "/v1/agents") == 0 || strcmp(url, "/v1/teams") == 0);
	if (!is_list && h->nlog < LOG_MAX) {
		size_t n = strlen(method) + strlen(url) + 2;

		h->log = realloc(h->log, (h->nlog + 1) * sizeof(*h->log));
		assert_non_null(h->log);
		h->log[h->nlog] = malloc(n);
		assert_non_null(h->log[h->nlog]);
		snprintf(h->log[h->nlog++], n, "%s %s", method, url);
	}
	ok = route(h, c, method, url, body);
	pthread_mutex_unlock(&h->mu);
	json_decref(body);
	return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	upload *u = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (u != NULL) {
		free(u->data);
		free(u);
	}
	*con_cls = NULL;
}

/* Paths are checked as they came: MHD is told not to decode them. */
static size_t keep_raw(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

tlm_h_hostile *tlm_h_hostile_start(const tlm_h_hostile_opts *o)
{
	tlm_h_hostile *h = calloc(1, sizeof(*h));
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_non_null(h);
	assert_true(fd >= 0);
	h->o = *o;
	pthread_mutex_init(&h->mu, NULL);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 128), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
				on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_UNESCAPE_CALLBACK, keep_raw, NULL,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	assert_non_null(h->d);
	snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	return h;
}

void tlm_h_hostile_stop(tlm_h_hostile *h)
{
	size_t i;

	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	for (i = 0; i < h->n; i++) {
		free(h->recs[i].id);
		free(h->recs[i].name);
		free(h->recs[i].team_id);
		free(h->recs[i].subject);
	}
	for (i = 0; i < h->nlog; i++)
		free(h->log[i]);
	free(h->log);
	free(h->recs);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

const char *tlm_h_hostile_url(const tlm_h_hostile *h)
{
	return h->url;
}

size_t tlm_h_hostile_misses(tlm_h_hostile *h)
{
	size_t n;

	pthread_mutex_lock(&h->mu);
	n = h->misses;
	pthread_mutex_unlock(&h->mu);
	return n;
}

size_t tlm_h_hostile_count(tlm_h_hostile *h, const char *method, const char *raw_path)
{
	size_t i, n = 0, ml = strlen(method);

	pthread_mutex_lock(&h->mu);
	for (i = 0; i < h->nlog; i++)
		n += strncmp(h->log[i], method, ml) == 0 && h->log[i][ml] == ' ' &&
		     strcmp(h->log[i] + ml + 1, raw_path) == 0;
	pthread_mutex_unlock(&h->mu);
	return n;
}

size_t tlm_h_hostile_live(tlm_h_hostile *h, const char *kind)
{
	int k = strcmp(kind, "agents") == 0 ? AGENT : TEAM;
	size_t i, n = 0;

	pthread_mutex_lock(&h->mu);
	for (i = 0; i < h->n; i++)
		n += h->recs[i].kind == k && !h->recs[i].deleted;
	pthread_mutex_unlock(&h->mu);
	return n;
}

size_t tlm_h_hostile_pages(tlm_h_hostile *h, size_t *items)
{
	size_t n;

	pthread_mutex_lock(&h->mu);
	n = h->pages;
	if (items != NULL)
		*items = h->items;
	pthread_mutex_unlock(&h->mu);
	return n;
}

char *tlm_h_hostile_log(tlm_h_hostile *h)
{
	size_t i, len = 1;
	char *s;

	pthread_mutex_lock(&h->mu);
	for (i = 0; i < h->nlog; i++)
		len += strlen(h->log[i]) + 1;
	s = malloc(len);
	assert_non_null(s);
	s[0] = '\0';
	for (i = 0; i < h->nlog; i++) {
		strcat(s, h->log[i]);
		strcat(s, "\n");
	}
	pthread_mutex_unlock(&h->mu);
	return s;
}
