/* Small accessors over the YAML node tree. */
#include <string.h>

#include "spec/spec_internal.h"

tlm_pos tlm_node__pos(const tlm_node *n)
{
	tlm_pos p = { 0, 0 };

	if (n != NULL) {
		p.line = n->line;
		p.col = n->col;
	}
	return p;
}

/* Linear: maps in a spec have a handful of keys, and duplicate keys are
 * reported separately, so the first match is the one that counts. */
const tlm_node *tlm_node__get(const tlm_node *map, const char *key)
{
	const tlm_node *k, *v;
	uint32_t i;

	if (map == NULL || map->kind != TLM_NODE_MAP)
		return NULL;
	for (i = 0, k = tlm_node__first(map); i < map->n; i++, k = tlm_node__next(v)) {
		v = tlm_node__next(k);
		if (k->kind == TLM_NODE_SCALAR && strcmp(k->u.str, key) == 0)
			return v;
	}
	return NULL;
}

const char *tlm_node__kind_name(const tlm_node *n)
{
	if (n->kind == TLM_NODE_MAP)
		return "a map";
	if (n->kind == TLM_NODE_SEQ)
		return "a list";
	switch (n->type) {
	case TLM_SCALAR_NULL: return "null";
	case TLM_SCALAR_BOOL: return "a boolean";
	case TLM_SCALAR_INT: return "an integer";
	case TLM_SCALAR_FLOAT: return "a number";
	default: return "a string";
	}
}
