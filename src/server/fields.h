/* Request body validation for the API: known keys with types and limits
 * (docs/contract.md §6, v2); unknown keys are dropped as upstream does.  Wrong JSON
 * types answer 400 with a message, never 500. */
#ifndef TLM_SERVER_FIELDS_H
#define TLM_SERVER_FIELDS_H

#include <jansson.h>

#include "server/server_internal.h"

typedef enum {
	TLM_F_STRING = 0,
	TLM_F_STRINGS, /* array of strings */
	TLM_F_OBJECT,  /* object of strings */
	TLM_F_INT
} tlm_field_type;

typedef struct tlm_field {
	const char *key;
	tlm_field_type type;
	size_t max;                /* strings: bytes; arrays: items; ints: max value */
	int required;              /* must be present and, for strings, non-blank */
	const char *const *one_of; /* strings: allowed values, NULL-terminated */
} tlm_field;

/* Checks body against fields (terminated by { NULL }) and returns a new
 * object with the known keys only; NULL after answering 400. */
json_t *tlm_srv__fields(const json_t *body, const tlm_field *fields, tlm_srv_response *res);

#endif
