/* The layout version every public options struct starts with
 * (docs/library.md, "Options structs"): a program built against other
 * headers is refused with a message, never read past its struct. */
#ifndef TLM_UTIL_OPTS_H
#define TLM_UTIL_OPTS_H

#include "telemachy/error.h"

/* 0 when got is want; else TLM_EINVALID with err naming what (e.g.
 * "engine") and the INIT macro to start from. */
int tlm_opts_version_check(unsigned got, unsigned want, const char *what, const char *macro,
			   tlm_error *err);

#endif
