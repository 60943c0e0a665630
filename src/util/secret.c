/* API key rules (see secret.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "util/secret.h"

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* What a secret is called in messages, and why white space at its ends or
 * a control character cannot be: an API key travels in an HTTP header, a
 * NATS token in the protocol's CONNECT line. */
typedef struct secret_kind {
	const char *noun;       /* "API key" */
	const char *short_noun; /* "key" */
	const char *ends_why;
	const char *ctl_why;
} secret_kind;

static const secret_kind api_key = { "API key", "key",
				     "which HTTP strips from headers (no client could send it)",
				     "which an HTTP header cannot carry" };
static const secret_kind nats_token = { "NATS token", "token", "which is surely not part of it",
					"which a NATS token cannot hold" };

/* Only the byte values of a key are looked at, never printed: the message
 * says what is wrong, not where, so not a character of the key leaks. */
static int check_secret(const char *key, const secret_kind *k, const char *what, tlm_error *err)
{
	size_t n, i;

	if (key == NULL || key[0] == '\0')
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: the %s is empty (an empty %s would turn auth off)", what,
				     k->noun, k->short_noun);
	n = strlen(key);
	if (n > TLM_SECRET_KEY_MAX)
		return tlm_error_set(err, TLM_EINVALID, "%s: the %s is longer than %d bytes", what,
				     k->noun, TLM_SECRET_KEY_MAX);
	for (i = 0; i < n && (is_blank(key[i]) || key[i] == '\r' || key[i] == '\n'); i++)
		;
	if (i == n)
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: the %s is blank (only white space; auth would be off)",
				     what, k->noun);
	if (is_blank(key[0]) || is_blank(key[n - 1]))
		return tlm_error_set(err, TLM_EINVALID,
				     "%s: the %s starts or ends with white space, %s", what,
				     k->noun, k->ends_why);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return tlm_error_set(err, TLM_EINVALID,
					     "%s: the %s contains a control character, %s", what,
					     k->noun, k->ctl_why);
	}
	return 0;
}

int tlm_secret_check_key(const char *key, const char *what, tlm_error *err)
{
	return check_secret(key, &api_key, what, err);
}

/* The buffer held the key: it is wiped before return, so a later core dump
 * or stack read does not find it there. */
static int read_secret_file(char **out, const char *path, const secret_kind *k, tlm_error *err)
{
	char buf[TLM_SECRET_KEY_MAX + 3], what[512];
	FILE *f = fopen(path, "r");
	size_t n = 0, len;
	int rc = 0, e;

	*out = NULL;
	if (f == NULL)
		return tlm_error_set(err, errno == ENOENT ? TLM_ENOTFOUND : TLM_ERROR,
				     "%s file %s: %s", k->noun, path, strerror(errno));
	/* One byte more than the longest key and its "\r\n": enough to tell
	 * a first line that is too long from one that fits. */
	n = fread(buf, 1, sizeof(buf) - 1, f);
	e = ferror(f) ? errno : 0;
	fclose(f);
	if (e != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "%s file %s: %s", k->noun, path, strerror(e));
		goto done;
	}
	buf[n] = '\0';
	len = strcspn(buf, "\n");
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	snprintf(what, sizeof(what), "%s file %s (first line)", k->noun, path);
	if (len > TLM_SECRET_KEY_MAX) {
		rc = tlm_error_set(err, TLM_EINVALID, "%s: the %s is longer than %d bytes", what,
				   k->noun, TLM_SECRET_KEY_MAX);
		goto done;
	}
	buf[len] = '\0';
	if ((rc = check_secret(buf, k, what, err)) == 0 && (*out = strdup(buf)) == NULL)
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
done:
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

int tlm_secret_read_key_file(char **out, const char *path, tlm_error *err)
{
	return read_secret_file(out, path, &api_key, err);
}

int tlm_secret_read_token_file(char **out, const char *path, tlm_error *err)
{
	return read_secret_file(out, path, &nats_token, err);
}

void tlm_secret_protect_process(void)
{
	struct rlimit none = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &none);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int tlm_secret_random_key(char **out, tlm_error *err)
{
	unsigned char raw[32];
	char *key = malloc(2 * sizeof(raw) + 1);
	size_t i;

	*out = NULL;
	if (key == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		free(key);
		return tlm_error_set(err, TLM_ERROR, "no random bytes for a key");
	}
	for (i = 0; i < sizeof(raw); i++)
		snprintf(key + 2 * i, 3, "%02x", raw[i]);
	memset(raw, 0, sizeof(raw));
	*out = key;
	return 0;
}

void tlm_secret_free(char *key)
{
	volatile char *p = key;

	while (p != NULL && *p != '\0')
		*p++ = '\0';
	free(key);
}
