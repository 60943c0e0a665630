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

int tlm_spec_parse(tlm_spec **out, const char *name, const char *buf, size_t len, tlm_diags *diags,
		   tlm_error *err)
{
	tlm_spec *spec = calloc(1, sizeof(*spec));
	tlm_spec_ctx ctx;
	tlm_node *root = NULL;
	int rc;

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

/* Reads at most TLM_SPEC_MAX_BYTES + 1 bytes: enough to tell "too big"
 * without ever holding more than the cap. */
static int read_capped(const char *path, char **buf, size_t *len, tlm_error *err)
{
	size_t cap = 1 << 16, n = 0;
	char *b = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	struct stat st;

	if (fd < 0)
		return tlm_error_set(err, errno == ENOENT ? TLM_ENOTFOUND : TLM_ERROR,
				     "%s: cannot open: %s", path, strerror(errno));
	/* A regular file's size avoids growing (and doubling) the buffer; one
	 * byte more lets the loop see end-of-file without another realloc. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
	    (uint64_t)st.st_size < TLM_SPEC_MAX_BYTES)
		cap = (size_t)st.st_size + 1;
	for (;;) {
		ssize_t r;

		if (n == cap || b == NULL) {
			char *nb;

			cap = b == NULL ? cap : cap * 2;
			if (cap > TLM_SPEC_MAX_BYTES + 1)
				cap = TLM_SPEC_MAX_BYTES + 1;
			if (n == cap) {
				rc = tlm_error_set(err, TLM_ETOOBIG,
						   "%s: file is larger than the %zu MiB limit",
						   path, TLM_SPEC_MAX_BYTES >> 20);
				break;
			}
			if ((nb = realloc(b, cap)) == NULL) {
				rc = tlm_error_set(err, TLM_ERROR, "out of memory");
				break;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - n);
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
	close(fd);
	if (rc != 0) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = n;
	return 0;
}

int tlm_spec_load(tlm_spec **out, const char *path, tlm_diags *diags, tlm_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = read_capped(path, &buf, &len, err);
	if (rc != 0)
		return rc;
	rc = tlm_spec_parse(out, path, buf, len, diags, err);
	free(buf);
	return rc;
}
