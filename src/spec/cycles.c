/* Dependency cycles, found by one iterative depth-first search: O(V+E), no
 * recursion (a 100,000-task chain would overflow the C stack).  A back edge
 * closes a cycle whose path is the DFS stack from the target up; the first
 * TLM_CYCLES_MAX cycles are reported with their full path. */
#include <stdlib.h>
#include <string.h>

#include "spec/spec_internal.h"

#define TLM_CYCLES_MAX 10
#define CYCLE_TEXT_MAX 4096 /* longer paths are shortened in the middle */

enum { WHITE = 0, GREY, BLACK };

typedef struct frame {
	size_t task;
	size_t next; /* next dep to visit */
} frame;

static void append(char *buf, size_t *len, const char *s)
{
	size_t n = strnlen(s, CYCLE_TEXT_MAX);

	if (*len + n >= CYCLE_TEXT_MAX)
		n = CYCLE_TEXT_MAX - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

static void append_task(char *buf, size_t *len, const tlm_spec *s, size_t t)
{
	const char *team = s->teams[s->tasks[t].team].name;

	append(buf, len, team ? team : "?");
	append(buf, len, "/");
	append(buf, len, s->tasks[t].subject ? s->tasks[t].subject : "?");
}

/* stack[from..top) is the cycle; it closes back at stack[from]. */
static void report_cycle(tlm_spec_ctx *ctx, const frame *stack, size_t from, size_t top)
{
	const tlm_spec *s = ctx->spec;
	char *buf = malloc(CYCLE_TEXT_MAX);
	size_t len = 0, i;

	if (buf == NULL) {
		ctx->oom = 1;
		return;
	}
	buf[0] = '\0';
	for (i = from; i < top; i++) {
		if (top - from > 12 && i == from + 5) {
			append(buf, &len, "... -> ");
			i = top - 5;
		}
		append_task(buf, &len, s, stack[i].task);
		append(buf, &len, " -> ");
	}
	append_task(buf, &len, s, stack[from].task);
	if (tlm_diags__add(ctx->diags, s->tasks[stack[from].task].pos, "cycle",
			   "dependency cycle (each task is blocked by the next): %s; "
			   "remove one of these blocked_by entries",
			   buf) != 0)
		ctx->oom = 1;
	free(buf);
}

void tlm_spec__cycles(tlm_spec_ctx *ctx)
{
	const tlm_spec *s = ctx->spec;
	unsigned char *color = calloc(s->ntasks + 1, 1);
	size_t *depth = calloc(s->ntasks + 1, sizeof(size_t)); /* stack slot of grey nodes */
	frame *stack = malloc((s->ntasks + 1) * sizeof(*stack));
	size_t root, reported = 0;

	if (color == NULL || depth == NULL || stack == NULL) {
		ctx->oom = 1;
		goto done;
	}
	for (root = 0; root < s->ntasks; root++) {
		size_t top = 0;

		if (color[root] != WHITE)
			continue;
		stack[top++] = (frame){ root, 0 };
		color[root] = GREY;
		while (top > 0) {
			frame *f = &stack[top - 1];
			const tlm_spec_task *t = &s->tasks[f->task];
			size_t d;

			if (f->next == t->ndeps) {
				color[f->task] = BLACK;
				top--;
				continue;
			}
			d = t->deps[f->next++];
			if (color[d] == GREY && reported < TLM_CYCLES_MAX) {
				report_cycle(ctx, stack, depth[d], top);
				reported++;
			} else if (color[d] == WHITE) {
				color[d] = GREY;
				depth[d] = top;
				stack[top++] = (frame){ d, 0 };
			}
		}
	}
done:
	free(color);
	free(depth);
	free(stack);
}
