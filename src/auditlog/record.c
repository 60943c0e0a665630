/* Records: the canonical text a hash covers, and the check of one line that
 * both the writer (the last line it chains onto) and verify run. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog/auditlog_internal.h"
#include "util/json.h"

#define CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

char *tlm_auditlog__canonical(const json_t *rec)
{
	char *text = json_dumps(rec, CANON_FLAGS);
	json_t *back = NULL;
	int oom = 0;

	if (text == NULL)
		return NULL;
	back = tlm_json_loadb(text, strlen(text), 0, NULL, &oom);
	if (back == NULL || !json_equal(back, rec)) {
		free(text);
		text = NULL;
	}
	json_decref(back);
	return text;
}

int tlm_auditlog__hash(const json_t *rec, char out[TLM_AUDITLOG_HASH_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char *text = tlm_auditlog__canonical(rec);
	int rc = -1;

	if (text == NULL)
		return -1;
	if (EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) == 1 && len == 32) {
		for (unsigned int i = 0; i < len; i++)
			snprintf(out + 2 * i, 3, "%02x", md[i]);
		rc = 0;
	}
	free(text);
	return rc;
}

/* 64 lowercase hex digits: the only spelling the writer produces. */
static int is_hash(const char *s)
{
	if (s == NULL || strlen(s) != TLM_AUDITLOG_HASH_HEX)
		return 0;
	return strspn(s, "0123456789abcdef") == TLM_AUDITLOG_HASH_HEX;
}

tlm_auditlog_flaw tlm_auditlog__check_line(const char *line, size_t len, const char *want_prev,
					   char hash_out[TLM_AUDITLOG_HASH_HEX + 1], char *why,
					   size_t why_size, int *oom)
{
	char hash[TLM_AUDITLOG_HASH_HEX + 1], again[TLM_AUDITLOG_HASH_HEX + 1];
	tlm_auditlog_flaw flaw = TLM_AUDITLOG_NOT_RECORD;
	json_t *rec = tlm_json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL, oom);
	const char *prev;

	snprintf(why, why_size, "not a JSON record");
	if (rec == NULL || !json_is_object(rec))
		goto done;
	prev = json_string_value(json_object_get(rec, "prev"));
	if (!is_hash(json_string_value(json_object_get(rec, "hash"))) || !is_hash(prev)) {
		snprintf(why, why_size, "not a record (no well-formed prev and hash)");
		goto done;
	}
	snprintf(hash, sizeof(hash), "%s", json_string_value(json_object_get(rec, "hash")));
	json_object_del(rec, "hash");
	if (tlm_auditlog__hash(rec, again) != 0) {
		*oom = 1;
		snprintf(why, why_size, "out of memory");
		goto done;
	}
	flaw = TLM_AUDITLOG_BAD_HASH;
	snprintf(why, why_size, "hash does not match its record (edited?)");
	if (strcmp(hash, again) != 0)
		goto done;
	flaw = TLM_AUDITLOG_BAD_PREV;
	snprintf(why, why_size, "prev does not match the previous line's hash");
	if (want_prev != NULL && strcmp(prev, want_prev) != 0)
		goto done;
	flaw = TLM_AUDITLOG_INTACT;
	why[0] = '\0';
	memcpy(hash_out, hash, sizeof(hash));
done:
	json_decref(rec);
	return flaw;
}
