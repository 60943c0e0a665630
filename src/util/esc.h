/* Text from outside — a control plane's names, ids and messages, what the
 * journal kept of them, strings of a spec file — made safe to print on a
 * terminal: it can neither end a line, nor move the cursor, nor drive the
 * terminal (ANSI and OSC sequences, 8-bit C1 controls), nor hide or
 * reorder text.  Escaped: the C0 controls (tab and newline as \t and \n, the
 * others as \xNN), DEL, the C1 controls U+0080..U+009F, the Unicode
 * controls that reorder text or break lines (U+061C, U+200E, U+200F,
 * U+2028..U+202E, U+2066..U+2069; each byte as \xNN) and every byte that is
 * not part of valid UTF-8 (\xNN).  Valid printable UTF-8 is kept as it is.
 * Internal; docs/design.md §11. */
#ifndef TLM_UTIL_ESC_H
#define TLM_UTIL_ESC_H

#include <stddef.h>
#include <stdio.h>

/* Writes s escaped to out (out NULL: only measures; s NULL as "-") and
 * returns its display width: a character counts one column, an escape its
 * length. */
size_t tlm_esc_fputs(FILE *out, const char *s);

/* The same, but at most max columns: stops before the character or escape
 * that would go past them (never splitting one).  Returns the width
 * written. */
size_t tlm_esc_fputs_max(FILE *out, const char *s, size_t max);

/* s escaped into buf (cap > 0), always terminated, cut before a character
 * or escape that does not fit (*cut, if not NULL, says whether it was).
 * Returns the length written. */
size_t tlm_esc_str(char *buf, size_t cap, const char *s, int *cut);

#endif
