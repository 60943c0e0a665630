/* The request log (`serve --request-log FILE`): one JSON line per request,
 * with the owner header a telemachy engine sends (X-Telemachy-Owner:
 * RUN/EPOCH), so that a test — or an operator — can see which owner of a run
 * sent what and when (docs/serve.md, "Request log").  Internal. */
#ifndef TLM_SERVER_REQLOG_H
#define TLM_SERVER_REQLOG_H

#include <stdint.h>

#include "telemachy/error.h"

typedef struct tlm_reqlog tlm_reqlog;

/* Opens path for appending (created 0600). */
int tlm_reqlog_open(tlm_reqlog **out, const char *path, tlm_error *err);

/* Milliseconds since the epoch (CLOCK_REALTIME): when a request arrived. */
int64_t tlm_reqlog_now_ms(void);

/* One line: {"ms", "method", "path", "status", "owner"}, and "traceparent"
 * when the request had that header (W3C Trace Context, docs/tracing.md);
 * status 0 when the answer was dropped (a fault).  Strings are escaped by
 * jansson; path, owner and traceparent come from the client and are cut
 * at 512 bytes.  Thread-safe: one
 * write(2) per line on an O_APPEND descriptor. */
void tlm_reqlog_write(tlm_reqlog *l, int64_t ms, const char *method, const char *path, int status,
		      const char *owner, const char *traceparent);

void tlm_reqlog_close(tlm_reqlog *l);

#endif
