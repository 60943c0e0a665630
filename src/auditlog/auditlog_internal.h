/* Shared by the files of src/auditlog/: what a record is, and its hash. */
#ifndef TLM_AUDITLOG_INTERNAL_H
#define TLM_AUDITLOG_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "telemachy/auditlog.h"

/* The prev of a file's first record (docs/audit.md, "Rotating"). */
#define TLM_AUDITLOG__ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* The canonical text of rec (jansson, JSON_COMPACT | JSON_SORT_KEYS), checked
 * by parsing it back, so that a dump cut short by a failed allocation never
 * becomes a hash.  Caller frees; NULL when it failed. */
char *tlm_auditlog__canonical(const json_t *rec);

/* SHA-256 of the canonical text of rec (which must hold no "hash"), as
 * lowercase hex.  -1 when it could not be computed (out of memory). */
int tlm_auditlog__hash(const json_t *rec, char out[TLM_AUDITLOG_HASH_HEX + 1]);

/* Checks one line (without its newline): a JSON object with well-formed
 * prev and hash, hash matching the record, and, when want_prev is not NULL,
 * prev equal to it.  On success hash_out gets the record's hash.  Returns
 * the flaw (TLM_AUDITLOG_INTACT: none), why gets a sentence; oom is set
 * when memory, not the line, was the problem. */
tlm_auditlog_flaw tlm_auditlog__check_line(const char *line, size_t len, const char *want_prev,
					   char hash_out[TLM_AUDITLOG_HASH_HEX + 1], char *why,
					   size_t why_size, int *oom);

#endif
