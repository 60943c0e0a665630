/* YAML -> node tree, with libyaml's event API.
 *
 * Why a tree and not direct decoding: every error must carry line:col and the
 * validator needs random access (a key may come before or after the key it
 * depends on).  The tree is compact and freed once the model is built.
 *
 * Hostile input: aliases are refused (no expansion, hence no "billion
 * laughs"), nesting is capped at TLM_SPEC_MAX_DEPTH, nodes are counted
 * against the file's size (TLM_SPEC_NODE_BYTES: every later pass costs
 * memory per node), only one document is accepted, and libyaml rejects
 * invalid UTF-8 itself.  libyaml's own queue of tokens stays small: it looks
 * ahead at most one line or 1024 characters for a simple key. */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "spec/spec_internal.h"

typedef struct builder {
	/* The tree, one array in document order (see tlm_node); grown by
	 * doubling, so nodes are addressed by index until it is complete. */
	tlm_node *nodes;
	size_t count, cap;
	/* Nodes so far, weighted, and the most the file's size allows. */
	size_t weight, max_weight;
	tlm_arena *strings;
	tlm_diags *diags;
	/* Open collections, innermost last: their index and how many
	 * children they have so far. */
	size_t open[TLM_SPEC_MAX_DEPTH + 1];
	uint32_t kids[TLM_SPEC_MAX_DEPTH + 1]; /* < 2^32: the node limit */
	int depth;
	int documents;
	const char *buf; /* the input, to place reader errors */
	size_t len;
} builder;

static tlm_pos mark_pos(yaml_mark_t m)
{
	tlm_pos p = { (uint32_t)m.line + 1, (uint32_t)m.column + 1 };
	return p;
}

static int ci_eq(const char *a, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(a, *list) == 0)
			return 1;
	return 0;
}

static int all_digits(const char *s, const char *set)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (strchr(set, *s) == NULL)
			return 0;
	return 1;
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static tlm_scalar_type classify(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const bools[] = {
		"true", "True", "TRUE", "false", "False", "FALSE", NULL
	};
	static const char *const floats[] = { ".inf", ".Inf", ".INF", "+.inf", "-.inf",
					      ".nan", ".NaN", ".NAN", NULL };
	const char *p = s;
	char *end;

	if (ci_eq(s, nulls))
		return TLM_SCALAR_NULL;
	if (ci_eq(s, bools))
		return TLM_SCALAR_BOOL;
	if (ci_eq(s, floats))
		return TLM_SCALAR_FLOAT;
	if (strncmp(s, "0x", 2) == 0 && all_digits(s + 2, "0123456789abcdefABCDEF"))
		return TLM_SCALAR_INT;
	if (strncmp(s, "0o", 2) == 0 && all_digits(s + 2, "01234567"))
		return TLM_SCALAR_INT;
	if (*p == '-' || *p == '+')
		p++;
	if (all_digits(p, "0123456789"))
		return TLM_SCALAR_INT;
	if ((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')) {
		strtod(s, &end);
		if (*end == '\0')
			return TLM_SCALAR_FLOAT;
	}
	return TLM_SCALAR_STR;
}

/* Counts a node against the file's allowance (TLM_SPEC_NODE_BYTES): every
 * node costs memory, up to one per byte of input ("?\n" or "{a,a,a}"), and
 * a map in a list becomes a model entry, which costs more.  Returns 0, or 1
 * once over (reported). */
static int count_node(builder *b, tlm_node_kind kind, yaml_mark_t m)
{
	int item_map = kind == TLM_NODE_MAP && b->depth > 0 &&
		       b->nodes[b->open[b->depth]].kind == TLM_NODE_SEQ;

	b->weight += item_map ? TLM_SPEC_ITEM_MAP_NODES : 1;
	if (b->weight <= b->max_weight)
		return 0;
	tlm_diags__add(b->diags, mark_pos(m), "yaml-nodes",
		       "the file holds more YAML nodes than its size allows: at most %zu here "
		       "(one per %d bytes, a map in a list counting as %d); a workflow is "
		       "nowhere near this",
		       b->max_weight, TLM_SPEC_NODE_BYTES, TLM_SPEC_ITEM_MAP_NODES);
	return 1;
}

/* Appends a node as a child of the innermost open collection; returns it,
 * or NULL when out of memory.  The pointer is valid until the next call. */
static tlm_node *new_node(builder *b, tlm_node_kind kind, yaml_mark_t m)
{
	tlm_node *n;

	if (b->count == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 1024;
		tlm_node *a =
			ncap <= SIZE_MAX / sizeof(*a) ? realloc(b->nodes, ncap * sizeof(*a)) : NULL;

		if (a == NULL)
			return NULL;
		b->nodes = a;
		b->cap = ncap;
	}
	n = &b->nodes[b->count++];
	memset(n, 0, sizeof(*n));
	n->kind = (uint8_t)kind;
	n->line = (uint32_t)m.line + 1;
	n->col = (uint32_t)m.column + 1;
	if (b->depth > 0)
		b->kids[b->depth]++;
	return n;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
	size_t len = ev->data.scalar.length;
	const char *text = (const char *)ev->data.scalar.value;
	tlm_node *n;

	if (len > UINT32_MAX || memchr(text, '\0', len) != NULL) {
		tlm_diags__add(b->diags, mark_pos(ev->start_mark), "yaml-syntax",
			       "scalar contains a NUL character or is too long");
		return 1;
	}
	if (count_node(b, TLM_NODE_SCALAR, ev->start_mark) != 0)
		return 1;
	if ((n = new_node(b, TLM_NODE_SCALAR, ev->start_mark)) == NULL ||
	    (n->u.str = tlm_arena_strndup(b->strings, text, len)) == NULL)
		return -1;
	n->n = (uint32_t)len;
	n->type = (uint8_t)(ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? classify(n->u.str)
									     : TLM_SCALAR_STR);
	return 0;
}

static int on_open(builder *b, tlm_node_kind kind, const yaml_event_t *ev)
{
	if (b->depth == TLM_SPEC_MAX_DEPTH) {
		tlm_diags__add(b->diags, mark_pos(ev->start_mark), "yaml-depth",
			       "collections are nested more than %d deep; flatten the document",
			       TLM_SPEC_MAX_DEPTH);
		return 1;
	}
	if (count_node(b, kind, ev->start_mark) != 0)
		return 1;
	if (new_node(b, kind, ev->start_mark) == NULL)
		return -1;
	b->depth++;
	b->open[b->depth] = b->count - 1;
	b->kids[b->depth] = 0;
	return 0;
}

static void on_close(builder *b)
{
	tlm_node *n = &b->nodes[b->open[b->depth]];
	uint32_t kids = b->kids[b->depth];

	n->n = n->kind == TLM_NODE_MAP ? kids / 2 : kids;
	n->u.span = b->count - b->open[b->depth];
	b->depth--;
}

/* Returns 0 to go on, 1 on a reported (fatal) YAML problem, -1 on OOM. */
static int on_event(builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->documents > 1) {
			tlm_diags__add(b->diags, mark_pos(ev->start_mark),
				       "yaml-multiple-documents",
				       "a workflow file holds one YAML document; "
				       "remove this one or put it in its own file");
			return 1;
		}
		return 0;
	case YAML_ALIAS_EVENT:
		tlm_diags__add(b->diags, mark_pos(ev->start_mark), "yaml-alias",
			       "YAML aliases (*%s) are not supported; write the value out",
			       (const char *)ev->data.alias.anchor);
		return 1;
	case YAML_SCALAR_EVENT: return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT: return on_open(b, TLM_NODE_SEQ, ev);
	case YAML_MAPPING_START_EVENT: return on_open(b, TLM_NODE_MAP, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: on_close(b); return 0;
	default: return 0;
	}
}

