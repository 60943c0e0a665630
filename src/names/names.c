/* Resource names (names.h): tlm-<run>-a-<agent>, tlm-<run>-t-<team>,
 * tlm-<run>-probe. */
#include <stdio.h>
#include <string.h>

#include "telemachy/names.h"

#define RUN_ID_LEN 8

void tlm_name_prefix(char *out, size_t cap, const char *run_id)
{
	snprintf(out, cap, "tlm-%s-", run_id);
}

void tlm_name_probe(char *out, size_t cap, const char *run_id)
{
	snprintf(out, cap, "tlm-%s-probe", run_id);
}

int tlm_name_build(char *out, size_t cap, const char *run_id, tlm_name_kind kind, const char *name,
		   tlm_error *err)
{
	int n = snprintf(out, cap, "tlm-%s-%c-%s", run_id, kind == TLM_NAME_AGENT ? 'a' : 't',
			 name);

	if (n < 0 || (size_t)n >= cap || n > TLM_NAME_MAX)
		return tlm_error_set(
			err, TLM_ETOOBIG,
			"the resource name for %s \"%.64s\" would be longer than %d bytes",
			kind == TLM_NAME_AGENT ? "agent" : "team", name, TLM_NAME_MAX);
	return 0;
}

static int is_run_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int tlm_name_parse(const char *full, tlm_name_parts *parts)
{
	const char *p;
	size_t i;

	memset(parts, 0, sizeof(*parts));
	parts->kind = -1;
	if (strncmp(full, "tlm-", 4) != 0)
		return TLM_ENOTFOUND;
	p = full + 4;
	for (i = 0; i < RUN_ID_LEN && is_run_char(p[i]); i++)
		;
	if (i != RUN_ID_LEN || p[RUN_ID_LEN] != '-')
		return 0;
	memcpy(parts->run_id, p, RUN_ID_LEN);
	parts->run_id[RUN_ID_LEN] = '\0';
	p += RUN_ID_LEN + 1;
	if ((p[0] == 'a' || p[0] == 't') && p[1] == '-' && p[2] != '\0') {
		parts->kind = p[0] == 'a' ? TLM_NAME_AGENT : TLM_NAME_TEAM;
		parts->name = p + 2;
	}
	return 0;
}

int tlm_name_resolve(char *out, size_t cap, const char *run_id, const char *given, int *kind,
		     tlm_error *err)
{
	*kind = -1;
	if (strncmp(given, "agent/", 6) == 0) {
		*kind = TLM_NAME_AGENT;
		return tlm_name_build(out, cap, run_id, TLM_NAME_AGENT, given + 6, err);
	}
	if (strncmp(given, "team/", 5) == 0) {
		*kind = TLM_NAME_TEAM;
		return tlm_name_build(out, cap, run_id, TLM_NAME_TEAM, given + 5, err);
	}
	if (strlen(given) >= cap || strlen(given) > TLM_NAME_MAX)
		return tlm_error_set(err, TLM_ETOOBIG, "a resource name is at most %d bytes",
				     TLM_NAME_MAX);
	snprintf(out, cap, "%s", given);
	return 0;
}
