/* telemachy abandon — the operator gives up on one resource that cannot be
 * deleted (its control plane is gone for good, say): the journal stops
 * counting it as a leftover, and an audit entry records who did it and why,
 * since from then on nothing will ever try to delete it again. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_journal.h"

#define OPT_REASON  0x101
#define DETAIL_MAX  TLM_JOURNAL_TEXT_MAX
#define DEFAULT_WHY "abandoned by the operator"

typedef struct abandon_args {
	const char *dir, *run, *resource, *reason;
} abandon_args;

/* The resource found in the journal, copied out of the walk. */
typedef struct found_res {
	const char *want_name;
	int want_kind; /* -1: any kind */
	int found;
	tlm_journal_kind kind;
	tlm_journal_state state;
	char name[TLM_JOURNAL_NAME_MAX + 1];
	char remote_id[TLM_JOURNAL_TEXT_MAX + 1];
} found_res;

static void usage(void)
{
	printf("Usage: telemachy abandon [--state-dir DIR] [--reason TEXT] RUN RESOURCE\n"
	       "\n"
	       "Give up on one resource of RUN that cannot be deleted: the journal marks it\n"
	       "abandoned (no longer a leftover; teardown and resume leave it alone) and\n"
	       "records who did it and why in the run's audit trail.  The resource is NOT\n"
	       "deleted: if it still exists, deleting it is now up to you.\n"
	       "\n"
	       "RESOURCE is the resource's full name (tlm-RUN-a-NAME) or the spec's name\n"
	       "as agent/NAME or team/NAME.  Refused while the run's owner is alive.\n"
	       "\n"
	       "Options:\n"
	       "      --state-dir DIR  the journal's directory (default: $TELEMACHY_STATE_DIR,\n"
	       "                       else $XDG_STATE_HOME/telemachy)\n"
	       "      --reason TEXT    why (recorded as the resource's last error and in the\n"
	       "                       audit trail; never put a secret in it)\n"
	       "  -q, --quiet          print nothing on success\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Exit codes: 0 abandoned, 1 the journal could not be read or written,\n"
	       "2 usage error, unknown run or resource, a resource already gone or\n"
	       "abandoned, or a run whose owner is alive.\n");
}

static int parse_args(tlm_cli *cli, int argc, char **argv, abandon_args *a)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_STATE_DIR_LONGOPT,
						  { "reason", required_argument, NULL, OPT_REASON },
						  { 0 } };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == TLM_CLI_OPT_STATE_DIR)
			a->dir = optarg;
		else
			a->reason = optarg;
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (argc - optind < 2)
		return tlm_cli_usage_error(cli, "missing %s",
					   optind < argc ? "the RESOURCE" : "the RUN and RESOURCE");
	if (argc - optind > 2)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind + 2]);
	a->run = argv[optind];
	a->resource = argv[optind + 1];
	if (a->reason != NULL && (a->reason[0] == '\0' || strlen(a->reason) > DETAIL_MAX / 2))
		return tlm_cli_usage_error(cli, "--reason must be 1 to %d bytes", DETAIL_MAX / 2);
	return 0;
}

static int find_cb(const tlm_journal_resource *r, void *ctx)
{
	found_res *f = ctx;

	if (strcmp(r->name, f->want_name) != 0 ||
	    (f->want_kind >= 0 && (int)r->kind != f->want_kind))
		return 0;
	f->found = 1;
	f->kind = r->kind;
	f->state = r->state;
	snprintf(f->name, sizeof(f->name), "%s", r->name);
	snprintf(f->remote_id, sizeof(f->remote_id), "%s", r->remote_id ? r->remote_id : "");
	return 1; /* stop: names are unique within a run */
}

/* agent/NAME and team/NAME map to the engine's names, tlm-RUN-a-NAME and
 * tlm-RUN-t-NAME; anything else is taken as a full name. */
static void resolve_name(const char *run, const char *res, char *name, size_t size, int *kind)
{
	*kind = -1;
	if (strncmp(res, "agent/", 6) == 0) {
		*kind = TLM_JOURNAL_AGENT;
		snprintf(name, size, "tlm-%s-a-%s", run, res + 6);
	} else if (strncmp(res, "team/", 5) == 0) {
		*kind = TLM_JOURNAL_TEAM;
		snprintf(name, size, "tlm-%s-t-%s", run, res + 5);
	} else {
		snprintf(name, size, "%s", res);
	}
}

