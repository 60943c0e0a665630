/* The CLI's metrics settings: the exporter's lifetime is the command's
 * (a run, resume or teardown, or serve), the textfile is written once at its
 * end, after the engine and the in-process control plane have stopped, so
 * that it holds the whole run (docs/metrics.md). */
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/cli_metrics.h"
#include "telemachy/metrics.h"
#include "telemachy/server.h"

static const char *listen_at, *textfile;
static tlm_metrics_exporter *exporter;

int tlm_cli_metrics_opt(int c, const char *arg)
{
	if (c == TLM_CLI_OPT_METRICS_LISTEN)
		listen_at = arg;
	else if (c == TLM_CLI_OPT_METRICS_TEXTFILE)
		textfile = arg;
	else
		return 0;
	return 1;
}

/* A flag wins over the environment; an empty value is none. */
static const char *setting(const char *flag, const char *env)
{
	const char *v = flag != NULL ? flag : getenv(env);

	return v != NULL && *v != '\0' ? v : NULL;
}

int tlm_cli_metrics_start(void)
{
	tlm_error err = TLM_ERROR_INIT;
	const char *at = setting(listen_at, "METRICS_LISTEN");

	if (at == NULL || exporter != NULL)
		return TLM_EXIT_OK;
	if (tlm_metrics_exporter_start(&exporter, at, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		return TLM_EXIT_USAGE;
	}
	/* The port, when 0 asked for any: a scraper (or a test) reads it here. */
	tlm_log_cmd(TLM_ENGINE_INFO, NULL, "metrics at http://%s/metrics",
		    tlm_metrics_exporter_address(exporter));
	return TLM_EXIT_OK;
}

void tlm_cli_metrics_finish(void)
{
	tlm_error err = TLM_ERROR_INIT;
	const char *path = setting(textfile, "METRICS_TEXTFILE");

	if (path != NULL && tlm_metrics_write_textfile(path, &err) != 0)
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
	tlm_metrics_exporter_stop(exporter);
	exporter = NULL;
}