static void syntax_error(builder *b, const yaml_parser_t *p)
{
	yaml_mark_t m = p->problem_mark;

	if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a line: count lines. */
		tlm_pos pos = { 1, 1 };
		size_t i;

		for (i = 0; i < p->problem_offset && i < b->len; i++) {
			if (b->buf[i] == '\n') {
				pos.line++;
				pos.col = 1;
			} else if (((unsigned char)b->buf[i] & 0xC0) != 0x80) {
				pos.col++;
			}
		}
		tlm_diags__add(b->diags, pos, "yaml-syntax",
			       "%s (byte %zu); the file must be UTF-8",
			       p->problem ? p->problem : "unreadable input", p->problem_offset);
		return;
	}
	if (p->context != NULL)
		tlm_diags__add(b->diags, mark_pos(m), "yaml-syntax", "%s %s (line %zu)",
			       p->problem ? p->problem : "syntax error", p->context,
			       p->context_mark.line + 1);
	else
		tlm_diags__add(b->diags, mark_pos(m), "yaml-syntax", "%s",
			       p->problem ? p->problem : "syntax error");
}

int tlm_spec__tree(tlm_node **root, const char *buf, size_t len, tlm_arena *strings,
		   tlm_diags *diags, tlm_error *err)
{
	builder b;
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0, done = 0;

	memset(&b, 0, sizeof(b));
	b.strings = strings;
	b.diags = diags;
	b.buf = buf;
	b.len = len;
	b.max_weight = len / TLM_SPEC_NODE_BYTES;
	if (b.max_weight < TLM_SPEC_NODES_MIN)
		b.max_weight = TLM_SPEC_NODES_MIN;
	*root = NULL;
	if (!yaml_parser_initialize(&parser))
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			if (parser.error == YAML_MEMORY_ERROR) {
				rc = -1;
				break;
			}
			syntax_error(&b, &parser);
			rc = 1;
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (rc != 0 || b.count == 0) {
		free(b.nodes);
		b.nodes = NULL;
	}
	if (rc < 0)
		return tlm_error_set(err, TLM_ERROR, "out of memory while parsing YAML");
	if (rc > 0)
		return tlm_error_set(err, TLM_EINVALID, "invalid YAML");
	*root = b.nodes;
	return 0;
}
