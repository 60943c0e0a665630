/* Field checks shared by the create/update handlers. */
#include <string.h>

#include "server/fields.h"

static int blank(const char *s)
{
	return s[strspn(s, " \t\r\n")] == '\0';
}

static int check_strings(const json_t *v, size_t max, int object)
{
	const char *k;
	json_t *item;
	size_t i;

	if (object) {
		json_object_foreach((json_t *)v, k, item) if (!json_is_string(item)) return -1;
		return json_object_size(v) <= max ? 0 : -1;
	}
	json_array_foreach(v, i, item) if (!json_is_string(item)) return -1;
	return json_array_size(v) <= max ? 0 : -1;
}

static int one_of(const char *s, const char *const *allowed)
{
	for (; allowed != NULL && *allowed; allowed++)
		if (strcmp(s, *allowed) == 0)
			return 1;
	return allowed == NULL;
}

/* 0 when v is a valid value of f; else answers 400 and returns -1. */
static int check(const tlm_field *f, const json_t *v, tlm_srv_response *res)
{
	switch (f->type) {
	case TLM_F_STRING:
		if (!json_is_string(v))
			break;
		if (json_string_length(v) > f->max) {
			tlm_srv__error(res, 400, "%s must be at most %zu characters", f->key,
				       f->max);
			return -1;
		}
		if (f->required && blank(json_string_value(v))) {
			tlm_srv__error(res, 400, "%s must not be blank", f->key);
			return -1;
		}
		if (!one_of(json_string_value(v), f->one_of)) {
			tlm_srv__error(res, 400, "%s \"%s\" is not allowed", f->key,
				       json_string_value(v));
			return -1;
		}
		return 0;
	case TLM_F_STRINGS:
		if (json_is_array(v) && check_strings(v, f->max, 0) == 0)
			return 0;
		tlm_srv__error(res, 400, "%s must be an array of at most %zu strings", f->key,
			       f->max);
		return -1;
	case TLM_F_OBJECT:
		if (json_is_object(v) && check_strings(v, f->max, 1) == 0)
			return 0;
		tlm_srv__error(res, 400, "%s must be an object of at most %zu string values",
			       f->key, f->max);
		return -1;
	case TLM_F_INT:
		if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    (size_t)json_integer_value(v) <= f->max)
			return 0;
		tlm_srv__error(res, 400, "%s must be an integer from 0 to %zu", f->key, f->max);
		return -1;
	}
	tlm_srv__error(res, 400, "%s must be a string", f->key);
	return -1;
}

json_t *tlm_srv__fields(const json_t *body, const tlm_field *fields, tlm_srv_response *res)
{
	json_t *out = json_object();
	const tlm_field *f;

	for (f = fields; f->key != NULL; f++) {
		json_t *v = json_object_get(body, f->key);

		if (v == NULL || (json_is_null(v) && !f->required)) {
			if (!f->required)
				continue;
			tlm_srv__error(res, 400, "%s is required", f->key);
			json_decref(out);
			return NULL;
		}
		if (check(f, v, res) != 0) {
			json_decref(out);
			return NULL;
		}
		json_object_set(out, f->key, v);
	}
	return out;
}
