/* validate_workflow and plan_workflow (docs/mcp.md), and reading the
 * workflow a client names.  The client is an assistant acting for the user
 * who started the server, so a path is read with that user's rights; with
 * --root it must also resolve (symbolic links followed, as opened) inside
 * that directory.  Only regular files of at most TLM_MCP_FILE_MAX bytes are
 * read, and never blocking: a FIFO or a device is refused, not waited on. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcp/mcp_internal.h"
#include "telemachy/plan.h"
#include "telemachy/spec.h"

/* 1 when real (an absolute path without dot segments) is inside root. */
static int inside(const char *root, const char *real)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return 1;
	return strncmp(real, root, n) == 0 && real[n] == '/';
}

static int read_file(tlm_mcp *m, const char *path, char **text, size_t *len, char **real,
		     tlm_mcp_out *out)
{
	char link[64], *full = NULL, *buf = NULL;
	struct stat st;
	ssize_t r, n;
	size_t got = 0;
	int fd = -1, rc = TLM_ERROR;

	*real = NULL;
	if (path[0] == '\0')
		return tlm_mcp__set_failure(out, "the path is empty");
	if (m->root_real != NULL && path[0] != '/') {
		if (asprintf(&full, "%s/%s", m->root_real, path) < 0)
			return tlm_mcp__set_failure(out, "out of memory");
		path = full;
	}
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		tlm_mcp__set_failure(out, "%.512s: %s", path, strerror(errno));
		goto done;
	}
	/* Where the file opened really is: checked after opening, so a link
	 * swapped in meanwhile cannot lead outside the root. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((*real = realpath(link, NULL)) == NULL) {
		tlm_mcp__set_failure(out, "%.512s: %s", path, strerror(errno));
		goto done;
	}
	if (m->root_real != NULL && !inside(m->root_real, *real)) {
		tlm_mcp__set_failure(out, "%.512s is outside the server's root %s", path,
				     m->root_real);
		goto done;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		tlm_mcp__set_failure(out, "%.512s: not a regular file", path);
		goto done;
	}
	if ((size_t)st.st_size > TLM_MCP_FILE_MAX) {
		tlm_mcp__set_failure(out, "%.512s: larger than %zu bytes", path, TLM_MCP_FILE_MAX);
		goto done;
	}
	if ((buf = malloc(TLM_MCP_FILE_MAX + 1)) == NULL) {
		tlm_mcp__set_failure(out, "out of memory");
		goto done;
	}
	/* The size may change under us: read to the cap and check again. */
	while ((n = (ssize_t)(TLM_MCP_FILE_MAX + 1 - got)) > 0) {
		r = read(fd, buf + got, (size_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			tlm_mcp__set_failure(out, "%.512s: %s", path, strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got > TLM_MCP_FILE_MAX) {
		tlm_mcp__set_failure(out, "%.512s: larger than %zu bytes", path, TLM_MCP_FILE_MAX);
		goto done;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	buf = NULL;
	rc = 0;
done:
	if (rc != 0) {
		free(*real);
		*real = NULL;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	free(full);
	return rc;
}

int tlm_mcp__spec_source(tlm_mcp *m, json_t *args, int allow_text, char **text, size_t *len,
			 char **name, tlm_mcp_out *out)
{
	const char *path = json_string_value(json_object_get(args, "path"));
	json_t *t = allow_text ? json_object_get(args, "text") : NULL;

	*text = NULL;
	*name = NULL;
	if ((path == NULL) == (t == NULL))
		return tlm_mcp__set_failure(
			out, allow_text ? "give either \"path\" (a workflow file) or "
					  "\"text\" (its YAML), not both"
					: "give \"path\", the workflow file");
	if (path != NULL)
		return read_file(m, path, text, len, name, out);
	if (json_string_length(t) > TLM_MCP_FILE_MAX)
		return tlm_mcp__set_failure(out, "the text is larger than %zu bytes",
					    TLM_MCP_FILE_MAX);
	*len = json_string_length(t);
	if ((*text = malloc(*len + 1)) == NULL || (*name = strdup("inline")) == NULL) {
		free(*text);
		*text = NULL;
		return tlm_mcp__set_failure(out, "out of memory");
	}
	memcpy(*text, json_string_value(t), *len + 1);
	return 0;
}

/* Each error as `validate` reports it, with FILE:LINE:COL as one string. */
static json_t *diags_json(const char *file, const tlm_diags *d)
{
	json_t *arr = json_array();
	size_t i;
	int bad = arr == NULL;

	for (i = 0; !bad && i < d->count; i++) {
		const tlm_diag *e = &d->items[i];

		bad |= json_array_append_new(
			arr,
			json_pack("{s:o, s:I, s:I, s:s, s:s}", "location",
				  json_sprintf("%s:%u:%u", file, (unsigned)e->pos.line,
					       (unsigned)e->pos.col),
				  "line", (json_int_t)e->pos.line, "col", (json_int_t)e->pos.col,
				  "rule", e->rule, "message", e->message));
	}
	if (bad) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* The spec from args; *spec NULL with *doc the validation report when it
 * breaks rules.  Unreadable: failure set in out. */
static int load(tlm_mcp *m, json_t *args, tlm_spec **spec, json_t **doc, char **name,
		tlm_mcp_out *out)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	char *text = NULL;
	size_t len = 0;
	int rc;

	*spec = NULL;
	*doc = NULL;
	if (tlm_mcp__spec_source(m, args, 1, &text, &len, name, out) != 0)
		return TLM_ERROR;
	rc = tlm_spec_parse(spec, *name, text, len, &diags, &err);
	free(text);
	if (rc != 0 && rc != TLM_EINVALID) {
		tlm_diags_clear(&diags);
		return tlm_mcp__set_failure(out, "%.512s: %s", *name, err.message);
	}
	*doc = json_pack("{s:s, s:b, s:o, s:I}", "file", *name, "valid", rc == 0, "errors",
			 diags_json(*name, &diags), "error_count",
			 (json_int_t)(diags.count + diags.dropped));
	tlm_diags_clear(&diags);
	if (*doc == NULL) {
		tlm_spec_free(*spec);
		*spec = NULL;
		return tlm_mcp__set_failure(out, "out of memory (or a name that is not UTF-8)");
	}
	return 0;
}

int tlm_mcp__validate_workflow(tlm_mcp *m, json_t *args, tlm_mcp_out *out)
{
	tlm_spec *spec = NULL;
	json_t *doc = NULL;
	char *name = NULL;
	int rc = load(m, args, &spec, &doc, &name, out);

	tlm_spec_free(spec);
	free(name);
	/* An invalid workflow is an answer, not a failed call: valid false. */
	out->result = doc;
	return rc;
}

/* Agents' env values hidden: a spec author may have put a key there, and a
 * tool result goes to a model (docs/mcp.md, "Secrets"). */
static void hide_env(json_t *plan)
{
	json_t *agent, *env;
	void *it;
	size_t i;

	json_array_foreach(json_object_get(plan, "agents"), i, agent)
	{
		env = json_object_get(agent, "env");
		for (it = json_object_iter(env); it != NULL; it = json_object_iter_next(env, it))
			json_object_iter_set_new(env, it, json_string("***"));
	}
}

int tlm_mcp__plan_workflow(tlm_mcp *m, json_t *args, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	tlm_plan *plan = NULL;
	json_t *doc = NULL;
	char *name = NULL, *buf = NULL;
	size_t size = 0;
	FILE *mem = NULL;
	int rc;

	if ((rc = load(m, args, &spec, &doc, &name, out)) != 0)
		goto done;
	if (spec == NULL) {
		char *text = json_dumps(doc, JSON_COMPACT);

		rc = tlm_mcp__set_failure(out, "%s is not a valid workflow: %s", name,
					  text != NULL ? text : "(out of memory)");
		free(text);
		goto done;
	}
	/* The plan's own JSON renderer, so that this is exactly what `plan
	 * --output json` prints. */
	if ((mem = open_memstream(&buf, &size)) == NULL || tlm_plan_new(&plan, spec, &err) != 0 ||
	    tlm_plan_render_json(plan, mem, &err) != 0) {
		rc = tlm_mcp__set_failure(out, "planning %s: %s", name,
					  err.message[0] ? err.message : "out of memory");
		goto done;
	}
	rc = fclose(mem);
	mem = NULL;
	if (rc != 0) {
		rc = tlm_mcp__set_failure(out, "planning %s: out of memory", name);
		goto done;
	}
	if ((out->result = json_loadb(buf, size, 0, NULL)) == NULL) {
		rc = tlm_mcp__set_failure(out, "planning %s: out of memory", name);
		goto done;
	}
	hide_env(out->result);
done:
	if (mem != NULL)
		fclose(mem);
	free(buf);
	json_decref(doc);
	tlm_plan_free(plan);
	tlm_spec_free(spec);
	free(name);
	return rc;
}
