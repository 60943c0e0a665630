/* Outages of NATS and of the control plane (docs/agamemnon.md, "Outages of
 * NATS and of the control plane").  Each is said once when it starts and
 * once when it ends — a warning and an audit entry, never one per request —
 * and while NATS is away the REST reconcile polls at the no-NATS cadence,
 * since it is then the only source of task states.  The state is read from
 * what the watcher's callbacks and the client last stored: nothing here
 * waits (docs/internals/engine.md, "The loop"). */
#include <stdio.h>

#include "engine/engine_internal.h"

void tlm_eng__cadence(eng *e, int events)
{
	/* Without events REST is the only source: poll fast, back off while
	 * nothing changes.  With events it is the safety net. */
	e->reconcile_min = events ? 1000 : 100;
	e->reconcile_max = events ? 15000 : 2000;
	/* Our in-process server is a loopback call away and cheap to ask. */
	if (e->o->in_process && !events) {
		e->reconcile_min = 20;
		e->reconcile_max = 250;
	}
	if (e->o->reconcile_ms > 0)
		e->reconcile_max = e->o->reconcile_ms;
	if (e->reconcile_min > e->reconcile_max)
		e->reconcile_min = e->reconcile_max;
	e->reconcile_gap = e->reconcile_min;
}

static void audit(eng *e, const char *action, const char *detail)
{
	tlm_error err = TLM_ERROR_INIT;

	if (e->run_id[0] == '\0' || e->stop != STOP_NONE)
		return; /* before the run exists, or no longer ours to write */
	if (tlm_journal_audit(e->j, e->run_id, action, detail, &err) != 0)
		tlm_eng__log(e, TLM_ENGINE_DEBUG, "no audit entry for %s: %s", action, err.message);
}

/* The one transition of a link: said (warning, audit) and timed. */
static void link_to(eng *e, eng_link *l, eng_link_state to, const char *action, const char *msg)
{
	if (l->st == to)
		return;
	l->st = to;
	l->since_ms = tlm_eng__now_ms();
	tlm_eng__log(e, TLM_ENGINE_WARN, "%s", msg);
	audit(e, action, msg);
}

static double away_s(const eng_link *l)
{
	return (double)(tlm_eng__now_ms() - l->since_ms) / 1000.0;
}

static void nats_down(eng *e)
{
	char msg[256];

	tlm_eng__cadence(e, 0);
	snprintf(msg, sizeof(msg),
		 "NATS connection lost: no task events; following the tasks over REST every "
		 "%.1f-%.1f s until it is back",
		 (double)e->reconcile_min / 1000.0, (double)e->reconcile_max / 1000.0);
	link_to(e, &e->nats, LINK_DOWN, "nats-lost", msg);
	/* Events may be lost from now on: ask REST at once. */
	e->next_reconcile = 0;
}

static void nats_up(eng *e)
{
	char msg[256];
	double away = away_s(&e->nats);

	tlm_eng__cadence(e, 1);
	snprintf(msg, sizeof(msg),
		 "NATS connection back after %.1f s: task events again; catching up over REST, "
		 "then every %.1f-%.1f s",
		 away, (double)e->reconcile_min / 1000.0, (double)e->reconcile_max / 1000.0);
	link_to(e, &e->nats, LINK_UP, "nats-back", msg);
	/* Events published while it was away are lost: the catch-up. */
	e->next_reconcile = 0;
}

static void watch_nats(eng *e)
{
	tlm_watcher_stats st;
	int up = tlm_watcher_connected(e->w);

	tlm_watcher_stats_get(e->w, &st);
	/* A reconnect since the last look while we thought it up: an outage
	 * shorter than a turn.  Still said, both ways. */
	if (up && e->nats.st == LINK_UP && st.reconnects != e->nats.reconnects)
		nats_down(e);
	e->nats.reconnects = st.reconnects;
	if (!up && e->nats.st == LINK_UP)
		nats_down(e);
	else if (up && e->nats.st == LINK_DOWN)
		nats_up(e);
}

static void watch_plane(eng *e)
{
	tlm_client_reach r;
	char msg[512];

	tlm_client_reach_get(e->c, &r);
	if (r.down && e->plane.st == LINK_UP) {
		snprintf(msg, sizeof(msg),
			 "control plane unreachable (%s): requests are retried until it answers",
			 r.why);
		link_to(e, &e->plane, LINK_DOWN, "control-plane-lost", msg);
	} else if (!r.down && e->plane.st == LINK_DOWN) {
		snprintf(msg, sizeof(msg), "control plane answers again after %.1f s",
			 away_s(&e->plane));
		link_to(e, &e->plane, LINK_UP, "control-plane-back", msg);
	}
}

void tlm_eng__watch_links(eng *e)
{
	if (e->w != NULL)
		watch_nats(e);
	if (e->c != NULL)
		watch_plane(e);
}
