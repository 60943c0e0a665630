/* Error detail helpers: one fixed-size message per call, never allocated, so
 * reporting an error can not itself fail. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "telemachy/error.h"

int tlm_error_set(tlm_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

void tlm_error_clear(tlm_error *err)
{
	if (err == NULL)
		return;
	err->code = 0;
	err->message[0] = '\0';
}

const char *tlm_error_name(int code)
{
	switch (code) {
	case TLM_OK: return "TLM_OK";
	case TLM_ENOTFOUND: return "TLM_ENOTFOUND";
	case TLM_ECONFLICT: return "TLM_ECONFLICT";
	case TLM_ERATELIMIT: return "TLM_ERATELIMIT";
	case TLM_ETIMEOUT: return "TLM_ETIMEOUT";
	case TLM_ECANCELLED: return "TLM_ECANCELLED";
	case TLM_ETOOBIG: return "TLM_ETOOBIG";
	case TLM_EINVALID: return "TLM_EINVALID";
	case TLM_EFENCED: return "TLM_EFENCED";
	default: return "TLM_ERROR";
	}
}
