/* JSON helpers (json.h). */
#include <stdlib.h>

#include "util/json.h"

char *tlm_json_dump_body(const json_t *v)
{
	char *text = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
	json_t *back;

	if (text == NULL)
		return NULL;
	back = json_loads(text, JSON_DECODE_ANY, NULL);
	if (back == NULL) {
		free(text);
		return NULL;
	}
	json_decref(back);
	return text;
}
