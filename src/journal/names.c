/* The journal's vocabularies, each as one table: the names stored in the
 * database and shown to people, and their parsing.  Nothing else in the code
 * spells these words. */
#include <string.h>

#include "journal/journal_internal.h"

static const char *const kind_names[] = { "agent", "team" };
static const char *const state_names[TLM_JOURNAL_STATE_COUNT] = { "intent",   "created", "started",
								  "deleting", "deleted", "absent",
								  "abandoned" };
static const char *const run_names[TLM_RUN_STATE_COUNT] = {
	"pending", "provisioning", "running",         "tearing_down", "completed",
	"failed",  "cancelled",    "teardown_failed", "queued"
};
static const char *const attempt_names[TLM_ATTEMPT_STATUS_COUNT] = { "pending",   "submitted",
								     "running",   "completed",
								     "failed",    "skipped",
								     "cancelled", "timed_out" };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, unsigned v)
{
	return v < n ? names[v] : "?";
}

static int parse(const char *const *names, size_t n, const char *s, int *out)
{
	size_t i;

	for (i = 0; s != NULL && i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return TLM_EINVALID;
}

const char *tlm_journal_kind_name(tlm_journal_kind kind)
{
	return name_of(kind_names, COUNT(kind_names), (unsigned)kind);
}

const char *tlm_journal_state_name(tlm_journal_state state)
{
	return name_of(state_names, COUNT(state_names), (unsigned)state);
}

const char *tlm_run_state_name(tlm_run_state s)
{
	return name_of(run_names, COUNT(run_names), (unsigned)s);
}

const char *tlm_attempt_status_name(tlm_attempt_status s)
{
	return name_of(attempt_names, COUNT(attempt_names), (unsigned)s);
}

int tlm_journal_kind_parse(const char *s, tlm_journal_kind *out)
{
	int v, rc = parse(kind_names, COUNT(kind_names), s, &v);

	if (rc == 0)
		*out = (tlm_journal_kind)v;
	return rc;
}

int tlm_journal_state_parse(const char *s, tlm_journal_state *out)
{
	int v, rc = parse(state_names, COUNT(state_names), s, &v);

	if (rc == 0)
		*out = (tlm_journal_state)v;
	return rc;
}

int tlm_run_state_parse(const char *name, tlm_run_state *out)
{
	int v, rc = parse(run_names, COUNT(run_names), name, &v);

	if (rc == 0)
		*out = (tlm_run_state)v;
	return rc;
}

int tlm_attempt_status_parse(const char *name, tlm_attempt_status *out)
{
	int v, rc = parse(attempt_names, COUNT(attempt_names), name, &v);

	if (rc == 0)
		*out = (tlm_attempt_status)v;
	return rc;
}

int tlm_run_state_is_final(tlm_run_state s)
{
	return s >= TLM_RUN_COMPLETED && s <= TLM_RUN_TEARDOWN_FAILED;
}
