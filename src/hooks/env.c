/* What of this process's environment a command hook gets (docs/hooks.md,
 * "Security"): everything but what may be a secret.  The rule is by name,
 * deliberately broad: a hook is a program of the operator's, but the
 * control plane's key, NATS credentials and the journal's password are
 * ours alone (docs/security.md). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/hooks_internal.h"

extern char **environ;

static int has_word(const char *upper, const char *w)
{
	return strstr(upper, w) != NULL;
}

int tlm_hooks__env_secret(const char *name, size_t len)
{
	static const char *const words[] = { "KEY",    "TOKEN", "SECRET",  "PASSWORD",
					     "PASSWD", "CRED",  "PRIVATE", NULL };
	static const char *const prefixes[] = { "PG", "AGAMEMNON_", "NATS_", "TLM_", NULL };
	char upper[256];
	size_t i;

	if (len >= sizeof(upper))
		return 1; /* no variable we know is that long: not worth the risk */
	for (i = 0; i < len; i++)
		upper[i] = (char)toupper((unsigned char)name[i]);
	upper[len] = '\0';
	for (i = 0; words[i]; i++)
		if (has_word(upper, words[i]))
			return 1;
	for (i = 0; prefixes[i]; i++)
		if (strncmp(upper, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	/* A postgres:// URI may hold a password. */
	return strcmp(upper, "TELEMACHY_JOURNAL") == 0 || strcmp(upper, "DATABASE_URL") == 0;
}

char **tlm_hooks__env_base(void)
{
	size_t n = 0, k = 0, i;
	char **out;

	while (environ != NULL && environ[n] != NULL)
		n++;
	if ((out = calloc(n + 1, sizeof(*out))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');

		if (eq == NULL || tlm_hooks__env_secret(environ[i], (size_t)(eq - environ[i])))
			continue;
		if ((out[k++] = strdup(environ[i])) == NULL) {
			tlm_hooks__env_free(out);
			return NULL;
		}
	}
	return out;
}

void tlm_hooks__env_free(char **env)
{
	size_t i;

	for (i = 0; env != NULL && env[i] != NULL; i++)
		free(env[i]);
	free(env);
}
