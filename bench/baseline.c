/* The side-by-side baseline of bench/run (bench/README.md): a raw load
 * client that does what `telemachy run` does on the control plane — create
 * and start the agents, create the teams, submit each task once the tasks
 * it is blocked by have completed (learnt from NATS events, with a REST
 * look at a task that stays silent), then delete it all — with the same
 * requests, dependency order and concurrency, and nothing else: no journal,
 * no fencing, no retries, no progress.  telemachy's wall time over this
 * one's is the engine's overhead.
 *
 *   tlm_bench_baseline --url URL --nats NATS_URL [--concurrency N] PLAN.json
 *
 * PLAN.json is `telemachy plan --output json FILE`.  Prints one JSON object:
 * wall time, requests by kind, events, tasks. */
#include <curl/curl.h>
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { K_AGENT, K_START, K_TEAM, K_TASK, K_GET_TASK, K_DEL_TEAM, K_STOP, K_DEL_AGENT, NKINDS };
static const char *const kind_names[NKINDS] = {
	"POST /v1/agents",           "POST /v1/agents/{id}/start",   "POST /v1/teams",
	"POST /v1/teams/{t}/tasks",  "GET /v1/teams/{t}/tasks/{id}", "DELETE /v1/teams/{id}",
	"POST /v1/agents/{id}/stop", "DELETE /v1/agents/{id}",
};

typedef struct task {
	const char *key, *team, *subject, *description, *agent; /* from the plan */
	size_t *deps, ndeps, left;                              /* left: deps not completed */
	size_t *users, nusers, capusers;                        /* tasks blocked by this one */
	char *id;                                               /* remote id once created */
	int done;
	long long sent_ms;
} task;

typedef struct req {
	CURL *h;
	struct curl_slist *hdrs;
	char *body, *reply;
	size_t len;
	int kind;
	size_t index;
	struct req *next;
} req;

typedef struct bl {
	const char *url;
	CURLM *m;
	int conc, inflight;
	req *head, *tail; /* queued, not yet sent */
	long counts[NKINDS], events, failures;
	json_t *plan, *task_index, *agent_index, *team_index;
	json_t *early; /* ids NATS said completed before their create's reply */
	size_t nagents, nteams, ntasks, agents_up, teams_up, tasks_done, deleted;
	char **agent_ids, **team_ids;
	task *tasks;
	natsConnection *nc;
	pthread_mutex_t lock; /* the completed ids NATS delivered, for the loop */
	char **completed;
	size_t ncompleted, capcompleted;
} bl;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
	fprintf(stderr, "baseline: %s\n", what);
	exit(1);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	req *r = ud;
	char *nd = realloc(r->reply, r->len + size * n + 1);

	if (nd == NULL)
		return 0;
	memcpy(nd + r->len, p, size * n);
	r->reply = nd;
	r->len += size * n;
	r->reply[r->len] = '\0';
	return size * n;
}

