/* Loading a spec: read (capped), parse to a tree, decode, resolve, check
 * cycles; collect every diagnostic, sorted.  The tree and scratch data are
 * freed here; the spec keeps only its own arena. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/spec_internal.h"

void tlm_spec_free(tlm_spec *spec)
{
	if (spec == NULL)
		return;
	tlm_arena_free(spec->arena);
	free(spec);
}

static int check(tlm_spec_ctx *ctx, const tlm_node *root)
{
	tlm_spec__decode(ctx, root);
	/* References into a shapeless spec would only add noise. */
	if (!ctx->oom)
		tlm_spec__resolve(ctx);
	if (!ctx->oom)
		tlm_spec__cycles(ctx);
	return ctx->oom ? -1 : 0;
}

/* The encoding of a file that is not UTF-8, by YAML 1.2's detection (its
 * section 5.2: a byte order mark, or the NUL bytes an ASCII first character
 * has in UTF-16 and UTF-32), or NULL.  libyaml would read UTF-16 with a BOM
 * as happily as UTF-8; the spec is UTF-8 only (docs/spec.md), and journaled
 * as text. */
static const char *foreign_encoding(const unsigned char *b, size_t len, int *bom)
{
	*bom = 1;
	if (len >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF)
		return "UTF-32BE";
	if (len >= 4 && b[0] == 0xFF && b[1] == 0xFE && b[2] == 0 && b[3] == 0)
		return "UTF-32LE";
	if (len >= 2 && b[0] == 0xFE && b[1] == 0xFF)
		return "UTF-16BE";
	if (len >= 2 && b[0] == 0xFF && b[1] == 0xFE)
		return "UTF-16LE";
	*bom = 0;
	if (len >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0)
		return "UTF-32BE";
	if (len >= 4 && b[0] != 0 && b[1] == 0 && b[2] == 0 && b[3] == 0)
		return "UTF-32LE";
	if (len >= 2 && b[0] == 0)
		return "UTF-16BE";
	if (len >= 2 && b[1] == 0)
		return "UTF-16LE";
	return NULL;
}

