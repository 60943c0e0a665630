/* Internal to src/spec/: the YAML node tree, the diagnostics helpers and the
 * steps of loading (tree -> decode -> resolve -> cycles). */
#ifndef TLM_SPEC_INTERNAL_H
#define TLM_SPEC_INTERNAL_H

#include <stdint.h>

#include "telemachy/spec.h"
#include "util/arena.h"

typedef enum { TLM_NODE_SCALAR = 1, TLM_NODE_MAP, TLM_NODE_SEQ } tlm_node_kind;

/* YAML 1.2 core-schema type of a scalar; quoted scalars are always strings. */
typedef enum {
	TLM_SCALAR_STR = 0,
	TLM_SCALAR_NULL,
	TLM_SCALAR_BOOL,
	TLM_SCALAR_INT,
	TLM_SCALAR_FLOAT
} tlm_scalar_type;

/* Kept small (24 bytes): a 100,000-task spec has millions of nodes.  The
 * tree is one array in document order: a collection's children follow it,
 * each child's subtree before the next child, so no per-collection array of
 * child pointers is needed (those cost more than the nodes themselves, see
 * docs/internals/spec.md).  Walk children with tlm_node__first/_next. */
typedef struct tlm_node {
	uint8_t kind; /* tlm_node_kind */
	uint8_t type; /* tlm_scalar_type, scalars only */
	uint32_t line, col;
	uint32_t n; /* scalar: length; map: pairs; seq: items */
	union {
		const char *str; /* scalar text, NUL-terminated, in the spec arena */
		size_t span;     /* collection: nodes in its subtree, itself included */
	} u;
} tlm_node;

/* The first child of a collection with n > 0, and the sibling after child k.
 * A map's children alternate key, value. */
static inline const tlm_node *tlm_node__first(const tlm_node *c)
{
	return c + 1;
}

static inline const tlm_node *tlm_node__next(const tlm_node *k)
{
	return k + (k->kind == TLM_NODE_SCALAR ? 1 : k->u.span);
}

/* Parses buf into a tree: *root is the first node of the array (NULL for an
 * empty document); the caller frees it with free().  Scalars go to `strings`
 * (they outlive the tree).  YAML-level problems are fatal: they are added to
 * diags and TLM_EINVALID is returned.  Memory exhaustion: TLM_ERROR. */
int tlm_spec__tree(tlm_node **root, const char *buf, size_t len, tlm_arena *strings,
		   tlm_diags *diags, tlm_error *err);

/* Node helpers. */
tlm_pos tlm_node__pos(const tlm_node *n);
const tlm_node *tlm_node__get(const tlm_node *map, const char *key);
const char *tlm_node__kind_name(const tlm_node *n);

/* Adds one diagnostic (printf-style message).  Returns 0, or -1 when out of
 * memory.  Past TLM_SPEC_MAX_DIAGS only the count grows. */
int tlm_diags__add(tlm_diags *d, tlm_pos pos, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sorts by position (stable). */
void tlm_diags__sort(tlm_diags *d);

/* True once diags holds TLM_SPEC_MAX_DIAGS: later problems are only counted,
 * so nothing needs to be computed for their messages. */
static inline int tlm_diags__full(const tlm_diags *d)
{
	return d->count >= TLM_SPEC_MAX_DIAGS;
}

/* The closest of candidates[0..n) to word, or NULL if none is close enough
 * to be a plausible typo.  Each comparison costs its two lengths' product
 * from *budget; NULL once that runs out (see TLM_SPEC_SUGGEST_BUDGET). */
const char *tlm_spec__suggest(const char *word, const char *const *candidates, size_t n,
			      size_t *budget);

/* Edit-distance cells all "did you mean" hints of one file may cost: about
 * 0.1 s.  Without it, 1,000 unknown references against 2,000 long subjects
 * take 8e9 cells (docs/internals/spec.md). */
#define TLM_SPEC_SUGGEST_BUDGET ((size_t)50 * 1000 * 1000)

/* Decoding context shared by the decode/resolve/cycle steps. */
typedef struct tlm_spec_ctx {
	tlm_spec *spec;
	tlm_diags *diags;
	tlm_arena *scratch;    /* freed after loading, with the tree */
	int oom;               /* set when an allocation failed */
	size_t suggest_budget; /* what is left of TLM_SPEC_SUGGEST_BUDGET */
	/* References as written, resolved by tlm_spec__resolve(): */
	const tlm_node **members;    /* per team: its `agents` seq, or NULL */
	const tlm_node **assign_to;  /* per task: scalar, or NULL */
	const tlm_node **blocked_by; /* per task: seq, or NULL */
} tlm_spec_ctx;

/* Builds the model from the tree: types, keys, values, defaults.  Leaves
 * references unresolved (spec->tasks[i].deps empty); records raw blocked_by
 * nodes in ctx->blocked_by. */
void tlm_spec__decode(tlm_spec_ctx *ctx, const tlm_node *root);

/* Decodes the "hooks" list (hooks.c). */
void tlm_spec__decode_hooks(tlm_spec_ctx *ctx, const tlm_node *seq);

/* Checks names and resolves references (members, assign_to, blocked_by). */
void tlm_spec__resolve(tlm_spec_ctx *ctx);

/* Reports dependency cycles with their path; O(V+E). */
void tlm_spec__cycles(tlm_spec_ctx *ctx);

#endif

/* Typed field readers (decode_fields.c).  Each reads key from map, reports
 * problems as diagnostics at the offending node, and returns 0 when the value
 * is present and valid, 1 when absent (the default applies), -1 when invalid
 * (already reported).  `what` names the enclosing object in messages. */
int tlm_field__string(tlm_spec_ctx *ctx, const tlm_node *map, const char *key, const char *what,
		      int required, const char **out);
int tlm_field__int(tlm_spec_ctx *ctx, const tlm_node *map, const char *key, const char *what,
		   long min, long max, long *out);
int tlm_field__enum(tlm_spec_ctx *ctx, const tlm_node *map, const char *key, const char *what,
		    const char *const *names, int *out);
/* A scalar used as a string where any scalar will do (args, env, labels). */
int tlm_field__scalar(tlm_spec_ctx *ctx, const tlm_node *v, const char *what, const char **out);
/* Checks that node is a map / a list; reports [type] otherwise. */
int tlm_field__is_map(tlm_spec_ctx *ctx, const tlm_node *n, const char *what);
int tlm_field__is_seq(tlm_spec_ctx *ctx, const tlm_node *n, const char *what);
/* Reports unknown (with suggestions) and duplicate keys of map; allowed ==
 * NULL accepts any key. */
void tlm_field__keys(tlm_spec_ctx *ctx, const tlm_node *map, const char *what,
		     const char *const *allowed);
/* Reports through ctx->diags, recording OOM in ctx->oom. */
void tlm_spec__report(tlm_spec_ctx *ctx, const tlm_node *at, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