/* Queues METHOD url+path (body may be NULL; owned). */
static void send_req(bl *b, int kind, size_t index, const char *method, const char *path,
		     char *body)
{
	req *r = calloc(1, sizeof(*r));
	char url[1024];

	if (r == NULL || (r->h = curl_easy_init()) == NULL)
		die("out of memory");
	snprintf(url, sizeof(url), "%s%s", b->url, path);
	r->kind = kind;
	r->index = index;
	r->body = body;
	r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(r->h, CURLOPT_URL, url);
	curl_easy_setopt(r->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(r->h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(r->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
	if (b->tail != NULL)
		b->tail->next = r;
	else
		b->head = r;
	b->tail = r;
	b->counts[kind]++;
}

static char *dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (s == NULL)
		die("out of memory");
	return s;
}

/* ---- the phases ----------------------------------------------------------- */

static void submit_task(bl *b, size_t i)
{
	task *t = &b->tasks[i];
	json_t *agent = json_object_get(b->agent_index, t->agent);
	json_t *team = json_object_get(b->team_index, t->team);
	char path[512];

	snprintf(path, sizeof(path), "/v1/teams/%s/tasks", b->team_ids[json_integer_value(team)]);
	t->sent_ms = now_ms();
	send_req(b, K_TASK, i, "POST", path,
		 dump(json_pack("{s:s,s:s,s:s,s:[],s:s}", "subject", t->subject, "description",
				t->description, "assigneeAgentId",
				b->agent_ids[json_integer_value(agent)], "blockedBy", "type",
				"general")));
}

static void on_task_completed(bl *b, size_t i)
{
	task *t = &b->tasks[i];
	size_t k;

	if (t->done)
		return;
	t->done = 1;
	b->tasks_done++;
	for (k = 0; k < t->nusers; k++)
		if (--b->tasks[t->users[k]].left == 0)
			submit_task(b, t->users[k]);
}

static void on_nats(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *ud)
{
	bl *b = ud;
	const char *subj = natsMsg_GetSubject(msg), *p = subj;
	const char *verb = strrchr(subj, '.');
	char id[128];
	int dots = 0;
	size_t n = 0;

	(void)nc;
	(void)sub;
	/* hi.tasks.<team>.<task>.<verb>: the 4th token, if the verb or the
	 * payload says completed (the engine's rule, docs/contract.md §7.1). */
	while (*p && dots < 3)
		dots += *p++ == '.';
	while (p[n] && p[n] != '.' && n + 1 < sizeof(id))
		n++;
	memcpy(id, p, n);
	id[n] = '\0';
	if (verb != NULL && (strcmp(verb, ".completed") == 0 ||
			     strstr(natsMsg_GetData(msg), "\"status\":\"completed\"") != NULL)) {
		pthread_mutex_lock(&b->lock);
		if (b->ncompleted == b->capcompleted) {
			b->capcompleted = b->capcompleted ? 2 * b->capcompleted : 64;
			b->completed = realloc(b->completed, b->capcompleted * sizeof(char *));
		}
		b->completed[b->ncompleted++] = strdup(id);
		b->events++;
		pthread_mutex_unlock(&b->lock);
	}
	natsMsg_Destroy(msg);
}

/* Task ids NATS said completed: matched to tasks (a json object id -> index). */
static void drain_events(bl *b, json_t *by_id)
{
	char **ids;
	size_t n, i;

	pthread_mutex_lock(&b->lock);
	ids = b->completed;
	n = b->ncompleted;
	b->completed = NULL;
	b->ncompleted = b->capcompleted = 0;
	pthread_mutex_unlock(&b->lock);
	for (i = 0; i < n; i++) {
		json_t *ix = json_object_get(by_id, ids[i]);

		if (ix != NULL)
			on_task_completed(b, (size_t)json_integer_value(ix));
		else /* its create's reply is still coming: remember it */
			json_object_set_new(b->early, ids[i], json_true());
		free(ids[i]);
	}
	free(ids);
}

static void start_tasks(bl *b)
{
	char subj[256];
	size_t i;

	for (i = 0; i < b->nteams; i++) {
		natsSubscription *s = NULL;

		snprintf(subj, sizeof(subj), "hi.tasks.%s.>", b->team_ids[i]);
		if (natsConnection_Subscribe(&s, b->nc, subj, on_nats, b) != NATS_OK)
			die("cannot subscribe");
	}
	if (natsConnection_Flush(b->nc) != NATS_OK)
		die("NATS flush failed");
	for (i = 0; i < b->ntasks; i++)
		if (b->tasks[i].left == 0)
			submit_task(b, i);
}

static void teardown(bl *b)
{
	char path[512];
	size_t i;

	for (i = 0; i < b->nteams; i++) {
		snprintf(path, sizeof(path), "/v1/teams/%s", b->team_ids[i]);
		send_req(b, K_DEL_TEAM, i, "DELETE", path, NULL);
	}
	for (i = 0; i < b->nagents; i++) {
		snprintf(path, sizeof(path), "/v1/agents/%s/stop", b->agent_ids[i]);
		send_req(b, K_STOP, i, "POST", path, NULL);
	}
}

/* A reply: what it makes possible next. */
static void on_reply(bl *b, req *r, long status, json_t *j, json_t *by_id)
{
	char path[512];
	json_t *o;

	if (status < 200 || status > 299) {
		fprintf(stderr, "baseline: %s -> %ld: %s\n", kind_names[r->kind], status,
			r->reply ? r->reply : "");
		b->failures++;
		return;
	}
	switch (r->kind) {
	case K_AGENT:
		b->agent_ids[r->index] = strdup(json_string_value(json_object_get(j, "id")));
		snprintf(path, sizeof(path), "/v1/agents/%s/start", b->agent_ids[r->index]);
		send_req(b, K_START, r->index, "POST", path, NULL);
		break;
	case K_START:
		if (++b->agents_up == b->nagents) {
			size_t i, k;

			for (i = 0; i < b->nteams; i++) {
				json_t *t = json_array_get(json_object_get(b->plan, "teams"), i);
				json_t *ids = json_array(), *a;

				json_array_foreach(json_object_get(t, "agents"), k, a)
					json_array_append_new(
						ids,
						json_string(b->agent_ids[json_integer_value(
							json_object_get(b->agent_index,
									json_string_value(a)))]));
				send_req(b, K_TEAM, i, "POST", "/v1/teams",
					 dump(json_pack(
						 "{s:s,s:o}", "name",
						 json_string_value(json_object_get(t, "name")),
						 "agentIds", ids)));
			}
		}
		break;
	case K_TEAM:
		o = json_object_get(j, "team");
		b->team_ids[r->index] = strdup(json_string_value(json_object_get(o, "id")));
		if (++b->teams_up == b->nteams)
			start_tasks(b);
		break;
	case K_TASK:
		o = json_object_get(j, "task");
		b->tasks[r->index].id = strdup(json_string_value(json_object_get(o, "id")));
		json_object_set_new(by_id, b->tasks[r->index].id,
				    json_integer((json_int_t)r->index));
		if (strcmp(json_string_value(json_object_get(o, "status")), "completed") == 0 ||
		    json_object_get(b->early, b->tasks[r->index].id) != NULL)
			on_task_completed(b, r->index);
		break;
	case K_GET_TASK:
		o = json_object_get(j, "task");
		if (strcmp(json_string_value(json_object_get(o, "status")), "completed") == 0)
			on_task_completed(b, r->index);
		break;
	case K_STOP:
		snprintf(path, sizeof(path), "/v1/agents/%s", b->agent_ids[r->index]);
		send_req(b, K_DEL_AGENT, r->index, "DELETE", path, NULL);
		break;
	default: b->deleted++; break;
	}
}

/* ---- the plan ------------------------------------------------------------ */

static void add_user(task *t, size_t user)
{
	if (t->nusers == t->capusers) {
		t->capusers = t->capusers ? 2 * t->capusers : 4;
		t->users = realloc(t->users, t->capusers * sizeof(size_t));
		if (t->users == NULL)
			die("out of memory");
	}
	t->users[t->nusers++] = user;
}

static void load_plan(bl *b, const char *file, const char *prefix)
{
	json_error_t e;
	json_t *v;
	size_t i, k;

	if ((b->plan = json_load_file(file, 0, &e)) == NULL)
		die(e.text);
	b->agent_index = json_object();
	b->team_index = json_object();
	b->task_index = json_object();
	b->nagents = json_array_size(json_object_get(b->plan, "agents"));
	b->nteams = json_array_size(json_object_get(b->plan, "teams"));
	b->ntasks = json_array_size(json_object_get(b->plan, "tasks"));
	b->agent_ids = calloc(b->nagents + 1, sizeof(char *));
	b->team_ids = calloc(b->nteams + 1, sizeof(char *));
	b->tasks = calloc(b->ntasks + 1, sizeof(task));
	if (b->agent_ids == NULL || b->team_ids == NULL || b->tasks == NULL)
		die("out of memory");
	json_array_foreach(json_object_get(b->plan, "agents"), i, v)
	{
		char name[300];

		json_object_set_new(b->agent_index, json_string_value(json_object_get(v, "name")),
				    json_integer((json_int_t)i));
		snprintf(name, sizeof(name), "%s-a-%s", prefix,
			 json_string_value(json_object_get(v, "name")));
		send_req(b, K_AGENT, i, "POST", "/v1/agents",
			 dump(json_pack("{s:s,s:s,s:s,s:[],s:s,s:s}", "name", name, "label",
					json_string_value(json_object_get(v, "name")), "program",
					json_string_value(json_object_get(v, "program")),
					"programArgs", "workingDirectory", "/tmp", "owner",
					"baseline")));
	}
	json_array_foreach(json_object_get(b->plan, "teams"), i, v)
	{
		const char *orig = json_string_value(json_object_get(v, "name"));
		char name[300];

		/* keyed by the spec's name; the plan's copy gets the remote name */
		json_object_set_new(b->team_index, orig, json_integer((json_int_t)i));
		snprintf(name, sizeof(name), "%s-t-%s", prefix, orig);
		json_object_set_new(v, "name", json_string(name));
	}
	json_array_foreach(json_object_get(b->plan, "tasks"), i, v)
		json_object_set_new(b->task_index, json_string_value(json_object_get(v, "id")),
				    json_integer((json_int_t)i));
	json_array_foreach(json_object_get(b->plan, "tasks"), i, v)
	{
		task *t = &b->tasks[i];
		json_t *d;

		t->key = json_string_value(json_object_get(v, "id"));
		t->team = json_string_value(json_object_get(v, "team"));
		t->subject = json_string_value(json_object_get(v, "subject"));
		t->description = json_string_value(json_object_get(v, "description"));
		t->agent = json_string_value(json_object_get(v, "assign_to"));
		t->ndeps = json_array_size(json_object_get(v, "blocked_by"));
		t->left = t->ndeps;
		json_array_foreach(json_object_get(v, "blocked_by"), k, d)
		{
			json_t *ix = json_object_get(b->task_index, json_string_value(d));

			if (ix == NULL)
				die("a task is blocked by an unknown task");
			add_user(&b->tasks[json_integer_value(ix)], i);
		}
	}
}

/* ---- the loop ------------------------------------------------------------- */

/* A task created more than a second ago and not heard of: asked by REST,
 * as the engine's reconcile does (events can be lost). */
static void look_at_silent(bl *b, long long now)
{
	char path[512];
	size_t i;

	for (i = 0; i < b->ntasks; i++) {
		task *t = &b->tasks[i];

		if (t->id == NULL || t->done || now - t->sent_ms < 1000)
			continue;
		t->sent_ms = now;
		snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s",
			 b->team_ids[json_integer_value(json_object_get(b->team_index, t->team))],
			 t->id);
		send_req(b, K_GET_TASK, i, "GET", path, NULL);
	}
}

static void pump(bl *b)
{
	while (b->head != NULL && b->inflight < b->conc) {
		req *r = b->head;

		b->head = r->next;
		if (b->head == NULL)
			b->tail = NULL;
		curl_multi_add_handle(b->m, r->h);
		b->inflight++;
	}
}

static void finish(bl *b, CURLMsg *msg, json_t *by_id)
{
	req *r = NULL;
	long status = 0;
	json_t *j;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
	j = r->reply != NULL ? json_loads(r->reply, 0, NULL) : NULL;
	if (msg->data.result != CURLE_OK)
		status = 0;
	on_reply(b, r, status, j, by_id);
	json_decref(j);
	curl_multi_remove_handle(b->m, r->h);
	curl_easy_cleanup(r->h);
	curl_slist_free_all(r->hdrs);
	free(r->body);
	free(r->reply);
	free(r);
	b->inflight--;
}

static void run(bl *b)
{
	json_t *by_id = json_object();
	long long last_look = now_ms();
	int torn = 0, running = 0;
	CURLMsg *msg;
	int left;

	while (b->failures == 0 && b->deleted < b->nteams + b->nagents) {
		pump(b);
		curl_multi_perform(b->m, &running);
		while ((msg = curl_multi_info_read(b->m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				finish(b, msg, by_id);
		drain_events(b, by_id);
		if (!torn && b->ntasks > 0 && b->tasks_done == b->ntasks) {
			teardown(b);
			torn = 1;
		}
		if (now_ms() - last_look >= 1000) {
			look_at_silent(b, now_ms());
			last_look = now_ms();
		}
		if (b->head == NULL || b->inflight >= b->conc)
			curl_multi_poll(b->m, NULL, 0, 5, NULL);
	}
	json_decref(by_id);
}

int main(int argc, char **argv)
{
	bl b;
	const char *nats = NULL, *plan = NULL;
	char prefix[32];
	long long t0;
	json_t *out, *counts;
	int i;

	memset(&b, 0, sizeof(b));
	b.conc = 16; /* the engine's default --max-concurrent */
	b.early = json_object();
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
			b.url = argv[++i];
		else if (strcmp(argv[i], "--nats") == 0 && i + 1 < argc)
			nats = argv[++i];
		else if (strcmp(argv[i], "--concurrency") == 0 && i + 1 < argc)
			b.conc = atoi(argv[++i]);
		else
			plan = argv[i];
	}
	if (b.url == NULL || nats == NULL || plan == NULL || b.conc < 1)
		die("usage: tlm_bench_baseline --url URL --nats NATS_URL [--concurrency N] "
		    "PLAN.json");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_mutex_init(&b.lock, NULL);
	if (natsConnection_ConnectTo(&b.nc, nats) != NATS_OK)
		die("cannot connect to NATS");
	b.m = curl_multi_init();
	/* a keep-alive pool as large as the concurrency, like the engine's */
	curl_multi_setopt(b.m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)b.conc);
	snprintf(prefix, sizeof(prefix), "bl-%ld", (long)getpid());
	t0 = now_ms();
	load_plan(&b, plan, prefix);
	run(&b);
	out = json_pack("{s:I,s:I,s:I,s:I,s:o}", "wall_ms", (json_int_t)(now_ms() - t0), "tasks",
			(json_int_t)b.tasks_done, "events", (json_int_t)b.events, "failures",
			(json_int_t)b.failures, "requests", counts = json_object());
	for (i = 0; i < NKINDS; i++)
		json_object_set_new(counts, kind_names[i], json_integer(b.counts[i]));
	json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	return b.failures == 0 ? 0 : 1;
}