/* Exit code for the checks that precede the write: 0 to go on. */
static int check(const tlm_journal_run *r, const found_res *f, const char *resource)
{
	if (tlm_journal_run_owner(r) == TLM_JOURNAL_OWNER_ALIVE) {
		fprintf(stderr, "telemachy abandon: run %s is running (pid %ld); cancel it first\n",
			r->id, r->owner_pid);
		return TLM_EXIT_USAGE;
	}
	if (!f->found) {
		fprintf(stderr, "telemachy abandon: run %s has no resource %s\n", r->id, resource);
		return TLM_EXIT_USAGE;
	}
	if (!tlm_cli_resource_live(f->state)) {
		fprintf(stderr, "telemachy abandon: %s %s is already %s; nothing to abandon\n",
			tlm_journal_kind_name(f->kind), f->name, tlm_journal_state_name(f->state));
		return TLM_EXIT_USAGE;
	}
	return 0;
}

/* The state change first, then the audit entry: if the second write fails,
 * the resource is abandoned with its reason recorded as its last error, and
 * the message says the audit entry is missing. */
static int do_abandon(const tlm_cli *cli, tlm_journal *j, const char *run, const found_res *f,
		      const char *why)
{
	tlm_error err = TLM_ERROR_INIT;
	char detail[2 * TLM_JOURNAL_TEXT_MAX + TLM_JOURNAL_NAME_MAX + 64]; /* the journal caps it */

	if (tlm_journal_set_resource_state(j, run, f->kind, f->name, TLM_JOURNAL_ABANDONED, why,
					   &err) != 0) {
		fprintf(stderr, "telemachy abandon: %s\n", err.message);
		return TLM_EXIT_FAILED;
	}
	snprintf(detail, sizeof(detail), "%s %s (id %s, was %s): %s",
		 tlm_journal_kind_name(f->kind), f->name, f->remote_id[0] ? f->remote_id : "none",
		 tlm_journal_state_name(f->state), why);
	if (tlm_journal_audit(j, run, "abandon", detail, &err) != 0) {
		fprintf(stderr, "telemachy abandon: %s abandoned, but no audit entry: %s\n",
			f->name, err.message);
		return TLM_EXIT_FAILED;
	}
	if (!cli->quiet)
		printf("abandoned %s %s (id %s) of run %s: %s\n"
		       "It was NOT deleted; if it still exists, delete it yourself.\n",
		       tlm_journal_kind_name(f->kind), f->name,
		       f->remote_id[0] ? f->remote_id : "none", run, why);
	return TLM_EXIT_OK;
}

int tlm_cmd_abandon(tlm_cli *cli, int argc, char **argv)
{
	tlm_error err = TLM_ERROR_INIT;
	abandon_args a = { NULL, NULL, NULL, NULL };
	found_res f;
	tlm_journal *j = NULL;
	tlm_journal_run r;
	char name[TLM_JOURNAL_NAME_MAX + 1];
	int rc = parse_args(cli, argc, argv, &a);

	memset(&r, 0, sizeof(r));
	memset(&f, 0, sizeof(f));
	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc; /* -1: help was shown */
	if ((rc = tlm_cli_journal_open(cli, a.dir, &j)) != TLM_EXIT_OK)
		return rc;
	if (j == NULL || (rc = tlm_journal_run_get(j, a.run, &r, &err)) == TLM_ENOTFOUND ||
	    rc == TLM_EINVALID) {
		fprintf(stderr, "telemachy abandon: no run %s\n", a.run);
		rc = TLM_EXIT_USAGE;
		goto done;
	}
	resolve_name(r.id, a.resource, name, sizeof(name), &f.want_kind);
	f.want_name = name;
	if (rc != 0 || ((rc = tlm_journal_resources(j, r.id, find_cb, &f, &err)) != 0 && rc != 1)) {
		fprintf(stderr, "telemachy abandon: %s\n", err.message);
		rc = TLM_EXIT_FAILED;
		goto done;
	}
	if ((rc = check(&r, &f, a.resource)) == 0)
		rc = do_abandon(cli, j, r.id, &f, a.reason ? a.reason : DEFAULT_WHY);
done:
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	return rc;
}
