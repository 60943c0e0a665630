/*
 * telemachy — error codes and the per-call error detail.
 *
 * Every fallible function returns 0 or one of the negative TLM_E* codes below
 * and, when given a tlm_error, fills it with a human-readable message.  The
 * codes are few on purpose: each one means something different to a caller.
 */
#ifndef TELEMACHY_ERROR_H
#define TELEMACHY_ERROR_H

#include <stddef.h>

enum {
	TLM_OK = 0,
	TLM_ERROR = -1,      /* generic failure; the message says what */
	TLM_ENOTFOUND = -2,  /* a file, run or resource does not exist */
	TLM_ECONFLICT = -3,  /* the resource exists / is owned by another */
	TLM_ERATELIMIT = -4, /* the peer asked us to slow down */
	TLM_ETIMEOUT = -5,   /* gave up waiting */
	TLM_ECANCELLED = -6, /* stopped on request (signal, cancel) */
	TLM_ETOOBIG = -7,    /* input exceeded a documented cap */
	TLM_EINVALID = -8,   /* input is malformed or breaks a rule */
	TLM_EFENCED = -9     /* another process has taken the run over: stop at once */
};

#define TLM_ERROR_MSG_MAX 1024

typedef struct tlm_error {
	int code;
	char message[TLM_ERROR_MSG_MAX];
} tlm_error;

#define TLM_ERROR_INIT                                                                             \
	{                                                                                          \
		0,                                                                                 \
		{                                                                                  \
			0                                                                          \
		}                                                                                  \
	}

/* Records code and a printf-style message in err (which may be NULL) and
 * returns code, so callers can write `return tlm_error_set(err, ...)`. */
int tlm_error_set(tlm_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Resets err to "no error". */
void tlm_error_clear(tlm_error *err);

/* A short constant name for a code ("TLM_EINVALID"), for logs and JSON. */
const char *tlm_error_name(int code);

#endif
