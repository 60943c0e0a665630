/* telemachy abandon — the operator gives up on one resource that cannot be
 * deleted (its control plane is gone for good, say): the journal stops
 * counting it as a leftover, and an audit entry records who did it and why,
 * since from then on nothing will ever try to delete it again.  The library
 * decides (tlm_engine_abandon); this maps flags and prints. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_journal.h"
#include "telemachy/engine.h"

#define OPT_REASON  0x101
#define OPT_FORCE   0x102
#define DETAIL_MAX  TLM_JOURNAL_TEXT_MAX
#define DEFAULT_WHY "abandoned by the operator"

typedef struct abandon_args {
	const char *dir, *run, *resource, *reason;
	int force;
} abandon_args;

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
	       "      --journal WHERE  or a shared one: postgres://... (TELEMACHY_JOURNAL,\n"
	       "                       docs/distributed.md)\n"
	       "      --reason TEXT    why (recorded as the resource's last error and in the\n"
	       "                       audit trail; never put a secret in it)\n"
	       "      --force          even though the run's owner looks alive (it is fenced\n"
	       "                       off: it stops before its next request)\n"
	       "  -q, --quiet          print nothing on success\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Exit codes: 0 abandoned, 1 the journal could not be read or written,\n"
	       "2 usage error, unknown run or resource, a resource already gone or\n"
	       "abandoned, or a run whose owner is alive (without --force).\n");
}

static int parse_args(tlm_cli *cli, int argc, char **argv, abandon_args *a)
{
	static const struct option longopts[] = { TLM_CLI_LONGOPTS,
						  TLM_CLI_STATE_DIR_LONGOPT,
						  { "reason", required_argument, NULL, OPT_REASON },
						  { "force", no_argument, NULL, OPT_FORCE },
						  { 0 } };
	int c, rc;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == TLM_CLI_OPT_STATE_DIR)
			a->dir = optarg;
		else if (c == OPT_FORCE)
			a->force = 1;
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

/* Prints what happened; the exit code. */
static int report(const tlm_cli *cli, const abandon_args *a, int rc, const tlm_engine_abandoned *f,
		  const char *why, const tlm_error *err)
{
	if (rc != 0 && !(rc == TLM_ERROR && f->name[0] != '\0' && !f->audited)) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s%s", err->message,
			    rc == TLM_ECONFLICT ? "; cancel it first, or --force" : "");
		return rc == TLM_ENOTFOUND || rc == TLM_EINVALID || rc == TLM_ECONFLICT
			       ? TLM_EXIT_USAGE
			       : TLM_EXIT_FAILED;
	}
	if (!f->audited) {
		tlm_log_cmd(TLM_ENGINE_WARN, NULL, "%s abandoned, but no audit entry: %s", f->name,
			    err->message);
		return TLM_EXIT_FAILED;
	}
	if (!cli->quiet) {
		tlm_cli_line(stdout, "abandoned %s %s (id %s) of run %s: %s",
			     tlm_journal_kind_name(f->kind), f->name,
			     f->remote_id[0] ? f->remote_id : "none", a->run, why);
		printf("It was NOT deleted; if it still exists, delete it yourself.\n");
	}
	return TLM_EXIT_OK;
}

int tlm_cmd_abandon(tlm_cli *cli, int argc, char **argv)
{
	tlm_error err = TLM_ERROR_INIT;
	abandon_args a = { NULL, NULL, NULL, NULL, 0 };
	tlm_engine_abandoned f;
	tlm_journal *j = NULL;
	const char *why;
	int rc = parse_args(cli, argc, argv, &a);

	if (rc != 0)
		return rc < 0 ? TLM_EXIT_OK : rc; /* -1: help was shown */
	/* A state directory without a journal has no runs: not one is made. */
	if ((rc = tlm_cli_journal_open(a.dir, &j)) != TLM_EXIT_OK)
		return rc;
	if (j == NULL) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "no run %s", a.run);
		return TLM_EXIT_USAGE;
	}
	tlm_journal_close(j);
	why = a.reason ? a.reason : DEFAULT_WHY;
	rc = tlm_engine_abandon(a.dir, a.run, a.resource, why,
				a.force ? TLM_JOURNAL_CLAIM_FORCE : 0, &f, &err);
	return report(cli, &a, rc, &f, why, &err);
}