int tlm_spec_parse(tlm_spec **out, const char *name, const char *buf, size_t len, tlm_diags *diags,
		   tlm_error *err)
{
	tlm_spec *spec = calloc(1, sizeof(*spec));
	tlm_spec_ctx ctx;
	tlm_node *root = NULL;
	const char *enc;
	int rc, bom;

	*out = NULL;
	memset(&ctx, 0, sizeof(ctx));
	ctx.diags = diags;
	ctx.spec = spec;
	ctx.suggest_budget = TLM_SPEC_SUGGEST_BUDGET;
	ctx.scratch = tlm_arena_new();
	if (spec == NULL || ctx.scratch == NULL || (spec->arena = tlm_arena_new()) == NULL ||
	    (spec->path = tlm_arena_strndup(spec->arena, name, strlen(name))) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	if (len > TLM_SPEC_MAX_BYTES) {
		rc = tlm_error_set(err, TLM_ETOOBIG, "%s: file is larger than the %zu MiB limit",
				   name, TLM_SPEC_MAX_BYTES >> 20);
		goto done;
	}
	if ((enc = foreign_encoding((const unsigned char *)buf, len, &bom)) != NULL) {
		tlm_pos whole = { 0, 0 };

		tlm_diags__add(diags, whole, "yaml-encoding",
			       "the file is %s (%s); a workflow must be UTF-8: convert it, "
			       "e.g. with iconv -f %s -t UTF-8",
			       enc,
			       bom ? "its byte order mark says so"
				   : "it starts with NUL bytes, as such text does",
			       enc);
		rc = tlm_error_set(err, TLM_EINVALID, "%s: 1 error", name);
		goto done;
	}
	rc = tlm_spec__tree(&root, buf, len, spec->arena, diags, err);
	if (rc != 0 && rc != TLM_EINVALID)
		goto done;
	if (rc == 0 && check(&ctx, root) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory while validating %s", name);
		goto done;
	}
	if (diags->count > 0 || diags->dropped > 0)
		rc = tlm_error_set(err, TLM_EINVALID, "%s: %zu error%s", name,
				   diags->count + diags->dropped,
				   diags->count + diags->dropped == 1 ? "" : "s");
done:
	tlm_diags__sort(diags);
	free(root);
	tlm_arena_free(ctx.scratch);
	if (rc == 0)
		*out = spec;
	else
		tlm_spec_free(spec);
	return rc;
}

static const char *file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

/* Reads at most TLM_SPEC_MAX_BYTES + 1 bytes: enough to tell "too big"
 * without ever holding more than the cap (a file may grow while read). */
static int read_fd(int fd, const char *path, size_t hint, char **text, size_t *len, tlm_error *err)
{
	/* A byte past the expected end shows end-of-file without another
	 * realloc, and one more holds the NUL. */
	size_t cap = hint + 2, n = 0;
	char *b = malloc(cap), *nb;
	ssize_t r;
	int rc = 0;

	if (b == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	for (;;) {
		if (n + 1 == cap) {
			if (n > TLM_SPEC_MAX_BYTES) {
				rc = tlm_error_set(err, TLM_ETOOBIG,
						   "%s: file is larger than the %zu MiB limit",
						   path, TLM_SPEC_MAX_BYTES >> 20);
				break;
			}
			cap = cap * 2 < TLM_SPEC_MAX_BYTES + 2 ? cap * 2 : TLM_SPEC_MAX_BYTES + 2;
			if ((nb = realloc(b, cap)) == NULL) {
				rc = tlm_error_set(err, TLM_ERROR, "out of memory");
				break;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = tlm_error_set(err, TLM_ERROR, "%s: cannot read: %s", path,
					   strerror(errno));
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (rc == 0 && n > TLM_SPEC_MAX_BYTES)
		rc = tlm_error_set(err, TLM_ETOOBIG, "%s: file is larger than the %zu MiB limit",
				   path, TLM_SPEC_MAX_BYTES >> 20);
	if (rc != 0) {
		free(b);
		return rc;
	}
	b[n] = '\0';
	*text = b;
	*len = n;
	return 0;
}

int tlm_spec_read(char **text, size_t *len, const char *path, tlm_error *err)
{
	struct stat st;
	int fd, flags, rc;

	*text = NULL;
	*len = 0;
	/* O_NONBLOCK: opening a FIFO with no writer, or some devices, would
	 * wait forever.  fstat of what was opened, not stat of the path, so
	 * nothing can be swapped in between.  O_NOCTTY: a terminal given as
	 * the file must not become the controlling terminal. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return tlm_error_set(err, errno == ENOENT ? TLM_ENOTFOUND : TLM_ERROR,
				     "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "%s: cannot read: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = tlm_error_set(err, TLM_ERROR,
				   "%s: is %s, not a regular file; a workflow is read from a file",
				   path, file_kind(st.st_mode));
		goto done;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > TLM_SPEC_MAX_BYTES) {
		rc = tlm_error_set(err, TLM_ETOOBIG, "%s: file is larger than the %zu MiB limit",
				   path, TLM_SPEC_MAX_BYTES >> 20);
		goto done;
	}
	/* A regular file never blocks, but reads should not fail with EAGAIN
	 * (mandatory locks) either. */
	if ((flags = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	rc = read_fd(fd, path, (size_t)st.st_size, text, len, err);
done:
	close(fd);
	return rc;
}

int tlm_spec_load(tlm_spec **out, const char *path, tlm_diags *diags, tlm_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = tlm_spec_read(&buf, &len, path, err);
	if (rc != 0)
		return rc;
	rc = tlm_spec_parse(out, path, buf, len, diags, err);
	free(buf);
	return rc;
}
