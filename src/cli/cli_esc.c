/* Printing text from outside (cli.h, "text from outside"): names, ids and
 * messages of a control plane — a hostile one may send anything — what the
 * journal kept of them, and strings of spec files.  One escaping for all of
 * it, the plan's included (src/util/esc.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "util/esc.h"

void tlm_cli_put_esc(FILE *f, const char *s)
{
	(void)tlm_esc_fputs(f, s);
}

size_t tlm_cli_width(const char *s)
{
	return tlm_esc_fputs(NULL, s);
}

void tlm_cli_cell(FILE *f, const char *s, size_t width, size_t max)
{
	size_t w = max > 0 ? tlm_esc_fputs_max(f, s, max) : tlm_esc_fputs(f, s);

	for (; w < width; w++)
		putc(' ', f);
}

void tlm_cli_vesc(FILE *f, const char *fmt, va_list ap)
{
	char stack[2048], *big = NULL;
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(stack, sizeof(stack), fmt, ap);
	/* A long message (a hostile id may be kilobytes) is formatted again
	 * on the heap; without memory, its start is better than nothing. */
	if (n >= (int)sizeof(stack) && vasprintf(&big, fmt, again) < 0)
		big = NULL;
	va_end(again);
	if (n < 0)
		fputs("(unprintable message)", f);
	else
		tlm_cli_put_esc(f, big != NULL ? big : stack);
	if (n >= (int)sizeof(stack) && big == NULL)
		fputs("...", f);
	free(big);
}

void tlm_cli_esc(FILE *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tlm_cli_vesc(f, fmt, ap);
	va_end(ap);
}

void tlm_cli_line(FILE *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tlm_cli_vesc(f, fmt, ap);
	va_end(ap);
	putc('\n', f);
}
