/* Redaction of what may carry a credential before it is printed.
 * Internal. */
#ifndef TLM_UTIL_REDACT_H
#define TLM_UTIL_REDACT_H

#include <stddef.h>

/* url with its userinfo ("user:password@") replaced by "***@" and every
 * query value by "***" ("?key=***&x=***"); the fragment dropped.  Always
 * terminates out (cap > 0); cut at cap. */
void tlm_redact_url(char *out, size_t cap, const char *url);

#endif
