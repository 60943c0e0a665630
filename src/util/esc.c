/* Escaping for terminals (esc.h).  One pass over the bytes: each step takes
 * one unit — a valid printable character, kept, or something to escape —
 * so that a cut (a column, a buffer) never splits a character or an
 * escape. */
#include <stdint.h>
#include <string.h>

#include "util/esc.h"

/* Escaped bytes of a unit: a UTF-8 sequence is at most 4 bytes, "\xNN"
 * each.  (Only sequences of up to 3 are ever escaped, but the compiler
 * cannot know that, and a release build's -Wstringop-overflow says so.) */
#define UNIT_MAX (4 * 4 + 1)

/* Bytes of the valid UTF-8 sequence at s (2 to 4), its code point in *cp;
 * 0 when s does not start one (overlong forms, surrogates and values past
 * U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, uint32_t *cp)
{
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		*cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		*cp = s[0] & 0x0fu;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		*cp = s[0] & 0x07u;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
			return 0; /* the NUL terminator stops here too */
		*cp = (*cp << 6) | (s[i] & 0x3fu);
	}
	return n;
}

/* Code points that must not reach a terminal as they are: C1 controls, and
 * those that reorder text (bidirectional marks, embeddings, overrides,
 * isolates) or break lines. */
static int hidden(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static void hex(char *out, unsigned char c)
{
	static const char digits[] = "0123456789abcdef";

	out[0] = '\\';
	out[1] = 'x';
	out[2] = digits[c >> 4];
	out[3] = digits[c & 15];
}

/* The unit at s: *nbytes of s, written as esc (NUL-terminated) when esc[0]
 * is set, else as those bytes.  Returns its display width. */
static size_t unit(const unsigned char *s, size_t *nbytes, char esc[UNIT_MAX])
{
	uint32_t cp = 0;
	size_t n, i;

	esc[0] = '\0';
	if (s[0] == '\n' || s[0] == '\t') {
		esc[0] = '\\';
		esc[1] = s[0] == '\n' ? 'n' : 't';
		esc[2] = '\0';
		*nbytes = 1;
		return 2;
	}
	if (s[0] < 0x20 || s[0] == 0x7f) {
		hex(esc, s[0]);
		esc[4] = '\0';
		*nbytes = 1;
		return 4;
	}
	if (s[0] < 0x80) {
		*nbytes = 1;
		return 1;
	}
	if ((n = utf8_len(s, &cp)) == 0) {
		hex(esc, s[0]); /* not UTF-8: this byte alone */
		esc[4] = '\0';
		*nbytes = 1;
		return 4;
	}
	*nbytes = n;
	if (!hidden(cp))
		return 1;
	for (i = 0; i < n; i++)
		hex(esc + 4 * i, s[i]);
	esc[4 * n] = '\0';
	return 4 * n;
}

size_t tlm_esc_fputs_max(FILE *out, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "-");
	char esc[UNIT_MAX];
	size_t w = 0, n, uw;

	while (*p != '\0') {
		uw = unit(p, &n, esc);
		if (w + uw > max)
			break;
		if (out != NULL && esc[0] != '\0')
			fputs(esc, out);
		else if (out != NULL)
			fwrite(p, 1, n, out);
		w += uw;
		p += n;
	}
	return w;
}

size_t tlm_esc_fputs(FILE *out, const char *s)
{
	return tlm_esc_fputs_max(out, s, SIZE_MAX);
}

size_t tlm_esc_str(char *buf, size_t cap, const char *s, int *cut)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "-");
	char esc[UNIT_MAX];
	size_t len = 0, n, add;

	if (cut != NULL)
		*cut = *p != '\0';
	if (cap == 0)
		return 0;
	while (*p != '\0') {
		(void)unit(p, &n, esc);
		add = esc[0] != '\0' ? strlen(esc) : n;
		if (len + add >= cap)
			break;
		memcpy(buf + len, esc[0] != '\0' ? esc : (const char *)p, add);
		len += add;
		p += n;
	}
	buf[len] = '\0';
	if (cut != NULL)
		*cut = *p != '\0';
	return len;
}
