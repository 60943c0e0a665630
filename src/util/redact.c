/* Redaction (redact.h).  A plain scan, no URL library: it must also work on
 * text that is not a valid URL, which is exactly when it gets printed in an
 * error. */
#include <stdio.h>
#include <string.h>

#include "util/redact.h"

static void put(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
	while (len-- > 0 && *n + 1 < cap)
		out[(*n)++] = *s++;
	out[*n] = '\0';
}

void tlm_redact_url(char *out, size_t cap, const char *url)
{
	const char *p = url, *auth, *end, *at;
	size_t n = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	if (url == NULL)
		return;
	auth = strstr(p, "://");
	auth = auth != NULL ? auth + 3 : p;
	put(out, cap, &n, p, (size_t)(auth - p));
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	if (at != NULL) {
		put(out, cap, &n, "***@", 4);
		auth = at + 1;
	}
	p = auth + strcspn(auth, "?#");
	put(out, cap, &n, auth, (size_t)(p - auth));
	if (*p != '?')
		return;
	/* Query: names kept, values hidden. */
	for (p++, put(out, cap, &n, "?", 1); *p != '\0' && *p != '#';) {
		size_t name = strcspn(p, "=&#"), field = strcspn(p, "&#");

		put(out, cap, &n, p, name);
		if (p[name] == '=')
			put(out, cap, &n, "=***", 4);
		p += field;
		if (*p == '&')
			put(out, cap, &n, "&", 1), p++;
	}
}
